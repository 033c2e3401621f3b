/* Progress reports from the waiting thread (see progress.h). Waiting with a timed join rather than
 * a reporter thread keeps the callback on the caller's thread, where an embedder can touch its own
 * state (a terminal, a UI) without locks, and costs nothing when no callback is set. */
#include "loader/progress.h"

#include <errno.h>
#include <time.h>

#define INTERVAL ((double)HOIST_PROGRESS_INTERVAL_MS / 1000.0)

void hoist__progress_start(hoist__progress *p, hoist_progress_fn fn, void *user, uint64_t total)
{
    p->fn = fn;
    p->user = user;
    p->total = total;
    atomic_store(&p->done, 0);
    p->last = hoist__now();
    if (fn) fn(0, total, user);
}

static void report(hoist__progress *p)
{
    p->last = hoist__now();
    p->fn(atomic_load_explicit(&p->done, memory_order_relaxed), p->total, p->user);
}

int hoist__progress_join(hoist__progress *p, pthread_t t)
{
    if (!p->fn) return pthread_join(t, NULL);
    for (;;) {
        /* the deadline is the next report's time; timed joins take CLOCK_REALTIME */
        double wait = p->last + INTERVAL - hoist__now();
        if (wait < 0.001) wait = 0.001;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = (long long)ts.tv_nsec + (long long)(wait * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        int rc = pthread_timedjoin_np(t, NULL, &ts);
        if (rc != ETIMEDOUT) return rc;
        if (hoist__now() - p->last >= INTERVAL) report(p);
    }
}

void hoist__progress_finish(hoist__progress *p)
{
    if (p->fn) report(p);
}
