/* The CUDA backend of the forward pass: cuBLAS for every matrix product (weights straight from
 * the loaded views, activations in the weights' dtype, fp32 accumulation and outputs), the
 * kernels of kernels.cu for the rest. Each layer runs on the device its tensors were placed on;
 * the residual stream moves between devices with peer copies ordered by events. A decode step
 * never waits for the host: positions live in device memory, the argmax of one step feeds the
 * embedding of the next, and on one GPU the step is captured once and replayed as a CUDA graph.
 */
#include "infer/infer.h"
#include "infer/kernels.h"
#include "core/core.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64
#define BLAS_WORKSPACE (32u << 20) /* what cuBLAS asks for on Hopper; fixed so graphs can capture */
/* A Q8_0 matrix is dequantized into the activation dtype this many bytes of rows at a time (at
 * least one row), each slice multiplied as it is ready. */
#define DEQUANT_BYTES (32u << 20)

typedef struct cuda_dev {
    int id;
    cudaStream_t stream;
    cudaEvent_t ev;           /* the end of this device's part of the step, for the next device */
    cublasHandle_t blas;
    void *workspace;
    int32_t *pos;             /* cache position of the step's first token */
    float *x;                 /* [max_batch][hidden] residual stream */
    void *xn;                 /* [max_batch][hidden] normalized, weight dtype */
    float *qkv;               /* [max_batch][qkv_dim] */
    void *attn;               /* [max_batch][q_dim] weight dtype */
    float *gu;                /* [max_batch][2 * intermediate] */
    void *act;                /* [max_batch][intermediate] weight dtype */
    float *rope_cos, *rope_sin;
    void *cache;              /* k and v of this device's layers */
    float *partial;           /* decode attention: [n_heads][nsplit][head_dim + 2] */
    int32_t *counters;        /* decode attention: [n_heads], zero between kernels */
    void *dq;                 /* a slice of a Q8_0 matrix, dequantized (s->has_q8_0 only) */
    float *extras;            /* s->extras on this device (biases, q/k norms), or NULL */
    uint64_t dq_bytes;
    uint32_t nsplit;          /* blocks per head in decode attention */
    int has_layers;
} cuda_dev;

typedef struct cuda_state {
    cuda_dev dev[MAX_DEVICES];
    int ndev;
    int *layer_dev;           /* index into dev per layer */
    void **k_cache, **v_cache; /* per layer */
    int embed_dev, head_dev;
    int32_t *tokens;          /* [max_batch] on the embedding's device */
    float *logits;            /* [vocab] on the head's device */
    int32_t *token;           /* argmax on the head's device */
    int32_t *history;         /* [max_tokens] greedy output, head's device */
    int32_t *count;
    void *argmax_scratch;     /* head's device, HOIST_ARGMAX_SCRATCH bytes */
    size_t es;                /* bytes per element of the weight dtype */
    cudaGraphExec_t graph;
    int graph_state;          /* 0 not tried, 1 ready, -1 failed (launch directly) */
} cuda_state;

