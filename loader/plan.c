/* Builds the arena layout, the coalesced extents and the windows of a load (whole tensors, or
 * each rank's tensor-parallel slices). */
#include "loader/plan.h"
#include "core/core.h"
#include "loader/tp.h"

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

/* What layout() lays out: tensor i's slice (whole tensors without a cut), its arena, and which
 * pass it belongs to. */
typedef struct layout_in {
    const hoist__table *t;
    const uint8_t *tensor_arena; /* NULL: all in arena 0 */
    size_t narenas;
    const hoist__plan_cut *cut;  /* NULL: whole tensors */
} layout_in;

typedef struct layout_out {
    uint64_t *tensor_dst;  /* NULL: only sizes */
    hoist__extent *extents; /* NULL: only sizes */
    size_t nextents;
    uint64_t arena_bytes[HOIST_PLAN_MAX_DEVICES];
    uint64_t share_bytes, share_part;
} layout_out;

/* The slice of tensor i: the cut's, or the whole tensor. */
static hoist__slice slice_of(const layout_in *in, size_t i)
{
    if (in->cut && in->cut->slices) return in->cut->slices[i];
    hoist__slice s;
    hoist__tp_whole(&in->t->tensors[i], &s);
    return s;
}

/* A cooperative load lays out first the slices every rank holds alike (pass 0), then the rest
 * (pass 1); any other load has one pass over every tensor. */
static bool in_pass(const layout_in *in, const hoist__slice *s, int pass)
{
    if (!in->cut || !in->cut->cooperative) return pass == 0;
    return (pass == 0) == s->shared;
}

typedef struct cursor_state {
    uint64_t cursor[HOIST_PLAN_MAX_DEVICES];
    hoist__extent last; /* the open extent, also when only sizes are computed */
    size_t n;
} cursor_state;

static void close_extent(cursor_state *c, layout_out *out)
{
    if (c->n && out->extents) out->extents[c->n - 1] = c->last;
}

static void open_extent(cursor_state *c, layout_out *out, hoist__extent x)
{
    close_extent(c, out);
    c->last = x;
    c->n++;
}

/* One tensor's slice. A contiguous slice joins the open extent when it is bound for the same
 * arena, starts exactly where the extent ends in the same file, lands exactly where it ends in
 * the arena (no padding between) and its view stays aligned; otherwise, and for a strided
 * slice, a new extent opens at the next HOIST_ARENA_ALIGN boundary of its arena. */
static void lay_tensor(const layout_in *in, size_t i, const hoist__slice *s, cursor_state *c,
                       layout_out *out)
{
    const hoist__tensor *ti = &in->t->tensors[i];
    uint32_t a = in->tensor_arena ? in->tensor_arena[i] : 0;
    uint64_t *cur = &c->cursor[a];
    if (s->nbytes == 0) {
        if (out->tensor_dst) out->tensor_dst[i] = hoist__align_up(*cur, HOIST_VIEW_ALIGN);
        return;
    }
    uint64_t file_off = ti->offset + s->src_off, dst;
    const hoist__extent *l = &c->last;
    bool joins = s->rows == 1 && s->len && c->n && l->rows == 1 && l->arena == a &&
                 l->file == ti->file && l->file_off + l->len == file_off &&
                 l->dst_off + l->len == *cur && *cur % HOIST_VIEW_ALIGN == 0;
    if (joins) {
        dst = c->last.dst_off + c->last.len;
        c->last.len += s->len;
    } else {
        dst = hoist__align_up(*cur, HOIST_ARENA_ALIGN);
        if (s->len)
            open_extent(c, out,
                        (hoist__extent){.file = ti->file, .first_tensor = (uint32_t)i, .arena = a,
                                        .file_off = file_off, .len = s->len, .dst_off = dst,
                                        .rows = s->rows, .src_stride = s->src_stride,
                                        .dst_stride = s->dst_stride});
    }
    if (out->tensor_dst) out->tensor_dst[i] = dst;
    *cur = dst + s->nbytes;
}

