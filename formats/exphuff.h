/* The GPU codec of a packed chunk (HOIST_CODEC_EXPHUFF): 16-bit floats split into an exponent
 * plane, entropy-coded with one canonical Huffman table per chunk in independent blocks, and a
 * raw sign+mantissa plane. Every block starts at a recorded 32-bit word, so thousands of GPU
 * threads decode a chunk at once (gpu/codec.cu); this file has the encoder, the checks of a
 * stored chunk, and the CPU decoder. docs/PACKED.md has the layout and why.
 *
 * Element v (little-endian 16 bits) is rotated left one bit, as the exponent filter does: the
 * high byte is then the symbol (bf16: its 8 exponent bits; f16: its 5 exponent bits and the top
 * 3 mantissa bits) and the low byte is stored raw (the other mantissa bits and the sign).
 *
 * Stored chunk (little-endian; offsets from the chunk's first byte):
 *   0    u32 block_elems          elements per block: a power of two, 256 .. 65536
 *   4    u16 count[12]            count[l-1]: symbols whose code is l bits long
 *   28   u8  syms[nsym]           the symbols in canonical order (by length, then value)
 *        u32 offsets[nblocks]     block b's first word in the bitstream (offsets[0] = 0)
 *        u8  raw[elems]           the low byte of every rotated element
 *        u32 words[...]           the bitstream to the chunk's end: codes MSB-first in each
 *                                 word; every block ends on a word boundary, zero-padded
 * Codes are canonical: those of length l are consecutive numbers, shorter codes first, values
 * ascending within a length, so the counts and the ordered symbols define the table. */
#ifndef HOIST_EXPHUFF_H
#define HOIST_EXPHUFF_H

#include <stddef.h>
#include <stdint.h>

/* Codes are at most this long, so that one 4096-entry table decodes a symbol per lookup. */
#define HOIST_EXPHUFF_MAX_LEN 12u
#define HOIST_EXPHUFF_LUT (1u << HOIST_EXPHUFF_MAX_LEN)
#define HOIST_EXPHUFF_MIN_BLOCK 256u
#define HOIST_EXPHUFF_MAX_BLOCK 65536u
/* What the writer uses: 4 bytes of offset per 1024 elements (0.2% of the model) buys a block per
 * GPU thread for every 2 KiB of output. */
#define HOIST_EXPHUFF_BLOCK 1024u
#define HOIST_EXPHUFF_HEADER 28u

/* Where the parts of a stored chunk are, once checked. */
typedef struct hoist__exphuff {
    uint32_t elems, block_elems, nblocks, nsym;
    uint32_t syms, offsets, raw, bits; /* byte offsets from the chunk's start */
    uint32_t words;                    /* 32-bit words of the bitstream */
    uint16_t count[HOIST_EXPHUFF_MAX_LEN + 1]; /* count[l]: codes of l bits; count[0] = 0 */
} hoist__exphuff;

/* Encodes len bytes (a whole number of 16-bit elements, at least one) into dst. Returns the
 * stored size, or 0 when it would exceed cap (the chunk is then better stored raw). Allocates
 * nothing. */
size_t hoist__exphuff_encode(const uint8_t *src, uint32_t len, uint8_t *dst, size_t cap);

/* Checks the structure of a stored chunk of `stored` bytes that decodes to len bytes: every
 * count, offset and table bounded, the code complete enough to build its table (Kraft), offsets
 * non-decreasing and inside the bitstream. 0, or -1 with the reason in why. */
int hoist__exphuff_parse(const uint8_t *in, uint32_t stored, uint32_t len, hoist__exphuff *x,
                         char *why, size_t why_len);

/* Decodes a chunk parse() accepted into out (x->elems * 2 bytes). Every block must consume
 * exactly its words and use only assigned codes. 0, or -1 with the reason (naming the block) in
 * why. */
int hoist__exphuff_decode(const uint8_t *in, const hoist__exphuff *x, uint8_t *out, char *why,
                          size_t why_len);

#endif
