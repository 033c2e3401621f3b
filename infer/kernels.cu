// The element-wise parts and attention of the CUDA forward pass (see kernels.h). The matrix
// products are gpu/'s (cuBLAS), called from gpu_forward.c. Everything accumulates in fp32.
#include "infer/kernels.h"
#include "gpu/cuda_native.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

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

template <typename T>
__global__ void embed_kernel(float *x, const T *table, const int32_t *tokens, uint32_t n_cols)
{
    const T *row = table + (size_t)tokens[blockIdx.x] * n_cols;
    float *o = x + (size_t)blockIdx.x * n_cols;
    for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) o[i] = ld(row, i);
}

// Q8_0 (ggml): 32 weights per 34-byte block, an f16 scale then 32 int8; rows are whole blocks.
constexpr uint32_t Q8_BLOCK = 32, Q8_BYTES = 34;

__device__ __forceinline__ float q8_0_at(const uint8_t *q, size_t i)
{
    const uint8_t *b = q + i / Q8_BLOCK * Q8_BYTES;
    __half d = __ushort_as_half((unsigned short)(b[0] | b[1] << 8));
    return __half2float(d) * (float)(int8_t)b[2 + i % Q8_BLOCK];
}

__global__ void embed_q8_0_kernel(float *x, const uint8_t *table, const int32_t *tokens,
                                  uint32_t n_cols)
{
    const uint8_t *row = table + (size_t)tokens[blockIdx.x] * (n_cols / Q8_BLOCK) * Q8_BYTES;
    float *o = x + (size_t)blockIdx.x * n_cols;
    for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) o[i] = q8_0_at(row, i);
}

// One thread per weight: blocks are 34 bytes, so neighbours read neighbouring bytes.
template <typename T>
__global__ void dequant_q8_0_kernel(T *out, const uint8_t *q, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        st(out, i, q8_0_at(q, i));
}

// Rotary pair i of a head: elements i and i + hd/2 (Hugging Face's rotate_half), or 2i and
// 2i + 1 (GGUF's llama tensors, whose q/k rows llama.cpp's converter permuted to match). The
// rotated pair is always written to i and i + hd/2: q and k reach the attention in Hugging
// Face's order whatever the file's, so both formats add the same products in the same order
// (bit-identical logits). v is not permuted and is copied through unchanged.
__device__ __forceinline__ void rope_pair(uint32_t i, uint32_t half, uint32_t inter, uint32_t *a,
                                          uint32_t *b)
{
    *a = inter ? 2 * i : i;
    *b = inter ? 2 * i + 1 : i + half;
}

// VEC elements per thread and step: 4 when the row is a whole number of float4s.
template <typename Tw, typename To, int VEC>
__global__ void rmsnorm_kernel(To *out, const float *x, const Tw *w, uint32_t n_cols, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + (size_t)blockIdx.x * n_cols;
    float ss = 0.0f;
    if (VEC == 4) {
        for (uint32_t i = threadIdx.x * 4; i < n_cols; i += blockDim.x * 4) {
            float4 v = *(const float4 *)(xr + i);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) ss += xr[i] * xr[i];
    }
    ss = block_sum(ss, sh);
    float inv = 1.0f / sqrtf(ss / (float)n_cols + eps);
    To *o = out + (size_t)blockIdx.x * n_cols;
    if (VEC == 4) {
        for (uint32_t i = threadIdx.x * 4; i < n_cols; i += blockDim.x * 4) {
            float4 v = *(const float4 *)(xr + i);
            st(o, i, v.x * inv * ld(w, i));
            st(o, i + 1, v.y * inv * ld(w, i + 1));
            st(o, i + 2, v.z * inv * ld(w, i + 2));
            st(o, i + 3, v.w * inv * ld(w, i + 3));
        }
    } else {
        for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) st(o, i, xr[i] * inv * ld(w, i));
    }
}

// The extra steps of hoist__qkv_extra on one rotary pair (a, b) at elements ia, ib of a head:
// the bias, then the head's RMSNorm, whose sum of squares takes the whole block (every thread
// calls it; threads without a pair bring zeros).
__device__ __forceinline__ void qkv_extra_pair(float &a, float &b, bool has, uint32_t ia,
                                               uint32_t ib, const float *bias, const float *w,
                                               uint32_t hd, float eps, float *sh)
{
    if (has && bias) {
        a += bias[ia];
        b += bias[ib];
    }
    if (w) {
        float ss = block_sum(has ? a * a + b * b : 0.0f, sh);
        float inv = 1.0f / sqrtf(ss / (float)hd + eps);
        if (has) {
            a = a * inv * w[ia];
            b = b * inv * w[ib];
        }
    }
}

// Block (t, h), a thread per rotary pair: heads below n_heads are query heads, rotated in place;
// the others are kv heads, rotated into the cache with their v. EXTRA adds hoist__qkv_extra.
template <typename T, bool EXTRA>
__global__ void rope_cache_kernel(float *qkv, uint32_t ldq, uint32_t q_col, uint32_t k_col,
                                  uint32_t v_col, T *kc, T *vc, const float *cos_t,
                                  const float *sin_t, const int32_t *pos, uint32_t n_heads,
                                  uint32_t n_kv, uint32_t hd, uint32_t inter, hoist__qkv_extra ex)
{
    __shared__ float sh[EXTRA ? 32 : 1]; // the q/k norms' sums
    uint32_t t = blockIdx.x, h = blockIdx.y, half = hd / 2, ia = 0, ib = 0, i = threadIdx.x;
    size_t p = (size_t)(*pos) + t;
    float *row = qkv + (size_t)t * ldq;
    const float *c = cos_t + p * half, *s = sin_t + p * half;
    bool is_q = h < n_heads, has = i < half;
    uint32_t kh = is_q ? 0 : h - n_heads;
    // in place for q, and an interleaved pair lands where other threads' pairs came from: read
    // all, then write (blockDim.x >= half, see hoist__k_rope_cache)
    float *src = is_q ? row + q_col + (size_t)h * hd : row + k_col + (size_t)kh * hd;
    float a = 0.0f, b = 0.0f;
    if (has) {
        rope_pair(i, half, inter, &ia, &ib);
        a = src[ia];
        b = src[ib];
    }
    if (EXTRA) {
        const float *bias = is_q ? (ex.bq ? ex.bq + (size_t)h * hd : nullptr)
                                 : (ex.bk ? ex.bk + (size_t)kh * hd : nullptr);
        qkv_extra_pair(a, b, has, ia, ib, bias, is_q ? ex.q_norm : ex.k_norm, hd, ex.eps, sh);
    }
    if (is_q) __syncthreads();
    if (!has) return;
    float ra = a * c[i] - b * s[i], rb = b * c[i] + a * s[i];
    if (is_q) {
        src[i] = ra;
        src[i + half] = rb;
        return;
    }
    const float *vv = row + v_col + (size_t)kh * hd;
    size_t base = p * n_kv * hd + (size_t)kh * hd;
    st(kc, base + i, ra);
    st(kc, base + i + half, rb);
    float va = vv[ia], vb = vv[ib];
    if (EXTRA && ex.bv) {
        va += ex.bv[(size_t)kh * hd + ia];
        vb += ex.bv[(size_t)kh * hd + ib];
    }
    st(vc, base + ia, va);
    st(vc, base + ib, vb);
}

