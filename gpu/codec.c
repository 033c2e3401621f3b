/* The codec's entry point (codec.h) and its host twin: the CUDA kernel's algorithm run on the
 * calling thread, so that the loader's GPU decoding path (descriptors, staging, error words) is
 * exercised through the host backend where there is no GPU. Both read a chunk exactly as the
 * kernel does; formats/exphuff.c is the reference they must agree with (tests/test_gpu_packed.c
 * compares all three). The twin then hashes each chunk as the kernel's hashing warp shares the
 * work out. */
#include "gpu/codec.h"
#include "core/core.h"

#include <string.h>

#define L HOIST_GPU_CODEC_MAX_LEN

bool hoist__gpu_codec_ready(const hoist__gpu_ops *g)
{
    if (g == &hoist__gpu_host) return hoist__gpu_host_as_device();
    return g && g == hoist__gpu_cuda();
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One Huffman block; false when its bits do not decode to exactly its words. */
static bool host_block(const uint8_t *base, const hoist__gpu_codec_chunk *c, const uint16_t *lut,
                       uint32_t b, uint8_t *out)
{
    uint32_t nblocks = (c->elems + c->block_elems - 1) / c->block_elems;
    uint32_t w0 = le32(base + c->offsets + 4 * b);
    uint32_t wend = b + 1 < nblocks ? le32(base + c->offsets + 4 * (b + 1)) : c->words;
    uint32_t lo = b * c->block_elems;
    uint32_t hi = lo + c->block_elems < c->elems ? lo + c->block_elems : c->elems;
    hoist__huff_reader r = hoist__huff_start(w0);
    for (uint32_t i = lo; i < hi; i++) {
        if (hoist__huff_hungry(&r))
            hoist__huff_feed(&r, r.w < wend ? le32(base + c->bits + 4ull * r.w) : 0);
        uint16_t v = hoist__huff_join(hoist__huff_next(&r, lut), base[c->raw + i]);
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
    return hoist__huff_exact(&r, w0, wend);
}

static const uint8_t secret[HOIST__XXH3_SECRET_SIZE] = {HOIST__XXH3_SECRET_BYTES};

/* The 32 bytes at p, as the kernel's load_half reads them. */
static void half_at(uint64_t d[4], const uint8_t *p)
{
    for (unsigned j = 0; j < 4; j++) d[j] = hoist__xxh3_rd64(p + 8 * j);
}

/* The kernel's hashing warp, one lane at a time: each lane's terms of a block are summed into the
 * accumulators of its half before the scramble, as add_terms() does with shuffles. */
uint64_t hoist__gpu_codec_xxh3(const uint8_t *in, uint64_t len)
{
    if (len <= HOIST__XXH3_MIDSIZE_MAX) return hoist__xxh3_short(in, (size_t)len, secret);
    uint64_t acc[8], sk[8], sum[8], t4[4], key4[32][4], last4[2][4], d[4];
    hoist__xxh3_init(acc);
    hoist__xxh3_scramble_keys(sk, secret);
    for (unsigned lane = 0; lane < 32; lane++) /* as each lane reads its keys once */
        hoist__xxh3_half_keys(key4[lane], secret + 8 * HOIST__XXH3_LANE_STRIPE(lane),
                              HOIST__XXH3_LANE_HALF(lane));
    for (unsigned h = 0; h < 2; h++)
        hoist__xxh3_half_keys(last4[h], secret + HOIST__XXH3_LAST_KEY, h);
    uint64_t blocks = (len - 1) / HOIST__XXH3_BLOCK;
    uint64_t stripes = ((len - 1) - blocks * HOIST__XXH3_BLOCK) / HOIST__XXH3_STRIPE;
    for (uint64_t b = 0; b <= blocks; b++) { /* b == blocks: the partial block and last stripe */
        memset(sum, 0, sizeof sum);
        for (unsigned lane = 0; lane < 32; lane++) {
            unsigned s = HOIST__XXH3_LANE_STRIPE(lane), h = HOIST__XXH3_LANE_HALF(lane);
            const uint8_t *mine = in + b * HOIST__XXH3_BLOCK + s * HOIST__XXH3_STRIPE + 32 * h;
            memset(t4, 0, sizeof t4);
            if (b < blocks || s < stripes) {
                half_at(d, mine);
                hoist__xxh3_half(t4, d, key4[lane]);
            }
            if (b == blocks && s == HOIST__XXH3_BLOCK / HOIST__XXH3_STRIPE - 1) {
                half_at(d, in + len - HOIST__XXH3_STRIPE + 32 * h);
                hoist__xxh3_half(t4, d, last4[h]);
            }
            for (unsigned j = 0; j < 4; j++) sum[4 * h + j] += t4[j];
        }
        for (unsigned i = 0; i < 8; i++) acc[i] += sum[i];
        if (b < blocks) hoist__xxh3_scramble(acc, sk);
    }
    return hoist__xxh3_merge(acc, secret, len);
}

static void host_decode(const uint8_t *staged, const hoist__gpu_codec_chunk *chunks, uint32_t n,
                        uint32_t *err)
{
    uint16_t lut[1u << L];
    for (uint32_t k = 0; k < n; k++) {
        const hoist__gpu_codec_chunk *c = &chunks[k];
        const uint8_t *base = staged + c->in;
        for (uint32_t i = 0; i < (1u << L); i++)
            lut[i] = hoist__huff_lut_entry(base + c->syms, c->count, i);
        uint32_t nblocks = (c->elems + c->block_elems - 1) / c->block_elems;
        bool ok = true;
        for (uint32_t b = 0; b < nblocks; b++)
            ok &= host_block(base, c, lut, b, (uint8_t *)(uintptr_t)c->out);
        if (!ok && c->index < err[0]) err[0] = c->index;
        uint8_t *out = (uint8_t *)(uintptr_t)c->out;
        if (hoist__gpu_codec_xxh3(out, 2ull * c->elems) != c->xxh3 && c->index < err[1])
            err[1] = c->index;
    }
}

int hoist__gpu_codec_decode(const hoist__gpu_ops *g, int device, hoist__stream *s,
                            const uint8_t *staged, hoist__gpu_codec_chunk *chunks, uint32_t n,
                            uint32_t groups, uint32_t *err)
{
    RETURN_IF_ERR(hoist__gpu_seam(g->name, device, HOIST_GPU_DECODE, n));
    if (!n) return HOIST_OK;
    if (g == &hoist__gpu_host) { /* its copies are done when they return: so is this */
        RETURN_IF(!hoist__gpu_host_as_device(), HOIST_E_UNSUPPORTED,
                  "host: decoding needs the test hooks' host_as_device");
        host_decode(staged, chunks, n, err);
        return HOIST_OK;
    }
    return hoist__gpu_codec_cuda(device, s, staged, chunks, n, groups, err);
}