/* Lays tensors out in file order, each arena with its own cursor (see lay_tensor). A cooperative
 * load ends its first pass with the shared region: rounded up to `world` parts of whole
 * HOIST_ARENA_ALIGN units, the rest of the arena after it. */
static void layout(const layout_in *in, layout_out *out)
{
    cursor_state c = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < in->t->ntensors; i++) {
            hoist__slice s = slice_of(in, i);
            if (in_pass(in, &s, pass)) lay_tensor(in, i, &s, &c, out);
        }
        if (pass == 0 && in->cut && in->cut->cooperative) {
            uint64_t unit = (uint64_t)HOIST_ARENA_ALIGN * (uint64_t)in->cut->world;
            out->share_bytes = hoist__align_up(c.cursor[0], unit);
            out->share_part = out->share_bytes / (uint64_t)in->cut->world;
            c.cursor[0] = out->share_bytes;
        }
    }
    close_extent(&c, out);
    out->nextents = c.n;
    for (size_t a = 0; a < in->narenas; a++)
        out->arena_bytes[a] = hoist__align_up(c.cursor[a], HOIST_ARENA_ALIGN);
}

void hoist__plan_arena_sizes(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                             uint64_t *arena_bytes)
{
    layout_in in = {t, tensor_arena, narenas, NULL};
    layout_out out = {0};
    layout(&in, &out);
    memcpy(arena_bytes, out.arena_bytes, narenas * sizeof *arena_bytes);
}

uint64_t hoist__plan_cut_arena_bytes(const hoist__table *t, const hoist__plan_cut *cut)
{
    layout_in in = {t, NULL, 1, cut};
    layout_out out = {0};
    layout(&in, &out);
    return out.arena_bytes[0];
}

/* A cooperative load reads only its own part of the shared region: the extents there are
 * clipped to [rank * part, (rank + 1) * part) of the arena (they are contiguous: shared slices
 * are whole tensors), and those left empty dropped. */
static void clip_shared(hoist__plan *p, int rank)
{
    uint64_t lo = (uint64_t)rank * p->share_part, hi = lo + p->share_part;
    size_t n = 0;
    for (size_t e = 0; e < p->nextents; e++) {
        hoist__extent x = p->extents[e];
        if (x.dst_off < p->share_bytes) {
            uint64_t a = x.dst_off > lo ? x.dst_off : lo;
            uint64_t b = x.dst_off + x.len < hi ? x.dst_off + x.len : hi;
            if (a >= b) continue;
            x.file_off += a - x.dst_off;
            x.len = b - a;
            x.dst_off = a;
            x.src_stride = x.dst_stride = x.len;
        }
        p->extents[n++] = x;
    }
    p->nextents = n;
}

static int by_file_offset(const void *va, const void *vb)
{
    const hoist__extent *a = va, *b = vb;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    return a->file_off < b->file_off ? -1 : a->file_off > b->file_off;
}

static int build_extents(const layout_in *in, hoist__plan *p)
{
    size_t nt = in->t->ntensors ? in->t->ntensors : 1;
    p->tensor_dst = hoist__malloc(nt * sizeof *p->tensor_dst);
    p->extents = hoist__malloc(nt * sizeof *p->extents);
    RETURN_IF(!p->tensor_dst || !p->extents, HOIST_E_NOMEM,
              "out of memory planning %zu tensors", in->t->ntensors);
    layout_out out = {.tensor_dst = p->tensor_dst, .extents = p->extents};
    layout(in, &out);
    p->nextents = out.nextents;
    memcpy(p->arena_bytes, out.arena_bytes, sizeof p->arena_bytes);
    p->share_bytes = out.share_bytes;
    p->share_part = out.share_part;
    if (in->cut && in->cut->cooperative) {
        clip_shared(p, in->cut->rank);
        /* the shared pass came first: back into file order, which windows are cut in */
        qsort(p->extents, p->nextents, sizeof *p->extents, by_file_offset);
    }
    for (size_t e = 0; e < p->nextents; e++)
        p->placed_bytes += p->extents[e].rows * p->extents[e].len;
    return HOIST_OK;
}

