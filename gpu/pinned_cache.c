/* A process-wide cache of pinned staging buffers. Pinning fresh memory is not free: a 96 MiB pool
 * takes 5-7 ms even with its pages faulted in by 16 threads (gpu/host_pages.c), 3-4% of an 8 GB
 * load from the page cache. So a second load in the same process
 * reuses the buffers the first one released instead of pinning new ones. Bounded, thread-safe,
 * and emptied by hoist_trim(). */
#include "gpu/gpu.h"
#include "core/core.h"

#include <pthread.h>

#define CACHE_SLOTS 64
#define CACHE_MAX_BYTES (1ull << 30)

typedef struct cached {
    const hoist__gpu_ops *ops;
    void *ptr;
    size_t bytes;
} cached;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cached entries[CACHE_SLOTS];
static unsigned count;
static uint64_t cached_bytes;

int hoist__pinned_acquire(const hoist__gpu_ops *g, size_t bytes, void **ptr)
{
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < count; i++) {
        if (entries[i].ops != g || entries[i].bytes != bytes) continue;
        *ptr = entries[i].ptr;
        cached_bytes -= bytes;
        entries[i] = entries[--count];
        pthread_mutex_unlock(&lock);
        return HOIST_OK;
    }
    pthread_mutex_unlock(&lock);
    return g->pinned_alloc(bytes, ptr);
}

void hoist__pinned_release(const hoist__gpu_ops *g, void *ptr, size_t bytes)
{
    if (!ptr) return;
    pthread_mutex_lock(&lock);
    if (g != &hoist__gpu_host && count < CACHE_SLOTS && cached_bytes + bytes <= CACHE_MAX_BYTES) {
        entries[count++] = (cached){g, ptr, bytes};
        cached_bytes += bytes;
        ptr = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (ptr) g->pinned_free(ptr, bytes); /* over the cap, or the host backend: nothing to save */
}

void hoist_trim(void)
{
    pthread_mutex_lock(&lock);
    while (count) {
        cached *c = &entries[--count];
        c->ops->pinned_free(c->ptr, c->bytes);
    }
    cached_bytes = 0;
    pthread_mutex_unlock(&lock);
}
