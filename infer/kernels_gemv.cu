// The fused matrix-vector kernels of a one-token decode step (see kernels.h): a layer's
// products in five launches instead of eight. Weights stream from HBM exactly once and nothing
// else should slow that down, so each kernel keeps many bytes in flight per SM and does the small
// work beside the product (the RMSNorm of its input, the SwiGLU of its output, a bias) where the
// product already is, rather than in launches of its own.
#include "infer/kernels_common.cuh"

namespace {

// What one launch computes; the kernels' template arguments say which fields are read.
struct dparams {
    const uint8_t *w0, *w1; // rows; w1: the up rows of a SwiGLU launch
    const void *x;          // the input in the activation dtype (no norm)
    const float *xf;        // the fp32 residual stream (norm)
    const void *nw;         // the norm's weights, [cols] of nd
    hoist_dtype nd;
    float eps;
    float *y; // y[r] = beta * y[r] + W[r] . x (+ bias[r])
    float beta;
    const float *bias;
    void *act; // act[i] = silu(g_i + bg[i]) * (u_i + bu[i])
    const float *bg, *bu;
    uint32_t rows, cols;
};

constexpr int DW = 8;      // warps a block (both kernel families)
constexpr int DU = 16;     // 16-byte words a lane has in flight: a 4096-wide bf16 row per warp
constexpr size_t XS_MAX = 64u << 10; // the largest input staged in shared memory

__device__ __forceinline__ float ld_any(const void *p, hoist_dtype dt, uint32_t i)
{
    switch (dt) {
    case HOIST_DTYPE_BF16: return ld((const __nv_bfloat16 *)p, i);
    case HOIST_DTYPE_F16: return ld((const __half *)p, i);
    default: return ld((const float *)p, i);
    }
}

// xs = rmsnorm(x) rounded to T, bit-identical to rmsnorm_kernel's row: threads below its
// thread count add the partial sums its threads add, in its order (block_sum's tree then gives
// the same total, the other warps bringing exact zeros), and each element is scaled and rounded
// by the same expression. Every thread of the block calls it; it ends in a barrier.
template <typename T>
__device__ void norm_prologue(T *xs, const dparams &p, float *red)
{
    uint32_t n = p.cols, nt = rmsnorm_threads(n), t = threadIdx.x;
    const float *xr = p.xf;
    float ss = 0.0f;
    if (t < nt) {
        if (n % 4 == 0) {
            for (uint32_t i = t * 4; i < n; i += nt * 4)
                ss = ss_add4(ss, *(const float4 *)(xr + i));
        } else {
            for (uint32_t i = t; i < n; i += nt) ss = ss_add1(ss, xr[i]);
        }
    }
    ss = block_sum_once(ss, red);
    float inv = 1.0f / sqrtf(ss / (float)n + p.eps);
    for (uint32_t i = t; i < n; i += blockDim.x) st(xs, i, xr[i] * inv * ld_any(p.nw, p.nd, i));
    __syncthreads();
}

// ---- weights in the activation dtype ----------------------------------------------------------
//
// A warp per row (per gate/up pair with SwiGLU), all of a chunk's 16-byte loads issued before
// any of its math: DU words a lane, 8 KiB a warp, a whole 4096-wide bf16 row. The first chunk is
// requested before the block stages its input, so the weights are already on their way while the
// block reads x. Loads bypass L1 and are marked evict-first in L2, which the activations, the
// KV cache and the residual stream then keep. The input sits in shared memory once per block,
// read back 16 bytes a lane, conflict-free.

__device__ __forceinline__ uint64_t evict_first_policy()
{
    uint64_t pol = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
#endif
    return pol;
}

__device__ __forceinline__ uint4 ld_stream(const uint4 *p, uint64_t pol)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p), "l"(pol));
    return v;
#else
    (void)pol;
    return __ldcs(p);
#endif
}

