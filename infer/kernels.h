/* Launchers of the CUDA kernels of infer/kernels.cu, callable from C without CUDA headers.
 *
 * `stream` is a gpu/ stream of the current device: the kernel is queued on it. Matrices and
 * activations that feed a matrix product are in the weights' dtype (HOIST_DTYPE_BF16, F16 or
 * F32); the residual stream, the products' outputs and the logits are fp32. Rows are tokens.
 * Each kernel reads the position of the first token from device memory (*pos), so that a
 * captured decode step can be replayed. Every launcher returns HOIST_OK, or HOIST_E_DEVICE with
 * the thread's error naming the device and the kernel when the launch fails. */
#ifndef HOIST_INFER_KERNELS_H
#define HOIST_INFER_KERNELS_H

#include "hoist.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hoist__stream hoist__stream; /* gpu/gpu.h */

/* What some Llama-family models add between the q/k/v projection and the rotation, in the
 * order transformers applies it: biases (Qwen2; attention_bias), then an RMSNorm over each q and
 * k head (Qwen3). Every pointer is fp32 device memory, NULL where the model has none; biases are
 * [n_heads * head_dim] (q) and [n_kv * head_dim] (k, v) in the file's element order, norm weights
 * [head_dim]. A NULL hoist__qkv_extra is the plain Llama block, whose kernels are unchanged. */
typedef struct hoist__qkv_extra {
    const float *bq, *bk, *bv;
    const float *q_norm, *k_norm;
    float eps;
} hoist__qkv_extra;

/* x[t] = table[tokens[t]] as fp32, rows of n_cols (the table bf16, f16, f32 or Q8_0). */
int hoist__k_embed(hoist__stream *stream, float *x, const void *table, hoist_dtype dtype,
                   const int32_t *tokens, uint32_t n, uint32_t n_cols);
/* out[i] = Q8_0 weight i of q (ggml's blocks: an f16 scale and 32 int8), in out_dtype; n a
 * multiple of 32. */
int hoist__k_dequant_q8_0(hoist__stream *stream, void *out, hoist_dtype out_dtype, const void *q,
                          uint64_t n);
/* y[r] = beta * y[r] + W[r] . x for one token: W Q8_0 [rows][cols] (cols a multiple of 32), x
 * [cols] in x_dtype, y fp32. Reads the quantized weights once, as the decode step needs. */
int hoist__k_gemv_q8_0(hoist__stream *stream, float *y, const void *w, const void *x,
                       hoist_dtype x_dtype, uint32_t rows, uint32_t cols, float beta);
/* Few-row products of the decode kernels below split each row's columns among 1, 2, 4 or 8
 * warps, a split chosen per launch from the shape and the SM count (Q8_0 weights, and
 * hoist__k_gemv_q8_0's staged kernel, measured faster unsplit), and add the parts in a fixed
 * order: a shape gives the same bits at every launch on one device. hoist__k_force_split(split)
 * makes every later launch use split (1, 2, 4 or 8) instead, so that tests reach each one and
 * measurements compare them; 0 (or any other value) restores the launchers' choice.
 * Process-wide, not for use beside launches in other threads. */
void hoist__k_force_split(unsigned split);
/* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, in out_dtype. */
int hoist__k_rmsnorm(hoist__stream *stream, void *out, hoist_dtype out_dtype, const float *x,
                     const void *w, hoist_dtype w_dtype, uint32_t n, uint32_t n_cols, float eps);
/* Rotates the q and k heads of each row of qkv (ld floats per row; q, k, v start at the given
 * columns) in place by the position's cos/sin row ([position][head_dim / 2]), and stores k and v
 * of token t at cache row *pos + t ([row][n_kv * head_dim] in dtype). Rotary pairs are (i,
 * i + head_dim / 2), or with interleaved (2i, 2i + 1) as GGUF's llama tensors need. */
int hoist__k_rope_cache(hoist__stream *stream, float *qkv, uint32_t ld, uint32_t q_col,
                        uint32_t k_col, uint32_t v_col, void *k_cache, void *v_cache,
                        hoist_dtype dtype, const float *rope_cos, const float *rope_sin,
                        const int32_t *pos, uint32_t n, uint32_t n_heads, uint32_t n_kv,
                        uint32_t head_dim, int interleaved, const hoist__qkv_extra *extra);
/* Causal grouped-query attention: token t (position p = *pos + t) of each query head attends to
 * cache rows 0..p, or with a window (hoist__layer.window) to the last `window` of them, p itself
 * included; out[t] is [n_heads * head_dim]. The cache and out are in dtype. */
int hoist__k_attention(hoist__stream *stream, void *out, const float *qkv, uint32_t ld,
                       uint32_t q_col, const void *k_cache, const void *v_cache, hoist_dtype dtype,
                       const int32_t *pos, uint32_t n, uint32_t n_heads, uint32_t n_kv,
                       uint32_t head_dim, uint32_t window);
/* One decode token (position *pos) in one kernel: rotates its q and k heads (read from qkv as
 * the projection wrote them; pairs as hoist__k_rope_cache's), appends its k and v to the cache,
 * and attends over positions 0..*pos (with a window, the last `window` of them, as
 * hoist__k_attention). Each query head's keys are split over nsplit blocks whose partial softmax
 * sums meet in `partial` ([n_heads][nsplit][head_dim + 2] floats); the last block of a head to
 * finish merges them, using `counters` ([n_heads] ints, zero on entry and on return). */
