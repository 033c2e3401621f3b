/* What the gen_*.c files share beyond gen.h's API: error messages, saturating sizes and the
 * dtype each tensor is written in. Not for the subcommands. */
#ifndef HOIST_GEN_INTERNAL_H
#define HOIST_GEN_INTERNAL_H

#include "gen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Formats into err (when err and errlen are non-zero). */
void gen_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sizes saturate at UINT64_MAX instead of wrapping, so that an absurd geometry reads as too big
 * to gen_validate rather than as small. */
static inline uint64_t gen_mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline uint64_t gen_add_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* The dtype a [rows, cols] tensor (cols 0: a vector) is written in: the model's, except in a
 * Q8_0 file (see gen_dtype). */
gen_dtype gen_tensor_dtype(const gen_config *c, uint64_t cols, bool norm);
/* Bytes of a [rows, cols] tensor (cols 0: a vector of rows), saturating. */
uint64_t gen_tensor_bytes(const gen_config *c, uint64_t rows, uint64_t cols, bool norm);

#endif