// The dot product of 16 bytes of weights and 16 bytes of x, in fp32.
template <typename T> __device__ __forceinline__ float dot16(uint4 a, uint4 b);
template <> __device__ __forceinline__ float dot16<__nv_bfloat16>(uint4 a, uint4 b)
{
    uint32_t wa[4] = {a.x, a.y, a.z, a.w}, wb[4] = {b.x, b.y, b.z, b.w};
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        s = fmaf(__uint_as_float(wa[i] << 16), __uint_as_float(wb[i] << 16), s);
        s = fmaf(__uint_as_float(wa[i] & 0xffff0000u), __uint_as_float(wb[i] & 0xffff0000u), s);
    }
    return s;
}
template <> __device__ __forceinline__ float dot16<__half>(uint4 a, uint4 b)
{
    const __half2 *ha = (const __half2 *)&a, *hb = (const __half2 *)&b;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 fa = __half22float2(ha[i]), fb = __half22float2(hb[i]);
        s = fmaf(fa.x, fb.x, s);
        s = fmaf(fa.y, fb.y, s);
    }
    return s;
}
template <> __device__ __forceinline__ float dot16<float>(uint4 a, uint4 b)
{
    float s = __uint_as_float(a.x) * __uint_as_float(b.x);
    s = fmaf(__uint_as_float(a.y), __uint_as_float(b.y), s);
    s = fmaf(__uint_as_float(a.z), __uint_as_float(b.z), s);
    return fmaf(__uint_as_float(a.w), __uint_as_float(b.w), s);
}

// This lane's words of the chunk at word v0 of a row of nvec words: lane + 32k, so that each
// step of k is one coalesced 512-byte request of the warp.
__device__ __forceinline__ void fetch_chunk(uint4 (&buf)[DU], const uint4 *wr, uint32_t v0,
                                            uint32_t nvec, uint32_t lane, uint64_t pol)
{
#pragma unroll
    for (int k = 0; k < DU; k++) {
        uint32_t v = v0 + lane + 32 * k;
        if (v < nvec) buf[k] = ld_stream(wr + v, pol);
    }
}

// This lane's part of row wr . xs, the first chunk already in buf. Every launch mode sums a row
// in this one order, so a SwiGLU launch's products equal a plain launch's bit for bit.
template <typename T>
__device__ __forceinline__ float row_dot(uint4 (&buf)[DU], const uint4 *wr, const uint4 *xs,
                                         uint32_t nvec, uint32_t lane, uint64_t pol)
{
    float acc = 0.0f;
    for (uint32_t v0 = 0;;) {
#pragma unroll
        for (int k = 0; k < DU; k++) {
            uint32_t v = v0 + lane + 32 * k;
            if (v < nvec) acc += dot16<T>(buf[k], xs[v]);
        }
        v0 += 32 * DU;
        if (v0 >= nvec) return acc;
        fetch_chunk(buf, wr, v0, nvec, lane, pol);
    }
}

// The input of cols elements into shared memory: x itself, or rmsnorm(xf) with NORM.
template <typename T, bool NORM>
__device__ __forceinline__ void stage_input(uint4 *xs, const dparams &p, float *red)
{
    if (NORM) {
        norm_prologue<T>((T *)xs, p, red);
        return;
    }
    const uint4 *xg = (const uint4 *)p.x;
    uint32_t nvec = p.cols * (uint32_t)sizeof(T) / 16;
    for (uint32_t i = threadIdx.x; i < nvec; i += blockDim.x) xs[i] = xg[i];
    __syncthreads();
}

// Row (or gate/up pair) r's sums s0 (and s1) into the output.
template <typename T, bool SWIGLU>
__device__ __forceinline__ void epilogue(const dparams &p, uint32_t r, float s0, float s1)
{
    if (SWIGLU) {
        float g = s0, u = s1; // as swiglu_kernel computes it
        if (p.bg) g += p.bg[r];
        if (p.bu) u += p.bu[r];
        st((T *)p.act, r, g / (1.0f + __expf(-g)) * u);
        return;
    }
    float v = p.beta == 0.0f ? s0 : p.beta * p.y[r] + s0;
    if (p.bias) v += p.bias[r]; // after the product, as hoist__k_add_bias adds it
    p.y[r] = v;
}

