/* The I/O paths behind one versioned table of operations, as sqlite's VFS. A source is opened
 * with the model's files and a few hints, never the load itself, and answers with what it needs;
 * the load's options are resolved from that answer in one place (loader/resolve.c), and no
 * source writes them. `version` and `name` lead the table in every version, and the version is
 * checked before anything else is read; optional members may be NULL and are defaulted by the
 * caller (hoist__source_resolve), so the pipeline calls every member unconditionally. */
#ifndef HOIST_SOURCE_H
#define HOIST_SOURCE_H

#include "core/core.h"
#include "formats/table.h"
#include "gpu/gpu.h"
#include "loader/plan.h"

/* 2: open takes hints and answers needs; start; flags say what copy's presence used to. A later
 * version may only add members at the end, read only from tables that declare it. */
#define HOIST_SOURCE_OPS_VERSION 2

/* flags */
/* read() needs its buf to be a staging slot (page-aligned, window-sized): never the
 * destination arena itself. O_DIRECT reads widen windows to block boundaries. */
#define HOIST_SOURCE_SLOT_BUFFERS 1u
/* read() may point *src into a file mapping: the pipeline copies such bytes out only through
 * copy(), which guards against the file shrinking under the mapping. */
#define HOIST_SOURCE_MAPPED 2u

/* Staging slots per worker on a device load: one being filled, two whose copies may be in
 * flight; so a worker has up to this many windows in hand. */
#define HOIST_SLOTS_PER_WORKER 3

/* What a source is opened with. A source keeps a copy of what it needs; files outlive it. */
typedef struct hoist__source_hints {
    const hoist__file *files; /* the model's files: path and size of each */
    uint32_t nfiles;
    const char *origin;       /* what the model was opened as, for messages */
    bool host;                /* every destination is host memory (no device copies) */
    const hoist__gpu_ops *gpu; /* the backend that stages to the device (and may register host
                                * memory); the host's own on a host load */
    uint64_t ram_budget;      /* host bytes the load may take; 0: unlimited */
    unsigned threads;         /* workers the caller asked for; 0: the source's choice */
    uint64_t window;          /* window bytes the caller asked for; 0: the source's choice */
    int mmap_register;        /* hoist_load_options.mmap_register: -1 auto, 0 never, 1 always */
    const char *transform;    /* the stage that reads every window before the destination does
                               * (decoding, a manifest check), by name; NULL: none */
    int64_t readahead_bytes;  /* hoist_load_options.readahead_bytes: < 0 the default */
    /* Only the pieces of each window are wanted (a tensor-parallel slice, a cooperative share):
     * read() reads just those (hoist__source_ranges), a mapping is not registered whole, and
     * kernel readahead, which would read the gaps, is turned off. */
    bool sparse;
    /* Where read() adds the bytes it asks storage for (widened as it widens them); NULL: not
     * counted. */
    _Atomic uint64_t *read_bytes;
} hoist__source_hints;

/* What a source answers. The budget fit may lower threads and window, never raise them. */
typedef struct hoist__source_needs {
    unsigned threads; /* workers: the hint when given, else the source's default (>= 1) */
    uint64_t window;  /* window bytes, likewise: a multiple of 4096 up to 1 GiB */
    bool staging;     /* a device load needs pinned staging slots (false: read() hands out
                       * DMA-able bytes of its own) */
} hoist__source_needs;

typedef struct hoist__source_ops hoist__source_ops;
struct hoist__source_ops {
    int version; /* HOIST_SOURCE_OPS_VERSION */
    const char *name;
    unsigned flags;

    /* Required. Opens and checks the files of *h and answers *needs (zeroed by the caller). */
    int (*open)(const hoist__source_hints *h, void **state, hoist__source_needs *needs);
    /* Required. Releases everything open and start took. NULL state is a no-op. */
    void (*close)(void *state);
    /* Required. Produces the bytes [w->lo, w->hi) of w's file: either reads them into buf
     * (capacity: the plan's window size, or the destination itself on a host load when the
     * window is one piece) and sets *src = buf, or points *src at bytes it already holds. *dma
     * sets whether the device may copy from *src directly (pinned or registered memory). Called
     * from worker threads, concurrently. */
    int (*read)(void *state, int worker, const hoist__window *w, void *buf, const void **src,
                int *dma);

    /* Optional (default: nothing). The plan is built and the workers are about to start: plan
     * outlives every read; host memory the source takes now beyond host_bytes is counted in
     * budget and given back by close. Called once, on the loading thread. */
    int (*start)(void *state, const hoist__plan *plan, hoist__budget *budget);
    /* Optional (default: nothing). Hands worker `worker` its staging buffers before the workers
     * start (for io_uring fixed buffers, say). They are valid until the workers have finished:
     * the pipeline frees them before close, so a source may keep them registered but must not
     * touch them after its last read. Called on the loading thread, once per worker, only when
     * the pipeline allocated buffers. */
    int (*attach)(void *state, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes);
    /* Optional (default: nothing). Called once the device has finished copying a window read
     * with *dma set and *src != buf (e.g. to unregister a mapping). */
    void (*release)(void *state, const hoist__window *w);
    /* Optional (default 0). Host memory the source itself keeps resident while `threads`
     * workers hold `window`-byte windows, beyond the pipeline's staging (mapped pages,
     * read-ahead); counted against the RAM budget. */
    uint64_t (*host_bytes)(void *state, unsigned threads, uint64_t window);
    /* Optional (default: memcpy). Copies n bytes out of what read() pointed *src at. */
    int (*copy)(void *state, const hoist__window *w, void *dst, const void *src, uint64_t n);
};

/* Whether read() of a window of plan p reads only its pieces' byte ranges (hoist__range_next)
 * rather than all of [lo, hi): a sparse plan of file windows (a packed model's windows hold
 * stored chunks, read whole). */
static inline bool hoist__source_ranges(const hoist__plan *p) { return p->sparse && !p->decode; }

/* Checks that ops is a table this build can drive (its version, its required members) and
 * copies it to *out with every optional member left NULL replaced by its default.
 * HOIST_E_INTERNAL naming the source otherwise. */
int hoist__source_resolve(const hoist__source_ops *ops, hoist__source_ops *out);

/* The source of `path` in this build; NULL when it has none. HOIST_PATH_AUTO probes the files of
 * `table` (NULL: only asks whether auto exists). */
const hoist__source_ops *hoist__source_for(hoist_path path, const hoist__table *table);

extern const hoist__source_ops hoist__source_mmap;
extern const hoist__source_ops hoist__source_stream, hoist__source_uring;
/* The source HOIST_PATH_AUTO resolves to for this table (loader/source_auto.c); logs why. */
const hoist__source_ops *hoist__source_auto(const hoist__table *t);

#endif