static int cuda_fail(cudaError_t e, const char *what, int device)
{
    cudaGetLastError();
    return hoist__err(e == cudaErrorMemoryAllocation ? HOIST_E_DEVICE_NOMEM : HOIST_E_DEVICE,
                      "cuda:%d: %s failed: %s (%s)", device, what, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

#define CUDA_TRY(call, device)                                                                    \
    do {                                                                                          \
        cudaError_t cuda_e = (call);                                                              \
        if (cuda_e != cudaSuccess) return cuda_fail(cuda_e, #call, (device));                     \
    } while (0)

#define KERNEL_TRY(call, device)                                                                  \
    do {                                                                                          \
        int k_e = (call);                                                                         \
        if (k_e != 0) return cuda_fail((cudaError_t)k_e, #call, (device));                        \
    } while (0)

static cudaDataType cuda_type(hoist_dtype d)
{
    return d == HOIST_DTYPE_BF16 ? CUDA_R_16BF : d == HOIST_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* y[n][ldy] (+)= x[n][cols] . W[rows][cols]^T: W is row-major as Hugging Face stores it, which
 * cuBLAS's column-major view sees as W^T; one token makes it a matrix-vector product. W is in
 * the activation dtype. */
static int gemm_float(const hoist_session *s, cuda_dev *d, const void *w, uint32_t rows,
                      uint32_t cols, const void *x, uint32_t n, float *y, uint32_t ldy, float beta)
{
    const float alpha = 1.0f;
    cudaDataType t = cuda_type(s->wdtype);
    cublasStatus_t st = cublasGemmEx(d->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n,
                                     (int)cols, &alpha, w, t, (int)cols, x, t, (int)cols, &beta, y,
                                     CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    RETURN_IF(st != CUBLAS_STATUS_SUCCESS, HOIST_E_DEVICE,
              "cuda:%d: cublasGemmEx of a [%u, %u] matrix by %u tokens failed: %s", d->id, rows,
              cols, n, cublasGetStatusString(st));
    return HOIST_OK;
}

/* The same for W of dtype wdt. A Q8_0 matrix times one token (a decode step) is one fused
 * kernel that reads the blocks once; times a prompt it is dequantized slice by slice of rows into
 * d->dq, each slice's product writing its own columns of y, so that cuBLAS does the heavy part. */
static int gemm(const hoist_session *s, cuda_dev *d, const void *w, hoist_dtype wdt,
                uint32_t rows, uint32_t cols, const void *x, uint32_t n, float *y, uint32_t ldy,
                float beta)
{
    if (wdt != HOIST_DTYPE_Q8_0) return gemm_float(s, d, w, rows, cols, x, n, y, ldy, beta);
    if (n == 1) {
        KERNEL_TRY(hoist__k_gemv_q8_0(d->stream, y, w, x, s->wdtype, rows, cols, beta), d->id);
        return HOIST_OK;
    }
    cuda_state *c = s->backend;
    uint64_t row_q = (uint64_t)cols / HOIST_Q8_0_BLOCK * HOIST_Q8_0_BYTES;
    uint64_t slice = d->dq_bytes / ((uint64_t)cols * c->es);
    for (uint32_t r0 = 0; r0 < rows;) {
        uint32_t nr = rows - r0 < slice ? rows - r0 : (uint32_t)slice;
        KERNEL_TRY(hoist__k_dequant_q8_0(d->stream, d->dq, s->wdtype,
                                         (const uint8_t *)w + r0 * row_q, (uint64_t)nr * cols),
                   d->id);
        RETURN_IF_ERR(gemm_float(s, d, d->dq, nr, cols, x, n, y + r0, ldy, beta));
        r0 += nr;
    }
    return HOIST_OK;
}

static int dev_index(cuda_state *c, int id)
{
    for (int i = 0; i < c->ndev; i++)
        if (c->dev[i].id == id) return i;
    c->dev[c->ndev].id = id;
    return c->ndev++;
}

static int dev_alloc(hoist_session *s, cuda_dev *d, void **p, uint64_t bytes, const char *what)
{
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *p = NULL;
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return hoist__err(HOIST_E_DEVICE_NOMEM,
                          "cuda:%d: cannot allocate %llu bytes for the %s (%zu of %zu bytes free)",
                          d->id, (unsigned long long)bytes, what, free_b, total_b);
    }
    s->stats.device_bytes += bytes;
    return HOIST_OK;
}

static void destroy_impl(hoist_session *s)
{
    cuda_state *c = s->backend;
    if (!c) return;
    if (c->graph) cudaGraphExecDestroy(c->graph);
    for (int i = 0; i < c->ndev; i++) {
        cuda_dev *d = &c->dev[i];
        cudaSetDevice(d->id);
        if (d->stream) cudaStreamSynchronize(d->stream);
        if (d->blas) cublasDestroy(d->blas);
        void *bufs[] = {d->workspace, d->pos, d->x, d->xn, d->qkv, d->attn, d->gu, d->act,
                        d->rope_cos, d->rope_sin, d->cache, d->partial, d->counters, d->dq,
                        d->extras};
        for (size_t b = 0; b < sizeof bufs / sizeof *bufs; b++) cudaFree(bufs[b]);
        if (i == c->embed_dev) cudaFree(c->tokens);
        if (i == c->head_dev) {
            cudaFree(c->logits);
            cudaFree(c->token);
            cudaFree(c->history);
            cudaFree(c->count);
            cudaFree(c->argmax_scratch);
        }
        if (d->ev) cudaEventDestroy(d->ev);
        if (d->stream) cudaStreamDestroy(d->stream);
    }
    cudaGetLastError();
    hoist__free(c->layer_dev);
    hoist__free(c->k_cache);
    hoist__free(c->v_cache);
    hoist__free(c);
    s->backend = NULL;
}

static int dev_create(hoist_session *s, cuda_state *c, cuda_dev *d)
{
    const hoist_geometry *g = &s->geo;
    uint64_t B = s->max_batch, es = c->es;
    CUDA_TRY(cudaSetDevice(d->id), d->id);
    CUDA_TRY(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), d->id);
    CUDA_TRY(cudaEventCreateWithFlags(&d->ev, cudaEventDisableTiming), d->id);
    cublasStatus_t st = cublasCreate(&d->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        d->blas = NULL;
        return hoist__err(HOIST_E_DEVICE, "cuda:%d: cublasCreate failed: %s", d->id,
                          cublasGetStatusString(st));
    }
    RETURN_IF_ERR(dev_alloc(s, d, &d->workspace, BLAS_WORKSPACE, "cuBLAS workspace"));
    st = cublasSetStream(d->blas, d->stream);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetWorkspace(d->blas, d->workspace, BLAS_WORKSPACE);
    RETURN_IF(st != CUBLAS_STATUS_SUCCESS, HOIST_E_DEVICE, "cuda:%d: cuBLAS setup failed: %s",
              d->id, cublasGetStatusString(st));
    uint64_t half = g->head_dim / 2;
    RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->pos, sizeof(int32_t), "position"));
    RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->x, B * g->hidden * 4, "residual stream"));
    RETURN_IF_ERR(dev_alloc(s, d, &d->xn, B * g->hidden * es, "normalized activations"));
    if (s->has_q8_0) {
        /* the widest row of any matrix (the head's or down's) fits at least once */
        uint64_t widest = g->hidden > g->intermediate ? g->hidden : g->intermediate;
        if (s->q_dim > widest) widest = s->q_dim;
        d->dq_bytes = widest * es > DEQUANT_BYTES ? widest * es : DEQUANT_BYTES;
        RETURN_IF_ERR(dev_alloc(s, d, &d->dq, d->dq_bytes, "Q8_0 dequantization slice"));
    }
    if (d->has_layers) {
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->qkv, B * s->qkv_dim * 4, "q/k/v outputs"));
        RETURN_IF_ERR(dev_alloc(s, d, &d->attn, B * s->q_dim * es, "attention outputs"));
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->gu, B * 2 * g->intermediate * 4,
                                "gate/up outputs"));
        RETURN_IF_ERR(dev_alloc(s, d, &d->act, B * g->intermediate * es, "MLP activations"));
        uint64_t tab = (uint64_t)s->max_tokens * half * sizeof(float);
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->rope_cos, tab, "rotary table"));
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->rope_sin, tab, "rotary table"));
        CUDA_TRY(cudaMemcpy(d->rope_cos, s->rope_cos, tab, cudaMemcpyHostToDevice), d->id);
        CUDA_TRY(cudaMemcpy(d->rope_sin, s->rope_sin, tab, cudaMemcpyHostToDevice), d->id);
        if (s->extras) {
            uint64_t eb = (uint64_t)s->extras_floats * sizeof(float);
            RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->extras, eb, "biases and q/k norms"));
            CUDA_TRY(cudaMemcpy(d->extras, s->extras, eb, cudaMemcpyHostToDevice), d->id);
        }
        /* enough blocks per head to cover the SMs a few times over, never more than positions */
        int sms = 0;
        CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d->id), d->id);
        uint32_t want = (uint32_t)(4 * (sms > 0 ? sms : 1) + g->n_heads - 1) / g->n_heads;
        d->nsplit = want < 1 ? 1 : want > 32 ? 32 : want; /* kernels.cu allows 64 */
        if (d->nsplit > s->max_tokens) d->nsplit = s->max_tokens;
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->partial,
                                (uint64_t)g->n_heads * d->nsplit * (g->head_dim + 2) * 4,
                                "attention partial sums"));
        RETURN_IF_ERR(dev_alloc(s, d, (void **)&d->counters, (uint64_t)g->n_heads * 4,
                                "attention counters"));
        CUDA_TRY(cudaMemset(d->counters, 0, (size_t)g->n_heads * 4), d->id);
    }
    CUDA_TRY(cudaMemset(d->pos, 0, sizeof(int32_t)), d->id);
    return HOIST_OK;
}