// Block: DW warps, on DW >> lg rows (gate/up pairs with SwiGLU), each row's words split among
// 1 << lg warps (split-K, kernels_common.cuh; gemv_split_lg says how many): warp w of block b on
// row (b * DW + w) >> lg, part w & ((1 << lg) - 1) of its words; dynamic shared memory: the
// input, cols elements of T. Two blocks an SM at most 128 registers a thread keep 16 warps, up to
// 128 KiB of weights, in flight per SM.
template <typename T, bool NORM, bool SWIGLU>
__global__ void __launch_bounds__(DW * 32, 2) decode_gemv_kernel(dparams p, uint32_t lg)
{
    __shared__ float red[32];
    __shared__ float parts[DW][2];
    extern __shared__ uint4 xs[];
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp & ((1u << lg) - 1);
    uint32_t r = (blockIdx.x * DW + warp) >> lg;
    uint32_t nvec = p.cols * (uint32_t)sizeof(T) / 16;
    uint32_t v0 = split_at(nvec, part, lg), n = split_at(nvec, part + 1, lg) - v0;
    uint64_t pol = evict_first_policy();
    bool has = r < p.rows;
    const uint4 *w0 = (const uint4 *)p.w0 + (size_t)r * nvec + v0;
    uint4 buf[DU];
    if (has) fetch_chunk(buf, w0, 0, n, lane, pol);
    stage_input<T, NORM>(xs, p, red);
    float s[2] = {0.0f, 0.0f};
    if (has) { // warps without a row still meet the others at split_sum's barrier
        s[0] = row_dot<T>(buf, w0, xs + v0, n, lane, pol);
        if (SWIGLU) {
            const uint4 *w1 = (const uint4 *)p.w1 + (size_t)r * nvec + v0;
            fetch_chunk(buf, w1, 0, n, lane, pol);
            s[1] = warp_sum(row_dot<T>(buf, w1, xs + v0, n, lane, pol));
        }
        s[0] = warp_sum(s[0]);
    }
    split_sum(s, parts, lg);
    if (has && lane == 0 && part == 0) epilogue<T, SWIGLU>(p, r, s[0], s[1]);
}

