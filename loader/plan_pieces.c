/* Walking a window's pieces: the part of each extent row that falls inside it. A strided extent
 * (a tensor-parallel slice along an inner dimension) spans many windows; the row to start from
 * is found by division, not by walking the rows before it. */
#include "loader/plan.h"
#include "core/core.h"

void hoist__piece_iter_init(hoist__piece_iter *it, const hoist__plan *p, const hoist__window *w)
{
    *it = (hoist__piece_iter){.p = p, .w = w, .e = w->first_ext, .k = 0, .started = false};
}

/* The first row of x that ends after lo. */
static uint64_t first_row(const hoist__extent *x, uint64_t lo)
{
    if (x->rows == 1 || lo <= x->file_off) return 0;
    uint64_t k = (lo - x->file_off) / x->src_stride; /* row k starts at or before lo */
    return x->file_off + k * x->src_stride + x->len > lo ? k : k + 1;
}

bool hoist__piece_next(hoist__piece_iter *it, hoist__piece *out)
{
    const hoist__plan *p = it->p;
    const hoist__window *w = it->w;
    for (; it->e < p->nextents; it->e++, it->started = false) {
        const hoist__extent *x = &p->extents[it->e];
        if (x->file != w->file || x->file_off >= w->hi) return false;
        if (!it->started) {
            it->k = first_row(x, w->lo);
            it->started = true;
        }
        for (; it->k < x->rows; it->k++) {
            uint64_t rlo = x->file_off + it->k * x->src_stride, rhi = rlo + x->len;
            if (rlo >= w->hi) break;
            uint64_t lo = rlo > w->lo ? rlo : w->lo, hi = rhi < w->hi ? rhi : w->hi;
            if (lo >= hi) continue;
            *out = (hoist__piece){x, lo, hi, x->dst_off + it->k * x->dst_stride + (lo - rlo)};
            it->k++;
            return true;
        }
    }
    return false;
}

int hoist__window_pieces(const hoist__plan *p, const hoist__window *w, hoist__piece_fn fn,
                         void *ctx)
{
    hoist__piece_iter it;
    hoist__piece pc;
    hoist__piece_iter_init(&it, p, w);
    while (hoist__piece_next(&it, &pc)) {
        int rc = fn(ctx, pc.x, pc.lo - w->lo, pc.dst, pc.hi - pc.lo);
        if (rc < 0) return rc;
    }
    return HOIST_OK;
}

void hoist__range_iter_init(hoist__range_iter *it, const hoist__plan *p, const hoist__window *w,
                            uint64_t align)
{
    hoist__piece_iter_init(&it->pieces, p, w);
    it->align = align ? align : 1;
    it->pending = false;
}

bool hoist__range_next(hoist__range_iter *it, hoist__range *out)
{
    if (!it->pending && !hoist__piece_next(&it->pieces, &it->next)) return false;
    it->pending = false;
    uint64_t a = it->align;
    hoist__range r = {hoist__align_down(it->next.lo, a), hoist__align_up(it->next.hi, a),
                      it->next.hi};
    while (hoist__piece_next(&it->pieces, &it->next)) {
        if (hoist__align_down(it->next.lo, a) > r.hi) {
            it->pending = true;
            break;
        }
        uint64_t hi = hoist__align_up(it->next.hi, a);
        if (hi > r.hi) r.hi = hi;
        if (it->next.hi > r.need) r.need = it->next.hi;
    }
    *out = r;
    return true;
}