// Block (h, t), ATT_WARPS warps: each warp runs an online softmax over its share of the keys,
// KU keys at a time so that their loads are in flight together; lanes split the head (NPL
// elements each); the warps' partial results are merged through shared memory at the end.
constexpr int ATT_WARPS = 8;
constexpr int KU = 4;

// One step of a warp's online softmax over keys j0 .. j0 + KU - 1 (n of them valid, the same n
// in every lane): their scores, with the loads issued together; then the running maximum m, the
// sum l and the accumulator move to the new maximum and take in the keys' values. krow(j) and
// vrow(j) give key j's rows; they are asked inside the loops, not gathered into arrays first,
// which would hold KU pointers more in registers. Both attention kernels run exactly this
// arithmetic in this order, which keeps their results bit-identical to each other.
template <typename T, int NPL, typename KRow, typename VRow>
__device__ __forceinline__ void softmax_keys(KRow krow, VRow vrow, int j0, int n,
                                             const float qr[NPL], float acc[NPL], float &m,
                                             float &l, int lane, uint32_t hd)
{
    float sc[KU];
#pragma unroll
    for (int u = 0; u < KU; u++) {
        float d = 0.0f;
        if (u < n) {
            const T *kr = krow(j0 + u);
#pragma unroll
            for (int e = 0; e < NPL; e++) {
                uint32_t i = lane + 32 * e;
                if (i < hd) d += qr[e] * ld(kr, i);
            }
        }
        sc[u] = d;
    }
    float mx = m;
#pragma unroll
    for (int u = 0; u < KU; u++) {
        sc[u] = u < n ? warp_sum(sc[u]) : -INFINITY;
        mx = fmaxf(mx, sc[u]);
    }
    float corr = __expf(m - mx);
    l *= corr;
#pragma unroll
    for (int e = 0; e < NPL; e++) acc[e] *= corr;
#pragma unroll
    for (int u = 0; u < KU; u++) {
        if (u >= n) break;
        float p = __expf(sc[u] - mx);
        l += p;
        const T *vr = vrow(j0 + u);
#pragma unroll
        for (int e = 0; e < NPL; e++) {
            uint32_t i = lane + 32 * e;
            if (i < hd) acc[e] += p * ld(vr, i);
        }
    }
    m = mx;
}

// A warp's maximum, sum and accumulator into shared memory for the merge across warps.
template <int NPL>
__device__ __forceinline__ void publish_warp(float *sm_m, float *sm_l, float *sm_acc, int w,
                                             int lane, uint32_t hd, float m, float l,
                                             const float acc[NPL])
{
    if (lane == 0) {
        sm_m[w] = m;
        sm_l[w] = l;
    }
#pragma unroll
    for (int e = 0; e < NPL; e++) {
        uint32_t i = lane + 32 * e;
        if (i < hd) sm_acc[w * hd + i] = acc[e];
    }
    __syncthreads();
}

template <typename T, int NPL>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(T *out, const float *qkv, uint32_t ldq, uint32_t q_col, const T *kc,
                     const T *vc, const int32_t *pos, uint32_t n_heads, uint32_t n_kv,
                     uint32_t hd, float scale)
{
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS];
    extern __shared__ float sm_acc[]; // [ATT_WARPS][hd]
    uint32_t h = blockIdx.x, t = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int n_keys = *pos + (int)t + 1;
    size_t stride = (size_t)n_kv * hd;
    const T *kb = kc + (size_t)(h / (n_heads / n_kv)) * hd;
    const T *vb = vc + (size_t)(h / (n_heads / n_kv)) * hd;
    const float *q = qkv + (size_t)t * ldq + q_col + (size_t)h * hd;
    float qr[NPL], acc[NPL];
#pragma unroll
    for (int e = 0; e < NPL; e++) {
        uint32_t i = lane + 32 * e;
        qr[e] = i < hd ? q[i] * scale : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    auto krow = [&](int j) { return kb + (size_t)j * stride; };
    auto vrow = [&](int j) { return vb + (size_t)j * stride; };
    for (int j0 = w * KU; j0 < n_keys; j0 += ATT_WARPS * KU)
        softmax_keys<T, NPL>(krow, vrow, j0, min(KU, n_keys - j0), qr, acc, m, l, lane, hd);
    publish_warp<NPL>(sm_m, sm_l, sm_acc, w, lane, hd, m, l, acc);
    float M = -INFINITY;
    for (int ww = 0; ww < ATT_WARPS; ww++) M = fmaxf(M, sm_m[ww]);
    T *o = out + (size_t)t * n_heads * hd + (size_t)h * hd;
    for (uint32_t i = threadIdx.x; i < hd; i += blockDim.x) {
        float L = 0.0f, v = 0.0f;
        for (int ww = 0; ww < ATT_WARPS; ww++) {
            if (sm_m[ww] == -INFINITY) continue; // a warp that had no keys
            float f = __expf(sm_m[ww] - M);
            L += sm_l[ww] * f;
            v += sm_acc[ww * hd + i] * f;
        }
        st(o, i, v / L);
    }
}

// Block (h, split) of one decode token: the head's q and its kv head's new k and v are rotated
// in the block (the new k and v in shared memory, rounded as the cache holds them; one block per
// kv head also stores them in the cache). The keys are split evenly over as many of the head's
// gridDim.y blocks as give each at least SPLIT_MIN_KEYS (the rest return at once); the last
// block to finish merges their partial sums. With one split the block writes the output itself.
constexpr uint32_t MAX_HD = 256, MAX_SPLIT = 64;
constexpr int SPLIT_MIN_KEYS = 32;

// The decode token's q head and its kv head's k and v with hoist__qkv_extra applied, rotated
// into qs (scaled), cur_k and cur_v; a thread per pair (blockDim.x >= hd / 2).
template <typename T>
__device__ void decode_prologue_extra(const float *qraw, const float *kraw, const float *vraw,
                                      const float *c, const float *s, uint32_t h, uint32_t kvh,
                                      uint32_t hd, uint32_t inter, float scale,
                                      const hoist__qkv_extra &ex, float *qs, T *cur_k, T *cur_v,
                                      float *sh)
{
    uint32_t half = hd / 2, i = threadIdx.x, ia = 0, ib = 0;
    bool has = i < half;
    float qa = 0, qb = 0, ka = 0, kb = 0;
    if (has) {
        rope_pair(i, half, inter, &ia, &ib);
        qa = qraw[ia];
        qb = qraw[ib];
        ka = kraw[ia];
        kb = kraw[ib];
    }
    qkv_extra_pair(qa, qb, has, ia, ib, ex.bq ? ex.bq + (size_t)h * hd : nullptr, ex.q_norm, hd,
                   ex.eps, sh);
    __syncthreads(); // sh is reused
    qkv_extra_pair(ka, kb, has, ia, ib, ex.bk ? ex.bk + (size_t)kvh * hd : nullptr, ex.k_norm,
                   hd, ex.eps, sh);
    if (!has) return;
    qs[i] = (qa * c[i] - qb * s[i]) * scale;
    qs[i + half] = (qb * c[i] + qa * s[i]) * scale;
    st(cur_k, i, ka * c[i] - kb * s[i]);
    st(cur_k, i + half, kb * c[i] + ka * s[i]);
    float va = vraw[ia], vb = vraw[ib];
    if (ex.bv) {
        va += ex.bv[(size_t)kvh * hd + ia];
        vb += ex.bv[(size_t)kvh * hd + ib];
    }
    st(cur_v, ia, va);
    st(cur_v, ib, vb);
}

