/* Small shared helpers: version, clocks, strings, the host-RAM budget. */
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOIST_STR2(x) #x
#define HOIST_STR(x) HOIST_STR2(x)

const char *hoist_version(void)
{
    return HOIST_STR(HOIST_VERSION_MAJOR) "." HOIST_STR(HOIST_VERSION_MINOR) "." HOIST_STR(
        HOIST_VERSION_PATCH);
}

unsigned hoist_version_number(void) { return HOIST_VERSION_NUMBER; }

double hoist__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hoist__budget_init(hoist__budget *b, uint64_t limit)
{
    b->limit = limit;
    atomic_init(&b->used, 0);
    atomic_init(&b->peak, 0);
}

int hoist__budget_take(hoist__budget *b, uint64_t n, const char *what)
{
    uint64_t used = atomic_fetch_add(&b->used, n) + n;
    if (b->limit && used > b->limit) {
        atomic_fetch_sub(&b->used, n);
        return hoist__err(HOIST_E_BUDGET,
                          "%s needs %llu bytes, but only %llu of the %llu-byte host RAM budget "
                          "are left",
                          what, (unsigned long long)n,
                          (unsigned long long)(b->limit - (used - n)),
                          (unsigned long long)b->limit);
    }
    uint64_t peak = atomic_load(&b->peak);
    while (used > peak && !atomic_compare_exchange_weak(&b->peak, &peak, used)) {
    }
    return HOIST_OK;
}

void hoist__budget_give(hoist__budget *b, uint64_t n) { atomic_fetch_sub(&b->used, n); }

int64_t hoist__pread_full(int fd, void *buf, uint64_t n, uint64_t off)
{
    uint64_t done = 0;
    while (done < n) {
        ssize_t r = hoist__io_pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        done += (uint64_t)r;
    }
    return (int64_t)done;
}
