// The element-wise parts and attention of the CUDA forward pass (see kernels.h). The matrix
// products are gpu/'s (cuBLAS), called from gpu_forward.c. Everything accumulates in fp32.
#include "infer/kernels_common.cuh"

#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace {

template <typename T>
__global__ void embed_kernel(float *x, const T *table, const int32_t *tokens, uint32_t n_cols)
{
    const T *row = table + (size_t)tokens[blockIdx.x] * n_cols;
    float *o = x + (size_t)blockIdx.x * n_cols;
    for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) o[i] = ld(row, i);
}

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

// VEC elements per thread and step: 4 when the row is a whole number of float4s. The sums of
// squares (ss_add4, ss_add1, block_sum_once) are the ones norm_prologue (kernels_gemv.cu) adds:
// the two must stay bit-identical.
template <typename Tw, typename To, int VEC>
__global__ void rmsnorm_kernel(To *out, const float *x, const Tw *w, uint32_t n_cols, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + (size_t)blockIdx.x * n_cols;
    float ss = 0.0f;
    if (VEC == 4) {
        for (uint32_t i = threadIdx.x * 4; i < n_cols; i += blockDim.x * 4)
            ss = ss_add4(ss, *(const float4 *)(xr + i));
    } else {
        for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x) ss = ss_add1(ss, xr[i]);
    }
    ss = block_sum_once(ss, sh);
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
        for (uint32_t i = threadIdx.x; i < n_cols; i += blockDim.x)
            st(o, i, xr[i] * inv * ld(w, i));
    }
}

// rmsnorm_kernel<VEC 4> for rows of at most RMS_REG float4s a thread (8192 floats at 256
// threads: every hidden size in use), its row and weights held in registers. A one-token step
// runs this as a lone block (65 times a step on a 32-layer model), so its time is latency: the
// row and the weights are all requested at once, before the sum, instead of the weights after
// it, which saves a memory round trip, and the block sum takes one barrier instead of two. Same
// sums in the same order, same expressions: bit-identical to rmsnorm_kernel.
constexpr uint32_t RMS_REG = 8;

template <typename Tw, typename To>
__global__ void rmsnorm_reg_kernel(To *out, const float *x, const Tw *w, uint32_t n_cols,
                                   float eps)
{
    __shared__ float sh[32];
    const float *xr = x + (size_t)blockIdx.x * n_cols;
    uint32_t t = threadIdx.x, nt = blockDim.x;
    float4 v[RMS_REG];
    float wf[RMS_REG][4];
#pragma unroll
    for (uint32_t k = 0; k < RMS_REG; k++) {
        uint32_t i = (t + k * nt) * 4;
        if (i < n_cols) {
            v[k] = *(const float4 *)(xr + i);
#pragma unroll
            for (int j = 0; j < 4; j++) wf[k][j] = ld(w, i + j);
        }
    }
    float ss = 0.0f;
#pragma unroll
    for (uint32_t k = 0; k < RMS_REG; k++)
        if ((t + k * nt) * 4 < n_cols) ss = ss_add4(ss, v[k]);
    ss = block_sum_once(ss, sh);
    float inv = 1.0f / sqrtf(ss / (float)n_cols + eps);
    To *o = out + (size_t)blockIdx.x * n_cols;
#pragma unroll
    for (uint32_t k = 0; k < RMS_REG; k++) {
        uint32_t i = (t + k * nt) * 4;
        if (i < n_cols) {
            st(o, i, v[k].x * inv * wf[k][0]);
            st(o, i + 1, v[k].y * inv * wf[k][1]);
            st(o, i + 2, v[k].z * inv * wf[k][2]);
            st(o, i + 3, v[k].w * inv * wf[k][3]);
        }
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
                     uint32_t hd, float scale, uint32_t window)
{
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS];
    extern __shared__ float sm_acc[]; // [ATT_WARPS][hd]
    uint32_t h = blockIdx.x, t = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int n_keys = *pos + (int)t + 1;
    int first = window && n_keys > (int)window ? n_keys - (int)window : 0;
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
    for (int j0 = first + w * KU; j0 < n_keys; j0 += ATT_WARPS * KU)
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
                            uint32_t window, hoist__qkv_extra ex)
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
    int p = *pos, end = p + 1;
    int first = window && end > (int)window ? end - (int)window : 0, n_keys = end - first;
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
    int jb = first + (int)split * chunk, je = min(end, jb + chunk);
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

