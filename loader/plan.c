/* Builds the arena layout, the coalesced extents and the windows of a load. */
#include "loader/plan.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

void hoist__plan_free(hoist__plan *p)
{
    if (!p) return;
    hoist__free(p->tensor_dst);
    hoist__free(p->extents);
    hoist__free(p->windows);
    hoist__free(p->decode);
    memset(p, 0, sizeof *p);
}

/* Lays tensors out in file order, each arena with its own cursor. A tensor joins the previous
 * extent when it is bound for the same arena, starts exactly where the extent ends in the same
 * file and its view would stay aligned; otherwise it opens a new extent at the next
 * HOIST_ARENA_ALIGN boundary of its arena. With extents NULL only the sizes are computed. */
static void layout(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                   uint64_t *tensor_dst, hoist__extent *extents, size_t *nextents,
                   uint64_t *arena_bytes)
{
    uint64_t cursor[HOIST_PLAN_MAX_DEVICES] = {0};
    hoist__extent last = {0}; /* the previous extent, also when only sizes are computed */
    size_t n = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *ti = &t->tensors[i];
        uint32_t a = tensor_arena ? tensor_arena[i] : 0;
        if (ti->nbytes == 0) {
            if (tensor_dst) tensor_dst[i] = hoist__align_up(cursor[a], HOIST_VIEW_ALIGN);
            continue;
        }
        bool joins = n && last.arena == a && last.file == ti->file &&
                     last.file_off + last.len == ti->offset &&
                     (last.dst_off + last.len) % HOIST_VIEW_ALIGN == 0;
        if (!joins) {
            if (n && extents) extents[n - 1] = last;
            last = (hoist__extent){.file = ti->file,
                                   .first_tensor = (uint32_t)i,
                                   .arena = a,
                                   .file_off = ti->offset,
                                   .len = 0,
                                   .dst_off = hoist__align_up(cursor[a], HOIST_ARENA_ALIGN)};
            n++;
        }
        if (tensor_dst) tensor_dst[i] = last.dst_off + last.len;
        last.len += ti->nbytes;
        cursor[a] = last.dst_off + last.len;
    }
    if (n && extents) extents[n - 1] = last;
    if (nextents) *nextents = n;
    for (size_t a = 0; a < narenas; a++)
        arena_bytes[a] = hoist__align_up(cursor[a], HOIST_ARENA_ALIGN);
}

void hoist__plan_arena_sizes(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                             uint64_t *arena_bytes)
{
    layout(t, tensor_arena, narenas, NULL, NULL, NULL, arena_bytes);
}

static int build_extents(const hoist__table *t, const uint8_t *tensor_arena, hoist__plan *p)
{
    p->tensor_dst = hoist__malloc((t->ntensors ? t->ntensors : 1) * sizeof *p->tensor_dst);
    p->extents = hoist__malloc((t->ntensors ? t->ntensors : 1) * sizeof *p->extents);
    RETURN_IF(!p->tensor_dst || !p->extents, HOIST_E_NOMEM,
              "out of memory planning %zu tensors", t->ntensors);
    layout(t, tensor_arena, p->narenas, p->tensor_dst, p->extents, &p->nextents, p->arena_bytes);
    return HOIST_OK;
}

/* Cuts each file's run of extents into windows at multiples of window_bytes. Extents of one file
 * are contiguous in the table order, so one pass suffices. */
static int build_windows(hoist__plan *p)
{
    const uint64_t wb = p->window_bytes;
    size_t cap = 16, n = 0;
    hoist__window *w = hoist__malloc(cap * sizeof *w);
    RETURN_IF(!w, HOIST_E_NOMEM, "out of memory planning windows");
    for (size_t e = 0; e < p->nextents; e++) {
        const hoist__extent *x = &p->extents[e];
        uint64_t pos = x->file_off, end = x->file_off + x->len;
        while (pos < end) {
            uint64_t cut = hoist__align_down(pos, wb) + wb;
            uint64_t hi = cut < end ? cut : end;
            hoist__window *last = n ? &w[n - 1] : NULL;
            /* extend the previous window when this piece falls in the same aligned block */
            if (last && last->file == x->file && hoist__align_down(last->lo, wb) ==
                                                     hoist__align_down(pos, wb) && last->hi <= pos) {
                last->hi = hi;
            } else {
                if (n == cap) {
                    hoist__window *nw = hoist__realloc(w, cap * 2 * sizeof *w);
                    if (!nw) {
                        hoist__free(w);
                        return hoist__err(HOIST_E_NOMEM, "out of memory planning windows");
                    }
                    w = nw;
                    cap *= 2;
                }
                w[n++] = (hoist__window){x->file, (uint32_t)e, pos, hi};
            }
            pos = hi;
        }
    }
    p->windows = w;
    p->nwindows = n;
    return HOIST_OK;
}

int hoist__plan_build(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                      uint64_t window_bytes, hoist__plan *out)
{
    memset(out, 0, sizeof *out);
    RETURN_IF(narenas < 1 || narenas > HOIST_PLAN_MAX_DEVICES, HOIST_E_INVALID_ARG,
              "%zu arenas (1..%d)", narenas, HOIST_PLAN_MAX_DEVICES);
    for (size_t i = 0; tensor_arena && i < t->ntensors; i++)
        RETURN_IF(tensor_arena[i] >= narenas, HOIST_E_INTERNAL,
                  "tensor '%s' bound for arena %u of %zu", t->tensors[i].name, tensor_arena[i],
                  narenas);
    out->narenas = narenas;
    RETURN_IF(window_bytes < 4096 || window_bytes % 4096, HOIST_E_INVALID_ARG,
              "window size %llu is not a positive multiple of 4096",
              (unsigned long long)window_bytes);
    out->window_bytes = window_bytes;
    int rc = build_extents(t, tensor_arena, out);
    if (rc == HOIST_OK) rc = t->packed ? hoist__plan_packed_windows(t, out) : build_windows(out);
    if (rc < 0) {
        hoist__plan_free(out);
        return rc;
    }
    out->host_bytes = t->ntensors * (sizeof *out->tensor_dst + sizeof *out->extents) +
                      out->nwindows * sizeof *out->windows +
                      (out->decode ? out->nwindows * sizeof *out->decode : 0);
    return HOIST_OK;
}

int hoist__window_pieces(const hoist__plan *p, const hoist__window *w, hoist__piece_fn fn,
                         void *ctx)
{
    for (size_t e = w->first_ext; e < p->nextents; e++) {
        const hoist__extent *x = &p->extents[e];
        if (x->file != w->file || x->file_off >= w->hi) break;
        uint64_t lo = x->file_off > w->lo ? x->file_off : w->lo;
        uint64_t hi = x->file_off + x->len < w->hi ? x->file_off + x->len : w->hi;
        if (lo >= hi) continue;
        int rc = fn(ctx, x, lo - w->lo, x->dst_off + (lo - x->file_off), hi - lo);
        if (rc < 0) return rc;
    }
    return HOIST_OK;
}

long hoist__table_tensor_at(const hoist__table *t, uint32_t file, uint64_t offset)
{
    size_t lo = 0, hi = t->ntensors;
    while (lo < hi) { /* first tensor with (file, offset + nbytes) > (file, offset) */
        size_t mid = lo + (hi - lo) / 2;
        const hoist__tensor *m = &t->tensors[mid];
        if (m->file < file || (m->file == file && m->offset + m->nbytes <= offset))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->ntensors && t->tensors[lo].file == file && t->tensors[lo].offset <= offset)
        return (long)lo;
    return -1;
}
