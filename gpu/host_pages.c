/* Host memory made ready for pinning.
 *
 * Pinning fresh memory costs what the kernel spends zeroing its pages on first touch, not the
 * pinning: on the device machine cudaHostAlloc of 96 MiB took 30-48 ms, while registering 96 MiB
 * whose pages were already present took 2-3 ms. One core zeroes about 5 GB/s, and the driver
 * zeroes under its own lock, so pinning from several threads does not help either. Here the
 * pages are faulted in by several threads at once before the driver sees them (96 MiB in about
 * 2-3 ms with 16 threads), on a 2 MiB-aligned mapping with transparent huge pages advised, so
 * that the registration that follows pins a few dozen huge pages instead of 24,576 small ones.
 *
 * The mapping is excluded from fork (MADV_DONTFORK): a child must not share pages that a device
 * may be writing, and copy-on-write must never move a pinned page under the parent. */
#include "gpu/gpu.h"
#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE (2u << 20)
#define FAULT_PER_THREAD (4u << 20) /* below this, a thread costs more than it saves */
#define FAULT_MAX_THREADS 16

typedef struct fault_job {
    volatile char *p;
    size_t bytes;
    size_t page;
} fault_job;

static void *fault_in(void *arg)
{
    fault_job *j = arg;
    for (size_t off = 0; off < j->bytes; off += j->page) j->p[off] = 0;
    return NULL;
}

static size_t round_up(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

/* Length of the mapping behind `bytes`: whole pages. */
static size_t mapped_length(size_t bytes, size_t page) { return round_up(bytes ? bytes : 1, page); }

/* Touches every page of [p, p + len), splitting the range over up to FAULT_MAX_THREADS threads;
 * where a thread cannot be started its share is touched by the caller. */
static void fault_all(char *p, size_t len, size_t page)
{
    size_t n = len / FAULT_PER_THREAD;
    n = n < 1 ? 1 : n > FAULT_MAX_THREADS ? FAULT_MAX_THREADS : n;
    size_t share = round_up((len + n - 1) / n, HUGE_PAGE); /* no huge page split between two */
    pthread_t th[FAULT_MAX_THREADS];
    fault_job jobs[FAULT_MAX_THREADS];
    int started[FAULT_MAX_THREADS] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t off = i * share < len ? i * share : len;
        size_t end = i + 1 == n || off + share > len ? len : off + share;
        jobs[i] = (fault_job){p + off, end - off, page};
        if (i + 1 < n) started[i] = pthread_create(&th[i], NULL, fault_in, &jobs[i]) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!started[i]) fault_in(&jobs[i]);
    for (size_t i = 0; i < n; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

int hoist__host_pages_map(size_t bytes, void **out)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = mapped_length(bytes, page);
    RETURN_IF(len > SIZE_MAX - HUGE_PAGE, HOIST_E_PINNED_NOMEM,
              "cannot map %zu bytes of staging memory", bytes);
    /* over-map by a huge page, then trim both ends so that the range starts on a 2 MiB boundary */
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    RETURN_IF(raw == MAP_FAILED, HOIST_E_PINNED_NOMEM,
              "cannot map %zu bytes of staging memory: %s", bytes, strerror(errno));
    char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + len + HUGE_PAGE - (p + len));
    if (tail) munmap(p + len, tail);
    madvise(p, len, MADV_HUGEPAGE); /* advice only: without THP the pages are small */
    madvise(p, len, MADV_DONTFORK);
    fault_all(p, len, page);
    *out = p;
    return HOIST_OK;
}

void hoist__host_pages_unmap(void *ptr, size_t bytes)
{
    if (!ptr) return;
    munmap(ptr, mapped_length(bytes, (size_t)sysconf(_SC_PAGESIZE)));
}
