/* Tensor-parallel slices (loader/tp.c): which part of each tensor this rank loads, from the rules
 * of hoist_tp_options, as byte ranges of the file and of the arena. The plan (loader/plan.c)
 * turns them into extents; the views report their shapes. */
#ifndef HOIST_TP_H
#define HOIST_TP_H

#include "formats/table.h"

#include <stdbool.h>
#include <stdint.h>

/* Most ranks one load is cut for: past this a slice of a 2-D matrix is a handful of bytes per
 * row, and the counts below are multiplied together. */
#define HOIST_TP_MAX_WORLD 4096

/* One tensor's slice on this rank: `rows` pieces, row k being bytes
 * [offset + src_off + k * src_stride, + len) of the tensor's file, placed at k * dst_stride in
 * the slice. A whole tensor is one row of nbytes. dst_stride - len bytes after each row are zero
 * fill (padding); so is every row when len is 0 (a rank wholly past the end of a padded
 * dimension). */
typedef struct hoist__slice {
    uint64_t rows;
    uint64_t src_off, src_stride;
    uint64_t len, dst_stride;
    uint64_t nbytes;               /* the slice in the arena: rows * dst_stride */
    int64_t shape[HOIST_MAX_DIMS]; /* the slice's shape (padding included) */
    int dim;                       /* HOIST_TP_REPLICATE, or the dimension cut */
    bool padded;                   /* part of nbytes is zero fill */
    bool shared;                   /* the whole tensor: the same bytes on every rank */
} hoist__slice;

/* The library's copy of a caller's options (core/abi.h), checked: rank in [0, world), world in
 * [1, HOIST_TP_MAX_WORLD]. fn names the public function in messages. NULL gives the defaults. */
int hoist__tp_options_in(const hoist_tp_options *in, hoist_tp_options *out, const char *fn);

/* The default rules' split of tensor i (hoist_tp_default_rule); g: the model's geometry, or NULL
 * when it is unknown (why: the reason, for the message). */
int hoist__tp_default_split(const hoist__table *t, size_t i, const hoist_tp_options *o,
                            const hoist_geometry *g, const char *why, hoist_tp_split *out);

/* Cuts tensor ti as split says. HOIST_E_INVALID_ARG naming the tensor for a split that does not
 * fit it (a dimension it lacks, a part past parts, a dimension parts does not divide without
 * pad, a part that cuts a quantized block or a byte). */
int hoist__tp_cut(const hoist__tensor *ti, const hoist_tp_split *split, hoist__slice *out);

/* Every tensor's slice on o->rank: o->rule first, then the default rules (or replication).
 * *out (ntensors entries, hoist__free) is NULL when nothing is cut and nothing shared (world 1,
 * not cooperative): the load is an ordinary one. */
int hoist__tp_slices(const hoist__table *t, const hoist_tp_options *o, hoist__slice **out);

/* The whole tensor as a slice. */
void hoist__tp_whole(const hoist__tensor *ti, hoist__slice *out);

#endif
