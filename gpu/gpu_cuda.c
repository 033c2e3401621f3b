/* The CUDA backend: device discovery, device and pinned memory, streams, events and copies
 * through the CUDA runtime. The only file of the library that includes a CUDA header. */
#include "gpu/gpu.h"
#include "core/core.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hoist__stream {
    cudaStream_t stream;
    int device;
};

struct hoist__event {
    cudaEvent_t event;
    int device;
};

/* Turns a CUDA error into a status and message naming the call and device. */
static int cuda_fail(cudaError_t e, const char *call, int device)
{
    int status = (e == cudaErrorMemoryAllocation) ? HOIST_E_DEVICE_NOMEM : HOIST_E_DEVICE;
    cudaGetLastError(); /* clear the sticky-free error state so later calls are not poisoned */
    return hoist__err(status, "cuda:%d: %s failed: %s (%s)", device, call, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

#define CUDA_TRY(call, device)                                                                    \
    do {                                                                                          \
        cudaError_t cuda_e = (call);                                                              \
        if (cuda_e != cudaSuccess) return cuda_fail(cuda_e, #call, (device));                     \
    } while (0)

/* The calling thread's current device belongs to the caller (an engine, torch): a call that needs
 * another device switches to it and back, so a load never leaves the caller on a different
 * device. */
typedef struct device_scope {
    int saved, device;
} device_scope;

static cudaError_t scope_enter(device_scope *sc, int device)
{
    sc->device = device;
    if (cudaGetDevice(&sc->saved) != cudaSuccess) {
        cudaGetLastError();
        sc->saved = -1;
    }
    return sc->saved == device ? cudaSuccess : cudaSetDevice(device);
}

static void scope_leave(const device_scope *sc)
{
    if (sc->saved >= 0 && sc->saved != sc->device) cudaSetDevice(sc->saved);
}

static int cuda_device_count(int *count)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
        e == cudaErrorInitializationError || e == cudaErrorNotSupported) {
        cudaGetLastError();
        n = 0;
    } else if (e != cudaSuccess) {
        return cuda_fail(e, "cudaGetDeviceCount", -1);
    }
    *count = n;
    return HOIST_OK;
}

static int cuda_device_info(int device, hoist_device_info *out)
{
    struct cudaDeviceProp prop;
    size_t free_b = 0, total_b = 0;
    CUDA_TRY(cudaGetDeviceProperties(&prop, device), device);
    device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    scope_leave(&sc);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemGetInfo", device);
    memset(out, 0, sizeof *out);
    out->id = device;
    size_t len = strnlen(prop.name, sizeof out->name - 1);
    memcpy(out->name, prop.name, len);
    out->name[len] = '\0';
    out->total_bytes = total_b;
    out->free_bytes = free_b;
    out->compute_major = prop.major;
    out->compute_minor = prop.minor;
    return HOIST_OK;
}

static int cuda_mem_alloc(int device, size_t bytes, void **ptr)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_MEM_ALLOC, bytes));
    device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e != cudaSuccess) {
        scope_leave(&sc);
        return cuda_fail(e, "cudaSetDevice", device);
    }
    e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        scope_leave(&sc);
        return hoist__err(e == cudaErrorMemoryAllocation ? HOIST_E_DEVICE_NOMEM : HOIST_E_DEVICE,
                          "cuda:%d: cudaMalloc of %zu bytes failed: %s (%zu of %zu bytes free)",
                          device, bytes, cudaGetErrorString(e), free_b, total_b);
    }
    scope_leave(&sc);
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, 1);
    return HOIST_OK;
}

static void cuda_mem_free(int device, void *ptr)
{
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, -1);
    device_scope sc;
    scope_enter(&sc, device);
    cudaFree(ptr);
    scope_leave(&sc);
}

/* Our own pages, faulted in by several threads, then registered: cudaHostAlloc zeroes its pages
 * one at a time under the driver's lock, ten times slower for a staging pool (gpu/host_pages.c). */
static int cuda_pinned_alloc(size_t bytes, void **ptr)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", -1, HOIST_GPU_PINNED_ALLOC, bytes));
    void *p = NULL;
    RETURN_IF_ERR(hoist__host_pages_map(bytes, &p));
    cudaError_t e = cudaHostRegister(p, bytes ? bytes : 1, cudaHostRegisterPortable);
    if (e != cudaSuccess) {
        cudaGetLastError();
        hoist__host_pages_unmap(p, bytes);
        return hoist__err(HOIST_E_PINNED_NOMEM,
                          "cudaHostRegister of %zu staging bytes failed: %s (check "
                          "RLIMIT_MEMLOCK and free host memory)",
                          bytes, cudaGetErrorString(e));
    }
    hoist__gpu_track(HOIST_GPU_RES_PINNED, 1);
    *ptr = p;
    return HOIST_OK;
}