/* Each device's share of the KV cache in one allocation, split per layer. */
static int alloc_caches(hoist_session *s, cuda_state *c)
{
    uint64_t per_layer = s->kv_bytes / s->geo.n_layers / 2;
    for (int i = 0; i < c->ndev; i++) {
        cuda_dev *d = &c->dev[i];
        uint32_t nl = 0;
        for (uint32_t l = 0; l < s->geo.n_layers; l++) nl += c->layer_dev[l] == i;
        if (!nl) continue;
        CUDA_TRY(cudaSetDevice(d->id), d->id);
        RETURN_IF_ERR(dev_alloc(s, d, &d->cache, 2 * per_layer * nl, "KV cache"));
        uint8_t *p = d->cache;
        for (uint32_t l = 0; l < s->geo.n_layers; l++) {
            if (c->layer_dev[l] != i) continue;
            c->k_cache[l] = p;
            c->v_cache[l] = p + per_layer;
            p += 2 * per_layer;
        }
    }
    return HOIST_OK;
}

static int create_impl(hoist_session *s)
{
    const hoist_geometry *g = &s->geo;
    RETURN_IF(g->head_dim > HOIST_INFER_MAX_HEAD_DIM, HOIST_E_UNSUPPORTED,
              "head_dim %u: the CUDA attention kernels take at most %u", g->head_dim,
              HOIST_INFER_MAX_HEAD_DIM);
    cuda_state *c = hoist__calloc(1, sizeof *c);
    RETURN_IF(!c, HOIST_E_NOMEM, "out of memory for the CUDA session");
    s->backend = c;
    s->stats.device_bytes = 0;
    c->es = hoist_dtype_bits(s->wdtype) / 8;
    c->layer_dev = hoist__calloc(g->n_layers, sizeof *c->layer_dev);
    c->k_cache = hoist__calloc(g->n_layers, sizeof *c->k_cache);
    c->v_cache = hoist__calloc(g->n_layers, sizeof *c->v_cache);
    RETURN_IF(!c->layer_dev || !c->k_cache || !c->v_cache, HOIST_E_NOMEM,
              "out of memory for %u layers", g->n_layers);
    int devices = 0;
    CUDA_TRY(cudaGetDeviceCount(&devices), s->embed.device);
    RETURN_IF(devices > MAX_DEVICES, HOIST_E_UNSUPPORTED, "%d CUDA devices (at most %d)", devices,
              MAX_DEVICES);
    c->embed_dev = dev_index(c, s->embed.device);
    for (uint32_t l = 0; l < g->n_layers; l++) {
        c->layer_dev[l] = dev_index(c, s->layers[l].device);
        c->dev[c->layer_dev[l]].has_layers = 1;
    }
    c->head_dev = dev_index(c, s->head.device);
    for (int i = 0; i < c->ndev; i++) RETURN_IF_ERR(dev_create(s, c, &c->dev[i]));
    /* direct peer copies where the hardware has them; elsewhere the runtime stages through the
     * host, which is slower but correct */
    for (int i = 0; i < c->ndev; i++)
        for (int j = 0; j < c->ndev; j++) {
            int can = 0;
            if (i == j || cudaDeviceCanAccessPeer(&can, c->dev[i].id, c->dev[j].id) != cudaSuccess ||
                !can)
                continue;
            cudaSetDevice(c->dev[i].id);
            cudaDeviceEnablePeerAccess(c->dev[j].id, 0); /* "already enabled" is fine */
        }
    cudaGetLastError();
    RETURN_IF_ERR(alloc_caches(s, c));
    cuda_dev *e = &c->dev[c->embed_dev], *h = &c->dev[c->head_dev];
    CUDA_TRY(cudaSetDevice(e->id), e->id);
    RETURN_IF_ERR(dev_alloc(s, e, (void **)&c->tokens, (uint64_t)s->max_batch * 4, "tokens"));
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    RETURN_IF_ERR(dev_alloc(s, h, (void **)&c->logits, (uint64_t)g->vocab * 4, "logits"));
    RETURN_IF_ERR(dev_alloc(s, h, (void **)&c->token, 4, "argmax"));
    RETURN_IF_ERR(dev_alloc(s, h, (void **)&c->history, (uint64_t)s->max_tokens * 4, "tokens"));
    RETURN_IF_ERR(dev_alloc(s, h, (void **)&c->count, 4, "token count"));
    RETURN_IF_ERR(dev_alloc(s, h, &c->argmax_scratch, HOIST_ARGMAX_SCRATCH, "argmax scratch"));
    CUDA_TRY(cudaMemset(c->argmax_scratch, 0, HOIST_ARGMAX_SCRATCH), h->id);
    CUDA_TRY(cudaDeviceSynchronize(), h->id);
    return HOIST_OK;
}

