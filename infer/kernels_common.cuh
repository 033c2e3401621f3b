// What the CUDA translation units of infer/ share: element loads and stores by dtype, the
// dtype dispatch, warp and block sums, ggml's Q8_0 block layout and the launch status helpers.
// Each includer gets its own copy (an unnamed namespace), as when they lived in one file.
#ifndef HOIST_INFER_KERNELS_COMMON_CUH
#define HOIST_INFER_KERNELS_COMMON_CUH

#include "infer/kernels.h"
#include "gpu/cuda_native.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

namespace {

template <typename T> __device__ __forceinline__ float ld(const T *p, size_t i);
template <> __device__ __forceinline__ float ld<float>(const float *p, size_t i) { return p[i]; }
template <> __device__ __forceinline__ float ld<__half>(const __half *p, size_t i)
{
    return __half2float(p[i]);
}
template <> __device__ __forceinline__ float ld<__nv_bfloat16>(const __nv_bfloat16 *p, size_t i)
{
    return __bfloat162float(p[i]);
}

template <typename T> __device__ __forceinline__ void st(T *p, size_t i, float v);
template <> __device__ __forceinline__ void st<float>(float *p, size_t i, float v) { p[i] = v; }
template <> __device__ __forceinline__ void st<__half>(__half *p, size_t i, float v)
{
    p[i] = __float2half_rn(v);
}
template <> __device__ __forceinline__ void st<__nv_bfloat16>(__nv_bfloat16 *p, size_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}

// Runs the statement with T bound to the element type of a hoist dtype (bf16, f16, else f32).
#define DISPATCH(dtype, T, ...)                                                                   \
    do {                                                                                          \
        switch (dtype) {                                                                          \
        case HOIST_DTYPE_BF16: {                                                                  \
            typedef __nv_bfloat16 T;                                                              \
            __VA_ARGS__;                                                                          \
        } break;                                                                                  \
        case HOIST_DTYPE_F16: {                                                                   \
            typedef __half T;                                                                     \
            __VA_ARGS__;                                                                          \
        } break;                                                                                  \
        default: {                                                                                \
            typedef float T;                                                                      \
            __VA_ARGS__;                                                                          \
        } break;                                                                                  \
        }                                                                                         \
    } while (0)

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block; sh holds 32 floats. Every thread gets the result.
__device__ float block_sum(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? sh[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

// block_sum's total with one barrier instead of two: after the warps' partials are in sh, every
// warp runs warp 0's butterfly over them itself (each lane's pair sums are the same two floats in
// either order, so every lane of every warp ends with warp 0's bits). For kernels that sum once
// (the RMSNorms): sh is not reusable afterwards without another barrier.
__device__ __forceinline__ float block_sum_once(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    return warp_sum(lane < nw ? sh[lane] : 0.0f);
}

// A thread's running sum of squares over x in the RMSNorms' order, the products and adds pinned
// (no contraction choices left to the compiler), so that rmsnorm_kernel, its register variant
// and the decode kernels' norm_prologue, which must agree bit for bit, cannot drift apart.
__device__ __forceinline__ float ss_add4(float ss, float4 v)
{
    float t = __fmul_rn(v.x, v.x);
    t = __fmaf_rn(v.y, v.y, t);
    t = __fmaf_rn(v.z, v.z, t);
    t = __fmaf_rn(v.w, v.w, t);
    return __fadd_rn(ss, t);
}
__device__ __forceinline__ float ss_add1(float ss, float v) { return __fmaf_rn(v, v, ss); }

// Q8_0 (ggml): 32 weights per 34-byte block, an f16 scale then 32 int8; rows are whole blocks.
constexpr uint32_t Q8_BLOCK = 32, Q8_BYTES = 34;

// The Q8_0 matrix-vector kernels' shape (kernels.cu says why): GEMV_WARPS warps a block,
// Q8_ROWS rows a warp, Q8_GROUP blocks of each row staged at once through shared memory.
constexpr int GEMV_WARPS = 8;
constexpr int Q8_ROWS = 2;
constexpr uint32_t Q8_GROUP = 32;
constexpr uint32_t Q8_GROUP_VECS = Q8_GROUP * Q8_BYTES / 16; // 68
constexpr uint32_t Q8_LANE_VECS = (Q8_GROUP_VECS + 31) / 32; // 3
// Blocks an SM keeps of a Q8_0 kernel: the staged kernel measured on the H200 ran four (64
// registers a thread), which the launch bounds hold it to.
constexpr int Q8_MIN_BLOCKS = 4;

// ---- split-K -------------------------------------------------------------------------------
//
// A matrix of few rows (o, down, qkv: 4096 or 6144) gives a kernel of a row (pair) per warp too
// few warps to fill the GPU: 256 blocks of 8 warps are under two blocks an SM, and each warp
// walks its whole row with one group of loads in flight, so the launch is latency-bound. Such
// launches split each row's columns among S = 1 << lg warps of one block (S = 1, 2, 4, 8): warp
// w of the block works on unit w >> lg of the block (its row, row pair or gate/up pair) and on
// the contiguous part w & (S - 1) of the columns, and the S partial sums meet in shared memory,
// added in part order by the unit's first warp, so every launch of a shape (on one device) gives
// the same bits, and the epilogue (beta, bias, SwiGLU) runs once, after the sum. The kernels'
// launchers choose S from the SM count (kernels.cu, kernels_gemv.cu say how).

// Item where part p of n items split S = 1 << lg ways starts: parts differ by at most one item.
__device__ __forceinline__ uint32_t split_at(uint32_t n, uint32_t p, uint32_t lg)
{
    return (uint32_t)(((uint64_t)n * p) >> lg);
}

// The S = 1 << lg warps of each unit hold warp-summed partials v of the same two sums; after
// this, lane 0 of the unit's first warp holds the totals (part 0 + part 1 + ..., in that order).
// Every thread of the block calls it: it is a barrier unless lg is 0 (uniform over the launch).
// red holds two floats a warp.
__device__ __forceinline__ void split_sum(float (&v)[2], float (*red)[2], uint32_t lg)
{
    if (lg == 0) return;
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) {
        red[warp][0] = v[0];
        red[warp][1] = v[1];
    }
    __syncthreads();
    if (lane != 0 || (warp & ((1u << lg) - 1)) != 0) return;
    for (uint32_t k = 1; k < (1u << lg); k++) {
        v[0] += red[warp + k][0];
        v[1] += red[warp + k][1];
    }
}

} // namespace

// The split a test or a measurement asked for with hoist__k_force_split (kernels.cu): log2 + 1
// of S, or 0 for the launchers' own choice.
extern "C" unsigned hoist__k_forced_split_lg1(void);

// Streaming multiprocessors of a device, asked once per device and process (the split rules run
// at every launch, also while a graph is captured, which the attribute query does not disturb).
static inline int sm_count(int device)
{
    static int cache[64];
    int n = device >= 0 && device < 64 ? __atomic_load_n(&cache[device], __ATOMIC_RELAXED) : 0;
    if (n > 0) return n;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        n <= 0) {
        (void)cudaGetLastError(); // not the next launch's error
        return 132;               // an H100 / H200: the split is a speed choice, never a result's
    }
    if (device >= 0 && device < 64) __atomic_store_n(&cache[device], n, __ATOMIC_RELAXED);
    return n;
}

