/* The values of a generated checkpoint: whole ranges of a tensor's N(0, GEN_STD) stream, and the
 * RMSNorm weights' ones (gen_fill_normal and gen_block_key, in gen.h, are the unit). */
#ifndef HOIST_GEN_VALUES_H
#define HOIST_GEN_VALUES_H

#include "gen.h"

#include <stdint.h>

/* Elements [first, first + count) of tensor `tensor` (its index in file order) in row-major
 * order, as dtype (a float type). scratch holds GEN_BLOCK_ELEMS f32: a block only partly inside
 * the range is generated whole there and cut. */
void gen_fill_range(uint64_t seed, uint32_t tensor, uint64_t first, uint64_t count,
                    gen_dtype dtype, unsigned char *dst, unsigned char *scratch);
/* n ones as dtype (a float type). */
void gen_fill_ones(uint64_t n, gen_dtype dtype, void *dst);
/* n (at most a block) values 1 + N(0, GEN_STD) of the stream keyed `key`, as dtype (a float
 * type); scratch holds a block of f32. Qwen3's q/k norm weights. */
void gen_fill_jitter(uint64_t key, uint64_t n, gen_dtype dtype, void *dst, void *scratch);

#endif
