// The CUDA decoder of packed codec 2 chunks (layout and plan in codec.h). Reads the staged
// window with aligned 32-bit loads (a chunk may start at any byte), decodes each Huffman block
// on one thread through a shared-memory table, and writes the decoded elements as 16-byte
// vectors, a warp covering 512 contiguous bytes. The CUDA block that completes a chunk then
// hashes it (XXH3-64, one warp) against the hash the container recorded.
#include "gpu/codec.h"
#include "gpu/cuda_native.h"

#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr unsigned TPB = HOIST_GPU_CODEC_THREADS;
constexpr unsigned LEN = HOIST_GPU_CODEC_MAX_LEN;
constexpr unsigned LUT = 1u << LEN;
// Symbols each thread decodes before the CUDA block writes them out: 128 rows of 256 bytes
// (+4 so that a warp's rows fall in different banks) keep shared memory near 41 KiB per block.
constexpr unsigned PHASE = 256;
constexpr unsigned ROW = PHASE + 4;
constexpr unsigned VEC = 8; // elements per 16-byte store

// The 4 bytes at p, any alignment: two aligned loads and a funnel shift (the staging buffer has
// HOIST_GPU_CODEC_SLACK bytes past the window for the second load).
__device__ __forceinline__ uint32_t load32(const uint8_t *p)
{
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t *w = reinterpret_cast<const uint32_t *>(a & ~uintptr_t(3));
    unsigned sh = unsigned(a & 3) * 8;
    uint32_t lo = w[0];
    return sh ? __funnelshift_r(lo, w[1], sh) : lo;
}