// ---- Q8_0 weights ----------------------------------------------------------------------------
//
// The staged kernel of kernels.cu (its loop is q8_dot_rows: two rows a warp, each row's blocks
// staged 32 at a time through shared memory) with the norm in front and the epilogues behind.
// With SwiGLU a warp's two rows are gate row i and up row i. With the norm, x is the block's
// normalized copy in shared memory, built while the first group of each warp's rows loads;
// without it x is read from global memory, as the staged kernel reads it.
template <typename T, bool NORM, bool SWIGLU>
__global__ void __launch_bounds__(GEMV_WARPS * 32, Q8_MIN_BLOCKS)
    decode_q8_0_kernel(dparams p, uint32_t lg)
{
    __shared__ uint4 stage[GEMV_WARPS][Q8_ROWS][Q8_GROUP_VECS];
    __shared__ float red[32];
    __shared__ float parts[GEMV_WARPS][Q8_ROWS];
    extern __shared__ uint4 xs[];
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp & ((1u << lg) - 1);
    uint32_t unit = (blockIdx.x * GEMV_WARPS + warp) >> lg;
    uint32_t nblk = p.cols / Q8_BLOCK, nvec = nblk * Q8_BYTES / 16, units = nblk / 8;
    // this warp's part of the columns: whole 8-block units, as the staged kernel splits them
    uint32_t u0 = split_at(units, part, lg), nb = (split_at(units, part + 1, lg) - u0) * 8;
    size_t row_bytes = (size_t)nblk * Q8_BYTES;
    uint32_t row0 = SWIGLU ? unit : unit * Q8_ROWS, nr;
    const uint4 *rq = (const uint4 *)(p.w0 + (size_t)row0 * row_bytes) + u0 * 17;
    ptrdiff_t stride = nvec; // both 16-byte aligned: the up row is a whole number of words away
    if (SWIGLU) {
        nr = unit < p.rows ? 2 : 0;
        stride = ((const uint4 *)p.w1 - (const uint4 *)p.w0);
    } else {
        nr = row0 >= p.rows ? 0 : min(p.rows - row0, (uint32_t)Q8_ROWS);
    }
    uint4 next[Q8_ROWS][Q8_LANE_VECS];
    if (nr) q8_fetch_group(next, rq, stride, nb * Q8_BYTES / 16, nr, lane, 0);
    const T *x = (const T *)p.x;
    if (NORM) {
        norm_prologue<T>((T *)xs, p, red);
        x = (const T *)xs;
    }
    float sum[Q8_ROWS] = {0.0f, 0.0f};
    if (nr) { // warps without rows still meet the others at split_sum's barrier
        q8_dot_rows(stage[warp], next, rq, stride, nr, x + (size_t)u0 * 256, nb, lane, sum);
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++) sum[r] = warp_sum(sum[r]);
    }
    split_sum(sum, parts, lg);
    if (lane != 0 || part != 0 || !nr) return;
    if (SWIGLU)
        epilogue<T, true>(p, unit, sum[0], sum[1]);
    else
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++) // constant indices: sum stays in registers
            if ((uint32_t)r < nr) epilogue<T, false>(p, row0 + r, sum[r], 0.0f);
}

} // namespace

static size_t dtype_bytes(hoist_dtype dt)
{
    return dt == HOIST_DTYPE_BF16 || dt == HOIST_DTYPE_F16 ? 2 : 4;
}

static bool act_dtype(hoist_dtype dt)
{
    return dt == HOIST_DTYPE_BF16 || dt == HOIST_DTYPE_F16 || dt == HOIST_DTYPE_F32;
}

extern "C" int hoist__k_decode_takes(const void *w, hoist_dtype w_dtype, hoist_dtype x_dtype,
                                     uint32_t cols)
{
    if (!w || (uintptr_t)w % 16 != 0 || cols == 0 || !act_dtype(x_dtype)) return 0;
    if ((size_t)cols * dtype_bytes(x_dtype) > XS_MAX) return 0;
    if (w_dtype == HOIST_DTYPE_Q8_0) return cols % 256 == 0;
    return w_dtype == x_dtype && cols % 8 == 0;
}

// Dynamic shared memory past the default 48 KiB must be allowed per kernel (and device) first;
// the call is no stream operation, so a graph capture in progress is unaffected.
template <typename K>
static int launch(K kernel, unsigned grid, size_t smem, hoist__stream *s, const dparams &p,
                  uint32_t lg, const char *what)
{
    if (grid == 0) return HOIST_OK;
    if (smem > (48u << 10)) {
        cudaError_t e =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return hoist__cuda_check(e, what, s->device);
    }
    kernel<<<grid, DW * 32, smem, STREAM(s)>>>(p, lg);
    return launched(s, what);
}

