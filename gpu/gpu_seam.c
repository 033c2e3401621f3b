/* The device-call seam (see gpu.h): the hook that tests install, and live-resource counters. */
#include "gpu/gpu.h"
#include "core/core.h"

#include <string.h>

static hoist__gpu_hooks hooks;
static _Atomic int64_t live[HOIST_GPU_NRES];

static const char *const call_names[HOIST_GPU_NCALLS] = {
    [HOIST_GPU_MEM_ALLOC] = "device allocation",
    [HOIST_GPU_PINNED_ALLOC] = "pinned allocation",
    [HOIST_GPU_HOST_REGISTER] = "host registration",
    [HOIST_GPU_STREAM_CREATE] = "stream creation",
    [HOIST_GPU_STREAM_SYNC] = "stream synchronisation",
    [HOIST_GPU_EVENT_CREATE] = "event creation",
    [HOIST_GPU_EVENT_RECORD] = "event record",
    [HOIST_GPU_EVENT_SYNC] = "event synchronisation",
    [HOIST_GPU_COPY_H2D] = "host-to-device copy",
    [HOIST_GPU_COPY_D2H] = "device-to-host copy",
    [HOIST_GPU_MEMSET] = "memset",
    [HOIST_GPU_COPY_PEER] = "peer copy",
    [HOIST_GPU_STREAM_WAIT] = "stream wait",
    [HOIST_GPU_BLAS_CREATE] = "cuBLAS handle creation",
    [HOIST_GPU_GEMM] = "matrix product",
    [HOIST_GPU_GRAPH_CAPTURE] = "graph capture",
    [HOIST_GPU_GRAPH_LAUNCH] = "graph launch",
    [HOIST_GPU_DECODE] = "codec kernel launch",
};

static const char *const res_names[HOIST_GPU_NRES] = {
    [HOIST_GPU_RES_DEVICE] = "device buffers",
    [HOIST_GPU_RES_PINNED] = "pinned buffers",
    [HOIST_GPU_RES_REGISTERED] = "registrations",
    [HOIST_GPU_RES_STREAM] = "streams",
    [HOIST_GPU_RES_EVENT] = "events",
    [HOIST_GPU_RES_BLAS] = "cuBLAS handles",
    [HOIST_GPU_RES_GRAPH] = "graphs",
};

const char *hoist__gpu_call_name(hoist__gpu_call call)
{
    return (unsigned)call < HOIST_GPU_NCALLS ? call_names[call] : "?";
}

const char *hoist__gpu_res_name(hoist__gpu_res res)
{
    return (unsigned)res < HOIST_GPU_NRES ? res_names[res] : "?";
}

void hoist__gpu_set_hooks(const hoist__gpu_hooks *h)
{
    if (h)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

int hoist__gpu_seam(const char *backend, int device, hoist__gpu_call call, size_t bytes)
{
    if (!hooks.call) return HOIST_OK;
    int rc = hooks.call(backend, call, bytes);
    if (rc >= 0) return HOIST_OK;
    if (device < 0) /* the host, or a call that names no device */
        return hoist__err(rc, "%s: %s of %zu bytes failed (injected fault)", backend,
                          hoist__gpu_call_name(call), bytes);
    return hoist__err(rc, "%s:%d: %s of %zu bytes failed (injected fault)", backend, device,
                      hoist__gpu_call_name(call), bytes);
}

void hoist__gpu_track(hoist__gpu_res res, int delta)
{
    if ((unsigned)res < HOIST_GPU_NRES) atomic_fetch_add(&live[res], delta);
}

bool hoist__gpu_host_as_device(void) { return hooks.host_as_device; }

int64_t hoist__gpu_live(hoist__gpu_res res)
{
    return (unsigned)res < HOIST_GPU_NRES ? atomic_load(&live[res]) : 0;
}
