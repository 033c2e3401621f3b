/* The device layer: the only code that talks to CUDA lives behind this interface.
 *
 * Two implementations: CUDA (gpu/gpu_cuda.c, built where the toolkit is found) and host
 * (gpu/gpu_host.c: plain memory, synchronous copies, events that are always complete). The loader
 * drives both the same way, so the whole pipeline is exercised on machines without a GPU.
 *
 * Every function returns HOIST_OK or a negative hoist_status and sets the thread's error message
 * (naming the device and the call). Pointers and handles are opaque to the caller.
 */
#ifndef HOIST_GPU_H
#define HOIST_GPU_H

#include "hoist.h"

#include <stddef.h>

typedef struct hoist__stream hoist__stream;
typedef struct hoist__event hoist__event;

#define HOIST_GPU_OPS_VERSION 1

typedef struct hoist__gpu_ops {
    int version; /* HOIST_GPU_OPS_VERSION */
    const char *name;

    int (*device_count)(int *count);
    int (*device_info)(int device, hoist_device_info *out);

    /* Device memory of `device`. */
    int (*mem_alloc)(int device, size_t bytes, void **ptr);
    void (*mem_free)(int device, void *ptr);

    /* Page-locked host memory usable for async copies to any device. */
    int (*pinned_alloc)(size_t bytes, void **ptr);
    void (*pinned_free)(void *ptr);

    /* Optional (NULL = unsupported): page-lock an existing range (e.g. a file mapping) for DMA. */
    int (*host_register)(void *ptr, size_t bytes, int read_only);
    void (*host_unregister)(void *ptr);

    int (*stream_create)(int device, hoist__stream **out);
    void (*stream_destroy)(hoist__stream *s);
    int (*stream_sync)(hoist__stream *s);

    int (*event_create)(int device, hoist__event **out);
    void (*event_destroy)(hoist__event *e);
    int (*event_record)(hoist__event *e, hoist__stream *s);
    /* Blocks until the work recorded before e is done. */
    int (*event_sync)(hoist__event *e);

    /* Async host-to-device copy on s; src must stay untouched until an event recorded after it
     * completes. */
    int (*copy_h2d)(void *dst, const void *src, size_t bytes, hoist__stream *s);
    /* Synchronous device-to-host copy (verification, reads for tests). */
    int (*copy_d2h)(void *dst, const void *src, size_t bytes, int device);
} hoist__gpu_ops;

/* Pinned buffers through the process-wide cache (gpu/pinned_cache.c): acquire reuses a released
 * buffer of the same backend and size, or pins a new one; release keeps it for the next load while
 * the cache is under its cap (1 GiB), else frees it. Thread-safe. */
int hoist__pinned_acquire(const hoist__gpu_ops *g, size_t bytes, void **ptr);
void hoist__pinned_release(const hoist__gpu_ops *g, void *ptr, size_t bytes);

/* The host implementation (always present). */
extern const hoist__gpu_ops hoist__gpu_host;
/* The CUDA implementation, or NULL in a build without CUDA. */
const hoist__gpu_ops *hoist__gpu_cuda(void);
/* The implementation that owns `device` (host for HOIST_DEVICE_HOST). HOIST_E_NO_DEVICE when the
 * device does not exist in this build or on this machine. */
int hoist__gpu_for_device(int device, const hoist__gpu_ops **out);

#endif
