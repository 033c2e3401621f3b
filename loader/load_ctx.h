/* The state of one load, shared by the pipeline, the transforms and the sink (sources see only
 * loader/source.h). */
#ifndef HOIST_LOAD_CTX_H
#define HOIST_LOAD_CTX_H

#include "formats/table.h"
#include "gpu/gpu.h"
#include "core/core.h"
#include "loader/plan.h"
#include "loader/coordinator.h"
#include "loader/progress.h"
#include "loader/source.h"
#include "loader/tp.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct hoist__transform_ops hoist__transform_ops;
struct hoist__group; /* loader/group.h */

/* One destination allocation: a device's arena. A load without a plan has one. */
typedef struct hoist__arena {
    int device;
    const hoist__gpu_ops *gpu;
    uint8_t *base;
    uint64_t bytes;
    /* from the embedder's allocator (hoist_load_options.allocator) when alloc.alloc is set:
     * given back through it, with the byte count it was asked for */
    hoist_allocator alloc;
    size_t alloc_bytes;
} hoist__arena;

typedef struct hoist__load {
    const hoist__table *table;
    hoist_load_options opts;   /* resolved: no zeros left for "default" */
    hoist_model *model;
    const hoist__gpu_ops *gpu; /* staging's backend: CUDA when any arena is on a GPU */
    bool host_sink;            /* every destination is host memory */
    /* hoist_load_sink: pieces go to the embedder's callback instead of an arena (host_sink is
     * set too). Windows are delivered strictly in plan order: a worker that has read window i
     * waits until window i-1 has been delivered (next_deliver). */
    hoist_sink_fn sink;
    void *sink_user;
    pthread_mutex_t deliver_lock;
    pthread_cond_t deliver_cond;
    size_t next_deliver;
    size_t next_tensor; /* tensors before this index have been announced to the sink */
    hoist__plan plan;
    hoist__arena arenas[HOIST_PLAN_MAX_DEVICES];
    size_t narenas;
    uint8_t *tensor_arena;     /* per tensor: index into arenas (owned); NULL = all in arena 0 */
    hoist__reservation *reservation; /* the plan's, bound to the weights being loaded */
    hoist__budget budget;
    const hoist__source_ops *source; /* &source_ops once resolved */
    hoist__source_ops source_ops;    /* the path's table, its optional members defaulted */
    void *source_state;
    hoist__source_needs source_needs; /* what the source answered at open */

    /* work distribution and failure: the first worker error wins, the rest stop early */
    _Atomic size_t next_window;
    _Atomic int failed;
    pthread_mutex_t err_lock;
    int err_status;
    char err_msg[1024];

    /* per-stage seconds, summed over workers (nanoseconds, for atomic adds) */
    _Atomic uint64_t read_ns, copy_ns;
    _Atomic uint64_t wait_ns; /* workers waiting for a slot's device work, summed (debug log) */
    /* of copy_ns, a GPU-decoded window's CPU decoding and queueing of its copies and kernel:
     * where the driver blocks a worker that queues into full hardware queues (debug log) */
    _Atomic uint64_t queue_ns;
    hoist__progress progress; /* bytes handed to the destination */
    double readback_seconds;
    /* wall time of each phase, logged at DEBUG: where a fast load's time goes */
    double prepare_s, arenas_s, setup_s, transfer_s, teardown_s;

    /* the transform stage between read and copy (loader/transform.h); NULL when none */
    const hoist__transform_ops *transform;
    void *transform_state;
    struct {
        uint64_t window_min;     /* windows at least this large (0: no minimum) */
        uint64_t window_quantum; /* and a multiple of this (0: no constraint) */
        uint64_t worker_bytes;   /* host bytes each worker's context takes */
        uint64_t fixed_bytes;    /* host bytes the transform holds for the whole load */
    } transform_needs;
    _Atomic uint64_t decode_ns, verify_ns; /* summed over workers, like read_ns */
    /* codec 2 chunks decoded on the GPU (loader/gpu_decode.h): its state, and the model bytes
     * the kernels wrote, which no hash has seen unless opts.verify asks for the readback */
    bool gpu_decode;
    struct hoist__gdec *gdec;
    _Atomic uint64_t gpu_decoded_bytes;

    /* tensor parallelism (loader/tp.h, loader/load_tp.c): opts.tp points at tp, the library's
     * copy; slices is each tensor's slice (owned, moved into the weights; NULL: whole tensors) */
    hoist_tp_options tp;
    hoist__slice *slices;
    _Atomic uint64_t read_bytes; /* what the source asked storage for */
    struct hoist__group *group;  /* hoist_load_group's ranks, for their exchange; NULL alone */
    bool exchanged;              /* the cooperative exchange ran (it runs once per load) */
    bool shared_pending;         /* the caller completes the exchange (hoist_weights_tp_share) */
    double exchange_s;
    uint64_t exchange_bytes;
} hoist__load;

