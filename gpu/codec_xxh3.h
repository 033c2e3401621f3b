/* XXH3-64 (seed 0, the default secret): the hash every packed chunk records, written once for
 * gpu/codec.cu's hash kernel (nvcc, device code) and gpu/codec.c's host twin (cc), which must
 * give what libxxhash's XXH3_64bits gives, bit for bit (tests/test_packed.c compares them over
 * every length class). It follows xxHash 0.8's reference (xxhash.h: XXH3_len_*_64b and
 * XXH3_hashLong_64b_internal with the scalar accumulate and scramble).
 *
 * An input above 240 bytes is cut into 1024-byte blocks of 16 stripes of 64 bytes. Within a
 * block each stripe only adds terms to the eight accumulators, so the stripes may be summed in
 * any order and by different threads (the kernel gives each stripe to two lanes of a warp); the
 * scramble between blocks is the one sequential step. hoist__xxh3_half() is a lane's piece of
 * a stripe; hoist__xxh3_64() runs the whole algorithm on one thread. */
#ifndef HOIST_GPU_CODEC_XXH3_H
#define HOIST_GPU_CODEC_XXH3_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define HOIST__XXH_FN __host__ __device__ __forceinline__
#else
#define HOIST__XXH_FN static inline
#endif

#define HOIST__XXH3_SECRET_SIZE 192u
#define HOIST__XXH3_STRIPE 64u
#define HOIST__XXH3_BLOCK 1024u /* 16 stripes: (secret size - stripe) / 8 */
#define HOIST__XXH3_MIDSIZE_MAX 240u

/* XXH3_kSecret, for an initializer: the kernel keeps it in constant memory, the twin in a
 * static array. */
#define HOIST__XXH3_SECRET_BYTES                                                                  \
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad,     \
        0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, \
        0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, \
        0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, \
        0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, \
        0x8b, 0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, \
        0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, \
        0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, \
        0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, \
        0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, \
        0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d, \
        0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f, \
        0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e

#define HOIST__XXH_P32_1 0x9E3779B1u
#define HOIST__XXH_P32_2 0x85EBCA77u
#define HOIST__XXH_P32_3 0xC2B2AE3Du
#define HOIST__XXH_P64_1 0x9E3779B185EBCA87ull
#define HOIST__XXH_P64_2 0xC2B2AE3D27D4EB4Full
#define HOIST__XXH_P64_3 0x165667B19E3779F9ull
#define HOIST__XXH_P64_4 0x85EBCA77C2B2AE63ull
#define HOIST__XXH_P64_5 0x27D4EB2F165667C5ull

/* Little-endian reads at any alignment, byte by byte: the secret's offsets (3, 7, 11 ...) and a
 * chunk's last stripe are unaligned. */
HOIST__XXH_FN uint64_t hoist__xxh3_rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

HOIST__XXH_FN uint32_t hoist__xxh3_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 128-bit product of a and b, its halves xored. */
HOIST__XXH_FN uint64_t hoist__xxh3_fold(uint64_t a, uint64_t b)
{
#ifdef __CUDA_ARCH__
    return (a * b) ^ __umul64hi(a, b);
#else
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
#endif
}

HOIST__XXH_FN uint64_t hoist__xxh3_avalanche(uint64_t h)
{
    h ^= h >> 37;
    h *= 0x165667919E3779F9ull;
    return h ^ (h >> 32);
}

HOIST__XXH_FN uint64_t hoist__xxh64_avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= HOIST__XXH_P64_2;
    h ^= h >> 29;
    h *= HOIST__XXH_P64_3;
    return h ^ (h >> 32);
}

HOIST__XXH_FN uint64_t hoist__xxh3_mix16(const uint8_t *in, const uint8_t *secret)
{
    return hoist__xxh3_fold(hoist__xxh3_rd64(in) ^ hoist__xxh3_rd64(secret),
                            hoist__xxh3_rd64(in + 8) ^ hoist__xxh3_rd64(secret + 8));
}