template <typename T, int NPL, bool EXTRA>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_decode_kernel(T *out, const float *qkv, uint32_t q_col, uint32_t k_col,
                            uint32_t v_col, T *kc, T *vc, const float *cos_t, const float *sin_t,
                            const int32_t *pos, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                            float scale, float *partial, int32_t *counters, uint32_t inter,
                            hoist__qkv_extra ex)
{
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS], qs[MAX_HD];
    __shared__ float red[EXTRA ? 32 : 1]; // the q/k norms' sums
    __shared__ float pm[MAX_SPLIT], pl[MAX_SPLIT], fs[MAX_SPLIT];
    __shared__ T cur_k[MAX_HD], cur_v[MAX_HD];
    __shared__ int last;
    extern __shared__ float sm_acc[]; // [ATT_WARPS][hd]
    uint32_t h = blockIdx.x, split = blockIdx.y, half = hd / 2;
    uint32_t group = n_heads / n_kv, kvh = h / group;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int p = *pos, n_keys = p + 1;
    uint32_t nsplit = (uint32_t)min((int)gridDim.y, (n_keys + SPLIT_MIN_KEYS - 1) / SPLIT_MIN_KEYS);
    if (split >= nsplit && split != 0) return;
    size_t stride = (size_t)n_kv * hd;
    const float *c = cos_t + (size_t)p * half, *s = sin_t + (size_t)p * half;
    const float *qraw = qkv + q_col + (size_t)h * hd, *kraw = qkv + k_col + (size_t)kvh * hd;
    const float *vraw = qkv + v_col + (size_t)kvh * hd;
    if (EXTRA) {
        decode_prologue_extra<T>(qraw, kraw, vraw, c, s, h, kvh, hd, inter, scale, ex, qs, cur_k,
                                 cur_v, red);
    } else {
        for (uint32_t i = threadIdx.x; i < half; i += blockDim.x) {
            uint32_t ia, ib;
            rope_pair(i, half, inter, &ia, &ib);
            float a = qraw[ia], b = qraw[ib];
            qs[i] = (a * c[i] - b * s[i]) * scale;
            qs[i + half] = (b * c[i] + a * s[i]) * scale;
            a = kraw[ia];
            b = kraw[ib];
            st(cur_k, i, a * c[i] - b * s[i]);
            st(cur_k, i + half, b * c[i] + a * s[i]);
            st(cur_v, ia, vraw[ia]);
            st(cur_v, ib, vraw[ib]);
        }
    }
    __syncthreads();
    T *kb = kc + (size_t)kvh * hd, *vb = vc + (size_t)kvh * hd;
    if (h % group == 0 && split == 0)
        for (uint32_t i = threadIdx.x; i < hd; i += blockDim.x) {
            kb[(size_t)p * stride + i] = cur_k[i];
            vb[(size_t)p * stride + i] = cur_v[i];
        }
    float qr[NPL], acc[NPL];
#pragma unroll
    for (int e = 0; e < NPL; e++) {
        uint32_t i = lane + 32 * e;
        qr[e] = i < hd ? qs[i] : 0.0f;
        acc[e] = 0.0f;
    }
    int chunk = (n_keys + (int)nsplit - 1) / (int)nsplit;
    int jb = (int)split * chunk, je = min(n_keys, jb + chunk);
    float m = -INFINITY, l = 0.0f;
    // the new key and value are read from shared memory: their cache rows may not be stored yet
    auto krow = [&](int j) { return j == p ? (const T *)cur_k : kb + (size_t)j * stride; };
    auto vrow = [&](int j) { return j == p ? (const T *)cur_v : vb + (size_t)j * stride; };
    for (int j0 = jb + w * KU; j0 < je; j0 += ATT_WARPS * KU)
        softmax_keys<T, NPL>(krow, vrow, j0, min(KU, je - j0), qr, acc, m, l, lane, hd);
    publish_warp<NPL>(sm_m, sm_l, sm_acc, w, lane, hd, m, l, acc);
    // this block's share: unnormalized sums relative to its own maximum M
    float M = -INFINITY, L = 0.0f;
    for (int ww = 0; ww < ATT_WARPS; ww++) M = fmaxf(M, sm_m[ww]);
    for (int ww = 0; ww < ATT_WARPS; ww++)
        if (sm_m[ww] != -INFINITY) L += sm_l[ww] * __expf(sm_m[ww] - M);
    T *o = out + (size_t)h * hd;
    float *part = partial + ((size_t)h * nsplit + split) * (hd + 2);
    for (uint32_t i = threadIdx.x; i < hd; i += blockDim.x) {
        float v = 0.0f;
        for (int ww = 0; ww < ATT_WARPS; ww++)
            if (sm_m[ww] != -INFINITY) v += sm_acc[ww * hd + i] * __expf(sm_m[ww] - M);
        if (nsplit == 1)
            st(o, i, v / L);
        else
            part[2 + i] = v;
    }
    if (nsplit == 1) return;
    if (threadIdx.x == 0) {
        part[0] = M;
        part[1] = L;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&counters[h], 1) == (int)nsplit - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    // merge: each split's weight exp(m - M) / L, computed once, then independent loads
    const float *ph = partial + (size_t)h * nsplit * (hd + 2);
    if (threadIdx.x < nsplit) {
        pm[threadIdx.x] = __ldcg(ph + threadIdx.x * (hd + 2));
        pl[threadIdx.x] = __ldcg(ph + threadIdx.x * (hd + 2) + 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float M2 = -INFINITY, L2 = 0.0f;
        for (uint32_t sp = 0; sp < nsplit; sp++) M2 = fmaxf(M2, pm[sp]);
        for (uint32_t sp = 0; sp < nsplit; sp++) {
            fs[sp] = pm[sp] == -INFINITY ? 0.0f : __expf(pm[sp] - M2);
            L2 += pl[sp] * fs[sp];
        }
        for (uint32_t sp = 0; sp < nsplit; sp++) fs[sp] /= L2;
        counters[h] = 0;
    }
    __syncthreads();
    for (uint32_t i = threadIdx.x; i < hd; i += blockDim.x) {
        float v = 0.0f;
#pragma unroll 8
        for (uint32_t sp = 0; sp < nsplit; sp++) v += __ldcg(ph + sp * (hd + 2) + 2 + i) * fs[sp];
        st(o, i, v);
    }
}

template <typename T>
__global__ void swiglu_kernel(T *out, const float *gu, uint32_t ldg, uint32_t g_col,
                              uint32_t u_col, size_t total, uint32_t n_cols, const float *bg,
                              const float *bu)
{
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t t = idx / n_cols, i = idx % n_cols;
        float g = gu[t * ldg + g_col + i], u = gu[t * ldg + u_col + i];
        if (bg) g += bg[i];
        if (bu) u += bu[i];
        st(out, idx, g / (1.0f + __expf(-g)) * u);
    }
}

__global__ void add_bias_kernel(float *x, uint32_t ld, const float *b, size_t total,
                                uint32_t n_cols)
{
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x)
        x[idx / n_cols * ld + idx % n_cols] += b[idx % n_cols];
}