int hoist__k_attention_decode(hoist__stream *stream, void *out, const float *qkv, uint32_t q_col,
                              uint32_t k_col, uint32_t v_col, void *k_cache, void *v_cache,
                              hoist_dtype dtype, const float *rope_cos, const float *rope_sin,
                              const int32_t *pos, uint32_t n_heads, uint32_t n_kv,
                              uint32_t head_dim, float *partial, int32_t *counters,
                              uint32_t nsplit, int interleaved, uint32_t window,
                              const hoist__qkv_extra *extra);
/* out[t][i] = silu(gu[t][g_col + i] + bg[i]) * (gu[t][u_col + i] + bu[i]), i < n_cols, in
 * out_dtype; bg and bu (fp32, mlp_bias) may be NULL. */
int hoist__k_swiglu(hoist__stream *stream, void *out, hoist_dtype out_dtype, const float *gu,
                    uint32_t ld, uint32_t g_col, uint32_t u_col, uint32_t n, uint32_t n_cols,
                    const float *bg, const float *bu);
/* x[t][i] += b[i] for n rows of n_cols (row stride ld): o_proj's and down_proj's biases. */
int hoist__k_add_bias(hoist__stream *stream, float *x, uint32_t ld, const float *b, uint32_t n,
                      uint32_t n_cols);
/* Bytes of the zero-initialized device scratch hoist__k_argmax needs (it leaves it zeroed). */
#define HOIST_ARGMAX_SCRATCH 1024u
/* *token = index of the largest logit (the first of equals; NaN never wins). With history,
 * also history[*count] = that index and ++*count. Blocks reduce slices of the logits; the last
 * one to finish reduces their results. */
int hoist__k_argmax(hoist__stream *stream, const float *logits, uint32_t n, int32_t *token,
                    int32_t *history, int32_t *count, void *scratch);
/* The fused kernels of a one-token decode step (kernels_gemv.cu), which run a layer in five
 * launches: RMSNorm with the q/k/v product, attention, o product, RMSNorm with the gate/up
 * product and SwiGLU, down product. W is Q8_0 (cols a multiple of 256) or in the activation
 * dtype x_dtype (bf16, f16 or f32; cols a multiple of 8); rows of W start 16-byte aligned and x
 * (activations, or the fp32 residual stream) is 16-byte aligned; cols * the size of x_dtype is
 * at most 64 KiB, as the input is staged in shared memory. hoist__k_decode_takes says whether a
 * matrix qualifies; the launchers refuse one that does not (HOIST_E_DEVICE, as a failed launch)
 * rather than compute something else. Any row count; no host synchronization or allocation, so
 * a decode step that uses them can be captured as a graph. */
int hoist__k_decode_takes(const void *w, hoist_dtype w_dtype, hoist_dtype x_dtype, uint32_t cols);
/* y[r] = beta * y[r] + W[r] . x + bias[r] for one token (bias fp32 [rows], or NULL): the o and
 * down products with beta 1, their biases folded in (added after the product, as
 * hoist__k_add_bias adds them). */
int hoist__k_decode_gemv(hoist__stream *stream, float *y, const void *w, hoist_dtype w_dtype,
                         const void *x, hoist_dtype x_dtype, uint32_t rows, uint32_t cols,
                         float beta, const float *bias);
/* y[r] = beta * y[r] + W[r] . xn with xn = hoist__k_rmsnorm(x [cols] fp32, norm_w, eps) in
 * x_dtype, computed by every block for itself; xn is bit-identical to hoist__k_rmsnorm's. */
int hoist__k_decode_norm_gemv(hoist__stream *stream, float *y, const void *w, hoist_dtype w_dtype,
                              const float *x, const void *norm_w, hoist_dtype norm_dtype,
                              float eps, hoist_dtype x_dtype, uint32_t rows, uint32_t cols,
                              float beta);
/* act[i] = silu(Wg[i] . xn + bg[i]) * (Wu[i] . xn + bu[i]) in act_dtype for i < rows, xn as
 * hoist__k_decode_norm_gemv's (x_dtype act_dtype), the SwiGLU as hoist__k_swiglu's. Wg and Wu
 * ([rows][cols] each, one w_dtype) are separate tensors or two parts of a fused gate/up matrix;
 * bg and bu (fp32) may be NULL. */
int hoist__k_decode_norm_swiglu(hoist__stream *stream, void *act, hoist_dtype act_dtype,
                                const void *w_gate, const void *w_up, hoist_dtype w_dtype,
                                const float *x, const void *norm_w, hoist_dtype norm_dtype,
                                float eps, uint32_t rows, uint32_t cols, const float *b_gate,
                                const float *b_up);
/* act[i] = silu(Wg[i] . x + bg[i]) * (Wu[i] . x + bu[i]) for x already normalized ([cols] in
 * act_dtype, 16-byte aligned): hoist__k_decode_norm_swiglu after a hoist__k_rmsnorm of its own,
 * with the same products, bit for bit. */
int hoist__k_decode_swiglu(hoist__stream *stream, void *act, hoist_dtype act_dtype,
                           const void *w_gate, const void *w_up, hoist_dtype w_dtype,
                           const void *x, uint32_t rows, uint32_t cols, const float *b_gate,
                           const float *b_up);
/* Whether the norm-fused launchers are the faster way to run a product of `rows` rows (gate/up
 * pairs with swiglu) on the stream's device: they normalize the input in every thread block, worth
 * it only while the launch has at most a block an SM; otherwise hoist__k_rmsnorm once, then
 * hoist__k_decode_gemv or hoist__k_decode_swiglu. Either way gives the same bits. */
int hoist__k_decode_norm_fuses(const hoist__stream *stream, hoist_dtype w_dtype,
                               hoist_dtype x_dtype, uint32_t rows, uint32_t cols, int swiglu);
/* *pos += n. */
int hoist__k_advance(hoist__stream *stream, int32_t *pos, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