// lg of the split of a decode_gemv launch of `units` rows (gate/up pairs) of nvec 16-byte words.
// An SM holds two blocks of DW warps (the register bound), each warp with up to a chunk (32 x DU
// words, 8 KiB) of loads in flight, so what an SM has in flight is 16 warps' parts, up to a chunk
// each. The split doubles while the launch has fewer than two waves of warps and a warp's part
// stays a whole chunk (a smaller part would cut the bytes in flight per SM to gain waves), then
// while a part is longer than one chunk: a warp loads its part in sequential round trips of a
// chunk, and a 14336-wide bf16 row (3.5 chunks) was three and a half of them with nothing in
// flight between. On the H200 (132 SMs, 2112 warps a wave), bf16: 4096 x 14336 -> S 4 (2048
// blocks, 7 KiB a warp, 112 KiB in flight per SM), 4096 x 4096, 6144 x 4096 and the 14336
// gate/up pairs -> S 1 (a chunk a row already); f32 4096 x 4096 -> S 2.
static uint32_t gemv_split_lg(int device, uint32_t units, uint32_t nvec)
{
    unsigned f = hoist__k_forced_split_lg1();
    if (f) return f - 1;
    uint64_t wave = (uint64_t)sm_count(device) * 2 * DW;
    uint32_t lg = 0, chunk = 32 * DU;
    while (lg < 3 && ((uint64_t)units << lg) < 2 * wave && (nvec >> (lg + 1)) >= chunk) lg++;
    while (lg < 3 && ((nvec + (1u << lg) - 1) >> lg) > chunk) lg++;
    return lg;
}

// The grid and split of a launch: `units` rows, row pairs (plain Q8_0) or gate/up pairs.
static unsigned decode_grid(int device, hoist_dtype w_dtype, size_t x_size, uint32_t rows,
                            uint32_t cols, bool swiglu, uint32_t *lg)
{
    uint32_t units;
    if (w_dtype == HOIST_DTYPE_Q8_0) {
        units = swiglu ? rows : (rows + Q8_ROWS - 1) / Q8_ROWS;
        *lg = q8_split_lg();
    } else {
        units = rows;
        *lg = gemv_split_lg(device, units, (uint32_t)(cols * x_size / 16));
    }
    uint32_t per = DW >> *lg; // units a block
    return (units + per - 1) / per;
}

// One launch of either family: Q8_0 weights or weights in the activation dtype T.
template <typename T, bool NORM, bool SWIGLU>
static int launch_decode(hoist__stream *s, hoist_dtype w_dtype, const dparams &p,
                         const char *what)
{
    size_t xs = (size_t)p.cols * sizeof(T);
    uint32_t lg;
    unsigned grid = decode_grid(s->device, w_dtype, sizeof(T), p.rows, p.cols, SWIGLU, &lg);
    if (w_dtype == HOIST_DTYPE_Q8_0)
        return launch(decode_q8_0_kernel<T, NORM, SWIGLU>, grid, NORM ? xs : 0, s, p, lg, what);
    return launch(decode_gemv_kernel<T, NORM, SWIGLU>, grid, xs, s, p, lg, what);
}

// The weights' shape, the input's alignment and the dtypes a launch needs, else refused.
static bool takes(const void *w, hoist_dtype w_dtype, hoist_dtype x_dtype, uint32_t cols,
                  const void *x)
{
    return hoist__k_decode_takes(w, w_dtype, x_dtype, cols) && (uintptr_t)x % 16 == 0;
}

// Refuses what the kernels do not take (both matrices of a SwiGLU launch), else launches.
template <bool NORM, bool SWIGLU>
static int checked_launch(hoist__stream *s, hoist_dtype w_dtype, hoist_dtype x_dtype,
                          const dparams &p, const char *what)
{
    const void *in = NORM ? (const void *)p.xf : p.x;
    if (!takes(p.w0, w_dtype, x_dtype, p.cols, in) ||
        (SWIGLU && !takes(p.w1, w_dtype, x_dtype, p.cols, in)))
        return refused(s, what);
    int rc;
    DISPATCH(x_dtype, T, rc = (launch_decode<T, NORM, SWIGLU>(s, w_dtype, p, what)));
    return rc;
}

// The fields every launch sets: its matrices (w1: the up rows of a SwiGLU launch) and shape.
static dparams shaped(const void *w0, const void *w1, uint32_t rows, uint32_t cols)
{
    dparams p = {};
    p.w0 = (const uint8_t *)w0;
    p.w1 = (const uint8_t *)w1;
    p.rows = rows;
    p.cols = cols;
    return p;
}

