/* Byte-regrouping filters applied to a packed tensor's chunks before compression (hoist_filter).
 *
 * planes: the W bytes of each W-byte element are dealt into W planes, plane b holding byte b of
 * every element in order. exponent: each element, read as a little-endian W-byte integer, is
 * first rotated left by one bit, moving the sign to bit 0; the top plane then holds the top 8
 * exponent bits (bf16 and f32: the whole exponent; f16: its 5 bits and 3 mantissa bits), and
 * the sign joins the near-random low mantissa byte instead of diluting the exponent plane.
 * Which grouping compresses best was measured (docs/BENCHMARKS.md). */
#ifndef HOIST_FILTER_H
#define HOIST_FILTER_H

#include "hoist.h"

#include <stddef.h>
#include <stdint.h>

/* The element width a filter works on for dtype: 2, 4 or 8 bytes, or 0 when the dtype cannot be
 * filtered (8-bit and sub-byte types). C64 is two f32 values: width 4. */
unsigned hoist__filter_width(hoist_dtype dtype);
/* HOIST_FILTER_AUTO's choice: exponent for floating-point dtypes, planes for integers, none
 * where the width is 0. */
hoist_filter hoist__filter_default(hoist_dtype dtype);
/* Filters n bytes (a multiple of width) from src into dst; the buffers do not overlap. */
void hoist__filter_apply(hoist_filter f, unsigned width, const uint8_t *src, uint8_t *dst,
                         size_t n);
/* The inverse: dst receives the original bytes. */
void hoist__filter_undo(hoist_filter f, unsigned width, const uint8_t *src, uint8_t *dst,
                        size_t n);

#endif