/* A host vector of s->extras at its place in the device's copy (NULL stays NULL). */
static const float *on_dev(const hoist_session *s, const cuda_dev *d, const float *host)
{
    return host ? d->extras + (host - s->extras) : NULL;
}

/* o_proj's or down_proj's bias onto the residual stream, where the model has one. */
static int add_bias(const hoist_session *s, cuda_dev *d, const float *bias, uint32_t n)
{
    if (!bias) return HOIST_OK;
    uint32_t H = s->geo.hidden;
    KERNEL_TRY(hoist__k_add_bias(d->stream, d->x, H, on_dev(s, d, bias), n, H), d->id);
    return HOIST_OK;
}

static int run_layer(hoist_session *s, cuda_state *c, cuda_dev *d, uint32_t l, uint32_t n)
{
    const hoist_geometry *g = &s->geo;
    const hoist__layer *L = &s->layers[l];
    uint32_t H = g->hidden, I = g->intermediate;
    float eps = (float)g->rms_eps;
    hoist__qkv_extra ex = {on_dev(s, d, L->bq), on_dev(s, d, L->bk), on_dev(s, d, L->bv),
                           on_dev(s, d, L->q_norm), on_dev(s, d, L->k_norm), eps};
    const hoist__qkv_extra *xp = L->bq || L->bk || L->bv || L->q_norm ? &ex : NULL;
    KERNEL_TRY(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, d->x, L->attn_norm.data,
                                L->attn_norm.dtype, n, H, eps), d->id);
    if (L->qkv_fused) {
        RETURN_IF_ERR(gemm(s, d, L->qkv_base, L->q.dtype, s->qkv_dim, H, d->xn, n, d->qkv,
                           s->qkv_dim, 0));
    } else {
        RETURN_IF_ERR(gemm(s, d, L->q.data, L->q.dtype, s->q_dim, H, d->xn, n, d->qkv + L->q_col,
                           s->qkv_dim, 0));
        RETURN_IF_ERR(gemm(s, d, L->k.data, L->k.dtype, s->kv_dim, H, d->xn, n, d->qkv + L->k_col,
                           s->qkv_dim, 0));
        RETURN_IF_ERR(gemm(s, d, L->v.data, L->v.dtype, s->kv_dim, H, d->xn, n, d->qkv + L->v_col,
                           s->qkv_dim, 0));
    }
    if (n == 1) { /* decode: rotary, cache append and split attention in one kernel */
        KERNEL_TRY(hoist__k_attention_decode(d->stream, d->attn, d->qkv, L->q_col, L->k_col,
                                             L->v_col, c->k_cache[l], c->v_cache[l], s->wdtype,
                                             d->rope_cos, d->rope_sin, d->pos, g->n_heads,
                                             g->n_kv_heads, g->head_dim, d->partial, d->counters,
                                             d->nsplit, s->rope_interleaved, xp), d->id);
    } else {
        KERNEL_TRY(hoist__k_rope_cache(d->stream, d->qkv, s->qkv_dim, L->q_col, L->k_col,
                                       L->v_col, c->k_cache[l], c->v_cache[l], s->wdtype,
                                       d->rope_cos, d->rope_sin, d->pos, n, g->n_heads,
                                       g->n_kv_heads, g->head_dim, s->rope_interleaved, xp),
                   d->id);
        KERNEL_TRY(hoist__k_attention(d->stream, d->attn, d->qkv, s->qkv_dim, L->q_col,
                                      c->k_cache[l], c->v_cache[l], s->wdtype, d->pos, n,
                                      g->n_heads, g->n_kv_heads, g->head_dim), d->id);
    }
    RETURN_IF_ERR(gemm(s, d, L->o.data, L->o.dtype, H, s->q_dim, d->attn, n, d->x, H, 1.0f));
    RETURN_IF_ERR(add_bias(s, d, L->bo, n));
    KERNEL_TRY(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, d->x, L->mlp_norm.data,
                                L->mlp_norm.dtype, n, H, eps), d->id);
    if (L->gu_fused) {
        RETURN_IF_ERR(gemm(s, d, L->gu_base, L->gate.dtype, 2 * I, H, d->xn, n, d->gu, 2 * I,
                           0));
    } else {
        RETURN_IF_ERR(gemm(s, d, L->gate.data, L->gate.dtype, I, H, d->xn, n, d->gu + L->g_col,
                           2 * I, 0));
        RETURN_IF_ERR(gemm(s, d, L->up.data, L->up.dtype, I, H, d->xn, n, d->gu + L->u_col,
                           2 * I, 0));
    }
    KERNEL_TRY(hoist__k_swiglu(d->stream, d->act, s->wdtype, d->gu, 2 * I, L->g_col, L->u_col, n,
                               I, on_dev(s, d, L->bgate), on_dev(s, d, L->bup)), d->id);
    RETURN_IF_ERR(gemm(s, d, L->down.data, L->down.dtype, H, I, d->act, n, d->x, H, 1.0f));
    RETURN_IF_ERR(add_bias(s, d, L->bdown, n));
    return HOIST_OK;
}

