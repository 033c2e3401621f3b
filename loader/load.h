/* The state of one load, shared by the pipeline, the sources and the sink. */
#ifndef HOIST_LOAD_H
#define HOIST_LOAD_H

#include "formats/table.h"
#include "gpu/gpu.h"
#include "loader/internal.h"
#include "loader/plan.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct hoist__source_ops hoist__source_ops;

typedef struct hoist__load {
    const hoist__table *table;
    hoist_load_options opts;   /* resolved: no zeros left for "default" */
    const hoist__gpu_ops *gpu; /* the destination's backend */
    bool host_sink;            /* destination is host memory */
    hoist__plan plan;
    uint8_t *arena;
    hoist__budget budget;
    const hoist__source_ops *source;
    void *source_state;

    /* work distribution and failure: the first worker error wins, the rest stop early */
    _Atomic size_t next_window;
    _Atomic int failed;
    pthread_mutex_t err_lock;
    int err_status;
    char err_msg[1024];

    /* per-stage seconds, summed over workers (nanoseconds, for atomic adds) */
    _Atomic uint64_t read_ns, copy_ns;
    double verify_seconds;
} hoist__load;

/* Records the calling thread's last error as the load's failure if it is the first; returns
 * status. Worker threads call this: their thread-local message is not the caller's. */
int hoist__load_fail(hoist__load *ld, int status);

/* Host bytes of staging the pipeline takes with this many workers and this window size. */
uint64_t hoist__pipeline_staging_bytes(const hoist__load *ld, unsigned threads, uint64_t window);

/* Runs the window pipeline over the plan with ld->opts.threads workers (the default driver of
 * sources that provide `read`). */
int hoist__pipeline_run(hoist__load *ld);

#endif