__device__ __forceinline__ void better(float &bv, uint32_t &bi, float v, uint32_t i)
{
    if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
    }
}

constexpr int ARGMAX_THREADS = 256, ARGMAX_BLOCKS = 64;
static_assert(ARGMAX_BLOCKS * 8 + 4 <= HOIST_ARGMAX_SCRATCH, "argmax scratch");

// The block's best (value, index) into thread 0's bv, bi.
__device__ void block_best(float &bv, uint32_t &bi, float *sv, uint32_t *si)
{
    for (int o = 16; o > 0; o >>= 1)
        better(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (int)(blockDim.x >> 5);
    if (lane == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (w != 0) return;
    bv = lane < nw ? sv[lane] : -INFINITY;
    bi = lane < nw ? si[lane] : 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1)
        better(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
}

__global__ void __launch_bounds__(ARGMAX_THREADS)
    argmax_kernel(const float *x, uint32_t n, int32_t *token, int32_t *history, int32_t *count,
                  float *pv, uint32_t *pi, int32_t *counter)
{
    __shared__ float sv[32];
    __shared__ uint32_t si[32];
    __shared__ int last;
    float bv = -INFINITY;
    uint32_t bi = 0xffffffffu;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        better(bv, bi, x[i], i);
    block_best(bv, bi, sv, si);
    if (threadIdx.x == 0) {
        pv[blockIdx.x] = bv;
        pi[blockIdx.x] = bi;
        __threadfence();
        last = atomicAdd(counter, 1) == (int)gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    bv = -INFINITY;
    bi = 0xffffffffu;
    for (uint32_t b = threadIdx.x; b < gridDim.x; b += blockDim.x)
        better(bv, bi, __ldcg(pv + b), __ldcg(pi + b));
    __syncthreads(); // sv, si are reused
    block_best(bv, bi, sv, si);
    if (threadIdx.x != 0) return;
    int32_t tok = bi == 0xffffffffu ? 0 : (int32_t)bi; // every logit NaN
    *token = tok;
    if (history) history[(*count)++] = tok;
    *counter = 0;
}

__global__ void advance_kernel(int32_t *pos, uint32_t n) { *pos += (int32_t)n; }

// y[r] = beta * y[r] + W[r] . x for one token, W Q8_0 [rows][cols], read once and never
// dequantized to memory: one warp per row, eight lanes per 34-byte block (its scale, and four of
// its int8 each, read as two 2-byte words: the quants sit 2 bytes into the block, so wider loads
// would be misaligned), four blocks per step and four steps unrolled to keep loads in flight.
constexpr int GEMV_WARPS = 8;

template <typename T>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_q8_0_kernel(float *y, const uint8_t *w, const T *x, uint32_t rows, uint32_t cols,
                     float beta)
{
    uint32_t row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31, part = lane & 7;
    uint32_t nblk = cols / Q8_BLOCK;
    const uint8_t *rq = w + (size_t)row * nblk * Q8_BYTES;
    float sum = 0.0f;
#pragma unroll 4
    for (uint32_t b = lane >> 3; b < nblk; b += 4) {
        const uint8_t *blk = rq + (size_t)b * Q8_BYTES;
        float d = __half2float(*(const __half *)blk);
        uint16_t q01 = *(const uint16_t *)(blk + 2 + 4 * part);
        uint16_t q23 = *(const uint16_t *)(blk + 4 + 4 * part);
        size_t xi = (size_t)b * Q8_BLOCK + 4 * part;
        float s = (float)(int8_t)(q01 & 0xff) * ld(x, xi) +
                  (float)(int8_t)(q01 >> 8) * ld(x, xi + 1) +
                  (float)(int8_t)(q23 & 0xff) * ld(x, xi + 2) +
                  (float)(int8_t)(q23 >> 8) * ld(x, xi + 3);
        sum += d * s;
    }
    sum = warp_sum(sum);
    if (lane == 0) y[row] = beta == 0.0f ? sum : beta * y[row] + sum;
}

// ---- a decode step's matrix-vector products (kernels.h's hoist__gemv) -------------------------
// A grid of at most as many blocks as stay resident: each block stages x in shared memory once
// (normalizing it there when the product starts from the residual stream), then its warps take
// tasks of rows in turn. A warp reads its rows with 16-byte loads, lane l taking the row's
// 16-byte groups l, l + 32, ..., so that a row's sum is added in the same order whatever the
// tuning, the segment or the row's place in the matrix: GGUF's permuted q and k rows give their
// safetensors twin's values, permuted.
constexpr int GV_THREADS = 256, GV_WARPS = GV_THREADS / 32;
constexpr int GV_Y = 0, GV_SWIGLU = 1;
// Each row stream has this many 16-byte loads in flight per thread at most; 8 loads of 16 bytes
// per thread, 256 threads, two blocks: 64 KiB per multiprocessor, about twice what Little's law
// asks of HBM3e at ~1 us latency (4.8 TB/s over 132 SMs).
constexpr int GV_LOADS = 8;
constexpr uint32_t Q8_GROUP = 8 * Q8_BYTES; // 272 bytes: 8 blocks in 17 aligned 16-byte loads

struct GemvArgs {
    const uint8_t *w[3];
    uint32_t rows[3], ycol[3];
    uint32_t nseg, units, cols;
    uint64_t row_bytes;
    const void *x, *norm;
    int norm_dtype;
    float eps;
    float *y;
    float beta;
    const float *bias;
    void *act;
    const float *bg, *bu;
};

// Row r of the segments taken in order, and the element of y its sum goes to.
__device__ __forceinline__ const uint8_t *gv_row(const GemvArgs &a, uint32_t r, uint32_t *out)
{
    if (r < a.rows[0]) {
        *out = a.ycol[0] + r;
        return a.w[0] + (uint64_t)r * a.row_bytes;
    }
    r -= a.rows[0];
    if (a.nseg < 3 || r < a.rows[1]) {
        *out = a.ycol[1] + r;
        return a.w[1] + (uint64_t)r * a.row_bytes;
    }
    r -= a.rows[1];
    *out = a.ycol[2] + r;
    return a.w[2] + (uint64_t)r * a.row_bytes;
}

// Row stream s of the task whose first unit is unit0 (R units each): a row of y, or for SwiGLU
// a unit's gate (even s) and up (odd s) rows. Units past the end read the last one's rows, so
// that every lane runs the same loads; their sums are dropped.
template <int EPI, int R>
__device__ __forceinline__ const uint8_t *gv_stream(const GemvArgs &a, uint32_t unit0, int s)
{
    uint32_t unit = unit0 + (EPI == GV_SWIGLU ? s / 2 : s), o;
    if (unit >= a.units) unit = a.units - 1;
    if (EPI == GV_SWIGLU) return a.w[s & 1] + (uint64_t)unit * a.row_bytes;
    return gv_row(a, unit, &o);
}

// The first 4 KiB of each row of a warp's first task, asked of L2 before the block stages x:
// HBM is busy from the start, not after the staging.
template <int EPI, int R, int S>
__device__ __forceinline__ void gv_prefetch(const GemvArgs &a, uint32_t unit0, int lane, int lanes)
{
    uint64_t bytes = a.row_bytes < 4096 ? a.row_bytes : 4096;
#pragma unroll
    for (int s = 0; s < S; s++) {
        const uint8_t *row = gv_stream<EPI, R>(a, unit0, s);
        for (uint64_t off = (uint64_t)lane * 128; off < bytes; off += (uint64_t)lanes * 128)
            asm volatile("prefetch.global.L2 [%0];" ::"l"(row + off));
    }
}

// x[i] into shared memory: T's own bits, or (the Q8_0 kernel) T's value as fp32, which spares
// a conversion per weight there.
template <typename T> __device__ __forceinline__ void put_x(T *xs, uint32_t i, float v)
{
    st(xs, i, v);
}
template <typename T> __device__ __forceinline__ void put_x(float *xs, uint32_t i, float v)
{
    T t[1];
    st(t, 0, v);
    xs[i] = ld(t, 0);
}

// hoist__k_rmsnorm's arithmetic in its order (rows whose length is a multiple of 4), rounded to
// T as the prompt's products see their input.
template <typename T, typename XS, typename Tn>
__device__ void gv_stage_norm(XS *xs, const GemvArgs &a, float *red)
{
    const float *x = (const float *)a.x;
    const Tn *w = (const Tn *)a.norm;
    uint32_t n = a.cols;
    float ss = 0.0f;
    for (uint32_t i = threadIdx.x * 4; i < n; i += blockDim.x * 4) {
        float4 v = *(const float4 *)(x + i);
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    ss = block_sum(ss, red);
    float inv = 1.0f / sqrtf(ss / (float)n + a.eps);
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) put_x<T>(xs, i, x[i] * inv * ld(w, i));
}

template <typename T> __device__ void gv_stage_copy(T *xs, const GemvArgs &a)
{
    const uint4 *src = (const uint4 *)a.x;
    uint4 *dst = (uint4 *)xs;
    for (uint32_t i = threadIdx.x; i < a.cols * sizeof(T) / 16; i += blockDim.x) dst[i] = src[i];
}
template <typename T> __device__ void gv_stage_copy(float *xs, const GemvArgs &a)
{
    for (uint32_t i = threadIdx.x; i < a.cols; i += blockDim.x) xs[i] = ld((const T *)a.x, i);
}

template <typename T, typename XS>
__device__ __forceinline__ void gv_stage(XS *xs, const GemvArgs &a, float *red, bool norm)
{
    if (!norm)
        gv_stage_copy<T>(xs, a);
    else if (a.norm_dtype == HOIST_DTYPE_BF16)
        gv_stage_norm<T, XS, __nv_bfloat16>(xs, a, red);
    else if (a.norm_dtype == HOIST_DTYPE_F16)
        gv_stage_norm<T, XS, __half>(xs, a, red);
    else
        gv_stage_norm<T, XS, float>(xs, a, red);
    __syncthreads();
}

// The epilogues, for a unit whose sums are complete: y's residual add and bias in the order the
// separate kernels applied them, or SwiGLU as swiglu_kernel computes it.
__device__ __forceinline__ void gv_store_y(const GemvArgs &a, uint32_t unit, float v)
{
    uint32_t o;
    gv_row(a, unit, &o);
    float r = a.beta == 0.0f ? v : a.beta * a.y[o] + v;
    if (a.bias) r += a.bias[unit];
    a.y[o] = r;
}

template <typename T>
__device__ __forceinline__ void gv_store_act(const GemvArgs &a, uint32_t unit, float g, float u)
{
    if (a.bg) g += a.bg[unit];
    if (a.bu) u += a.bu[unit];
    st((T *)a.act, unit, g / (1.0f + __expf(-g)) * u);
}

// Eight 16-bit values of one 16-byte load as fp32 (element 2k is the low half of word k).
template <typename T> __device__ __forceinline__ void unpack8(const uint4 &u, float f[8]);
template <> __device__ __forceinline__ void unpack8<__nv_bfloat16>(const uint4 &u, float f[8])
{
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[2 * k] = __uint_as_float(w[k] << 16);
        f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
}
template <> __device__ __forceinline__ void unpack8<__half>(const uint4 &u, float f[8])
{
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        __half2 h = *reinterpret_cast<const __half2 *>(&w[k]);
        float2 t = __half22float2(h);
        f[2 * k] = t.x;
        f[2 * k + 1] = t.y;
    }
}

// BF16/F16 weights, x of the same dtype. R units per warp task; S row streams (R, or 2R gate
// and up rows); U 16-byte loads per stream issued before any is used.
template <typename T, int R, int EPI, bool NORM>
__global__ void __launch_bounds__(GV_THREADS) gemv_kernel(GemvArgs a)
{
    constexpr int S = EPI == GV_SWIGLU ? 2 * R : R;
    constexpr int U = S >= GV_LOADS ? 1 : GV_LOADS / S;
    extern __shared__ uint4 gv_smem[];
    __shared__ float red[32];
    T *xs = reinterpret_cast<T *>(gv_smem);
    const int lane = threadIdx.x & 31;
    const uint32_t first = blockIdx.x * GV_WARPS + (threadIdx.x >> 5);
    const uint32_t stride = gridDim.x * GV_WARPS;
    const uint32_t ntask = (a.units + R - 1) / R, nvec = a.cols / 8;
    if (first < ntask) gv_prefetch<EPI, R, S>(a, first * R, lane, 32);
    gv_stage<T>(xs, a, red, NORM);
    const uint4 *xv = reinterpret_cast<const uint4 *>(xs);
    for (uint32_t task = first; task < ntask; task += stride) {
        const uint4 *wr[S];
#pragma unroll
        for (int s = 0; s < S; s++)
            wr[s] = reinterpret_cast<const uint4 *>(gv_stream<EPI, R>(a, task * R, s));
        float acc[S];
#pragma unroll
        for (int s = 0; s < S; s++) acc[s] = 0.0f;
        for (uint32_t v0 = lane; v0 < nvec; v0 += 32 * U) {
            uint4 wv[U][S];
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int s = 0; s < S; s++)
                    wv[u][s] = v0 + 32 * u < nvec ? __ldcs(wr[s] + v0 + 32 * u)
                                                  : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < U; u++) {
                if (v0 + 32 * u >= nvec) continue;
                float xf[8], wf[8];
                unpack8<T>(xv[v0 + 32 * u], xf);
#pragma unroll
                for (int s = 0; s < S; s++) {
                    unpack8<T>(wv[u][s], wf);
#pragma unroll
                    for (int k = 0; k < 8; k++) acc[s] = fmaf(wf[k], xf[k], acc[s]);
                }
            }
        }
#pragma unroll
        for (int s = 0; s < S; s++) acc[s] = warp_sum(acc[s]);
#pragma unroll
        for (int r = 0; r < R; r++) {
            uint32_t unit = task * R + r;
            if (lane != r || unit >= a.units) continue;
            if (EPI == GV_SWIGLU)
                gv_store_act<T>(a, unit, acc[(2 * r) % S], acc[(2 * r + 1) % S]);
            else
                gv_store_y(a, unit, acc[r]);
        }
    }
}

