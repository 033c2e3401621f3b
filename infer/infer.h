/* infer/: a minimal Llama-family forward pass over the tensor views a load placed.
 *
 * session.c binds the views to a geometry (checking every shape), owns the public hoist_session
 * calls and their statistics, and drives one of two backends through hoist__infer_ops: the plain
 * C fp32 reference (cpu.c) for weights in host memory, and for weights on GPUs the forward pass
 * of gpu_forward.c, which makes its device calls through gpu/ and queues the CUDA kernels of
 * kernels.cu. The reference's blocks are exposed here for the unit tests.
 */
#ifndef HOIST_INFER_H
#define HOIST_INFER_H

#include "hoist.h"

#include <stddef.h>
#include <stdint.h>

/* Bounds beyond hoist_geometry_check's, checked before anything is sized from a geometry. */
#define HOIST_INFER_MAX_DIM (1u << 24) /* n_heads * head_dim */
#define HOIST_INFER_MAX_HEAD_DIM 256u  /* the CUDA attention kernels hold a head in registers */
#define HOIST_INFER_MAX_TOKENS (1u << 24)
#define HOIST_INFER_DEFAULT_TOKENS 4096u
#define HOIST_INFER_DEFAULT_BATCH 256u
#define HOIST_INFER_MAX_BATCH 8192u

/* One layer's tensors. A "group" is a set of projections that read the same input and lie back
 * to back in memory with the same row length: one matrix product covers all of them. */
typedef struct hoist__layer {
    hoist_view attn_norm, q, k, v, o, mlp_norm, gate, up, down;
    /* The variants' vectors as fp32 copies in host memory (into hoist_session.extras), NULL
     * where the geometry announces none: biases of q, k, v, o, gate, up, down, and the q/k norm
     * weights ([head_dim]). The backends read these, whatever the file's dtype. */
    float *bq, *bk, *bv, *bo, *bgate, *bup, *bdown, *q_norm, *k_norm;
    int device;
    /* The keys a query attends to, itself included (transformers' sliding window: key j is seen
     * from position p when p - j < window); 0: every earlier position. */
    uint32_t window;
    /* q, k, v as one product when adjacent: base pointer and the column of each part in the
     * product's output (the parts in memory order); qkv_fused 0 means three products. */
    int qkv_fused;
    const void *qkv_base;
    uint32_t q_col, k_col, v_col;
    int gu_fused;
    const void *gu_base;
    uint32_t g_col, u_col;
} hoist__layer;

typedef struct hoist__infer_ops hoist__infer_ops;

struct hoist_session {
    hoist_geometry geo;
    hoist_session_options opts;
    hoist_dtype wdtype;        /* the matrices' dtype (every projection, embedding and head), or
                                  for Q8_0 matrices, which the GPU dequantizes before each product,
                                  the dtype they are dequantized into (F16): the activations' */
    int rope_interleaved;      /* GGUF llama tensors: rotary pairs (2i, 2i + 1), see
                                  hoist__ref_rope_pairs */
    int has_q8_0;              /* some matrix is Q8_0 */
    hoist_view embed, final_norm, head; /* head is embed when the embeddings are tied */
    hoist__layer *layers;
    uint32_t q_dim, kv_dim;    /* n_heads * head_dim, n_kv_heads * head_dim */
    uint32_t qkv_dim;          /* q_dim + 2 kv_dim: one token's row of the q/k/v output */
    uint32_t max_tokens;       /* KV cache positions */
    uint32_t max_batch;        /* tokens per forward call into the backend */
    uint32_t pos;              /* tokens in the cache */
    int have_logits;
    float *rope_cos, *rope_sin; /* [max_tokens][head_dim / 2], host; the backends share it */
    float *inv_freq, *inv_orig; /* [head_dim / 2]: the rotation's current and initial frequencies */
    float rope_attn;           /* yarn's factor on cos and sin (1 otherwise) */
    uint64_t rope_cached;      /* dynamic NTK: the longest sequence seen (transformers' state) */
    float *rope_freqs;         /* GGUF rope_freqs.weight as fp32 (frequency divisors), or NULL */
    float *extras;             /* the layers' variant vectors (hoist__layer.bq ...), one block */
    size_t extras_floats;
    uint64_t weight_bytes_per_token;
    hoist_kv_dtype kv_dtype;   /* the cache's encoding: f32 on the CPU, the weights' on GPUs */
    uint64_t kv_bytes;         /* every layer, K and V, max_tokens positions (the planner's sum) */
    hoist_session_stats stats;
    const hoist__infer_ops *ops;
    void *backend;
};

