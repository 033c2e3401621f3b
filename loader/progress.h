/* Progress reporting for long operations (loads, ceiling measurements): workers count bytes into
 * an atomic, and the thread that waits for them reports, so that the embedder's callback runs on
 * the thread that called into hoist, never concurrently and at a bounded rate. */
#ifndef HOIST_PROGRESS_H
#define HOIST_PROGRESS_H

#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct hoist__progress {
    hoist_progress_fn fn; /* NULL: counting only */
    void *user;
    uint64_t total;
    _Atomic uint64_t done;
    double last; /* hoist__now() of the last report */
} hoist__progress;

/* Resets the count and reports done = 0. */
void hoist__progress_start(hoist__progress *p, hoist_progress_fn fn, void *user, uint64_t total);

/* Any thread: n more bytes are done. */
static inline void hoist__progress_add(hoist__progress *p, uint64_t n)
{
    atomic_fetch_add_explicit(&p->done, n, memory_order_relaxed);
}

/* pthread_join(t), reporting every HOIST_PROGRESS_INTERVAL_MS while t runs. Returns
 * pthread_join's result. */
int hoist__progress_join(hoist__progress *p, pthread_t t);

/* The last report (the operation succeeded): whatever was counted, which is then the total. */
void hoist__progress_finish(hoist__progress *p);

#endif