static void cuda_pinned_free(void *ptr, size_t bytes)
{
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_PINNED, -1);
    cudaHostUnregister(ptr);
    hoist__host_pages_unmap(ptr, bytes);
}

static int cuda_host_register(void *ptr, size_t bytes, int read_only)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", -1, HOIST_GPU_HOST_REGISTER, bytes));
    unsigned flags = cudaHostRegisterPortable | (read_only ? cudaHostRegisterReadOnly : 0);
    CUDA_TRY(cudaHostRegister(ptr, bytes, flags), -1);
    hoist__gpu_track(HOIST_GPU_RES_REGISTERED, 1);
    return HOIST_OK;
}

static void cuda_host_unregister(void *ptr)
{
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_REGISTERED, -1);
    cudaHostUnregister(ptr);
}

static int cuda_stream_create(int device, hoist__stream **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_STREAM_CREATE, 0));
    hoist__stream *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory for a stream");
    s->device = device;
    device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    scope_leave(&sc);
    if (e != cudaSuccess) {
        hoist__free(s);
        return cuda_fail(e, "cudaStreamCreateWithFlags", device);
    }
    hoist__gpu_track(HOIST_GPU_RES_STREAM, 1);
    *out = s;
    return HOIST_OK;
}

static void cuda_stream_destroy(hoist__stream *s)
{
    if (!s) return;
    hoist__gpu_track(HOIST_GPU_RES_STREAM, -1);
    device_scope sc;
    scope_enter(&sc, s->device);
    cudaStreamDestroy(s->stream);
    scope_leave(&sc);
    hoist__free(s);
}

static int cuda_stream_sync(hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_STREAM_SYNC, 0));
    CUDA_TRY(cudaStreamSynchronize(s->stream), s->device);
    return HOIST_OK;
}

/* Blocking sync: a waiting worker sleeps instead of spinning, leaving its core to the threads
 * that are copying. */
static int cuda_event_create(int device, hoist__event **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_EVENT_CREATE, 0));
    hoist__event *ev = hoist__calloc(1, sizeof *ev);
    RETURN_IF(!ev, HOIST_E_NOMEM, "out of memory for an event");
    ev->device = device;
    device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess)
        e = cudaEventCreateWithFlags(&ev->event, cudaEventDisableTiming | cudaEventBlockingSync);
    scope_leave(&sc);
    if (e != cudaSuccess) {
        hoist__free(ev);
        return cuda_fail(e, "cudaEventCreateWithFlags", device);
    }
    hoist__gpu_track(HOIST_GPU_RES_EVENT, 1);
    *out = ev;
    return HOIST_OK;
}

static void cuda_event_destroy(hoist__event *ev)
{
    if (!ev) return;
    hoist__gpu_track(HOIST_GPU_RES_EVENT, -1);
    device_scope sc;
    scope_enter(&sc, ev->device);
    cudaEventDestroy(ev->event);
    scope_leave(&sc);
    hoist__free(ev);
}

static int cuda_event_record(hoist__event *ev, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_EVENT_RECORD, 0));
    CUDA_TRY(cudaEventRecord(ev->event, s->stream), s->device);
    return HOIST_OK;
}

static int cuda_event_sync(hoist__event *ev)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", ev->device, HOIST_GPU_EVENT_SYNC, 0));
    CUDA_TRY(cudaEventSynchronize(ev->event), ev->device);
    return HOIST_OK;
}

static int cuda_copy_h2d(void *dst, const void *src, size_t bytes, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_COPY_H2D, bytes));
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream), s->device);
    return HOIST_OK;
}

static int cuda_copy_d2h(void *dst, const void *src, size_t bytes, int device)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_COPY_D2H, bytes));
    device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    scope_leave(&sc);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemcpy (device to host)", device);
    return HOIST_OK;
}

static int cuda_copy_d2d(void *dst, const void *src, size_t bytes, hoist__stream *s)
{
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream), s->device);
    return HOIST_OK;
}

static const hoist__gpu_ops cuda_ops = {
    .version = HOIST_GPU_OPS_VERSION,
    .name = "cuda",
    .device_count = cuda_device_count,
    .device_info = cuda_device_info,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .pinned_alloc = cuda_pinned_alloc,
    .pinned_free = cuda_pinned_free,
    .host_register = cuda_host_register,
    .host_unregister = cuda_host_unregister,
    .stream_create = cuda_stream_create,
    .stream_destroy = cuda_stream_destroy,
    .stream_sync = cuda_stream_sync,
    .event_create = cuda_event_create,
    .event_destroy = cuda_event_destroy,
    .event_record = cuda_event_record,
    .event_sync = cuda_event_sync,
    .copy_h2d = cuda_copy_h2d,
    .copy_d2h = cuda_copy_d2h,
    .copy_d2d = cuda_copy_d2d,
};

const hoist__gpu_ops *hoist__gpu_cuda(void) { return &cuda_ops; }