/* Hands the residual stream of n tokens from device `from` to device `to`: the copy runs on the
 * sender's stream and the receiver waits for it. */
static int move_x(cuda_state *c, int from, int to, uint32_t n, uint32_t H)
{
    cuda_dev *a = &c->dev[from], *b = &c->dev[to];
    CUDA_TRY(cudaSetDevice(a->id), a->id);
    CUDA_TRY(cudaMemcpyPeerAsync(b->x, b->id, a->x, a->id, (size_t)n * H * 4, a->stream), a->id);
    CUDA_TRY(cudaEventRecord(a->ev, a->stream), a->id);
    CUDA_TRY(cudaSetDevice(b->id), b->id);
    CUDA_TRY(cudaStreamWaitEvent(b->stream, a->ev, 0), b->id);
    return HOIST_OK;
}

/* One forward step of n tokens already in c->tokens: embedding, the layers device by device,
 * the final norm and the head on the last token; with `history`, the argmax is fed back into
 * c->tokens and recorded. Enqueues only: no host synchronization. */
static int step(hoist_session *s, cuda_state *c, uint32_t n, int history)
{
    const hoist_geometry *g = &s->geo;
    uint32_t H = g->hidden;
    int cur = c->embed_dev;
    cuda_dev *d = &c->dev[cur];
    CUDA_TRY(cudaSetDevice(d->id), d->id);
    KERNEL_TRY(hoist__k_embed(d->stream, d->x, s->embed.data, s->embed.dtype, c->tokens, n, H),
               d->id);
    for (uint32_t l = 0; l < g->n_layers; l++) {
        if (c->layer_dev[l] != cur) {
            RETURN_IF_ERR(move_x(c, cur, c->layer_dev[l], n, H));
            cur = c->layer_dev[l];
            d = &c->dev[cur];
        }
        RETURN_IF_ERR(run_layer(s, c, d, l, n));
    }
    /* every device is done with this step's positions (stream order covers the next step) */
    for (int i = 0; i < c->ndev; i++) {
        if (!c->dev[i].has_layers) continue;
        CUDA_TRY(cudaSetDevice(c->dev[i].id), c->dev[i].id);
        KERNEL_TRY(hoist__k_advance(c->dev[i].stream, c->dev[i].pos, n), c->dev[i].id);
    }
    CUDA_TRY(cudaSetDevice(d->id), d->id);
    if (c->head_dev != cur) {
        RETURN_IF_ERR(move_x(c, cur, c->head_dev, n, H));
        cur = c->head_dev;
        d = &c->dev[cur];
    }
    KERNEL_TRY(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, d->x + (size_t)(n - 1) * H,
                                s->final_norm.data, s->final_norm.dtype, 1, H,
                                (float)g->rms_eps), d->id);
    RETURN_IF_ERR(gemm(s, d, s->head.data, s->head.dtype, g->vocab, H, d->xn, 1, c->logits,
                       g->vocab, 0));
    if (!history) return HOIST_OK;
    cuda_dev *e = &c->dev[c->embed_dev];
    int32_t *dst = c->head_dev == c->embed_dev ? c->tokens : c->token;
    KERNEL_TRY(hoist__k_argmax(d->stream, c->logits, g->vocab, dst, c->history, c->count,
                               c->argmax_scratch), d->id);
    if (dst != c->tokens)
        CUDA_TRY(cudaMemcpyPeerAsync(c->tokens, e->id, c->token, d->id, 4, d->stream), d->id);
    return HOIST_OK;
}