// The same product for rows that start 16-byte aligned with cols a multiple of 256 (every
// Llama-class width; a row is then a whole number of 16-byte words). The scalar kernel's 2-byte
// loads keep too few bytes in flight, and each of its int8 goes through a conversion
// instruction, which has a fraction of the FMA pipes' rate. Here each warp moves 32 blocks (1088
// bytes, 68 aligned 16-byte words) of each of its rows at a time into shared memory, the next 32
// already loading into registers while each lane takes one block of the last: its scale and
// quants from shared memory, its 32 x in 16-byte vectors. An int8 becomes a float exactly
// through the exponent trick (0x4B000000 | (q ^ 0x80) is 2^23 + q + 128): one byte permute and
// one add. On the H200 it decodes a llama-8b Q8_0 model 1.37x as fast as the scalar kernel
// (docs/BENCHMARKS.md).

// Two rows a warp (Q8_ROWS): each x vector read serves both (read once a row, x is twice the
// bytes of the row itself in bf16), and a warp has twice the bytes in flight (one row a warp
// measured 18% slower on the H200). The loop itself is q8_dot_rows (kernels_common.cuh), which
// the fused decode kernels share. It can split each row pair's columns among 1 << lg warps
// (split-K, kernels_common.cuh), in parts of whole 8-block units (256 columns: a part then starts
// 16-byte aligned, 17 words a unit, and its x at a multiple of 256 elements); its launcher runs
// it unsplit (see there) unless a test forces a split.
template <typename T>
__global__ void __launch_bounds__(GEMV_WARPS * 32, Q8_MIN_BLOCKS)
    gemv_q8_0_staged_kernel(float *y, const uint8_t *w, const T *x, uint32_t rows, uint32_t cols,
                            float beta, uint32_t lg)
{
    __shared__ uint4 stage[GEMV_WARPS][Q8_ROWS][Q8_GROUP_VECS];
    __shared__ float red[GEMV_WARPS][Q8_ROWS];
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp & ((1u << lg) - 1);
    uint32_t row0 = ((blockIdx.x * GEMV_WARPS + warp) >> lg) * Q8_ROWS;
    uint32_t nr = row0 >= rows ? 0 : min(rows - row0, (uint32_t)Q8_ROWS);
    float sum[Q8_ROWS] = {0.0f, 0.0f};
    if (nr) { // warps without rows still meet the others at split_sum's barrier
        uint32_t nblk = cols / Q8_BLOCK, nvec = nblk * Q8_BYTES / 16, units = nblk / 8;
        uint32_t u0 = split_at(units, part, lg), nb = (split_at(units, part + 1, lg) - u0) * 8;
        const uint4 *rq = (const uint4 *)(w + (size_t)row0 * nblk * Q8_BYTES) + u0 * 17;
        uint4 next[Q8_ROWS][Q8_LANE_VECS];
        q8_fetch_group(next, rq, nvec, nb * Q8_BYTES / 16, nr, lane, 0);
        q8_dot_rows(stage[warp], next, rq, nvec, nr, x + (size_t)u0 * 256, nb, lane, sum);
#pragma unroll
        for (int r = 0; r < Q8_ROWS; r++) sum[r] = warp_sum(sum[r]);
    }
    split_sum(sum, red, lg);
    if (lane != 0 || part != 0) return;
#pragma unroll
    for (int r = 0; r < Q8_ROWS; r++)
        if ((uint32_t)r < nr) y[row0 + r] = beta == 0.0f ? sum[r] : beta * y[row0 + r] + sum[r];
}

} // namespace

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

static unsigned forced_split_lg1; // hoist__k_force_split's, atomically

extern "C" void hoist__k_force_split(unsigned split)
{
    unsigned lg1 = split == 1 ? 1 : split == 2 ? 2 : split == 4 ? 3 : split == 8 ? 4 : 0;
    __atomic_store_n(&forced_split_lg1, lg1, __ATOMIC_RELAXED);
}

extern "C" unsigned hoist__k_forced_split_lg1(void)
{
    return __atomic_load_n(&forced_split_lg1, __ATOMIC_RELAXED);
}

// Whether the staged Q8_0 kernel takes a product (its alignment holds), unless
// HOIST_Q8_GEMV=scalar asks for the scalar one, so that both can be measured in one build.
static int q8_staged(const void *w, const void *x, uint32_t cols)
{
    if (cols % 256 != 0 || (uintptr_t)w % 16 != 0 || (uintptr_t)x % 16 != 0) return 0;
    const char *e = getenv("HOIST_Q8_GEMV");
    return !(e && strcmp(e, "scalar") == 0);
}