// The input of a launch with the norm in front: the fp32 residual stream and the norm's weights.
static void normed(dparams &p, const float *x, const void *norm_w, hoist_dtype nd, float eps)
{
    p.xf = x;
    p.nw = norm_w;
    p.nd = nd;
    p.eps = eps;
}

extern "C" int hoist__k_decode_gemv(hoist__stream *stream, float *y, const void *w,
                                    hoist_dtype w_dtype, const void *x, hoist_dtype x_dtype,
                                    uint32_t rows, uint32_t cols, float beta, const float *bias)
{
    dparams p = shaped(w, NULL, rows, cols);
    p.x = x;
    p.y = y;
    p.beta = beta;
    p.bias = bias;
    return checked_launch<false, false>(stream, w_dtype, x_dtype, p,
                                        "decode matrix-vector kernel");
}

extern "C" int hoist__k_decode_norm_gemv(hoist__stream *stream, float *y, const void *w,
                                         hoist_dtype w_dtype, const float *x, const void *norm_w,
                                         hoist_dtype norm_dtype, float eps, hoist_dtype x_dtype,
                                         uint32_t rows, uint32_t cols, float beta)
{
    dparams p = shaped(w, NULL, rows, cols);
    normed(p, x, norm_w, norm_dtype, eps);
    p.y = y;
    p.beta = beta;
    return checked_launch<true, false>(stream, w_dtype, x_dtype, p,
                                       "decode RMSNorm matrix-vector kernel");
}

// A block's norm costs it a read of the whole input (16 KiB at 4096 floats, from L2) and a
// barrier before its first product: where the launch's blocks fit the SMs at once that is paid
// once an SM while the first weights load, but thousands of blocks pay it thousands of times
// (the Q8_0 head on the H200: 8016 blocks read 131 MB of L2 for a 558 MB matrix and took longer
// than the RMSNorm kernel and the plain product together), so beyond one block an SM the norm
// runs once, on its own.
extern "C" int hoist__k_decode_norm_fuses(const hoist__stream *stream, hoist_dtype w_dtype,
                                          hoist_dtype x_dtype, uint32_t rows, uint32_t cols,
                                          int swiglu)
{
    uint32_t lg;
    unsigned grid =
        decode_grid(stream->device, w_dtype, dtype_bytes(x_dtype), rows, cols, swiglu != 0, &lg);
    return grid <= (unsigned)sm_count(stream->device);
}

extern "C" int hoist__k_decode_swiglu(hoist__stream *stream, void *act, hoist_dtype act_dtype,
                                      const void *w_gate, const void *w_up, hoist_dtype w_dtype,
                                      const void *x, uint32_t rows, uint32_t cols,
                                      const float *b_gate, const float *b_up)
{
    dparams p = shaped(w_gate, w_up, rows, cols);
    p.x = x;
    p.act = act;
    p.bg = b_gate;
    p.bu = b_up;
    return checked_launch<false, true>(stream, w_dtype, act_dtype, p,
                                       "decode gate/up SwiGLU kernel");
}

extern "C" int hoist__k_decode_norm_swiglu(hoist__stream *stream, void *act, hoist_dtype act_dtype,
                                           const void *w_gate, const void *w_up,
                                           hoist_dtype w_dtype, const float *x,
                                           const void *norm_w, hoist_dtype norm_dtype, float eps,
                                           uint32_t rows, uint32_t cols, const float *b_gate,
                                           const float *b_up)
{
    dparams p = shaped(w_gate, w_up, rows, cols);
    normed(p, x, norm_w, norm_dtype, eps);
    p.act = act;
    p.bg = b_gate;
    p.bu = b_up;
    return checked_launch<true, true>(stream, w_dtype, act_dtype, p,
                                      "decode RMSNorm gate/up SwiGLU kernel");
}