/* The next step's first device waits for the end of this one (a no-op on one GPU, where stream
 * order already serializes the steps). */
static int chain_steps(cuda_state *c)
{
    if (c->head_dev == c->embed_dev) return HOIST_OK;
    cuda_dev *h = &c->dev[c->head_dev], *e = &c->dev[c->embed_dev];
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    CUDA_TRY(cudaEventRecord(h->ev, h->stream), h->id);
    CUDA_TRY(cudaSetDevice(e->id), e->id);
    CUDA_TRY(cudaStreamWaitEvent(e->stream, h->ev, 0), e->id);
    return HOIST_OK;
}

static int forward_impl(hoist_session *s, const int32_t *tokens, uint32_t n)
{
    cuda_state *c = s->backend;
    cuda_dev *e = &c->dev[c->embed_dev];
    CUDA_TRY(cudaSetDevice(e->id), e->id);
    /* pageable source: the runtime stages it before returning, so tokens may go out of scope */
    CUDA_TRY(cudaMemcpyAsync(c->tokens, tokens, (size_t)n * 4, cudaMemcpyHostToDevice, e->stream),
             e->id);
    RETURN_IF_ERR(step(s, c, n, 0));
    return chain_steps(c);
}

static int sync_impl(hoist_session *s)
{
    cuda_state *c = s->backend;
    for (int i = 0; i < c->ndev; i++) {
        CUDA_TRY(cudaSetDevice(c->dev[i].id), c->dev[i].id);
        CUDA_TRY(cudaStreamSynchronize(c->dev[i].stream), c->dev[i].id);
    }
    return HOIST_OK;
}

