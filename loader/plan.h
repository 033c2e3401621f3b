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

/* Bytes [file_off, file_off + len) of one file land at arenas[arena] + dst_off. */
typedef struct hoist__extent {
    uint32_t file;
    uint32_t first_tensor; /* table index of the first tensor in the extent */
    uint32_t arena;
    uint64_t file_off;
    uint64_t len;
    uint64_t dst_off;
} hoist__extent;

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
} hoist__plan;

/* Builds the plan for table t, tensor i going to arena tensor_arena[i] (< narenas; NULL: all to
 * arena 0), cutting windows of window_bytes (a multiple of 4096). Extents never span arenas. On
 * failure the plan holds nothing. */
int hoist__plan_build(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                      uint64_t window_bytes, hoist__plan *out);
/* The arena sizes hoist__plan_build would give, without building anything (the planner's exact
 * per-device weight bytes). */
void hoist__plan_arena_sizes(const hoist__table *t, const uint8_t *tensor_arena, size_t narenas,
                             uint64_t *arena_bytes);
void hoist__plan_free(hoist__plan *p);
/* The windows of a packed model: runs of whole chunks whose stored bytes, widened to 4096-byte
 * boundaries, and whose decoded bytes each fit p->window_bytes (at least chunk size + 4096). */
int hoist__plan_packed_windows(const hoist__table *t, hoist__plan *p);

/* Calls fn for every piece of window w: the part of one extent inside [w->lo, w->hi). src_off is
 * the piece's offset from w->lo. Stops at and returns the first negative return of fn. */
typedef int (*hoist__piece_fn)(void *ctx, const hoist__extent *e, uint64_t src_off,
                               uint64_t dst_off, uint64_t len);
int hoist__window_pieces(const hoist__plan *p, const hoist__window *w, hoist__piece_fn fn,
                         void *ctx);

/* Index of the tensor holding byte `offset` of `file` (for error messages), or -1. */
long hoist__table_tensor_at(const hoist__table *t, uint32_t file, uint64_t offset);

#endif