extern "C" int hoist__k_gemv_q8_0(hoist__stream *stream, float *y, const void *w, const void *x,
                                  hoist_dtype x_dtype, uint32_t rows, uint32_t cols, float beta)
{
    if (rows == 0) return HOIST_OK;
    if (q8_staged(w, x, cols)) {
        uint32_t pairs = (rows + Q8_ROWS - 1) / Q8_ROWS;
        uint32_t lg = q8_split_lg();
        uint32_t per = GEMV_WARPS >> lg; // row pairs a block
        unsigned grid = (pairs + per - 1) / per;
        DISPATCH(x_dtype, T,
                 gemv_q8_0_staged_kernel<T><<<grid, GEMV_WARPS * 32, 0, STREAM(stream)>>>(
                     y, (const uint8_t *)w, (const T *)x, rows, cols, beta, lg));
        return launched(stream, "Q8_0 matrix-vector kernel (staged)");
    }
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
    unsigned threads = rmsnorm_threads(n_cols);
    if (n == 0) return HOIST_OK;
    if (n_cols % 4 == 0 && n_cols <= threads * 4 * RMS_REG)
        DISPATCH(w_dtype, Tw,
                 DISPATCH(out_dtype, To,
                          rmsnorm_reg_kernel<Tw, To><<<n, threads, 0, STREAM(stream)>>>(
                              (To *)out, x, (const Tw *)w, n_cols, eps)));
    else if (n_cols % 4 == 0) /* rows start at multiples of 16 bytes: cudaMalloc'd, 4k floats */
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
                             uint32_t n, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                             uint32_t window)
{
    dim3 grid(n_heads, n);
    size_t smem = (size_t)ATT_WARPS * hd * sizeof(float);
    float scale = 1.0f / sqrtf((float)hd);
#define ATT(NPL)                                                                                  \
    attention_kernel<T, NPL><<<grid, ATT_WARPS * 32, smem, st>>>(out, qkv, ldq, q_col, kc, vc,  \
                                                                 pos, n_heads, n_kv, hd, scale, \
                                                                 window)
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
                                  uint32_t n_heads, uint32_t n_kv, uint32_t head_dim,
                                  uint32_t window)
{
    if (head_dim > 256) return refused(stream, "attention kernel");
    DISPATCH(dtype, T,
             launch_attention<T>(STREAM(stream), (T *)out, qkv, ldq, q_col, (const T *)k_cache,
                                 (const T *)v_cache, pos, n, n_heads, n_kv, head_dim, window));
    return launched(stream, "attention kernel");
}

template <typename T>
static void launch_attention_decode(cudaStream_t st, T *out, const float *qkv, uint32_t q_col,
                                    uint32_t k_col, uint32_t v_col, T *kc, T *vc,
                                    const float *cs, const float *sn, const int32_t *pos,
                                    uint32_t n_heads, uint32_t n_kv, uint32_t hd, float *partial,
                                    int32_t *counters, uint32_t nsplit, uint32_t inter,
                                    uint32_t window, const hoist__qkv_extra *extra)
{
    dim3 grid(n_heads, nsplit);
    size_t smem = (size_t)ATT_WARPS * hd * sizeof(float);
    float scale = 1.0f / sqrtf((float)hd);
    hoist__qkv_extra ex = extra ? *extra : hoist__qkv_extra{};
#define ATT_X(NPL, X)                                                                             \
    attention_decode_kernel<T, NPL, X><<<grid, ATT_WARPS * 32, smem, st>>>(                     \
        out, qkv, q_col, k_col, v_col, kc, vc, cs, sn, pos, n_heads, n_kv, hd, scale, partial,    \
        counters, inter, window, ex)
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
                                         uint32_t nsplit, int interleaved, uint32_t window,
                                         const hoist__qkv_extra *extra)
{
    if (head_dim > MAX_HD || nsplit == 0 || nsplit > MAX_SPLIT)
        return refused(stream, "decode attention kernel");
    DISPATCH(dtype, T,
             launch_attention_decode<T>(STREAM(stream), (T *)out, qkv, q_col, k_col, v_col,
                                        (T *)k_cache, (T *)v_cache, rope_cos, rope_sin, pos,
                                        n_heads, n_kv, head_dim, partial, counters, nsplit,
                                        interleaved != 0, window, extra));
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
