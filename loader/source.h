/* The I/O paths behind one versioned vtable, as sqlite's VFS: `version` first, optional members
 * may be NULL and are defaulted by the caller (loader/load.c). */
#ifndef HOIST_SOURCE_H
#define HOIST_SOURCE_H

#include "loader/load.h"

#define HOIST_SOURCE_OPS_VERSION 1

/* flags */
/* read() needs its buf to be a staging slot (page-aligned, window-sized): never the
 * destination arena itself. O_DIRECT reads widen windows to block boundaries. */
#define HOIST_SOURCE_SLOT_BUFFERS 1u

struct hoist__source_ops {
    int version; /* HOIST_SOURCE_OPS_VERSION */
    const char *name;
    unsigned flags;

    /* Required. Opens the files of ld->table, checks them, and may adjust ld->opts (threads,
     * chunk size) to the path's defaults before the plan is built. */
    int (*open)(hoist__load *ld, void **state);
    /* Required. Releases everything open took. NULL state is a no-op. */
    void (*close)(void *state);

    /* Produces the bytes [w->lo, w->hi) of w's file: either reads them into buf (capacity
     * ld->plan.window_bytes, or the destination itself on a host load when the window is one
     * piece) and sets *src = buf, or points *src at bytes it already holds. *dma sets whether the
     * device may copy from *src directly (pinned or registered memory). Called from worker
     * threads, concurrently. Required unless run is given. */
    int (*read)(void *state, int worker, const hoist__window *w, void *buf, const void **src,
                int *dma);
    /* Optional: called once the device has finished copying a window read with *dma set and
     * *src != buf (e.g. to unregister a mapping). */
    void (*release)(void *state, const hoist__window *w);
    /* Optional: 1 when the path needs pinned staging slots for a device load (default 1). */
    int (*needs_staging)(void *state);
    /* Optional: hands worker `worker` its staging buffers before the workers start (for
     * io_uring fixed buffers, say). They are valid until the workers have finished: the pipeline
     * frees them (back to the pinned cache) before close, so a source may keep them registered
     * but must not touch them after its last read. Called on the loading thread, once per
     * worker, only when the pipeline allocated buffers. */
    int (*attach)(void *state, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes);
    /* Optional: host memory the source itself keeps resident while `threads` workers hold
     * `window`-byte windows, beyond the pipeline's staging (e.g. mapped pages); counted against
     * the RAM budget. Default 0. */
    uint64_t (*host_bytes)(void *state, unsigned threads, uint64_t window);
    /* Optional: runs the whole load itself instead of the window pipeline (async sources). */
    int (*run)(void *state, hoist__load *ld);
    /* Optional: copies n bytes out of what read() pointed *src at (default: memcpy). The mmap
     * source guards it, so that a file truncated under its mapping is an error, not SIGBUS. */
    int (*copy)(void *state, const hoist__window *w, void *dst, const void *src, uint64_t n);
};

extern const hoist__source_ops hoist__source_mmap;
extern const hoist__source_ops hoist__source_stream, hoist__source_uring;
/* The source HOIST_PATH_AUTO resolves to for this table (loader/source_auto.c); logs why. */
const hoist__source_ops *hoist__source_auto(const hoist__table *t);

#endif