// One lane's group of 8 Q8_0 blocks: its 272 bytes in 17 loads issued together, then each int8
// made a float with the exponent trick (0x4B000000 | (q + 128) is 2^23 + 128 + q, exactly), which
// costs a byte permute and a subtraction where a conversion instruction runs at a quarter rate.
__device__ __forceinline__ float q8_group(const uint8_t *grp, const float *x, float acc)
{
    uint32_t w[68];
    const uint4 *p = reinterpret_cast<const uint4 *>(grp);
#pragma unroll
    for (int k = 0; k < 17; k++) {
        uint4 t = __ldcs(p + k);
        w[4 * k] = t.x;
        w[4 * k + 1] = t.y;
        w[4 * k + 2] = t.z;
        w[4 * k + 3] = t.w;
    }
#pragma unroll
    for (int b = 0; b < 8; b++) {
        const int o = 34 * b; // the block's f16 scale at bytes o, o + 1 (o is even), quants after
        float d = __half2float(__ushort_as_half((unsigned short)((w[o / 4] >> (8 * (o % 4))) &
                                                                  0xffffu)));
        const float4 *xb = reinterpret_cast<const float4 *>(x + 32 * b);
        float sum = 0.0f;
#pragma unroll
        for (int k4 = 0; k4 < 8; k4++) {
            float4 xv = xb[k4];
            const float xk[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int ob = o + 2 + 4 * k4 + j;
                uint32_t biased = __byte_perm(w[ob / 4] ^ 0x80808080u, 0x4B000000u,
                                              0x7540u | (uint32_t)(ob % 4));
                sum = fmaf(__uint_as_float(biased) - 8388736.0f, xk[j], sum);
            }
        }
        acc = fmaf(d, sum, acc);
    }
    return acc;
}

