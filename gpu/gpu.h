/* The device layer: the only host code that talks to CUDA (runtime, driver, cuBLAS) lives behind
 * this interface, so that every device buffer, stream and handle the library makes passes through
 * one fault seam and one set of live counters, and every CUDA error is reported one way.
 *
 * Two implementations: CUDA (gpu/gpu_cuda.c, built where the toolkit is found) and host
 * (gpu/gpu_host.c: plain memory, synchronous copies, events that are always complete). The loader
 * drives both the same way, so the whole pipeline is exercised on machines without a GPU. The
 * GPU forward pass (infer/gpu_forward.c) uses the inference block of the interface and the
 * matrix products, which only the CUDA backend has: sessions over host memory run infer/cpu.c.
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
typedef struct hoist__blas hoist__blas;   /* a matrix-product handle bound to one stream */
typedef struct hoist__graph hoist__graph; /* a captured stream's work, ready to replay */

/* The calling thread's current device belongs to the caller (an engine, torch): code that needs
 * other devices enters a scope, switches between them inside it, and leaves it, which gives the
 * caller its device back. Switching to the device already current costs no driver call. */
typedef struct hoist__device_scope {
    int saved;   /* the caller's device; -1 when it could not be read (left as it is) */
    int current; /* the device the scope last made current */
} hoist__device_scope;

/* One matrix product, row-major: c[j][i] = alpha * sum_p a[i][p] * b[j][p] + beta * c[j][i]
 * for i < m, j < n, p < k; that is C = B . A^T, where A is a weight matrix as Hugging Face stores
 * it ([out][in]) and B holds n tokens' activations. Rows are lda, ldb, ldc elements apart.
 * a and b share ab_dtype (BF16, F16 or F32); c is F32 or ab_dtype; the sums are fp32. */
typedef struct hoist__gemm {
    uint32_t m, n, k;
    const void *a;
    uint32_t lda;
    const void *b;
    uint32_t ldb;
    hoist_dtype ab_dtype;
    void *c;
    uint32_t ldc;
    hoist_dtype c_dtype;
    float alpha, beta;
} hoist__gemm;

#define HOIST_GPU_OPS_VERSION 2

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

    /* ---- the inference block: NULL in the host backend ----
     * Kernels launch on the thread's current device, so the forward pass makes each device
     * current (through a scope) before it launches there or runs a product. */
    int (*scope_enter)(hoist__device_scope *sc, int device);
    int (*scope_switch)(hoist__device_scope *sc, int device);
    void (*scope_leave)(hoist__device_scope *sc);
    /* Streaming multiprocessors of `device` (how many blocks keep it busy). */
    int (*multiprocessors)(int device, int *count);
    /* Lets `device` reach `peer`'s memory directly where the hardware allows; elsewhere peer
     * copies stage through the host, slower but correct. Best effort: never fails. */
    void (*peer_enable)(int device, int peer);

    /* Async on s, ordered with the kernels and products queued on it. */
    int (*memset_async)(void *dst, int value, size_t bytes, hoist__stream *s);
    int (*copy_d2h_async)(void *dst, const void *src, size_t bytes, hoist__stream *s);
    /* Device to device across devices, on s (a stream of src_device). */
    int (*copy_peer)(void *dst, int dst_device, const void *src, int src_device, size_t bytes,
                     hoist__stream *s);
    /* Work queued on s after this waits for the work recorded before e (any device's). */
    int (*stream_wait)(hoist__stream *s, hoist__event *e);

    /* Events that also take a time stamp (else like event_create's, and destroyed the same
     * way): *ms is the time between two of them, both complete. */
    int (*event_create_timed)(int device, hoist__event **out);
    int (*event_elapsed)(hoist__event *start, hoist__event *end, float *ms);

    /* Graphs: between graph_begin and graph_end (or graph_abort), the work this thread queues on
     * s is recorded instead of run. graph_end makes the recording launchable; graph_abort drops
     * it, reporting nothing, when queueing it failed (the caller has that failure to report).
     * Either ends the capture, whatever happens, so that s runs work again. */
    int (*graph_begin)(hoist__stream *s);
    int (*graph_end)(hoist__stream *s, hoist__graph **out);
    void (*graph_abort)(hoist__stream *s);
    int (*graph_launch)(hoist__graph *g, hoist__stream *s);
    void (*graph_destroy)(hoist__graph *g);
} hoist__gpu_ops;

/* Matrix products, apart from hoist__gpu_ops so that only a program that runs inference links
 * cuBLAS: a static link of the loader alone neither needs it nor pays for loading it. */
typedef struct hoist__gpu_blas_ops {
    /* A handle for products on s (whose device must be current, as for products), with a device
     * workspace of workspace_bytes allocated by the backend's mem_alloc, so that it is counted
     * and can fail like any other buffer. A fixed workspace lets a graph capture the products. */
    int (*create)(hoist__stream *s, size_t workspace_bytes, hoist__blas **out);
    void (*destroy)(hoist__blas *b);
    int (*gemm)(hoist__blas *b, const hoist__gemm *m);
} hoist__gpu_blas_ops;

/* The matrix products of backend g (gpu/cublas.c for CUDA), or NULL where it has none. */
const hoist__gpu_blas_ops *hoist__gpu_blas(const hoist__gpu_ops *g);

/* ---- the device-call seam (gpu/gpu_seam.c; tests only, like the I/O hooks of loader/io.h) ---
 * Every backend passes each call that can fail through hoist__gpu_seam before making it, and
 * reports every buffer, registration, stream, event, cuBLAS handle and graph it creates or
 * destroys. Tests fail the k-th allocation, copy or event call and check that a failed load (or
 * session) gives all of them back, on the host backend in CI and on CUDA on the device machine,
 * through the same code. */
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
    /* the inference block's (a load makes none of these) */
    HOIST_GPU_MEMSET,
    HOIST_GPU_COPY_PEER,
    HOIST_GPU_STREAM_WAIT,
    HOIST_GPU_BLAS_CREATE,
    HOIST_GPU_GEMM,
    HOIST_GPU_GRAPH_CAPTURE, /* graph_begin, and graph_end making a launchable graph */
    HOIST_GPU_GRAPH_LAUNCH,
    HOIST_GPU_DECODE, /* a packed window's codec kernel (gpu/codec.h) */
    HOIST_GPU_NCALLS
} hoist__gpu_call;

typedef enum hoist__gpu_res {
    HOIST_GPU_RES_DEVICE,     /* mem_alloc blocks */
    HOIST_GPU_RES_PINNED,     /* pinned_alloc blocks (including those the pinned cache holds) */
    HOIST_GPU_RES_REGISTERED, /* host_register ranges */
    HOIST_GPU_RES_STREAM,
    HOIST_GPU_RES_EVENT,
    HOIST_GPU_RES_BLAS,
    HOIST_GPU_RES_GRAPH,
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
/* "device buffers", "streams", ...: for messages about resources left behind. */
const char *hoist__gpu_res_name(hoist__gpu_res res);

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
