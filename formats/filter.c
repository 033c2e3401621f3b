/* Byte-plane filters (see filter.h). One function per element width, each written as an inner
 * loop of a fixed BLOCK elements that compilers vectorize at -O2 (unaligned stores go through
 * memcpy: a chunk's decoded bytes may sit at any address), then a scalar tail. */
#include "formats/filter.h"

#include <string.h>

/* Elements are read and written in the host's byte order: safetensors data is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "hoist assumes a little-endian host");

#define BLOCK 64

unsigned hoist__filter_width(hoist_dtype dtype)
{
    if (dtype == HOIST_DTYPE_C64) return 4;
    unsigned bits = hoist_dtype_bits(dtype);
    return bits == 16 || bits == 32 || bits == 64 ? bits / 8 : 0;
}

hoist_filter hoist__filter_default(hoist_dtype dtype)
{
    switch (dtype) {
    case HOIST_DTYPE_F16:
    case HOIST_DTYPE_BF16:
    case HOIST_DTYPE_F32:
    case HOIST_DTYPE_C64:
    case HOIST_DTYPE_F64: return HOIST_FILTER_EXPONENT;
    default: return hoist__filter_width(dtype) ? HOIST_FILTER_PLANES : HOIST_FILTER_NONE;
    }
}

#define ROTL(T, v) ((T)((T)((v) << 1) | (T)((v) >> (8 * sizeof(T) - 1))))
#define ROTR(T, v) ((T)((T)((v) >> 1) | (T)((v) << (8 * sizeof(T) - 1))))

/* ---- apply: elements -> planes ------------------------------------------------------------ */

#define SPLIT2(j)                                                                                 \
    do {                                                                                          \
        uint16_t v;                                                                               \
        memcpy(&v, in + 2 * (j), 2);                                                              \
        if (rot) v = ROTL(uint16_t, v);                                                           \
        p0[j] = (uint8_t)v;                                                                       \
        p1[j] = (uint8_t)(v >> 8);                                                                \
    } while (0)

static void split2(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    uint8_t *p0 = out, *p1 = out + ne;
    size_t i = 0;
    for (; i + BLOCK <= ne; i += BLOCK)
        for (size_t k = 0; k < BLOCK; k++) SPLIT2(i + k);
    for (; i < ne; i++) SPLIT2(i);
}

#define SPLIT4(j)                                                                                 \
    do {                                                                                          \
        uint32_t v;                                                                               \
        memcpy(&v, in + 4 * (j), 4);                                                              \
        if (rot) v = ROTL(uint32_t, v);                                                           \
        p0[j] = (uint8_t)v;                                                                       \
        p1[j] = (uint8_t)(v >> 8);                                                                \
        p2[j] = (uint8_t)(v >> 16);                                                               \
        p3[j] = (uint8_t)(v >> 24);                                                               \
    } while (0)

static void split4(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    uint8_t *p0 = out, *p1 = out + ne, *p2 = out + 2 * ne, *p3 = out + 3 * ne;
    size_t i = 0;
    for (; i + BLOCK <= ne; i += BLOCK)
        for (size_t k = 0; k < BLOCK; k++) SPLIT4(i + k);
    for (; i < ne; i++) SPLIT4(i);
}

static void split8(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    for (size_t i = 0; i < ne; i++) {
        uint64_t v;
        memcpy(&v, in + 8 * i, 8);
        if (rot) v = ROTL(uint64_t, v);
        for (unsigned b = 0; b < 8; b++) out[b * ne + i] = (uint8_t)(v >> (8 * b));
    }
}

/* ---- undo: planes -> elements ------------------------------------------------------------- */

#define JOIN2(j)                                                                                  \
    do {                                                                                          \
        uint16_t v = (uint16_t)(p0[j] | (unsigned)p1[j] << 8);                                    \
        if (rot) v = ROTR(uint16_t, v);                                                           \
        memcpy(out + 2 * (j), &v, 2);                                                             \
    } while (0)

static void join2(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    const uint8_t *p0 = in, *p1 = in + ne;
    size_t i = 0;
    for (; i + BLOCK <= ne; i += BLOCK)
        for (size_t k = 0; k < BLOCK; k++) JOIN2(i + k);
    for (; i < ne; i++) JOIN2(i);
}

#define JOIN4(j)                                                                                  \
    do {                                                                                          \
        uint32_t v = (uint32_t)p0[j] | (uint32_t)p1[j] << 8 | (uint32_t)p2[j] << 16 |             \
                     (uint32_t)p3[j] << 24;                                                       \
        if (rot) v = ROTR(uint32_t, v);                                                           \
        memcpy(out + 4 * (j), &v, 4);                                                             \
    } while (0)

static void join4(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    const uint8_t *p0 = in, *p1 = in + ne, *p2 = in + 2 * ne, *p3 = in + 3 * ne;
    size_t i = 0;
    for (; i + BLOCK <= ne; i += BLOCK)
        for (size_t k = 0; k < BLOCK; k++) JOIN4(i + k);
    for (; i < ne; i++) JOIN4(i);
}

static void join8(const uint8_t *restrict in, uint8_t *restrict out, size_t ne, int rot)
{
    for (size_t i = 0; i < ne; i++) {
        uint64_t v = 0;
        for (unsigned b = 0; b < 8; b++) v |= (uint64_t)in[b * ne + i] << (8 * b);
        if (rot) v = ROTR(uint64_t, v);
        memcpy(out + 8 * i, &v, 8);
    }
}

void hoist__filter_apply(hoist_filter f, unsigned width, const uint8_t *src, uint8_t *dst,
                         size_t n)
{
    int rot = f == HOIST_FILTER_EXPONENT;
    if (f == HOIST_FILTER_NONE || width < 2) {
        memcpy(dst, src, n);
    } else if (width == 2) {
        split2(src, dst, n / 2, rot);
    } else if (width == 4) {
        split4(src, dst, n / 4, rot);
    } else {
        split8(src, dst, n / 8, rot);
    }
}

void hoist__filter_undo(hoist_filter f, unsigned width, const uint8_t *src, uint8_t *dst,
                        size_t n)
{
    int rot = f == HOIST_FILTER_EXPONENT;
    if (f == HOIST_FILTER_NONE || width < 2) {
        memcpy(dst, src, n);
    } else if (width == 2) {
        join2(src, dst, n / 2, rot);
    } else if (width == 4) {
        join4(src, dst, n / 4, rot);
    } else {
        join8(src, dst, n / 8, rot);
    }
}