template <int LPR> __device__ __forceinline__ float group_sum(float v)
{
#pragma unroll
    for (int o = LPR / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Q8_0 weights (ggml's 34-byte blocks, read as they are and dequantized in registers), x staged
// as fp32 holding T's values. LPR lanes per row, so that rows of fewer than 32 groups still keep
// every lane loading: 32 / LPR units per warp task.
template <typename T, int EPI, bool NORM, int LPR>
__global__ void __launch_bounds__(GV_THREADS) gemv_q8_kernel(GemvArgs a)
{
    constexpr int S = EPI == GV_SWIGLU ? 2 : 1, RPW = 32 / LPR;
    extern __shared__ uint4 gv_smem[];
    __shared__ float red[32];
    float *xs = reinterpret_cast<float *>(gv_smem);
    const int lane = threadIdx.x & 31, sl = lane % LPR, sub = lane / LPR;
    const uint32_t first = blockIdx.x * GV_WARPS + (threadIdx.x >> 5);
    const uint32_t stride = gridDim.x * GV_WARPS;
    const uint32_t ntask = (a.units + RPW - 1) / RPW, ngroups = a.cols / 256;
    if (first < ntask) gv_prefetch<EPI, 1, S>(a, first * RPW + sub, sl, LPR);
    gv_stage<T>(xs, a, red, NORM);
    for (uint32_t task = first; task < ntask; task += stride) {
        uint32_t unit = task * RPW + sub;
        bool valid = unit < a.units;
        if (!valid) unit = a.units - 1;
        float acc[S];
#pragma unroll
        for (int s = 0; s < S; s++) {
            const uint8_t *row = gv_stream<EPI, 1>(a, unit, s);
            float sum = 0.0f;
            for (uint32_t gi = sl; gi < ngroups; gi += LPR)
                sum = q8_group(row + (size_t)gi * Q8_GROUP, xs + (size_t)gi * 256, sum);
            acc[s] = group_sum<LPR>(sum);
        }
        if (sl != 0 || !valid) continue;
        if (EPI == GV_SWIGLU)
            gv_store_act<T>(a, unit, acc[0], acc[S - 1]);
        else
            gv_store_y(a, unit, acc[0]);
    }
}

} // namespace

#define STREAM(s) ((s)->stream)

// The launch's status, reported the way gpu/ reports every CUDA error.
static int launched(const hoist__stream *s, const char *kernel)
{
    return hoist__cuda_check(cudaGetLastError(), kernel, s->device);
}

// Arguments the kernels cannot take, reported as a failed launch would be.
static int refused(const hoist__stream *s, const char *kernel)
{
    return hoist__cuda_check(cudaErrorInvalidValue, kernel, s->device);
}

extern "C" int hoist__k_embed(hoist__stream *stream, float *x, const void *table, hoist_dtype dtype,
                              const int32_t *tokens, uint32_t n, uint32_t n_cols)
{
    if (dtype == HOIST_DTYPE_Q8_0) {
        embed_q8_0_kernel<<<n, 256, 0, STREAM(stream)>>>(x, (const uint8_t *)table, tokens,
                                                         n_cols);
        return launched(stream, "embedding kernel");
    }
    DISPATCH(dtype, T,
             embed_kernel<T><<<n, 256, 0, STREAM(stream)>>>(x, (const T *)table, tokens, n_cols));
    return launched(stream, "embedding kernel");
}

extern "C" int hoist__k_dequant_q8_0(hoist__stream *stream, void *out, hoist_dtype out_dtype,
                                     const void *q, uint64_t n)
{
    size_t blocks = (n + 255) / 256;
    if (blocks > 65536) blocks = 65536;
    if (blocks == 0) return HOIST_OK;
    DISPATCH(out_dtype, T,
             dequant_q8_0_kernel<T><<<(unsigned)blocks, 256, 0, STREAM(stream)>>>(
                 (T *)out, (const uint8_t *)q, n));
    return launched(stream, "Q8_0 dequantization kernel");
}

extern "C" int hoist__k_gemv_q8_0(hoist__stream *stream, float *y, const void *w, const void *x,
                                  hoist_dtype x_dtype, uint32_t rows, uint32_t cols, float beta)
{
    if (rows == 0) return HOIST_OK;
    unsigned blocks = (rows + GEMV_WARPS - 1) / GEMV_WARPS;
    DISPATCH(x_dtype, T,
             gemv_q8_0_kernel<T><<<blocks, GEMV_WARPS * 32, 0, STREAM(stream)>>>(
                 y, (const uint8_t *)w, (const T *)x, rows, cols, beta));
    return launched(stream, "Q8_0 matrix-vector kernel");
}

extern "C" int hoist__k_rmsnorm(hoist__stream *stream, void *out, hoist_dtype out_dtype,
                                const float *x, const void *w, hoist_dtype w_dtype, uint32_t n,
                                uint32_t n_cols, float eps)
{
    unsigned threads = n_cols >= 2048 ? 256 : 128;
    if (n_cols % 4 == 0) /* rows start at multiples of 16 bytes: cudaMalloc'd, 4k floats apart */
        DISPATCH(w_dtype, Tw,
                 DISPATCH(out_dtype, To,
                          rmsnorm_kernel<Tw, To, 4><<<n, threads, 0, STREAM(stream)>>>(
                              (To *)out, x, (const Tw *)w, n_cols, eps)));
    else
        DISPATCH(w_dtype, Tw,
                 DISPATCH(out_dtype, To,
                          rmsnorm_kernel<Tw, To, 1><<<n, threads, 0, STREAM(stream)>>>(
                              (To *)out, x, (const Tw *)w, n_cols, eps)));
    return launched(stream, "RMSNorm kernel");
}

extern "C" int hoist__k_rope_cache(hoist__stream *stream, float *qkv, uint32_t ldq, uint32_t q_col,
                                   uint32_t k_col, uint32_t v_col, void *k_cache, void *v_cache,
                                   hoist_dtype dtype, const float *rope_cos,
                                   const float *rope_sin, const int32_t *pos, uint32_t n,
                                   uint32_t n_heads, uint32_t n_kv, uint32_t head_dim,
                                   int interleaved, const hoist__qkv_extra *extra)
{
    // a thread per pair: the kernel rotates each head in one pass; whole warps for block_sum
    if (head_dim / 2 > 1024) return refused(stream, "rotary/cache kernel");
    dim3 grid(n, n_heads + n_kv);
    unsigned threads = (head_dim / 2 + 31) / 32 * 32;
    hoist__qkv_extra ex = extra ? *extra : hoist__qkv_extra{};
    if (extra)
        DISPATCH(dtype, T,
                 rope_cache_kernel<T, true><<<grid, threads, 0, STREAM(stream)>>>(
                     qkv, ldq, q_col, k_col, v_col, (T *)k_cache, (T *)v_cache, rope_cos,
                     rope_sin, pos, n_heads, n_kv, head_dim, interleaved != 0, ex));
    else
        DISPATCH(dtype, T,
                 rope_cache_kernel<T, false><<<grid, threads, 0, STREAM(stream)>>>(
                     qkv, ldq, q_col, k_col, v_col, (T *)k_cache, (T *)v_cache, rope_cos,
                     rope_sin, pos, n_heads, n_kv, head_dim, interleaved != 0, ex));
    return launched(stream, "rotary/cache kernel");
}

template <typename T>
static void launch_attention(cudaStream_t st, T *out, const float *qkv, uint32_t ldq,
                             uint32_t q_col, const T *kc, const T *vc, const int32_t *pos,
                             uint32_t n, uint32_t n_heads, uint32_t n_kv, uint32_t hd)
{
    dim3 grid(n_heads, n);
    size_t smem = (size_t)ATT_WARPS * hd * sizeof(float);
    float scale = 1.0f / sqrtf((float)hd);
#define ATT(NPL)                                                                                  \
    attention_kernel<T, NPL><<<grid, ATT_WARPS * 32, smem, st>>>(out, qkv, ldq, q_col, kc, vc,  \
                                                                 pos, n_heads, n_kv, hd, scale)
    if (hd <= 32)
        ATT(1);
    else if (hd <= 64)
        ATT(2);
    else if (hd <= 128)
        ATT(4);
    else
        ATT(8);
#undef ATT
}

extern "C" int hoist__k_attention(hoist__stream *stream, void *out, const float *qkv, uint32_t ldq,
                                  uint32_t q_col, const void *k_cache, const void *v_cache,
                                  hoist_dtype dtype, const int32_t *pos, uint32_t n,
                                  uint32_t n_heads, uint32_t n_kv, uint32_t head_dim)
{
    if (head_dim > 256) return refused(stream, "attention kernel");
    DISPATCH(dtype, T,
             launch_attention<T>(STREAM(stream), (T *)out, qkv, ldq, q_col, (const T *)k_cache,
                                 (const T *)v_cache, pos, n, n_heads, n_kv, head_dim));
    return launched(stream, "attention kernel");
}

template <typename T>
static void launch_attention_decode(cudaStream_t st, T *out, const float *qkv, uint32_t q_col,
                                    uint32_t k_col, uint32_t v_col, T *kc, T *vc,
                                    const float *cs, const float *sn, const int32_t *pos,
                                    uint32_t n_heads, uint32_t n_kv, uint32_t hd, float *partial,
                                    int32_t *counters, uint32_t nsplit, uint32_t inter,
                                    const hoist__qkv_extra *extra)
{
    dim3 grid(n_heads, nsplit);
    size_t smem = (size_t)ATT_WARPS * hd * sizeof(float);
    float scale = 1.0f / sqrtf((float)hd);
    hoist__qkv_extra ex = extra ? *extra : hoist__qkv_extra{};
#define ATT_X(NPL, X)                                                                             \
    attention_decode_kernel<T, NPL, X><<<grid, ATT_WARPS * 32, smem, st>>>(                     \
        out, qkv, q_col, k_col, v_col, kc, vc, cs, sn, pos, n_heads, n_kv, hd, scale, partial,    \
        counters, inter, ex)
#define ATT(NPL)                                                                                  \
    do {                                                                                          \
        if (extra)                                                                                \
            ATT_X(NPL, true);                                                                     \
        else                                                                                      \
            ATT_X(NPL, false);                                                                    \
    } while (0)
    if (hd <= 32)
        ATT(1);
    else if (hd <= 64)
        ATT(2);
    else if (hd <= 128)
        ATT(4);
    else
        ATT(8);
#undef ATT
#undef ATT_X
}

extern "C" int hoist__k_attention_decode(hoist__stream *stream, void *out, const float *qkv,
                                         uint32_t q_col, uint32_t k_col, uint32_t v_col,
                                         void *k_cache, void *v_cache, hoist_dtype dtype,
                                         const float *rope_cos, const float *rope_sin,
                                         const int32_t *pos, uint32_t n_heads, uint32_t n_kv,
                                         uint32_t head_dim, float *partial, int32_t *counters,
                                         uint32_t nsplit, int interleaved,
                                         const hoist__qkv_extra *extra)
{
    if (head_dim > MAX_HD || nsplit == 0 || nsplit > MAX_SPLIT)
        return refused(stream, "decode attention kernel");
    DISPATCH(dtype, T,
             launch_attention_decode<T>(STREAM(stream), (T *)out, qkv, q_col, k_col, v_col,
                                        (T *)k_cache, (T *)v_cache, rope_cos, rope_sin, pos,
                                        n_heads, n_kv, head_dim, partial, counters, nsplit,
                                        interleaved != 0, extra));
    return launched(stream, "decode attention kernel");
}

extern "C" int hoist__k_swiglu(hoist__stream *stream, void *out, hoist_dtype out_dtype,
                               const float *gu, uint32_t ldg, uint32_t g_col, uint32_t u_col,
                               uint32_t n, uint32_t n_cols, const float *bg, const float *bu)
{
    size_t total = (size_t)n * n_cols;
    size_t blocks = (total + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    DISPATCH(out_dtype, T,
             swiglu_kernel<T><<<(unsigned)blocks, 256, 0, STREAM(stream)>>>(
                 (T *)out, gu, ldg, g_col, u_col, total, n_cols, bg, bu));
    return launched(stream, "SwiGLU kernel");
}

extern "C" int hoist__k_add_bias(hoist__stream *stream, float *x, uint32_t ld, const float *b,
                                 uint32_t n, uint32_t n_cols)
{
    size_t total = (size_t)n * n_cols;
    size_t blocks = (total + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    if (blocks == 0) return 0;
    add_bias_kernel<<<(unsigned)blocks, 256, 0, STREAM(stream)>>>(x, ld, b, total, n_cols);
    return launched(stream, "bias kernel");
}

extern "C" int hoist__k_argmax(hoist__stream *stream, const float *logits, uint32_t n,
                               int32_t *token, int32_t *history, int32_t *count, void *scratch)
{
    float *pv = (float *)scratch;
    uint32_t *pi = (uint32_t *)(pv + ARGMAX_BLOCKS);
    int32_t *counter = (int32_t *)(pi + ARGMAX_BLOCKS);
    unsigned blocks = (n + ARGMAX_THREADS - 1) / ARGMAX_THREADS;
    blocks = blocks < 1 ? 1 : blocks > ARGMAX_BLOCKS ? ARGMAX_BLOCKS : blocks;
    argmax_kernel<<<blocks, ARGMAX_THREADS, 0, STREAM(stream)>>>(logits, n, token, history, count,
                                                                 pv, pi, counter);
    return launched(stream, "argmax kernel");
}

extern "C" int hoist__k_advance(hoist__stream *stream, int32_t *pos, uint32_t n)
{
    advance_kernel<<<1, 1, 0, STREAM(stream)>>>(pos, n);
    return launched(stream, "position kernel");
}

// ---- decode matrix-vector products --------------------------------------------------------------

typedef void (*GvFn)(GemvArgs);

template <typename T, int R> static GvFn gv_bf(int epi, bool norm)
{
    if (epi == GV_SWIGLU)
        return norm ? gemv_kernel<T, R, GV_SWIGLU, true> : gemv_kernel<T, R, GV_SWIGLU, false>;
    return norm ? gemv_kernel<T, R, GV_Y, true> : gemv_kernel<T, R, GV_Y, false>;
}

template <typename T> static GvFn gv_bf_rows(uint32_t r, int epi, bool norm)
{
    return r == 4   ? gv_bf<T, 4>(epi, norm)
           : r == 2 ? gv_bf<T, 2>(epi, norm)
                    : gv_bf<T, 1>(epi, norm);
}

template <typename T, int LPR> static GvFn gv_q8(int epi, bool norm)
{
    if (epi == GV_SWIGLU)
        return norm ? gemv_q8_kernel<T, GV_SWIGLU, true, LPR>
                    : gemv_q8_kernel<T, GV_SWIGLU, false, LPR>;
    return norm ? gemv_q8_kernel<T, GV_Y, true, LPR> : gemv_q8_kernel<T, GV_Y, false, LPR>;
}

template <typename T> static GvFn gv_q8_lanes(uint32_t lpr, int epi, bool norm)
{
    return lpr == 32 ? gv_q8<T, 32>(epi, norm) : lpr == 16 ? gv_q8<T, 16>(epi, norm)
                                                 : gv_q8<T, 8>(epi, norm);
}

struct GvPlan {
    GvFn fn;
    size_t smem;       // x staged: cols of T, or of fp32 for Q8_0
    uint32_t per_task; // units a warp task covers
};

static GvPlan gv_plan(const hoist__gemv *g, const hoist__gemv_tune *t)
{
    int epi = g->act ? GV_SWIGLU : GV_Y;
    bool norm = g->norm != nullptr, bf = g->xdtype == HOIST_DTYPE_BF16;
    GvPlan p;
    if (g->wdtype == HOIST_DTYPE_Q8_0) {
        // lanes per row: as many of a row's 8-block groups as there are, in a power of two
        uint32_t groups = g->cols / 256, lpr = groups >= 32 ? 32 : groups >= 16 ? 16 : 8;
        p.fn = bf ? gv_q8_lanes<__nv_bfloat16>(lpr, epi, norm)
                  : gv_q8_lanes<__half>(lpr, epi, norm);
        p.smem = (size_t)g->cols * sizeof(float);
        p.per_task = 32 / lpr;
    } else {
        uint32_t r = t && (t->rows_per_warp == 1 || t->rows_per_warp == 4) ? t->rows_per_warp : 2;
        p.fn = bf ? gv_bf_rows<__nv_bfloat16>(r, epi, norm) : gv_bf_rows<__half>(r, epi, norm);
        p.smem = (size_t)g->cols * 2;
        p.per_task = r;
    }
    return p;
}

static uint32_t gv_units(const hoist__gemv *g)
{
    if (g->act) return g->rows[0];
    uint32_t u = 0;
    for (uint32_t i = 0; i < g->nseg; i++) u += g->rows[i];
    return u;
}

static GemvArgs gv_args(const hoist__gemv *g)
{
    GemvArgs a = {};
    for (uint32_t i = 0; i < 3; i++) {
        a.w[i] = (const uint8_t *)g->w[i];
        a.rows[i] = i < g->nseg ? g->rows[i] : 0;
        a.ycol[i] = g->ycol[i];
    }
    a.nseg = g->nseg;
    a.units = gv_units(g);
    a.cols = g->cols;
    a.row_bytes = g->wdtype == HOIST_DTYPE_Q8_0 ? (uint64_t)g->cols / Q8_BLOCK * Q8_BYTES
                                                : (uint64_t)g->cols * 2;
    a.x = g->x;
    a.norm = g->norm;
    a.norm_dtype = (int)g->norm_dtype;
    a.eps = g->eps;
    a.y = g->y;
    a.beta = g->beta;
    a.bias = g->bias;
    a.act = g->act;
    a.bg = g->bg;
    a.bu = g->bu;
    return a;
}

extern "C" int hoist__k_gemv_prepare(hoist__stream *stream, hoist__gemv *g,
                                     const hoist__gemv_tune *tune)
{
    int rc = hoist__k_gemv_check(g);
    if (rc < 0) return rc;
    GvPlan p = gv_plan(g, tune);
    if (p.smem > 48 * 1024) {
        rc = hoist__cuda_check(cudaFuncSetAttribute(p.fn,
                                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)p.smem),
                               "cudaFuncSetAttribute (decode product's shared memory)",
                               stream->device);
        if (rc < 0) return rc;
    }
    int occ = 0;
    rc = hoist__cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, p.fn, GV_THREADS,
                                                                         p.smem),
                           "cudaOccupancyMaxActiveBlocksPerMultiprocessor", stream->device);
    if (rc < 0) return rc;
    if (occ < 1) return refused(stream, "decode matrix-vector kernel (does not fit)");
    // at most what is resident at once: the warps' tasks are dealt out in advance, so a block
    // waiting for a place would run its share after everyone else's
    // Q8_0 holds fewer loads per thread in flight (registers): more blocks make up for it
    uint32_t bps = tune && tune->blocks_per_sm ? tune->blocks_per_sm
                   : g->wdtype == HOIST_DTYPE_Q8_0 ? 4 : 2;
    if (bps > (uint32_t)occ) bps = (uint32_t)occ;
    uint32_t sms = tune && tune->sms ? tune->sms : 1;
    uint64_t tasks = ((uint64_t)gv_units(g) + p.per_task - 1) / p.per_task;
    uint64_t need = (tasks + GV_WARPS - 1) / GV_WARPS, most = (uint64_t)sms * bps;
    g->grid = (uint32_t)(need < most ? need : most);
    return HOIST_OK;
}

extern "C" int hoist__k_gemv(hoist__stream *stream, const hoist__gemv *g,
                             const hoist__gemv_tune *tune)
{
    hoist__gemv local;
    if (g->grid == 0) {
        local = *g;
        int rc = hoist__k_gemv_prepare(stream, &local, tune);
        if (rc < 0) return rc;
        g = &local;
    }
    GvPlan p = gv_plan(g, tune);
    p.fn<<<g->grid, GV_THREADS, p.smem, STREAM(stream)>>>(gv_args(g));
    return launched(stream, "decode matrix-vector kernel");
}
