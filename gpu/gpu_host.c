/* The host "device": plain memory, synchronous copies, events that are always complete.
 * It lets the whole pipeline run (and be tested) where there is no GPU, and is the destination
 * of `--device host` loads. */
#include "gpu/gpu.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

/* Streams and events carry no state on the host; one static object stands for each. */
struct hoist__stream {
    int unused;
};
struct hoist__event {
    int unused;
};
static hoist__stream host_stream;
static hoist__event host_event;

static int host_device_count(int *count)
{
    *count = 1;
    return HOIST_OK;
}

static int host_device_info(int device, hoist_device_info *out)
{
    RETURN_IF(device != HOIST_DEVICE_HOST, HOIST_E_NO_DEVICE, "host backend: no device %d", device);
    struct sysinfo si;
    memset(out, 0, sizeof *out);
    out->id = HOIST_DEVICE_HOST;
    strcpy(out->name, "host memory");
    if (sysinfo(&si) == 0) {
        out->total_bytes = (uint64_t)si.totalram * si.mem_unit;
        out->free_bytes = (uint64_t)(si.freeram + si.bufferram) * si.mem_unit;
    }
    return HOIST_OK;
}

/* 2 MiB alignment lets the kernel back large arenas with huge pages and keeps every tensor view
 * as aligned as its offset inside the arena. The huge pages are asked for, not only allowed: a
 * load writes every byte of a fresh arena, and with 4 KiB pages its workers took one page fault
 * per 4 KiB written (a quarter of a host load's time on a VM, where faults are dear). Where
 * transparent huge pages are off the advice does nothing. */
#define HOST_HUGE (2u << 20)
static int host_mem_alloc(int device, size_t bytes, void **ptr)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", device, HOIST_GPU_MEM_ALLOC, bytes));
    void *p = NULL;
    size_t align = bytes >= HOST_HUGE ? HOST_HUGE : 64;
    int rc = posix_memalign(&p, align, bytes ? bytes : 1);
    RETURN_IF(rc != 0, HOIST_E_NOMEM, "host: cannot allocate %zu bytes", bytes);
    if (bytes >= HOST_HUGE) madvise(p, bytes & ~(size_t)(HOST_HUGE - 1), MADV_HUGEPAGE);
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, 1);
    *ptr = p;
    return HOIST_OK;
}

static void host_mem_free(int device, void *ptr)
{
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_DEVICE, -1);
    free(ptr);
}

static int host_pinned_alloc(size_t bytes, void **ptr)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", -1, HOIST_GPU_PINNED_ALLOC, bytes));
    void *p = NULL;
    long page = sysconf(_SC_PAGESIZE);
    int rc = posix_memalign(&p, page > 4096 ? (size_t)page : 4096, bytes ? bytes : 1);
    RETURN_IF(rc != 0, HOIST_E_PINNED_NOMEM, "host: cannot allocate %zu staging bytes", bytes);
    hoist__gpu_track(HOIST_GPU_RES_PINNED, 1);
    *ptr = p;
    return HOIST_OK;
}

static void host_pinned_free(void *ptr, size_t bytes)
{
    (void)bytes;
    if (!ptr) return;
    hoist__gpu_track(HOIST_GPU_RES_PINNED, -1);
    free(ptr);
}

/* Streams and events hold nothing here, but they are counted like CUDA's so that a leaked handle
 * shows in the host fault sweeps. */
static int host_stream_create(int device, hoist__stream **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", device, HOIST_GPU_STREAM_CREATE, 0));
    hoist__gpu_track(HOIST_GPU_RES_STREAM, 1);
    *out = &host_stream;
    return HOIST_OK;
}
static void host_stream_destroy(hoist__stream *s)
{
    if (s) hoist__gpu_track(HOIST_GPU_RES_STREAM, -1);
}
static int host_stream_sync(hoist__stream *s)
{
    return hoist__gpu_seam("host", -1, HOIST_GPU_STREAM_SYNC, 0);
}
static int host_event_create(int device, hoist__event **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", device, HOIST_GPU_EVENT_CREATE, 0));
    hoist__gpu_track(HOIST_GPU_RES_EVENT, 1);
    *out = &host_event;
    return HOIST_OK;
}
static void host_event_destroy(hoist__event *e)
{
    if (e) hoist__gpu_track(HOIST_GPU_RES_EVENT, -1);
}
static int host_event_record(hoist__event *e, hoist__stream *s)
{
    return hoist__gpu_seam("host", -1, HOIST_GPU_EVENT_RECORD, 0);
}
static int host_event_sync(hoist__event *e)
{
    return hoist__gpu_seam("host", -1, HOIST_GPU_EVENT_SYNC, 0);
}

static int host_copy(void *dst, const void *src, size_t bytes, hoist__stream *s)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", -1, HOIST_GPU_COPY_H2D, bytes));
    memcpy(dst, src, bytes);
    return HOIST_OK;
}

static int host_copy_d2h(void *dst, const void *src, size_t bytes, int device)
{
    RETURN_IF_ERR(hoist__gpu_seam("host", device, HOIST_GPU_COPY_D2H, bytes));
    memcpy(dst, src, bytes);
    return HOIST_OK;
}

const hoist__gpu_ops hoist__gpu_host = {
    .version = HOIST_GPU_OPS_VERSION,
    .name = "host",
    .device_count = host_device_count,
    .device_info = host_device_info,
    .mem_alloc = host_mem_alloc,
    .mem_free = host_mem_free,
    .pinned_alloc = host_pinned_alloc,
    .pinned_free = host_pinned_free,
    .host_register = NULL,
    .host_unregister = NULL,
    .stream_create = host_stream_create,
    .stream_destroy = host_stream_destroy,
    .stream_sync = host_stream_sync,
    .event_create = host_event_create,
    .event_destroy = host_event_destroy,
    .event_record = host_event_record,
    .event_sync = host_event_sync,
    .copy_h2d = host_copy,
    .copy_d2h = host_copy_d2h,
    .copy_d2d = host_copy,
    /* no inference block: sessions over host memory run infer/cpu.c, not the GPU forward pass */
};
