/* The CUDA backend: device discovery, device and pinned memory, streams, events, copies and
 * graphs through the CUDA runtime (cuBLAS is in cublas.c). With cublas.c, the only host C code of
 * the library that includes a CUDA header. */
#include "gpu/gpu.h"
#include "gpu/cuda_native.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hoist__event {
    cudaEvent_t event;
    int device;
};

struct hoist__graph {
    cudaGraphExec_t exec;
    int device;
};

int hoist__cuda_report(int status, int device, const char *call, const char *detail)
{
    if (device < 0) return hoist__err(status, "cuda: %s failed: %s", call, detail);
    return hoist__err(status, "cuda:%d: %s failed: %s", device, call, detail);
}

int hoist__cuda_check(cudaError_t e, const char *call, int device)
{
    if (e == cudaSuccess) return HOIST_OK;
    cudaGetLastError(); /* clear the sticky-free error state so later calls are not poisoned */
    char detail[256];
    snprintf(detail, sizeof detail, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return hoist__cuda_report(e == cudaErrorMemoryAllocation ? HOIST_E_DEVICE_NOMEM
                                                             : HOIST_E_DEVICE,
                              device, call, detail);
}

#define CUDA_TRY(call, device) RETURN_IF_ERR(hoist__cuda_check((call), #call, (device)))

/* ---- the caller's current device (gpu.h's hoist__device_scope) ---- */

/* The scope's moves as runtime calls, for the backend's own calls that report their own
 * failure (or none). */
static cudaError_t scope_enter(hoist__device_scope *sc, int device)
{
    if (cudaGetDevice(&sc->saved) != cudaSuccess) {
        cudaGetLastError();
        sc->saved = -1;
    }
    sc->current = sc->saved;
    if (sc->current == device) return cudaSuccess;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) sc->current = device;
    return e;
}

static void scope_leave(hoist__device_scope *sc)
{
    if (sc->saved >= 0 && sc->saved != sc->current) cudaSetDevice(sc->saved);
    sc->current = sc->saved;
}

static int cuda_scope_enter(hoist__device_scope *sc, int device)
{
    return hoist__cuda_check(scope_enter(sc, device), "cudaSetDevice", device);
}

static int cuda_scope_switch(hoist__device_scope *sc, int device)
{
    if (sc->current == device) return HOIST_OK;
    CUDA_TRY(cudaSetDevice(device), device);
    sc->current = device;
    return HOIST_OK;
}

static void cuda_scope_leave(hoist__device_scope *sc) { scope_leave(sc); }

static int cuda_device_count(int *count)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
        e == cudaErrorInitializationError || e == cudaErrorNotSupported) {
        cudaGetLastError();
        n = 0;
    } else if (e != cudaSuccess) {
        return hoist__cuda_check(e, "cudaGetDeviceCount", -1);
    }
    *count = n;
    return HOIST_OK;
}

static int cuda_device_info(int device, hoist_device_info *out)
{
    struct cudaDeviceProp prop;
    size_t free_b = 0, total_b = 0;
    CUDA_TRY(cudaGetDeviceProperties(&prop, device), device);
    hoist__device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    scope_leave(&sc);
    RETURN_IF_ERR(hoist__cuda_check(e, "cudaMemGetInfo", device));
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
    hoist__device_scope sc;
    RETURN_IF_ERR(cuda_scope_enter(&sc, device));
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        scope_leave(&sc);
        char call[64], detail[160];
        snprintf(call, sizeof call, "cudaMalloc of %zu bytes", bytes);
        snprintf(detail, sizeof detail, "%s (%zu of %zu bytes free)", cudaGetErrorString(e),
                 free_b, total_b);
        return hoist__cuda_report(e == cudaErrorMemoryAllocation ? HOIST_E_DEVICE_NOMEM
                                                                 : HOIST_E_DEVICE,
                                  device, call, detail);
    }
    scope_leave(&sc);
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, 1);
    return HOIST_OK;
}

static void cuda_mem_free(int device, void *ptr)
{
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, -1);
    hoist__device_scope sc;
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
    hoist__device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    scope_leave(&sc);
    if (e != cudaSuccess) {
        hoist__free(s);
        return hoist__cuda_check(e, "cudaStreamCreateWithFlags", device);
    }
    hoist__gpu_track(HOIST_GPU_RES_STREAM, 1);
    *out = s;
    return HOIST_OK;
}

static void cuda_stream_destroy(hoist__stream *s)
{
    if (!s) return;
    hoist__gpu_track(HOIST_GPU_RES_STREAM, -1);
    hoist__device_scope sc;
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

static int event_new(int device, unsigned flags, hoist__event **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_EVENT_CREATE, 0));
    hoist__event *ev = hoist__calloc(1, sizeof *ev);
    RETURN_IF(!ev, HOIST_E_NOMEM, "out of memory for an event");
    ev->device = device;
    hoist__device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&ev->event, flags);
    scope_leave(&sc);
    if (e != cudaSuccess) {
        hoist__free(ev);
        return hoist__cuda_check(e, "cudaEventCreateWithFlags", device);
    }
    hoist__gpu_track(HOIST_GPU_RES_EVENT, 1);
    *out = ev;
    return HOIST_OK;
}

/* Blocking sync: a waiting worker sleeps instead of spinning, leaving its core to the threads
 * that are copying. */
static int cuda_event_create(int device, hoist__event **out)
{
    return event_new(device, cudaEventDisableTiming | cudaEventBlockingSync, out);
}