/* Inputs of 0 to 240 bytes (XXH3_len_0to16, 17to128 and 129to240). */
HOIST__XXH_FN uint64_t hoist__xxh3_short(const uint8_t *in, size_t len, const uint8_t *secret)
{
    if (len == 0)
        return hoist__xxh64_avalanche(hoist__xxh3_rd64(secret + 56) ^
                                      hoist__xxh3_rd64(secret + 64));
    if (len <= 3) {
        uint32_t c = (uint32_t)in[0] << 16 | (uint32_t)in[len >> 1] << 24 | in[len - 1] |
                     (uint32_t)len << 8;
        uint64_t flip = hoist__xxh3_rd32(secret) ^ hoist__xxh3_rd32(secret + 4);
        return hoist__xxh64_avalanche((uint64_t)c ^ flip);
    }
    if (len <= 8) {
        uint64_t flip = hoist__xxh3_rd64(secret + 8) ^ hoist__xxh3_rd64(secret + 16);
        uint64_t v = hoist__xxh3_rd32(in + len - 4) + ((uint64_t)hoist__xxh3_rd32(in) << 32);
        uint64_t h = v ^ flip; /* rrmxmx */
        h ^= (h << 49 | h >> 15) ^ (h << 24 | h >> 40);
        h *= 0x9FB21C651E98DF25ull;
        h ^= (h >> 35) + len;
        h *= 0x9FB21C651E98DF25ull;
        return h ^ (h >> 28);
    }
    if (len <= 16) {
        uint64_t lo = hoist__xxh3_rd64(in) ^
                      (hoist__xxh3_rd64(secret + 24) ^ hoist__xxh3_rd64(secret + 32));
        uint64_t hi = hoist__xxh3_rd64(in + len - 8) ^
                      (hoist__xxh3_rd64(secret + 40) ^ hoist__xxh3_rd64(secret + 48));
        uint64_t swapped = 0;
        for (int i = 0; i < 8; i++) swapped = swapped << 8 | ((lo >> (8 * i)) & 0xff);
        return hoist__xxh3_avalanche(len + swapped + hi + hoist__xxh3_fold(lo, hi));
    }
    uint64_t acc = len * HOIST__XXH_P64_1;
    if (len <= 128) {
        if (len > 32) {
            if (len > 64) {
                if (len > 96) {
                    acc += hoist__xxh3_mix16(in + 48, secret + 96);
                    acc += hoist__xxh3_mix16(in + len - 64, secret + 112);
                }
                acc += hoist__xxh3_mix16(in + 32, secret + 64);
                acc += hoist__xxh3_mix16(in + len - 48, secret + 80);
            }
            acc += hoist__xxh3_mix16(in + 16, secret + 32);
            acc += hoist__xxh3_mix16(in + len - 32, secret + 48);
        }
        acc += hoist__xxh3_mix16(in, secret);
        acc += hoist__xxh3_mix16(in + len - 16, secret + 16);
        return hoist__xxh3_avalanche(acc);
    }
    for (size_t i = 0; i < 8; i++) acc += hoist__xxh3_mix16(in + 16 * i, secret + 16 * i);
    acc = hoist__xxh3_avalanche(acc);
    for (size_t i = 8; i < len / 16; i++) /* from secret byte 3 on: XXH3_MIDSIZE_STARTOFFSET */
        acc += hoist__xxh3_mix16(in + 16 * i, secret + 16 * (i - 8) + 3);
    acc += hoist__xxh3_mix16(in + len - 16, secret + 136 - 17);
    return hoist__xxh3_avalanche(acc);
}

HOIST__XXH_FN void hoist__xxh3_init(uint64_t acc[8])
{
    acc[0] = HOIST__XXH_P32_3;
    acc[1] = HOIST__XXH_P64_1;
    acc[2] = HOIST__XXH_P64_2;
    acc[3] = HOIST__XXH_P64_3;
    acc[4] = HOIST__XXH_P64_4;
    acc[5] = HOIST__XXH_P32_2;
    acc[6] = HOIST__XXH_P64_5;
    acc[7] = HOIST__XXH_P32_1;
}

/* The terms one 8-byte word of a stripe adds: d (word i's value) goes to accumulator i ^ 1, and
 * the product of the halves of d ^ key to accumulator i. */
HOIST__XXH_FN void hoist__xxh3_word(uint64_t *to_pair, uint64_t *to_self, uint64_t d, uint64_t key)
{
    uint64_t k = d ^ key;
    *to_pair += d;
    *to_self += (k & 0xffffffffu) * (k >> 32);
}

/* One stripe of 64 bytes at in, keyed from key (the secret at 8 bytes per stripe of the block,
 * or at its last-stripe offset). */
HOIST__XXH_FN void hoist__xxh3_stripe(uint64_t acc[8], const uint8_t *in, const uint8_t *key)
{
    for (unsigned i = 0; i < 8; i++)
        hoist__xxh3_word(&acc[i ^ 1], &acc[i], hoist__xxh3_rd64(in + 8 * i),
                         hoist__xxh3_rd64(key + 8 * i));
}