/* A backend. forward() runs n (1..max_batch) tokens at positions s->pos.. (the caller then
 * advances s->pos), leaving the last token's logits ready for logits()/argmax(); it may return
 * before the device is done (sync() waits). greedy() runs `steps` decode steps, each feeding the
 * argmax of the previous logits back in, stores the chosen tokens in out, advances s->pos by
 * steps, and synchronizes before returning. */
struct hoist__infer_ops {
    const char *name;
    int (*create)(hoist_session *s);
    void (*destroy)(hoist_session *s);
    int (*forward)(hoist_session *s, const int32_t *tokens, uint32_t n);
    int (*sync)(hoist_session *s);
    int (*logits)(hoist_session *s, float *out);
    int (*argmax)(hoist_session *s, int32_t *token);
    int (*greedy)(hoist_session *s, uint32_t steps, int32_t *out);
    int (*reset)(hoist_session *s);
    /* Rows [first, first + n) of the rotary tables changed on the host (dynamic NTK): copy them
     * to wherever the backend reads them before its next forward. NULL: it reads the host's. */
    int (*rope_rows)(hoist_session *s, uint32_t first, uint32_t n);
};

extern const hoist__infer_ops hoist__infer_cpu;
/* The GPU forward pass (gpu_forward.c); NULL in a build without CUDA. */
const hoist__infer_ops *hoist__infer_gpu(void);


/* ---- binding (bind.c) ------------------------------------------------------------------- */

/* A tensor table to bind against: a model's (shapes only, no data) or loaded weights'. */
typedef struct hoist__tensors {
    const void *ctx;
    size_t count;
    int (*at)(const void *ctx, size_t i, hoist_view *out);
    int (*find)(const void *ctx, const char *name, hoist_view *out);
} hoist__tensors;

void hoist__tensors_of_model(const hoist_model *m, hoist__tensors *out);
void hoist__tensors_of_weights(const hoist_weights *w, hoist__tensors *out);
/* Binds every tensor the geometry announces to s->layers (calloc'd n_layers) and the model
 * views, checking names, shapes, dtypes and devices, and refuses a tensor of a decoder layer the
 * geometry does not announce. Counts the bytes a decode step reads. */
int hoist__bind_model(hoist_session *s, const hoist__tensors *t);
/* Copies the variant vectors (and GGUF's rope_freqs.weight) into s->extras as fp32, from
 * wherever the weights live. After hoist__bind_model. */
int hoist__bind_extras(hoist_session *s, const hoist_weights *w);

/* ---- rotary tables (rope.c) ------------------------------------------------------------- */

/* The head_dim / 2 inverse frequencies of g's rope type at a sequence length (only dynamic NTK
 * looks at it), and the factor cos and sin are multiplied by. */
void hoist__rope_inv_freq(const hoist_geometry *g, uint64_t seq_len, float *inv, float *attn);
/* Rows [first, first + n) of [position][half] tables: cos and sin of position x inv, x attn. */
void hoist__rope_rows(float *cos_t, float *sin_t, uint32_t first, uint32_t n, uint32_t half,
                      const float *inv, float attn);
/* transformers' dynamic_rope_update for a forward whose positions end at seq_len: *cached is the
 * longest sequence seen, inv the current frequencies, orig the initial ones. */