/* Records the calling thread's last error as the load's failure if it is the first; returns
 * status. Worker threads call this: their thread-local message is not the caller's. */
int hoist__load_fail(hoist__load *ld, int status);

/* Hands the sink every tensor below `end` (table order) that has not been announced yet and has
 * no bytes: zero-sized tensors are delivered as empty pieces in their place. Call with the
 * delivery turn held. */
int hoist__sink_announce_empty(hoist__load *ld, size_t end);

/* Destinations (loader/arenas.c). resolve: the arenas of opts->plan (one per device it put
 * tensors on) or the one of opts->device, their backends, ld->gpu and ld->host_sink; nothing
 * allocated on devices. alloc: checks that each device still has the free memory its arena needs
 * (HOIST_E_NO_FIT before anything is allocated), then allocates them all or none. */
int hoist__arenas_resolve(hoist__load *ld, const hoist_model *model);
int hoist__arenas_alloc(hoist__load *ld);
void hoist__arenas_free(hoist__arena *arenas, size_t n);

/* Everything up to the plan (loader/resolve.c): checks the options, resolves the destinations,
 * opens the source with the hints the options give and applies what it needs, fits the
 * transform and the budget, and builds the plan. The one place ld->opts is rewritten: it leaves
 * here with no zeros left for "default". */
int hoist__load_resolve(hoist__load *ld);

/* Tensor parallelism within one load (loader/load_tp.c). resolve: the library's copy of
 * opts.tp (fn names the public function), the checks of what it cannot be combined with, and
 * every tensor's slice; a load without opts.tp is left alone. */
int hoist__tp_resolve(hoist__load *ld, const char *fn);
/* Zero-fills the padding of padded slices, once the arena exists. */
int hoist__tp_zero_padding(hoist__load *ld);
/* Whether this load exchanges its shared region (cooperative, with NCCL or a group's ranks). */
bool hoist__tp_exchanging(const hoist__load *ld);
/* The exchange of a cooperative load, reached once by every rank whatever happened before:
 * status is this rank's outcome so far. Every rank first learns every other's outcome and the
 * size of its shared region; only when all succeeded and agree are the parts exchanged. Returns
 * this rank's status, or HOIST_E_ABORTED naming the rank that failed. */
int hoist__tp_exchange(hoist__load *ld, int status);
/* The same for a rank that failed before its load existed (o: the library's copy of the
 * options): it still tells the others. */
int hoist__tp_exchange_alone(const hoist_load_options *o, struct hoist__group *group, int status);

/* hoist_load with the library's full-size copy of the options, as one rank of a
 * hoist_load_group (NULL: a load of its own). */
int hoist__load_rank(hoist_model *model, const hoist_load_options *o, struct hoist__group *group,
                     hoist_weights **out);

/* Host bytes of staging the pipeline takes with this many workers and this window size. */
uint64_t hoist__pipeline_staging_bytes(const hoist__load *ld, unsigned threads, uint64_t window);

/* Runs the window pipeline over the plan with ld->opts.threads workers. */
int hoist__pipeline_run(hoist__load *ld);

#endif