// The CUDA block's hblocks wrote `row` symbols of phase p into shared memory: join them with the
// raw plane and store them, 8 elements (16 bytes) per thread per step.
__device__ void write_phase(const hoist__gpu_codec_chunk &c, const uint8_t *base,
                            const uint8_t *sym, uint32_t first, uint32_t nblocks, uint32_t p)
{
    constexpr unsigned per_row = PHASE / VEC;
    uint8_t *out = reinterpret_cast<uint8_t *>(c.out);
    for (unsigned v = threadIdx.x; v < TPB * per_row; v += TPB) {
        unsigned hb = v / per_row, k = v % per_row;
        uint32_t b = first + hb;
        if (b >= nblocks) break; // rows past the last block are all further on
        uint32_t e0 = b * c.block_elems + p + k * VEC;
        uint32_t end = min(b * c.block_elems + c.block_elems, c.elems);
        if (e0 >= end) continue;
        const uint8_t *s = sym + hb * ROW + k * VEC;
        const uint8_t *raw = base + c.raw + e0;
        uint8_t *dst = out + 2ull * e0;
        if (end - e0 >= VEC && (reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
            uint32_t r0 = load32(raw), r1 = load32(raw + 4);
            uint32_t w[4];
            for (unsigned j = 0; j < 4; j++) {
                uint32_t r = j < 2 ? r0 : r1;
                unsigned sh = (j & 1) * 16;
                uint16_t a = hoist__huff_join(s[2 * j], (r >> sh) & 0xff);
                uint16_t bb = hoist__huff_join(s[2 * j + 1], (r >> (sh + 8)) & 0xff);
                w[j] = uint32_t(a) | uint32_t(bb) << 16;
            }
            *reinterpret_cast<uint4 *>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
        } else {
            for (uint32_t j = 0; j < VEC && e0 + j < end; j++) {
                uint16_t x = hoist__huff_join(s[j], raw[j]);
                dst[2 * j] = uint8_t(x);
                dst[2 * j + 1] = uint8_t(x >> 8);
            }
        }
    }
}

// ---- the chunks' XXH3 ------------------------------------------------------------------------

__constant__ uint8_t k_secret[HOIST__XXH3_SECRET_SIZE] = {HOIST__XXH3_SECRET_BYTES};

// The 32 bytes at p (the lane's half of a stripe): aligned 8-byte loads where the chunk's
// output is 8-byte aligned (arena views are 64-aligned), bytes otherwise. Other CUDA blocks wrote
// most of them: the loads go to L2 (ld.global.cg), past this SM's L1, which is not coherent.
__device__ __forceinline__ void load_half(uint64_t d[4], const uint8_t *p, bool aligned)
{
    for (unsigned j = 0; j < 4; j++)
        d[j] = aligned ? __ldcg(reinterpret_cast<const unsigned long long *>(p) + j)
                       : hoist__xxh3_rd64(p + 8 * j);
}

// Sums the lanes' terms over the warp into every lane's copy of the accumulators: first over
// the 16 stripes (lanes of the same half), then the two halves swap theirs.
__device__ __forceinline__ void add_terms(uint64_t acc[8], uint64_t t4[4], unsigned h)
{
    for (unsigned m = 2; m < 32; m <<= 1)
        for (unsigned j = 0; j < 4; j++) t4[j] += __shfl_xor_sync(0xffffffffu, t4[j], m);
    for (unsigned j = 0; j < 4; j++) {
        uint64_t other = __shfl_xor_sync(0xffffffffu, t4[j], 1);
        acc[j] += h ? other : t4[j];
        acc[4 + j] += h ? t4[j] : other;
    }
}

// Block b, its half-stripe already in d: its terms summed over the warp and scrambled in, and d
// reloaded with block b + 2, so that two blocks' loads are always in flight.
__device__ __forceinline__ void hash_block(uint64_t acc[8], uint64_t d[4], const uint64_t key4[4],
                                           const uint64_t sk[8], unsigned h, const uint8_t *mine,
                                           uint64_t b, uint64_t blocks, bool aligned)
{
    uint64_t t4[4] = {0, 0, 0, 0};
    hoist__xxh3_half(t4, d, key4);
    if (b + 2 < blocks) load_half(d, mine + (b + 2) * HOIST__XXH3_BLOCK, aligned);
    add_terms(acc, t4, h);
    hoist__xxh3_scramble(acc, sk);
}

// One warp hashes chunk c, the lanes sharing its blocks as codec_xxh3.h describes; a chunk
// whose decoded bytes do not hash to its recorded XXH3 lowers *err to its index.
__device__ void hash_chunk(const hoist__gpu_codec_chunk &c, const uint8_t *secret, uint32_t *err)
{
    const uint8_t *in = reinterpret_cast<const uint8_t *>(c.out);
    uint64_t len = 2ull * c.elems, hash;
    unsigned lane = threadIdx.x & 31;
    unsigned s = HOIST__XXH3_LANE_STRIPE(lane), h = HOIST__XXH3_LANE_HALF(lane);
    if (len <= HOIST__XXH3_MIDSIZE_MAX) {
        hash = hoist__xxh3_short(in, len, secret);
    } else {
        bool aligned = (c.out & 7) == 0;
        uint64_t acc[8], sk[8], key4[4], d0[4], d1[4];
        hoist__xxh3_init(acc);
        hoist__xxh3_scramble_keys(sk, secret);
        hoist__xxh3_half_keys(key4, secret + 8 * s, h);
        const uint8_t *mine = in + s * HOIST__XXH3_STRIPE + 32 * h;
        uint64_t blocks = (len - 1) / HOIST__XXH3_BLOCK;
        if (blocks > 0) load_half(d0, mine, aligned);
        if (blocks > 1) load_half(d1, mine + HOIST__XXH3_BLOCK, aligned);
        for (uint64_t b = 0; b < blocks; b += 2) { // two named buffers: registers, not an array
            hash_block(acc, d0, key4, sk, h, mine, b, blocks, aligned);
            if (b + 1 < blocks) hash_block(acc, d1, key4, sk, h, mine, b + 1, blocks, aligned);
        }
        uint64_t stripes = ((len - 1) - blocks * HOIST__XXH3_BLOCK) / HOIST__XXH3_STRIPE;
        uint64_t t4[4] = {0, 0, 0, 0}, x[4];
        if (s < stripes) {
            load_half(x, mine + blocks * HOIST__XXH3_BLOCK, aligned);
            hoist__xxh3_half(t4, x, key4);
        }
        if (s == HOIST__XXH3_BLOCK / HOIST__XXH3_STRIPE - 1) {
            const uint8_t *last = in + len - HOIST__XXH3_STRIPE + 32 * h;
            uint64_t lk[4];
            load_half(x, last, aligned && (len & 7) == 0);
            hoist__xxh3_half_keys(lk, secret + HOIST__XXH3_LAST_KEY, h);
            hoist__xxh3_half(t4, x, lk);
        }
        add_terms(acc, t4, h);
        hash = hoist__xxh3_merge(acc, secret, len);
    }
    if (lane == 0 && hash != c.xxh3) atomicMin(err, c.index);
}

// The CUDA block that completes chunk c hashes it: each block's stores are made visible device-
// wide before it counts itself done (the last-block pattern of CUDA's threadFenceReduction), so
// the last one to count reads every group's output. err[1] takes the hash's verdict.
__device__ void hash_if_last(const hoist__gpu_codec_chunk &c, uint32_t *done, uint32_t groups,
                             uint32_t *err)
{
    __shared__ bool last;
    __shared__ uint8_t secret[HOIST__XXH3_SECRET_SIZE];
    __syncthreads(); // the whole block's stores are issued
    if (threadIdx.x == 0) {
        __threadfence();
        last = atomicAdd(done, 1u) == groups - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (unsigned i = threadIdx.x; i < HOIST__XXH3_SECRET_SIZE; i += blockDim.x)
        secret[i] = k_secret[i];
    __syncthreads();
    if (threadIdx.x < 32) hash_chunk(c, secret, err);
}

__global__ void __launch_bounds__(TPB)
    exphuff_kernel(const uint8_t *staged, hoist__gpu_codec_chunk *chunks, uint32_t *err)
{
    __shared__ uint16_t lut[LUT];
    __shared__ uint8_t sym[TPB * ROW];
    __shared__ hoist__gpu_codec_chunk c;
    if (threadIdx.x == 0) c = chunks[blockIdx.x];
    __syncthreads();
    uint32_t nblocks = (c.elems + c.block_elems - 1) / c.block_elems;
    uint32_t first = blockIdx.y * TPB;
    if (first >= nblocks) return; // the whole CUDA block: this chunk has fewer groups
    const uint8_t *base = staged + c.in;
    for (uint32_t i = threadIdx.x; i < LUT; i += TPB)
        lut[i] = hoist__huff_lut_entry(base + c.syms, c.count, i);
    __syncthreads();

    uint32_t b = first + threadIdx.x;
    bool active = b < nblocks;
    uint32_t lo = b * c.block_elems;
    uint32_t n = active ? min(c.block_elems, c.elems - lo) : 0;
    uint32_t w0 = active ? load32(base + c.offsets + 4 * b) : 0;
    uint32_t wend = b + 1 < nblocks ? load32(base + c.offsets + 4 * (b + 1)) : c.words;
    const uint8_t *words = base + c.bits;
    hoist__huff_reader r = hoist__huff_start(w0);
    uint8_t *row = sym + threadIdx.x * ROW;
    for (uint32_t p = 0; p < c.block_elems; p += PHASE) {
        uint32_t m = n > p ? min(PHASE, n - p) : 0;
        for (uint32_t j = 0; j < m; j++) {
            if (hoist__huff_hungry(&r)) // past the block's words: zeros, and exact() fails it
                hoist__huff_feed(&r, r.w < wend ? load32(words + 4ull * r.w) : 0);
            row[j] = hoist__huff_next(&r, lut);
        }
        __syncthreads();
        write_phase(c, base, sym, first, nblocks, p);
        __syncthreads();
    }
    if (active && !hoist__huff_exact(&r, w0, wend)) atomicMin(err, c.index);
    hash_if_last(c, &chunks[blockIdx.x].done, (nblocks + TPB - 1) / TPB, err + 1);
}

} // namespace

extern "C" int hoist__gpu_codec_cuda(int device, hoist__stream *s, const uint8_t *staged,
                                     hoist__gpu_codec_chunk *chunks, uint32_t n, uint32_t groups,
                                     uint32_t *err)
{
    // kernels launch on the thread's current device; a worker thread of the load is hoist's own
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess || cur != device) {
        int rc = hoist__cuda_check(cudaSetDevice(device), "cudaSetDevice", device);
        if (rc < 0) return rc;
    }
    dim3 grid(n, groups ? groups : 1);
    exphuff_kernel<<<grid, TPB, 0, s->stream>>>(staged, chunks, err);
    return hoist__cuda_check(cudaGetLastError(), "the codec kernel launch", device);
}
