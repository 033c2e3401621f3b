/* Host allocation wrappers and the allocator seam (see internal.h). The live-byte counter uses
 * the allocator's own idea of a block's size (malloc_usable_size) so that no header is needed:
 * a block freed through the wrong function skews the count instead of corrupting the heap, and
 * the fault sweeps then report it as a leak. */
#include "core/core.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static hoist__alloc_hooks hooks;
static _Atomic int64_t live_bytes;

void hoist__alloc_set_hooks(const hoist__alloc_hooks *h)
{
    if (h)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

int64_t hoist__alloc_live_bytes(void) { return atomic_load(&live_bytes); }

static bool refused(size_t bytes)
{
    if (!hooks.fail || !hooks.fail(bytes)) return false;
    errno = ENOMEM;
    return true;
}

static void *counted(void *p)
{
    if (p) atomic_fetch_add(&live_bytes, (int64_t)malloc_usable_size(p));
    return p;
}

void *hoist__malloc(size_t n) { return refused(n) ? NULL : counted(malloc(n)); }

void *hoist__calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) n = SIZE_MAX; /* calloc refuses it too */
    return refused(n) ? NULL : counted(calloc(count, size));
}

void *hoist__realloc(void *p, size_t n)
{
    if (!p) return hoist__malloc(n);
    if (refused(n)) return NULL;
    size_t before = malloc_usable_size(p);
    void *q = realloc(p, n);
    if (!q) return NULL; /* p untouched, still counted */
    atomic_fetch_add(&live_bytes, (int64_t)malloc_usable_size(q) - (int64_t)before);
    return q;
}

void *hoist__memalign(size_t align, size_t n)
{
    void *p = NULL;
    if (refused(n)) return NULL;
    int rc = posix_memalign(&p, align, n ? n : 1);
    if (rc != 0) {
        errno = rc;
        return NULL;
    }
    return counted(p);
}

void hoist__free(void *p)
{
    if (!p) return;
    atomic_fetch_sub(&live_bytes, (int64_t)malloc_usable_size(p));
    free(p);
}

char *hoist__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = hoist__malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
