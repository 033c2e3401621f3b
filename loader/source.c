/* The sources of this build, and the check and defaults every source table goes through before a
 * load drives it (see source.h). */
#include "loader/source.h"

#include <string.h>

const hoist__source_ops *hoist__source_for(hoist_path path, const hoist__table *table)
{
    switch (path) {
    case HOIST_PATH_AUTO: return table ? hoist__source_auto(table) : &hoist__source_mmap;
    case HOIST_PATH_MMAP: return &hoist__source_mmap;
    case HOIST_PATH_URING: return &hoist__source_uring;
    case HOIST_PATH_STREAM: return &hoist__source_stream;
    default: return NULL;
    }
}

/* ---- the defaults of the optional members ------------------------------------------------- */

static int no_start(void *state, const hoist__plan *plan, hoist__budget *budget)
{
    (void)state, (void)plan, (void)budget;
    return HOIST_OK;
}

static int no_attach(void *state, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes)
{
    (void)state, (void)worker, (void)bufs, (void)nbufs, (void)bytes;
    return HOIST_OK;
}

static void no_release(void *state, const hoist__window *w) { (void)state, (void)w; }

static uint64_t no_host_bytes(void *state, unsigned threads, uint64_t window)
{
    (void)state, (void)threads, (void)window;
    return 0;
}

static int plain_copy(void *state, const hoist__window *w, void *dst, const void *src, uint64_t n)
{
    (void)state, (void)w;
    memcpy(dst, src, n);
    return HOIST_OK;
}

int hoist__source_resolve(const hoist__source_ops *ops, hoist__source_ops *out)
{
    RETURN_IF(!ops, HOIST_E_INTERNAL, "no source");
    const char *name = ops->name ? ops->name : "(unnamed)";
    /* version and name lead the table in every version; nothing after them is read from a table
     * of another version, whose layout may differ */
    RETURN_IF(ops->version != HOIST_SOURCE_OPS_VERSION, HOIST_E_INTERNAL,
              "source '%s' has interface version %d; this build drives version %d", name,
              ops->version, HOIST_SOURCE_OPS_VERSION);
    RETURN_IF(!ops->name || !ops->open || !ops->close || !ops->read, HOIST_E_INTERNAL,
              "source '%s' lacks a required member (name, open, close, read)", name);
    RETURN_IF(ops->flags & ~(HOIST_SOURCE_SLOT_BUFFERS | HOIST_SOURCE_MAPPED), HOIST_E_INTERNAL,
              "source '%s' has unknown flags 0x%x", name, ops->flags);
    *out = *ops;
    if (!out->start) out->start = no_start;
    if (!out->attach) out->attach = no_attach;
    if (!out->release) out->release = no_release;
    if (!out->host_bytes) out->host_bytes = no_host_bytes;
    if (!out->copy) out->copy = plain_copy;
    return HOIST_OK;
}
