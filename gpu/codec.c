/* The codec's entry point (codec.h) and its host twin: the CUDA kernel's algorithm run on the
 * calling thread, so that the loader's GPU decoding path (descriptors, staging, error words) is
 * exercised through the host backend where there is no GPU. Both read a chunk exactly as the
 * kernel does; formats/exphuff.c is the reference they must agree with (tests/test_gpu_packed.c
 * compares all three). */
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
        if (!ok && c->index < *err) *err = c->index;
    }
}

int hoist__gpu_codec_decode(const hoist__gpu_ops *g, int device, hoist__stream *s,
                            const uint8_t *staged, const hoist__gpu_codec_chunk *chunks,
                            uint32_t n, uint32_t groups, uint32_t *err)
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