void hoist__rope_dynamic_update(const hoist_geometry *g, uint64_t seq_len, uint64_t *cached,
                                float *inv, const float *orig);

/* ---- the fp32 reference blocks (cpu.c) -------------------------------------------------- */

/* Q8_0 (ggml): blocks of 32 weights along a row, an f16 scale then 32 int8 each. */
#define HOIST_Q8_0_BLOCK 32u
#define HOIST_Q8_0_BYTES 34u

/* Element i of a bf16, f16, f32 or Q8_0 array, as float. */
float hoist__load_f32(const void *p, hoist_dtype dtype, size_t i);
float hoist__bf16_to_f32(uint16_t h);
float hoist__f16_to_f32(uint16_t h);
/* Row `row` of an [rows, n] embedding table into out. */
void hoist__ref_embed(float *out, const void *table, hoist_dtype dtype, uint32_t row, uint32_t n);
/* out = x / sqrt(mean(x^2) + eps) * w. out may be x. */
void hoist__ref_rmsnorm(float *out, const float *x, const void *w, hoist_dtype wdtype, uint32_t n,
                        float eps);
/* y[r] = sum_c W[r][c] x[c] (+ y[r] when accumulate), W [rows, cols] row-major (Q8_0: cols a
 * multiple of 32). */
void hoist__ref_matvec(float *y, const void *w, hoist_dtype wdtype, uint32_t rows, uint32_t cols,
                       const float *x, int accumulate);
/* cos/sin of pos * theta^(-2i/head_dim), i < head_dim / 2, for pos < tokens, rounded as
 * transformers' float32 computation rounds: [tokens][head_dim / 2] each. */
void hoist__rope_table(float *cos_t, float *sin_t, uint32_t tokens, uint32_t head_dim,
                       double theta);
/* Rotates n_heads heads of head_dim in place, Hugging Face's rotate_half pairing (i with
 * i + head_dim / 2), with one position's cos/sin row. */
void hoist__ref_rope(float *x, uint32_t n_heads, uint32_t head_dim, const float *cos_row,
                     const float *sin_row);
/* The same with either pairing: rotate_half (interleaved 0), or GGUF's llama layout, where
 * llama.cpp's converter permuted the q and k rows so that pair i is elements 2i and 2i + 1
 * (interleaved 1). Either way pair i is written back to elements i and i + head_dim / 2, so the
 * heads leave in Hugging Face's order whatever the file's: the attention then adds its dot
 * products in the same order, and a GGUF model and its safetensors twin give bit-identical
 * logits. head_dim is at most HOIST__REF_MAX_HEAD_DIM. */
#define HOIST__REF_MAX_HEAD_DIM 4096u
void hoist__ref_rope_pairs(float *x, uint32_t n_heads, uint32_t head_dim, const float *cos_row,
                           const float *sin_row, int interleaved);
/* Grouped-query attention of one query (n_heads * head_dim) over n_keys cached positions, the
 * cache laid out [position][n_kv_heads][head_dim]; query head h reads kv head
 * h / (n_heads / n_kv_heads). scores needs n_keys floats. */
void hoist__ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                          uint32_t n_keys, uint32_t n_heads, uint32_t n_kv_heads,
                          uint32_t head_dim, float *scores);
/* x[i] += b[i]; nothing when b is NULL. */
void hoist__ref_add(float *x, const float *b, uint32_t n);
/* Qwen3's q/k norm: each of n_heads heads of head_dim normalized (RMSNorm, weight w fp32). */
void hoist__ref_head_norm(float *x, const float *w, uint32_t n_heads, uint32_t head_dim,
                          float eps);
/* out[i] = silu(gate[i]) * up[i]. */
void hoist__ref_swiglu(float *out, const float *gate, const float *up, uint32_t n);
/* Index of the largest value (the first of equals; NaN never wins); 0 for n == 0. */
uint32_t hoist__ref_argmax(const float *x, uint32_t n);

#endif