static int logits_impl(hoist_session *s, float *out)
{
    cuda_state *c = s->backend;
    cuda_dev *h = &c->dev[c->head_dev];
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    CUDA_TRY(cudaMemcpyAsync(out, c->logits, (size_t)s->geo.vocab * 4, cudaMemcpyDeviceToHost,
                             h->stream), h->id);
    CUDA_TRY(cudaStreamSynchronize(h->stream), h->id);
    return HOIST_OK;
}

static int argmax_impl(hoist_session *s, int32_t *token)
{
    cuda_state *c = s->backend;
    cuda_dev *h = &c->dev[c->head_dev];
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    KERNEL_TRY(hoist__k_argmax(h->stream, c->logits, s->geo.vocab, c->token, NULL, NULL,
                               c->argmax_scratch), h->id);
    CUDA_TRY(cudaMemcpyAsync(token, c->token, 4, cudaMemcpyDeviceToHost, h->stream), h->id);
    CUDA_TRY(cudaStreamSynchronize(h->stream), h->id);
    return HOIST_OK;
}

/* Captures one fed-back decode step as a graph (one GPU only); on any failure the steps are
 * launched directly, which is slower for small models but otherwise the same. */
static void try_graph(hoist_session *s, cuda_state *c)
{
    c->graph_state = -1;
    if (c->ndev != 1 || !s->opts.cuda_graphs) return;
    cuda_dev *d = &c->dev[0];
    cudaGraph_t graph = NULL;
    if (cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    int rc = step(s, c, 1, 1);
    cudaError_t e = cudaStreamEndCapture(d->stream, &graph);
    if (rc == HOIST_OK && e == cudaSuccess && graph &&
        cudaGraphInstantiate(&c->graph, graph, 0) == cudaSuccess)
        c->graph_state = 1;
    else
        hoist__log(HOIST_LOG_WARN, "cuda:%d: decode step not captured as a graph (%s); launching "
                   "its kernels directly", d->id, rc < 0 ? hoist_last_error() : cudaGetErrorString(e));
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    hoist__err_clear();
}

static int greedy_impl(hoist_session *s, uint32_t steps, int32_t *out)
{
    cuda_state *c = s->backend;
    cuda_dev *h = &c->dev[c->head_dev], *e = &c->dev[c->embed_dev];
    /* seed the loop: the argmax of the current logits becomes the first token fed back */
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    int32_t *dst = c->head_dev == c->embed_dev ? c->tokens : c->token;
    KERNEL_TRY(hoist__k_argmax(h->stream, c->logits, s->geo.vocab, dst, NULL, NULL,
                               c->argmax_scratch), h->id);
    if (dst != c->tokens)
        CUDA_TRY(cudaMemcpyPeerAsync(c->tokens, e->id, c->token, h->id, 4, h->stream), h->id);
    CUDA_TRY(cudaMemsetAsync(c->count, 0, 4, h->stream), h->id);
    RETURN_IF_ERR(chain_steps(c));
    if (c->graph_state == 0) try_graph(s, c);
    for (uint32_t i = 0; i < steps; i++) {
        if (c->graph_state == 1) {
            CUDA_TRY(cudaGraphLaunch(c->graph, e->stream), e->id);
        } else {
            RETURN_IF_ERR(step(s, c, 1, 1));
            RETURN_IF_ERR(chain_steps(c));
        }
    }
    CUDA_TRY(cudaSetDevice(h->id), h->id);
    CUDA_TRY(cudaMemcpyAsync(out, c->history, (size_t)steps * 4, cudaMemcpyDeviceToHost,
                             h->stream), h->id);
    RETURN_IF_ERR(sync_impl(s));
    s->pos += steps;
    return HOIST_OK;
}

static int reset_impl(hoist_session *s)
{
    cuda_state *c = s->backend;
    RETURN_IF_ERR(sync_impl(s));
    for (int i = 0; i < c->ndev; i++) {
        CUDA_TRY(cudaSetDevice(c->dev[i].id), c->dev[i].id);
        CUDA_TRY(cudaMemsetAsync(c->dev[i].pos, 0, sizeof(int32_t), c->dev[i].stream),
                 c->dev[i].id);
    }
    return sync_impl(s);
}

/* Dynamic NTK rewrote rows of the host tables: each device's copy takes them in stream order,
 * before the kernels that read them. A pageable source is staged before the call returns. */
static int rope_rows_impl(hoist_session *s, uint32_t first, uint32_t n)
{
    cuda_state *c = s->backend;
    size_t half = s->geo.head_dim / 2, off = (size_t)first * half, bytes = (size_t)n * half * 4;
    for (int i = 0; i < c->ndev; i++) {
        cuda_dev *d = &c->dev[i];
        if (!d->has_layers) continue;
        CUDA_TRY(cudaSetDevice(d->id), d->id);
        CUDA_TRY(cudaMemcpyAsync(d->rope_cos + off, s->rope_cos + off, bytes,
                                 cudaMemcpyHostToDevice, d->stream), d->id);
        CUDA_TRY(cudaMemcpyAsync(d->rope_sin + off, s->rope_sin + off, bytes,
                                 cudaMemcpyHostToDevice, d->stream), d->id);
    }
    return HOIST_OK;
}

/* Every entry point leaves the caller's current device as it found it (an engine's or torch's);
 * inside, the backend switches between its devices freely. */
static int caller_device(void)
{
    int d = -1;
    if (cudaGetDevice(&d) != cudaSuccess) {
        cudaGetLastError();
        d = -1;
    }
    return d;
}

static void restore_device(int d)
{
    if (d >= 0) cudaSetDevice(d);
}

#define KEEP_DEVICE(call)                                                                         \
    do {                                                                                          \
        int kd = caller_device();                                                                 \
        int krc = (call);                                                                         \
        restore_device(kd);                                                                       \
        return krc;                                                                               \
    } while (0)

static int cuda_create(hoist_session *s) { KEEP_DEVICE(create_impl(s)); }
static void cuda_destroy(hoist_session *s)
{
    int kd = caller_device();
    destroy_impl(s);
    restore_device(kd);
}
static int cuda_forward(hoist_session *s, const int32_t *tokens, uint32_t n)
{
    KEEP_DEVICE(forward_impl(s, tokens, n));
}
static int cuda_sync(hoist_session *s) { KEEP_DEVICE(sync_impl(s)); }
static int cuda_logits(hoist_session *s, float *out) { KEEP_DEVICE(logits_impl(s, out)); }
static int cuda_argmax(hoist_session *s, int32_t *token) { KEEP_DEVICE(argmax_impl(s, token)); }
static int cuda_greedy(hoist_session *s, uint32_t steps, int32_t *out)
{
    KEEP_DEVICE(greedy_impl(s, steps, out));
}
static int cuda_reset(hoist_session *s) { KEEP_DEVICE(reset_impl(s)); }
static int cuda_rope_rows(hoist_session *s, uint32_t first, uint32_t n)
{
    KEEP_DEVICE(rope_rows_impl(s, first, n));
}

static const hoist__infer_ops cuda_ops = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .forward = cuda_forward,
    .sync = cuda_sync,
    .logits = cuda_logits,
    .argmax = cuda_argmax,
    .greedy = cuda_greedy,
    .reset = cuda_reset,
    .rope_rows = cuda_rope_rows,
};

const hoist__infer_ops *hoist__infer_cuda(void) { return &cuda_ops; }