/* The scramble between blocks, with its eight keys read once (hoist__xxh3_scramble_keys). */
HOIST__XXH_FN void hoist__xxh3_scramble_keys(uint64_t key[8], const uint8_t *secret)
{
    for (unsigned i = 0; i < 8; i++)
        key[i] = hoist__xxh3_rd64(secret + HOIST__XXH3_SECRET_SIZE - HOIST__XXH3_STRIPE + 8 * i);
}

HOIST__XXH_FN void hoist__xxh3_scramble(uint64_t acc[8], const uint64_t key[8])
{
    for (unsigned i = 0; i < 8; i++) {
        uint64_t a = acc[i];
        a ^= a >> 47;
        a ^= key[i];
        acc[i] = a * HOIST__XXH_P32_1;
    }
}

/* How the kernel shares out a long input: lane t (0..31) of a warp takes half h = t & 1 (the
 * words 4h .. 4h+3) of stripe s = t >> 1 of each block. Accumulator i ^ 1, which word i feeds,
 * lies in the same half, so a lane's terms go to four accumulators only: t4[j] is accumulator
 * 4h + j. After the whole blocks, the lanes of stripes below the partial block's stripe count
 * take those stripes, and the lanes of stripe 15 (never one of them: a partial block has at
 * most 15) the input's last 64 bytes under their own key. */
#define HOIST__XXH3_LANE_STRIPE(lane) ((lane) >> 1)
#define HOIST__XXH3_LANE_HALF(lane) ((lane) & 1u)

/* Adds to t4 the terms of the half h of the stripe at p (the 32 bytes at p + 32h, already read
 * into d[4]) under the stripe's keys key4 (the secret's words 4h .. 4h+3 from the stripe's key
 * offset). */
HOIST__XXH_FN void hoist__xxh3_half(uint64_t t4[4], const uint64_t d[4], const uint64_t key4[4])
{
    for (unsigned j = 0; j < 4; j++) hoist__xxh3_word(&t4[j ^ 1], &t4[j], d[j], key4[j]);
}

HOIST__XXH_FN void hoist__xxh3_half_keys(uint64_t key4[4], const uint8_t *key, unsigned h)
{
    for (unsigned j = 0; j < 4; j++) key4[j] = hoist__xxh3_rd64(key + 8 * (4 * h + j));
}

HOIST__XXH_FN uint64_t hoist__xxh3_merge(const uint64_t acc[8], const uint8_t *secret, uint64_t len)
{
    uint64_t h = len * HOIST__XXH_P64_1;
    for (unsigned i = 0; i < 4; i++)
        h += hoist__xxh3_fold(acc[2 * i] ^ hoist__xxh3_rd64(secret + 11 + 16 * i),
                              acc[2 * i + 1] ^ hoist__xxh3_rd64(secret + 11 + 16 * i + 8));
    return hoist__xxh3_avalanche(h);
}

/* Where the last stripe of an input takes its key: 7 bytes before the scramble's. */
#define HOIST__XXH3_LAST_KEY (HOIST__XXH3_SECRET_SIZE - HOIST__XXH3_STRIPE - 7u)

/* XXH3_64bits(in, len) on one thread. */
HOIST__XXH_FN uint64_t hoist__xxh3_64(const uint8_t *in, size_t len, const uint8_t *secret)
{
    if (len <= HOIST__XXH3_MIDSIZE_MAX) return hoist__xxh3_short(in, len, secret);
    uint64_t acc[8];
    hoist__xxh3_init(acc);
    size_t blocks = (len - 1) / HOIST__XXH3_BLOCK;
    uint64_t sk[8];
    hoist__xxh3_scramble_keys(sk, secret);
    for (size_t b = 0; b < blocks; b++) {
        for (size_t s = 0; s < HOIST__XXH3_BLOCK / HOIST__XXH3_STRIPE; s++)
            hoist__xxh3_stripe(acc, in + b * HOIST__XXH3_BLOCK + s * HOIST__XXH3_STRIPE,
                               secret + 8 * s);
        hoist__xxh3_scramble(acc, sk);
    }
    size_t stripes = ((len - 1) - blocks * HOIST__XXH3_BLOCK) / HOIST__XXH3_STRIPE;
    for (size_t s = 0; s < stripes; s++)
        hoist__xxh3_stripe(acc, in + blocks * HOIST__XXH3_BLOCK + s * HOIST__XXH3_STRIPE,
                           secret + 8 * s);
    hoist__xxh3_stripe(acc, in + len - HOIST__XXH3_STRIPE, secret + HOIST__XXH3_LAST_KEY);
    return hoist__xxh3_merge(acc, secret, len);
}

#endif
