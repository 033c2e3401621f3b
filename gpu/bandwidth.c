/* The host-to-device copy ceiling, measured through the same backend the loads use. */
#include "gpu/gpu.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

typedef int (*copy_fn)(void *dst, const void *src, size_t bytes, hoist__stream *s);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of `repeat` timed copies, each waited for on its own, after one untimed warm-up
 * (the first copy pays for mapping the buffers). */
static int median_copy_seconds(copy_fn copy, const hoist__gpu_ops *g, void *dst, const void *src,
                               uint64_t bytes, hoist__stream *s, int repeat, double *seconds)
{
    double *t = hoist__calloc((size_t)repeat, sizeof *t);
    RETURN_IF(!t, HOIST_E_NOMEM, "out of memory");
    int rc = HOIST_OK;
    for (int i = -1; rc == HOIST_OK && i < repeat; i++) {
        double t0 = hoist__now();
        rc = copy(dst, src, bytes, s);
        if (rc == HOIST_OK) rc = g->stream_sync(s);
        if (i >= 0) t[i] = hoist__now() - t0;
    }
    if (rc == HOIST_OK) {
        qsort(t, (size_t)repeat, sizeof *t, cmp_double);
        *seconds = t[repeat / 2];
    }
    hoist__free(t);
    return rc;
}

int hoist_device_copy_bandwidth(int device, uint64_t bytes, int pinned, int repeat, double *gbps)
{
    RETURN_IF(!gbps || bytes == 0 || repeat < 1 || repeat > 1000, HOIST_E_INVALID_ARG,
              "hoist_device_copy_bandwidth: bad argument");
    const hoist__gpu_ops *g = NULL;
    RETURN_IF_ERR(hoist__gpu_for_device(device, &g));
    void *src = NULL, *dst = NULL;
    hoist__stream *s = NULL;
    int rc = HOIST_OK;
    if (pinned)
        rc = g->pinned_alloc(bytes, &src);
    else if (!(src = hoist__malloc(bytes)))
        rc = hoist__err(HOIST_E_NOMEM, "cannot allocate %llu bytes", (unsigned long long)bytes);
    if (rc == HOIST_OK) memset(src, 0x5a, bytes); /* fault the pages in before timing */
    if (rc == HOIST_OK) rc = g->mem_alloc(device, bytes, &dst);
    if (rc == HOIST_OK) rc = g->stream_create(device, &s);
    double sec = 0;
    if (rc == HOIST_OK) rc = median_copy_seconds(g->copy_h2d, g, dst, src, bytes, s, repeat, &sec);
    if (rc == HOIST_OK) *gbps = (double)bytes / sec / 1e9;
    if (s) g->stream_destroy(s);
    if (dst) g->mem_free(device, dst);
    if (src) pinned ? g->pinned_free(src, bytes) : hoist__free(src);
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}

/* The device-memory ceiling: one buffer of the device copied into another. The copy reads and
 * writes every byte, so both directions count, as they do in the vendor's bandwidth figures. */
int hoist_device_memory_bandwidth(int device, uint64_t bytes, int repeat, double *gbps)
{
    RETURN_IF(!gbps || bytes == 0 || repeat < 1 || repeat > 1000, HOIST_E_INVALID_ARG,
              "hoist_device_memory_bandwidth: bad argument");
    const hoist__gpu_ops *g = NULL;
    RETURN_IF_ERR(hoist__gpu_for_device(device, &g));
    RETURN_IF(!g->copy_d2d, HOIST_E_UNSUPPORTED, "device %d: backend %s cannot copy within a device",
              device, g->name);
    void *src = NULL, *dst = NULL;
    hoist__stream *s = NULL;
    int rc = g->mem_alloc(device, bytes, &src);
    if (rc == HOIST_OK) rc = g->mem_alloc(device, bytes, &dst);
    if (rc == HOIST_OK) rc = g->stream_create(device, &s);
    double sec = 0;
    if (rc == HOIST_OK) rc = median_copy_seconds(g->copy_d2d, g, dst, src, bytes, s, repeat, &sec);
    if (rc == HOIST_OK) *gbps = 2.0 * (double)bytes / sec / 1e9;
    if (s) g->stream_destroy(s);
    if (dst) g->mem_free(device, dst);
    if (src) g->mem_free(device, src);
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}
