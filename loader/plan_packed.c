/* The windows of a packed model. The extents were laid out over the decoded stream (a packed
 * table's tensor offsets), exactly as for a file; a window here is a run of whole chunks: the
 * sources read its stored bytes, the decoder turns them into the model window beside it, and
 * pieces of that are copied as for any other load. Each window is bounded twice by the slot size,
 * once as the O_DIRECT-widened file range and once as decoded bytes, so both the read slot and
 * the decode slot can be window_bytes. A tensor-parallel plan reads only the chunks its slices
 * touch, whole (a chunk decodes only whole). */
#include "formats/packed.h"
#include "core/core.h"
#include "loader/plan.h"

#define DIRECT_UNIT 4096u

/* Stored bytes [lo, hi) of the file as the uring source widens them. */
static uint64_t widened(uint64_t lo, uint64_t hi)
{
    return hoist__align_up(hi, DIRECT_UNIT) - hoist__align_down(lo, DIRECT_UNIT);
}

static int grow(hoist__plan *p, size_t *cap)
{
    if (p->nwindows < *cap) return HOIST_OK;
    size_t n = *cap ? *cap * 2 : 64;
    hoist__window *w = hoist__realloc(p->windows, n * sizeof *w);
    if (w) p->windows = w;
    hoist__decode_window *d = w ? hoist__realloc(p->decode, n * sizeof *d) : NULL;
    if (d) p->decode = d;
    RETURN_IF(!w || !d, HOIST_E_NOMEM, "out of memory planning %zu windows", n);
    *cap = n;
    return HOIST_OK;
}

/* Whether an extent needs decoded bytes [vlo, vhi): only a sparse (tensor-parallel) plan skips
 * chunks. *e is a cursor over the extents, moved past those that end at or before vlo: chunks
 * are asked in order. */
static bool needed(const hoist__plan *p, size_t *e, uint64_t vlo, uint64_t vhi)
{
    if (!p->sparse) return true;
    while (*e < p->nextents && hoist__extent_end(&p->extents[*e]) <= vlo) (*e)++;
    return *e < p->nextents && p->extents[*e].file_off < vhi;
}

int hoist__plan_packed_windows(const hoist__table *t, hoist__plan *p)
{
    const hoist__packed *pk = t->packed;
    const uint64_t wb = p->window_bytes;
    RETURN_IF(wb < pk->chunk_bytes + DIRECT_UNIT, HOIST_E_INTERNAL,
              "%s: %llu-byte windows cannot hold %llu-byte chunks", t->files[0].path,
              (unsigned long long)wb, (unsigned long long)pk->chunk_bytes);
    size_t cap = 0, e = 0, ne = 0;
    for (uint64_t c = 0; c < pk->nchunks;) {
        const hoist__chunk *first = &pk->chunks[c];
        if (!needed(p, &ne, first->vofs, first->vofs + first->len)) {
            c++; /* a slice of this rank's needs nothing in it: not read */
            continue;
        }
        uint64_t flo = first->file_off, fhi = flo + first->stored;
        uint64_t vlo = first->vofs, vhi = vlo + first->len;
        uint64_t n = 1;
        for (; c + n < pk->nchunks; n++) {
            const hoist__chunk *x = &pk->chunks[c + n];
            if (widened(flo, x->file_off + x->stored) > wb || x->vofs + x->len - vlo > wb ||
                !needed(p, &ne, x->vofs, x->vofs + x->len))
                break;
            fhi = x->file_off + x->stored;
            vhi = x->vofs + x->len;
        }
        while (e + 1 < p->nextents && hoist__extent_end(&p->extents[e]) <= vlo) e++;
        RETURN_IF_ERR(grow(p, &cap));
        p->windows[p->nwindows] = (hoist__window){0, (uint32_t)e, flo, fhi};
        p->decode[p->nwindows] = (hoist__decode_window){c, n, {0, (uint32_t)e, vlo, vhi}};
        p->nwindows++;
        c += n;
    }
    return HOIST_OK;
}
