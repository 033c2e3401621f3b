/* The load plan: where every tensor lands in its device's arena, the file extents that feed
 * them, and the windows (work items) the sources read. */
#ifndef HOIST_PLAN_H
#define HOIST_PLAN_H

#include "formats/table.h"

#include <stdint.h>

/* New extents start at this alignment in the arena (cudaMalloc's own alignment). */
#define HOIST_ARENA_ALIGN 256u
/* A tensor that follows its predecessor in the file stays in the same extent only if its view is
 * at least this aligned. */
#define HOIST_VIEW_ALIGN 64u

/* Bytes [file_off, file_off + len) of one file land at arenas[arena] + dst_off; a strided
 * extent (a tensor-parallel slice along an inner dimension, loader/tp.h) repeats that for `rows`
 * rows, row k being [file_off + k * src_stride, + len) landing at dst_off + k * dst_stride.
 * Extents are sorted by file, then file_off, and the spans of two extents never overlap. */
typedef struct hoist__extent {
    uint32_t file;
    uint32_t first_tensor; /* table index of the first tensor in the extent */
    uint32_t arena;
    uint64_t file_off;
    uint64_t len;
    uint64_t dst_off;
    uint64_t rows;         /* 1 for a contiguous extent */
    uint64_t src_stride, dst_stride;
} hoist__extent;

/* The file byte that lands at arena offset dst_off of extent x (inside one of its rows). */
static inline uint64_t hoist__extent_file_at(const hoist__extent *x, uint64_t dst_off)
{
    uint64_t d = dst_off - x->dst_off;
    if (x->rows == 1) return x->file_off + d;
    return x->file_off + d / x->dst_stride * x->src_stride + d % x->dst_stride;
}

/* The file byte just past extent x's last row. */
static inline uint64_t hoist__extent_end(const hoist__extent *x)
{
    return x->file_off + (x->rows - 1) * x->src_stride + x->len;
}

/* A work item: bytes [lo, hi) of one file, which may span several extents (first_ext onward).
 * Windows are cut at multiples of the window size, so that they never share a page. */
typedef struct hoist__window {
    uint32_t file;
    uint32_t first_ext;
    uint64_t lo, hi;
} hoist__window;

/* A packed model's window (loader/plan_packed.c): the file window beside it holds the stored
 * bytes of chunks [first_chunk, first_chunk + nchunks); `model` is the window of the decoded
 * stream they become, in the coordinates of the extents, which pieces are cut from. */
typedef struct hoist__decode_window {
    uint64_t first_chunk;
    uint64_t nchunks;
    hoist__window model;
} hoist__decode_window;

typedef struct hoist__plan {
    size_t narenas;
    uint64_t arena_bytes[HOIST_PLAN_MAX_DEVICES];
    uint64_t *tensor_dst; /* per table index: byte offset in its arena */
    hoist__extent *extents;
    size_t nextents;
    hoist__window *windows;
    size_t nwindows;
    uint64_t window_bytes;
    uint64_t host_bytes; /* bytes of host memory the plan itself takes */
    hoist__decode_window *decode; /* per window, for a packed model; else NULL */
    /* A tensor-parallel or cooperative plan: windows may span bytes no extent needs, which the
     * sources skip (hoist__range_next) instead of reading the whole window. */
    bool sparse;
    uint64_t placed_bytes;  /* bytes the extents carry from the files to the arenas */
    /* cooperative: the arena's first share_bytes hold what every rank holds alike, in `world`
     * parts of share_part bytes; the extents cover only this rank's part of them */
    uint64_t share_bytes, share_part;
    /* device bytes beside the arena for GPU decoding (loader/gpu_decode.h): per worker a window
     * of stored bytes, its chunk list and an error word; 0 when the CPU decodes */
    uint64_t device_staging;
} hoist__plan;

/* What a tensor-parallel load cuts (hoist__plan_build's `cut`; NULL: whole tensors). */
typedef struct hoist__plan_cut {
    const struct hoist__slice *slices; /* per tensor (loader/tp.h) */
    int rank, world;
    bool cooperative;                  /* lay out and share the slices marked shared */
} hoist__plan_cut;

/* Builds the plan for table t, tensor i going to arena tensor_arena[i] (< narenas; NULL: all to
 * arena 0), cutting windows of window_bytes (a multiple of 4096). Extents never span arenas. On
 * failure the plan holds nothing. */
int hoist__plan_build(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                      uint64_t window_bytes, hoist__plan *out);
/* The same, each tensor cut as cut->slices says (one arena). */
int hoist__plan_build_cut(const hoist__table *t, const hoist__plan_cut *cut,
                          uint64_t window_bytes, hoist__plan *out);
/* The arena sizes hoist__plan_build would give, without building anything (the planner's exact
 * per-device weight bytes). */
void hoist__plan_arena_sizes(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                             uint64_t *arena_bytes);
/* The arena hoist__plan_build_cut would give. */
uint64_t hoist__plan_cut_arena_bytes(const hoist__table *t, const hoist__plan_cut *cut);
void hoist__plan_free(hoist__plan *p);
/* The windows of a packed model: runs of whole chunks whose stored bytes, widened to 4096-byte
 * boundaries, and whose decoded bytes each fit p->window_bytes (at least chunk size + 4096). */
int hoist__plan_packed_windows(const hoist__table *t, hoist__plan *p);

/* Calls fn for every piece of window w: the part of one extent's row inside [w->lo, w->hi).
 * src_off is the piece's offset from w->lo, dst_off its offset in the arena. Stops at and
 * returns the first negative return of fn. */
typedef int (*hoist__piece_fn)(void *ctx, const hoist__extent *e, uint64_t src_off,
                               uint64_t dst_off, uint64_t len);
int hoist__window_pieces(const hoist__plan *p, const hoist__window *w, hoist__piece_fn fn,
                         void *ctx);

/* The pieces of a window one at a time, in file order. */
typedef struct hoist__piece {
    const hoist__extent *x;
    uint64_t lo, hi; /* file bytes */
    uint64_t dst;    /* arena offset of lo */
} hoist__piece;

typedef struct hoist__piece_iter {
    const hoist__plan *p;
    const hoist__window *w;
    size_t e;   /* the extent being walked */
    uint64_t k; /* its next row */
    bool started;
} hoist__piece_iter;

void hoist__piece_iter_init(hoist__piece_iter *it, const hoist__plan *p, const hoist__window *w);
bool hoist__piece_next(hoist__piece_iter *it, hoist__piece *out);

/* The bytes of a window a source must read: its pieces widened to `align` (a power of two; 1 for
 * exact) and merged where they touch or overlap, in file order. need: the end of the last piece
 * in the run (the file may end before hi, after need). */
typedef struct hoist__range {
    uint64_t lo, hi, need;
} hoist__range;

typedef struct hoist__range_iter {
    hoist__piece_iter pieces;
    uint64_t align;
    bool pending; /* next holds a piece not yet in a range */
    hoist__piece next;
} hoist__range_iter;

void hoist__range_iter_init(hoist__range_iter *it, const hoist__plan *p, const hoist__window *w,
                            uint64_t align);
bool hoist__range_next(hoist__range_iter *it, hoist__range *out);

/* Index of the tensor holding byte `offset` of `file` (for error messages), or -1. */
long hoist__table_tensor_at(const hoist__table *t, uint32_t file, uint64_t offset);

#endif
