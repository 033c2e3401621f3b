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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

    /* Page-locked host memory usable for async copies to any device; freed with the size it was
     * allocated with. */
    int (*pinned_alloc)(size_t bytes, void **ptr);
    void (*pinned_free)(void *ptr, size_t bytes);

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
    /* Optional (NULL = unsupported): async copy between two buffers of the stream's device (the
     * memory-bandwidth ceiling of a decode step). */
    int (*copy_d2d)(void *dst, const void *src, size_t bytes, hoist__stream *s);
} hoist__gpu_ops;

/* ---- the device-call seam (gpu/gpu_seam.c; tests only, like the I/O hooks of loader/io.h) ---
 * Every backend passes each call that can fail through hoist__gpu_seam before making it, and
 * reports every buffer, registration, stream and event it creates or destroys. Tests fail the
 * k-th allocation, copy or event call and check that a failed load gives all of them back, on the
 * host backend in CI and on CUDA on the device machine, through the same code. */
typedef enum hoist__gpu_call {
    HOIST_GPU_MEM_ALLOC,
    HOIST_GPU_PINNED_ALLOC,
    HOIST_GPU_HOST_REGISTER,
    HOIST_GPU_STREAM_CREATE,
    HOIST_GPU_STREAM_SYNC,
    HOIST_GPU_EVENT_CREATE,
    HOIST_GPU_EVENT_RECORD,
    HOIST_GPU_EVENT_SYNC,
    HOIST_GPU_COPY_H2D,
    HOIST_GPU_COPY_D2H,
    HOIST_GPU_NCALLS
} hoist__gpu_call;

typedef enum hoist__gpu_res {
    HOIST_GPU_RES_DEVICE,     /* mem_alloc blocks */
    HOIST_GPU_RES_PINNED,     /* pinned_alloc blocks (including those the pinned cache holds) */
    HOIST_GPU_RES_REGISTERED, /* host_register ranges */
    HOIST_GPU_RES_STREAM,
    HOIST_GPU_RES_EVENT,
    HOIST_GPU_NRES
} hoist__gpu_res;

typedef struct hoist__gpu_hooks {
    /* Asked before each call: HOIST_OK lets it run; a negative status makes it fail with that
     * status, as the backend would report a real failure. Called from any thread. */
    int (*call)(const char *backend, hoist__gpu_call call, size_t bytes);
    /* Loads into HOIST_DEVICE_HOST take the device path (pinned staging slots, streams, events,
     * asynchronous copies) through the host backend instead of copying straight into the arena,
     * so that the code a GPU load runs is swept where there is no GPU. */
    bool host_as_device;
} hoist__gpu_hooks;

/* Installs hooks process-wide (copied; NULL removes them). Only while no load runs. */
void hoist__gpu_set_hooks(const hoist__gpu_hooks *hooks);
/* For backends: HOIST_OK, or the hook's status with a message naming the backend, device
 * (HOIST_DEVICE_HOST or -1 where the call has none) and call. */
int hoist__gpu_seam(const char *backend, int device, hoist__gpu_call call, size_t bytes);
/* For backends: a resource was created (+1) or destroyed (-1). */
void hoist__gpu_track(hoist__gpu_res res, int delta);
/* Resources of that kind alive right now, over every backend. */
int64_t hoist__gpu_live(hoist__gpu_res res);
/* Whether the installed hooks ask for host_as_device. */
bool hoist__gpu_host_as_device(void);
const char *hoist__gpu_call_name(hoist__gpu_call call);

/* Pinned buffers through the process-wide cache (gpu/pinned_cache.c): acquire reuses a released
 * buffer of the same backend and size, or pins a new one; release keeps it for the next load while
 * the cache is under its cap (1 GiB), else frees it. Thread-safe. */
int hoist__pinned_acquire(const hoist__gpu_ops *g, size_t bytes, void **ptr);
void hoist__pinned_release(const hoist__gpu_ops *g, void *ptr, size_t bytes);

/* Host memory for a backend to pin (gpu/host_pages.c): `bytes` (rounded up to whole pages) of
 * zeroed, 2 MiB-aligned anonymous memory whose pages are all present, faulted in by several
 * threads, advised for transparent huge pages and kept out of fork. HOIST_E_PINNED_NOMEM when
 * it cannot be mapped. The caller owns it until hoist__host_pages_unmap with the same size. */
int hoist__host_pages_map(size_t bytes, void **out);
void hoist__host_pages_unmap(void *ptr, size_t bytes);

/* The host implementation (always present). */
extern const hoist__gpu_ops hoist__gpu_host;
/* The CUDA implementation, or NULL in a build without CUDA. */
const hoist__gpu_ops *hoist__gpu_cuda(void);
/* The implementation that owns `device` (host for HOIST_DEVICE_HOST). HOIST_E_NO_DEVICE when the
 * device does not exist in this build or on this machine. */
int hoist__gpu_for_device(int device, const hoist__gpu_ops **out);

#endif
