/* The Huffman half of the codec's decoder, written once for its two compilers: gpu/codec.cu's
 * kernel (nvcc, device code) and gpu/codec.c's host twin (cc), which must decode exactly as the
 * kernel does; gpu/codec.h includes it for both. Everything here is inline and touches no memory
 * but what it is handed: each side loads the bitstream's words its own way (aligned device
 * loads, bytewise host reads). */
#ifndef HOIST_GPU_CODEC_HUFF_H
#define HOIST_GPU_CODEC_HUFF_H

#include <stdbool.h>
#include <stdint.h>

/* The longest code: the decode table has 1 << HOIST__HUFF_MAX_LEN entries (gpu/codec.h exports
 * it as HOIST_GPU_CODEC_MAX_LEN). */
#define HOIST__HUFF_MAX_LEN 12u

#ifdef __CUDACC__
#define HOIST__HUFF_FN __host__ __device__ __forceinline__
#else
#define HOIST__HUFF_FN static inline
#endif

/* Entry i of a chunk's decode table: (length << 8 | symbol) of the canonical code whose top
 * `length` bits are i's, found from the first code and first symbol of each length; 0 where no
 * code is assigned. */
HOIST__HUFF_FN uint16_t hoist__huff_lut_entry(const uint8_t *syms, const uint16_t *count,
                                              uint32_t i)
{
    uint32_t code = 0, idx = 0;
    for (unsigned l = 1; l <= HOIST__HUFF_MAX_LEN; l++) {
        uint32_t k = (i >> (HOIST__HUFF_MAX_LEN - l)) - code;
        if (k < count[l]) return (uint16_t)(l << 8 | syms[idx + k]);
        idx += count[l];
        code = (code + count[l]) << 1;
    }
    return 0;
}

/* A Huffman block's bit reader: the bits not yet consumed, left-aligned in acc. */
typedef struct hoist__huff_reader {
    uint64_t acc;
    uint64_t used; /* bits consumed */
    unsigned have; /* valid bits in acc */
    uint32_t w;    /* the next word to load */
    bool ok;       /* false once a bit pattern decoded to no code */
} hoist__huff_reader;

HOIST__HUFF_FN hoist__huff_reader hoist__huff_start(uint32_t w0)
{
    hoist__huff_reader r = {0, 0, 0, w0, true};
    return r;
}

/* Whether the next symbol needs a word loaded first (hoist__huff_feed); past the block's words
 * the caller feeds zeros, and hoist__huff_exact fails the block. */
HOIST__HUFF_FN bool hoist__huff_hungry(const hoist__huff_reader *r)
{
    return r->have < HOIST__HUFF_MAX_LEN;
}

HOIST__HUFF_FN void hoist__huff_feed(hoist__huff_reader *r, uint32_t word)
{
    r->acc |= (uint64_t)word << (32 - r->have);
    r->have += 32;
    r->w++;
}

/* The next symbol (the exponent byte) through the decode table; an unassigned pattern counts
 * as one bit and marks the block bad. */
HOIST__HUFF_FN uint8_t hoist__huff_next(hoist__huff_reader *r, const uint16_t *lut)
{
    uint16_t e = lut[r->acc >> (64 - HOIST__HUFF_MAX_LEN)];
    unsigned l = e >> 8;
    if (!l) {
        r->ok = false;
        l = 1;
    }
    r->acc <<= l;
    r->have -= l;
    r->used += l;
    return (uint8_t)e;
}

/* Whether the block decoded cleanly and used exactly its words [w0, wend). */
HOIST__HUFF_FN bool hoist__huff_exact(const hoist__huff_reader *r, uint32_t w0, uint32_t wend)
{
    return r->ok && (r->used + 31) / 32 == (uint64_t)(wend - w0);
}

/* A decoded element from its exponent symbol and its raw-plane byte (sign and mantissa): the
 * packer rotated each element left by one bit, so that the exponent filled the high byte; this
 * rotates it back. */
HOIST__HUFF_FN uint16_t hoist__huff_join(unsigned sym, unsigned raw)
{
    unsigned v = sym << 8 | raw;
    return (uint16_t)((v >> 1 | v << 15) & 0xffff);
}

#endif