typedef struct window_list {
    hoist__window *w;
    size_t n, cap;
} window_list;

/* Adds bytes [pos, end) of extent e to the windows, cut at multiples of wb: a piece that falls
 * in the aligned block of the last window extends it. */
static int add_run(window_list *l, const hoist__extent *x, uint32_t e, uint64_t pos,
                   uint64_t end, uint64_t wb)
{
    while (pos < end) {
        uint64_t cut = hoist__align_down(pos, wb) + wb;
        uint64_t hi = cut < end ? cut : end;
        hoist__window *last = l->n ? &l->w[l->n - 1] : NULL;
        if (last && last->file == x->file &&
            hoist__align_down(last->lo, wb) == hoist__align_down(pos, wb) && last->hi <= pos) {
            last->hi = hi;
        } else {
            if (l->n == l->cap) {
                hoist__window *nw = hoist__realloc(l->w, l->cap * 2 * sizeof *nw);
                RETURN_IF(!nw, HOIST_E_NOMEM, "out of memory planning %zu windows", l->cap * 2);
                l->w = nw;
                l->cap *= 2;
            }
            l->w[l->n++] = (hoist__window){x->file, e, pos, hi};
        }
        pos = hi;
    }
    return HOIST_OK;
}

/* Cuts each file's run of extents (every row of a strided one) into windows at multiples of
 * window_bytes. Extents are in file order, so one pass suffices. */
static int build_windows(hoist__plan *p)
{
    window_list l = {.cap = 16};
    l.w = hoist__malloc(l.cap * sizeof *l.w);
    RETURN_IF(!l.w, HOIST_E_NOMEM, "out of memory planning windows");
    for (size_t e = 0; e < p->nextents; e++) {
        const hoist__extent *x = &p->extents[e];
        for (uint64_t k = 0; k < x->rows; k++) {
            uint64_t pos = x->file_off + k * x->src_stride;
            int rc = add_run(&l, x, (uint32_t)e, pos, pos + x->len, p->window_bytes);
            if (rc < 0) {
                hoist__free(l.w);
                return rc;
            }
        }
    }
    p->windows = l.w;
    p->nwindows = l.n;
    return HOIST_OK;
}

static int plan_build(const layout_in *in, uint64_t window_bytes, hoist__plan *out)
{
    const hoist__table *t = in->t;
    memset(out, 0, sizeof *out);
    RETURN_IF(in->narenas < 1 || in->narenas > HOIST_PLAN_MAX_DEVICES, HOIST_E_INVALID_ARG,
              "%zu arenas (1..%d)", in->narenas, HOIST_PLAN_MAX_DEVICES);
    for (size_t i = 0; in->tensor_arena && i < t->ntensors; i++)
        RETURN_IF(in->tensor_arena[i] >= in->narenas, HOIST_E_INTERNAL,
                  "tensor '%s' bound for arena %u of %zu", t->tensors[i].name,
                  in->tensor_arena[i], in->narenas);
    out->narenas = in->narenas;
    RETURN_IF(window_bytes < 4096 || window_bytes % 4096, HOIST_E_INVALID_ARG,
              "window size %llu is not a positive multiple of 4096",
              (unsigned long long)window_bytes);
    out->window_bytes = window_bytes;
    out->sparse = in->cut != NULL;
    int rc = build_extents(in, out);
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

int hoist__plan_build(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                      uint64_t window_bytes, hoist__plan *out)
{
    layout_in in = {t, tensor_arena, narenas, NULL};
    return plan_build(&in, window_bytes, out);
}

int hoist__plan_build_cut(const hoist__table *t, const hoist__plan_cut *cut,
                          uint64_t window_bytes, hoist__plan *out)
{
    layout_in in = {t, NULL, 1, cut};
    return plan_build(&in, window_bytes, out);
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