// lg of the split of a Q8_0 launch (decode_q8_0_kernel, and the staged kernel's launcher): 0,
// each row pair's columns on one warp, unless a test or measurement forces a split
// (hoist__k_force_split). Splitting few-row Q8_0 matrices until a launch had two waves of warps
// (o and qkv 4 ways, down 8) made a Q8_0 Llama-8B step slower on both Hoppers: 262 against 289
// tok/s on an H200 through the staged kernel, 235.5 against 253.0 on an H100 through the fused
// ones (docs/BENCHMARKS.md). A warp whose part is a single 32-block group has no next group to
// load while it works, and its x and reduction cost no longer shrink with the part.
static inline uint32_t q8_split_lg(void)
{
    unsigned f = hoist__k_forced_split_lg1();
    return f ? f - 1 : 0;
}

namespace {

// Threads of hoist__k_rmsnorm's blocks: the decode kernels that normalize their input add the
// same partial sums in the same order, so their scale is bit-identical to it.
__host__ __device__ constexpr unsigned rmsnorm_threads(uint32_t n_cols)
{
    return n_cols >= 2048 ? 256 : 128;
}

// Eight consecutive x (16-byte aligned) as floats.
__device__ __forceinline__ void load8(const __nv_bfloat16 *p, float *f)
{
    uint4 v = *(const uint4 *)p;
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void load8(const __half *p, float *f)
{
    uint4 v = *(const uint4 *)p;
    const __half2 *h = (const __half2 *)&v;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __half22float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
__device__ __forceinline__ void load8(const float *p, float *f)
{
    float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
    f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

// The four int8 of q dotted with f[0..3].
__device__ __forceinline__ float dot4_i8(uint32_t q, const float *f)
{
    const float bias = 8388736.0f; // 2^23 + 128
    uint32_t u = q ^ 0x80808080u;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; k++)
        s += (__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540u + k)) - bias) * f[k];
    return s;
}

// This lane's words of the staging group starting at 16-byte word v0 of each of the warp's nr
// rows (row r at rq + r * stride, nvec words each), loaded into next; words past a row's end are
// left alone. stride is nvec for a matrix's consecutive rows, the distance from a gate row to
// its up row for a SwiGLU pair.
__device__ __forceinline__ void q8_fetch_group(uint4 (&next)[Q8_ROWS][Q8_LANE_VECS],
                                               const uint4 *rq, ptrdiff_t stride, uint32_t nvec,
                                               uint32_t nr, uint32_t lane, uint32_t v0)
{
#pragma unroll
    for (int r = 0; r < Q8_ROWS; r++)
#pragma unroll
        for (uint32_t k = 0; k < Q8_LANE_VECS; k++) {
            uint32_t i = lane + 32 * k, v = v0 + i;
            if ((uint32_t)r < nr && i < Q8_GROUP_VECS && v < nvec)
                next[r][k] = __ldcs(rq + r * stride + v);
        }
}

// The staged Q8_0 kernel's loop (kernels.cu says why it is shaped so) over a warp's nr rows of
// nblk blocks, whose first group next already holds (q8_fetch_group at v0 0): each group moves
// through the warp's stage while the next one loads, and lane b takes block b of the group. x is
// global or shared memory, 16-byte aligned. sum[r] is this lane's part of row r's product.
template <typename T>
__device__ __forceinline__ void q8_dot_rows(uint4 (&stage)[Q8_ROWS][Q8_GROUP_VECS],
                                            uint4 (&next)[Q8_ROWS][Q8_LANE_VECS],
                                            const uint4 *rq, ptrdiff_t stride, uint32_t nr,
                                            const T *x, uint32_t nblk, uint32_t lane,
                                            float (&sum)[Q8_ROWS])
{
    // one counter, the group's first word v0 (its first block is v0 / 17 * 8): the loop's state
    // fits the staged kernel's 64 registers with the split-K part's offsets beside it
    uint32_t nvec = nblk * Q8_BYTES / 16;
#pragma unroll
    for (int r = 0; r < Q8_ROWS; r++) sum[r] = 0.0f;
    for (uint32_t v0 = 0; v0 < nvec; v0 += Q8_GROUP_VECS) {
        __syncwarp(); // every lane is done with the last group
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++)
#pragma unroll
            for (uint32_t k = 0; k < Q8_LANE_VECS; k++) {
                uint32_t i = lane + 32 * k;
                if (i < Q8_GROUP_VECS && v0 + i < nvec) stage[r][i] = next[r][k];
            }
        __syncwarp();
        if (v0 + Q8_GROUP_VECS < nvec)
            q8_fetch_group(next, rq, stride, nvec, nr, lane, v0 + Q8_GROUP_VECS);
        if (lane * 17 >= (nvec - v0) * 8) continue; // past the last block: 17 words per 8 blocks
        uint32_t b = v0 / 17 * 8 + lane;
        // block `lane` of the group: bytes lane * 34 .. + 33, 2-byte aligned, so nine aligned
        // words and a funnel shift of 0 or 16 bits (rows past nr hold stale words, never summed)
        uint32_t off = lane * Q8_BYTES, sh8 = (off & 3) * 8;
        uint32_t wd[Q8_ROWS][9];
        float d[Q8_ROWS], part[Q8_ROWS];
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++) {
            const uint32_t *s32 = (const uint32_t *)stage[r] + (off >> 2);
#pragma unroll
            for (int i = 0; i < 9; i++) wd[r][i] = s32[i];
            d[r] = __half2float(__ushort_as_half(
                (unsigned short)(__funnelshift_r(wd[r][0], wd[r][1], sh8) & 0xffffu)));
            part[r] = 0.0f;
        }
        const T *xb = x + (size_t)b * Q8_BLOCK;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float f[8];
            load8(xb + 8 * j, f);
            // quant word i starts 2 + 4i bytes into the block
#pragma unroll
            for (int r = 0; r < Q8_ROWS; r++) {
                part[r] += dot4_i8(__funnelshift_rc(wd[r][2 * j], wd[r][2 * j + 1], sh8 + 16), f);
                part[r] +=
                    dot4_i8(__funnelshift_rc(wd[r][2 * j + 1], wd[r][2 * j + 2], sh8 + 16), f + 4);
            }
        }
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++) sum[r] += d[r] * part[r];
    }
}

} // namespace

#define STREAM(s) ((s)->stream)

// The launch's status, reported the way gpu/ reports every CUDA error.
static inline int launched(const hoist__stream *s, const char *kernel)
{
    return hoist__cuda_check(cudaGetLastError(), kernel, s->device);
}

// Arguments the kernels cannot take, reported as a failed launch would be.
static inline int refused(const hoist__stream *s, const char *kernel)
{
    return hoist__cuda_check(cudaErrorInvalidValue, kernel, s->device);
}

#endif