static void cuda_event_destroy(hoist__event *ev)
{
    if (!ev) return;
    hoist__gpu_track(HOIST_GPU_RES_EVENT, -1);
    hoist__device_scope sc;
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
    hoist__device_scope sc;
    cudaError_t e = scope_enter(&sc, device);
    if (e == cudaSuccess) e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    scope_leave(&sc);
    if (e != cudaSuccess) return hoist__cuda_check(e, "cudaMemcpy (device to host)", device);
    return HOIST_OK;
}

static int cuda_copy_d2d(void *dst, const void *src, size_t bytes, hoist__stream *s)
{
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream), s->device);
    return HOIST_OK;
}

/* ---- the inference block ---- */

static int cuda_multiprocessors(int device, int *count)
{
    CUDA_TRY(cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device), device);
    return HOIST_OK;
}

static void cuda_peer_enable(int device, int peer)
{
    int can = 0;
    if (device == peer || cudaDeviceCanAccessPeer(&can, device, peer) != cudaSuccess || !can) {
        cudaGetLastError();
        return;
    }
    hoist__device_scope sc;
    if (scope_enter(&sc, device) == cudaSuccess)
        cudaDeviceEnablePeerAccess(peer, 0); /* "already enabled" is fine */
    scope_leave(&sc);
    cudaGetLastError();
}

static int cuda_memset_async(void *dst, int value, size_t bytes, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_MEMSET, bytes));
    CUDA_TRY(cudaMemsetAsync(dst, value, bytes, s->stream), s->device);
    return HOIST_OK;
}

static int cuda_copy_d2h_async(void *dst, const void *src, size_t bytes, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_COPY_D2H, bytes));
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream), s->device);
    return HOIST_OK;
}

static int cuda_copy_peer(void *dst, int dst_device, const void *src, int src_device,
                          size_t bytes, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_COPY_PEER, bytes));
    CUDA_TRY(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, s->stream), s->device);
    return HOIST_OK;
}

static int cuda_stream_wait(hoist__stream *s, hoist__event *ev)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_STREAM_WAIT, 0));
    CUDA_TRY(cudaStreamWaitEvent(s->stream, ev->event, 0), s->device);
    return HOIST_OK;
}

static int cuda_event_create_timed(int device, hoist__event **out)
{
    return event_new(device, cudaEventBlockingSync, out);
}

static int cuda_event_elapsed(hoist__event *start, hoist__event *end, float *ms)
{
    CUDA_TRY(cudaEventElapsedTime(ms, start->event, end->event), end->device);
    return HOIST_OK;
}

/* Thread-local capture: only this thread's work on s is recorded, and other threads' calls (a
 * concurrent load's copies) neither join the graph nor break the capture. */
static int cuda_graph_begin(hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_GRAPH_CAPTURE, 0));
    CUDA_TRY(cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal), s->device);
    return HOIST_OK;
}

static int graph_instantiate(cudaGraph_t graph, int device, hoist__graph **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_GRAPH_CAPTURE, 0));
    hoist__graph *g = hoist__calloc(1, sizeof *g);
    RETURN_IF(!g, HOIST_E_NOMEM, "out of memory for a graph");
    g->device = device;
    cudaError_t e = cudaGraphInstantiate(&g->exec, graph, 0);
    if (e != cudaSuccess) {
        hoist__free(g);
        return hoist__cuda_check(e, "cudaGraphInstantiate", device);
    }
    hoist__gpu_track(HOIST_GPU_RES_GRAPH, 1);
    *out = g;
    return HOIST_OK;
}

static int cuda_graph_end(hoist__stream *s, hoist__graph **out)
{
    cudaGraph_t graph = NULL;
    int rc = hoist__cuda_check(cudaStreamEndCapture(s->stream, &graph), "cudaStreamEndCapture",
                               s->device);
    if (rc == HOIST_OK) rc = graph_instantiate(graph, s->device, out);
    if (graph) cudaGraphDestroy(graph);
    return rc;
}

static void cuda_graph_abort(hoist__stream *s)
{
    cudaGraph_t graph = NULL;
    cudaStreamEndCapture(s->stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
}

static int cuda_graph_launch(hoist__graph *g, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_GRAPH_LAUNCH, 0));
    CUDA_TRY(cudaGraphLaunch(g->exec, s->stream), s->device);
    return HOIST_OK;
}

static void cuda_graph_destroy(hoist__graph *g)
{
    if (!g) return;
    hoist__gpu_track(HOIST_GPU_RES_GRAPH, -1);
    cudaGraphExecDestroy(g->exec);
    hoist__free(g);
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
    .scope_enter = cuda_scope_enter,
    .scope_switch = cuda_scope_switch,
    .scope_leave = cuda_scope_leave,
    .multiprocessors = cuda_multiprocessors,
    .peer_enable = cuda_peer_enable,
    .memset_async = cuda_memset_async,
    .copy_d2h_async = cuda_copy_d2h_async,
    .copy_peer = cuda_copy_peer,
    .stream_wait = cuda_stream_wait,
    .event_create_timed = cuda_event_create_timed,
    .event_elapsed = cuda_event_elapsed,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_abort = cuda_graph_abort,
    .graph_launch = cuda_graph_launch,
    .graph_destroy = cuda_graph_destroy,
};

const hoist__gpu_ops *hoist__gpu_cuda(void) { return &cuda_ops; }
