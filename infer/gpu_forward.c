/* The GPU forward pass: gpu/'s matrix products for every matrix (weights straight from the loaded
 * views, activations in the weights' dtype, fp32 accumulation and outputs), the kernels of
 * kernels.cu for the rest. Each layer runs on the device its tensors were placed on; the residual
 * stream moves between devices with peer copies ordered by events. A decode step never waits for
 * the host: positions live in device memory, the argmax of one step feeds the embedding of the
 * next, and on one GPU the step is captured once and replayed as a graph.
 *
 * Every device call goes through gpu/ (hoist__gpu_ops), so that the fault seam can fail each
 * buffer, stream and handle a session makes and the live counters see them; the kernels are
 * queued through kernels.h's launchers on gpu/'s streams. No CUDA header is included here.
 */
#include "infer/infer.h"
#include "infer/kernels.h"
#include "gpu/gpu.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64
#define BLAS_WORKSPACE (32u << 20) /* what cuBLAS asks for on Hopper; fixed so graphs can capture */
/* A Q8_0 matrix is dequantized into the activation dtype this many bytes of rows at a time (at
 * least one row), each slice multiplied as it is ready. */
#define DEQUANT_BYTES (32u << 20)
/* The products of a one-token step: the fused decode kernels of kernels.h (a layer in five
 * launches), or cuBLAS and the staged Q8_0 kernel. Measured on 2026-12-05 (docs/BENCHMARKS.md),
 * a bf16 Llama-8B decodes faster fused (220 against 214 tok/s on an H200, 170 against 161 on an
 * H100), and so does a Q8_0 one once its launches are unsplit (253 against 247 on an H100), so
 * every model decodes fused. HOIST_DECODE_KERNELS=cublas (or =fused) picks a path for a session,
 * so that both can be measured in one build. */
#define FUSED_BY_DEFAULT 1

typedef struct gpu_dev {
    int id;
    hoist__stream *stream;
    hoist__event *ev;         /* the end of this device's part of the step, for the next device */
    hoist__blas *blas;        /* products on stream */
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
} gpu_dev;

typedef struct gpu_state {
    const hoist__gpu_ops *g;
    const hoist__gpu_blas_ops *blas;
    /* The entry call in progress keeps the caller's current device here (a session is used by
     * one thread at a time), and switches between its own devices through it. */
    hoist__device_scope scope;
    gpu_dev dev[MAX_DEVICES];
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
    hoist__graph *graph;
    int graph_state;          /* 0 not tried, 1 ready, -1 failed (launch directly) */
    int fused;                /* one-token steps run the fused decode kernels (FUSED_BY_DEFAULT) */
} gpu_state;

/* Kernels and products go to the current device: each is queued after making its device so. */
static int use(gpu_state *c, const gpu_dev *d) { return c->g->scope_switch(&c->scope, d->id); }

/* y[n][ldy] (+)= x[n][cols] . W[rows][cols]^T, W in the activation dtype; one token makes it a
 * matrix-vector product. */
static int gemm_float(const hoist_session *s, gpu_state *c, gpu_dev *d, const void *w,
                      uint32_t rows, uint32_t cols, const void *x, uint32_t n, float *y,
                      uint32_t ldy, float beta)
{
    hoist__gemm m = {.m = rows, .n = n, .k = cols, .a = w, .lda = cols, .b = x, .ldb = cols,
                     .ab_dtype = s->wdtype, .c = y, .ldc = ldy, .c_dtype = HOIST_DTYPE_F32,
                     .alpha = 1.0f, .beta = beta};
    return c->blas->gemm(d->blas, &m);
}

/* The same for W of dtype wdt. A Q8_0 matrix times one token (a decode step) is one fused
 * kernel that reads the blocks once; times a prompt it is dequantized slice by slice of rows into
 * d->dq, each slice's product writing its own columns of y, so that cuBLAS does the heavy part. */
static int gemm(const hoist_session *s, gpu_state *c, gpu_dev *d, const void *w, hoist_dtype wdt,
                uint32_t rows, uint32_t cols, const void *x, uint32_t n, float *y, uint32_t ldy,
                float beta)
{
    if (wdt != HOIST_DTYPE_Q8_0) return gemm_float(s, c, d, w, rows, cols, x, n, y, ldy, beta);
    if (n == 1) return hoist__k_gemv_q8_0(d->stream, y, w, x, s->wdtype, rows, cols, beta);
    uint64_t row_q = (uint64_t)cols / HOIST_Q8_0_BLOCK * HOIST_Q8_0_BYTES;
    uint64_t slice = d->dq_bytes / ((uint64_t)cols * c->es);
    for (uint32_t r0 = 0; r0 < rows;) {
        uint32_t nr = rows - r0 < slice ? rows - r0 : (uint32_t)slice;
        RETURN_IF_ERR(hoist__k_dequant_q8_0(d->stream, d->dq, s->wdtype,
                                            (const uint8_t *)w + r0 * row_q, (uint64_t)nr * cols));
        RETURN_IF_ERR(gemm_float(s, c, d, d->dq, nr, cols, x, n, y + r0, ldy, beta));
        r0 += nr;
    }
    return HOIST_OK;
}

static int dev_index(gpu_state *c, int id)
{
    for (int i = 0; i < c->ndev; i++)
        if (c->dev[i].id == id) return i;
    c->dev[c->ndev].id = id;
    return c->ndev++;
}

/* Through gpu/'s allocator, as the loader's arenas are: the fault seam can fail it and
 * hoist__gpu_live counts it. */
static int dev_alloc(hoist_session *s, gpu_state *c, const gpu_dev *d, void **p, uint64_t bytes,
                     const char *what)
{
    int rc = c->g->mem_alloc(d->id, bytes, p);
    if (rc < 0) {
        *p = NULL;
        return hoist__err_prefix(rc, "the session's %s", what);
    }
    s->stats.device_bytes += bytes;
    return HOIST_OK;
}

/* Waits for the device's work, then gives back what it holds (any part may be missing: a
 * session whose creation failed part way is released the same way). */
static void release_dev(gpu_state *c, int i)
{
    const hoist__gpu_ops *g = c->g;
    gpu_dev *d = &c->dev[i];
    if (d->stream) g->stream_sync(d->stream);
    c->blas->destroy(d->blas);
    void *bufs[] = {d->pos, d->x, d->xn, d->qkv, d->attn, d->gu, d->act, d->rope_cos,
                    d->rope_sin, d->cache, d->partial, d->counters, d->dq, d->extras};
    for (size_t b = 0; b < sizeof bufs / sizeof *bufs; b++) g->mem_free(d->id, bufs[b]);
    if (i == c->embed_dev) g->mem_free(d->id, c->tokens);
    if (i == c->head_dev) {
        void *head[] = {c->logits, c->token, c->history, c->count, c->argmax_scratch};
        for (size_t b = 0; b < sizeof head / sizeof *head; b++) g->mem_free(d->id, head[b]);
    }
    g->event_destroy(d->ev);
    g->stream_destroy(d->stream);
}

static void destroy_impl(hoist_session *s)
{
    gpu_state *c = s->backend;
    if (!c) return;
    if (c->g) {
        c->g->graph_destroy(c->graph);
        for (int i = 0; i < c->ndev; i++) release_dev(c, i);
    }
    hoist__free(c->layer_dev);
    hoist__free(c->k_cache);
    hoist__free(c->v_cache);
    hoist__free(c);
    s->backend = NULL;
}

/* The rotary tables and the decode attention's scratch of a device that runs layers. */
static int dev_layers(hoist_session *s, gpu_state *c, gpu_dev *d)
{
    const hoist_geometry *g = &s->geo;
    const hoist__gpu_ops *ops = c->g;
    uint64_t B = s->max_batch, es = c->es;
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->qkv, B * s->qkv_dim * 4, "q/k/v outputs"));
    RETURN_IF_ERR(dev_alloc(s, c, d, &d->attn, B * s->q_dim * es, "attention outputs"));
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->gu, B * 2 * g->intermediate * 4,
                            "gate/up outputs"));
    RETURN_IF_ERR(dev_alloc(s, c, d, &d->act, B * g->intermediate * es, "MLP activations"));
    uint64_t tab = (uint64_t)s->max_tokens * (g->head_dim / 2) * sizeof(float);
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->rope_cos, tab, "rotary table"));
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->rope_sin, tab, "rotary table"));
    /* the host tables live as long as the session, past the copies */
    RETURN_IF_ERR(ops->copy_h2d(d->rope_cos, s->rope_cos, tab, d->stream));
    RETURN_IF_ERR(ops->copy_h2d(d->rope_sin, s->rope_sin, tab, d->stream));
    if (s->extras) {
        uint64_t eb = (uint64_t)s->extras_floats * sizeof(float);
        RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->extras, eb, "biases and q/k norms"));
        RETURN_IF_ERR(ops->copy_h2d(d->extras, s->extras, eb, d->stream));
    }
    /* enough blocks per head to cover the SMs a few times over, never more than positions */
    int sms = 0;
    RETURN_IF_ERR(ops->multiprocessors(d->id, &sms));
    uint32_t want = (uint32_t)(4 * (sms > 0 ? sms : 1) + g->n_heads - 1) / g->n_heads;
    d->nsplit = want < 1 ? 1 : want > 32 ? 32 : want; /* kernels.cu allows 64 */
    if (d->nsplit > s->max_tokens) d->nsplit = s->max_tokens;
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->partial,
                            (uint64_t)g->n_heads * d->nsplit * (g->head_dim + 2) * 4,
                            "attention partial sums"));
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->counters, (uint64_t)g->n_heads * 4,
                            "attention counters"));
    return ops->memset_async(d->counters, 0, (size_t)g->n_heads * 4, d->stream);
}

static int dev_create(hoist_session *s, gpu_state *c, gpu_dev *d)
{
    const hoist_geometry *g = &s->geo;
    const hoist__gpu_ops *ops = c->g;
    uint64_t B = s->max_batch, es = c->es;
    RETURN_IF_ERR(use(c, d));
    RETURN_IF_ERR(ops->stream_create(d->id, &d->stream));
    RETURN_IF_ERR(ops->event_create(d->id, &d->ev));
    RETURN_IF_ERR(c->blas->create(d->stream, BLAS_WORKSPACE, &d->blas));
    s->stats.device_bytes += BLAS_WORKSPACE;
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->pos, sizeof(int32_t), "position"));
    RETURN_IF_ERR(dev_alloc(s, c, d, (void **)&d->x, B * g->hidden * 4, "residual stream"));
    RETURN_IF_ERR(dev_alloc(s, c, d, &d->xn, B * g->hidden * es, "normalized activations"));
    if (s->has_q8_0) {
        /* the widest row of any matrix (the head's or down's) fits at least once */
        uint64_t widest = g->hidden > g->intermediate ? g->hidden : g->intermediate;
        if (s->q_dim > widest) widest = s->q_dim;
        d->dq_bytes = widest * es > DEQUANT_BYTES ? widest * es : DEQUANT_BYTES;
        RETURN_IF_ERR(dev_alloc(s, c, d, &d->dq, d->dq_bytes, "Q8_0 dequantization slice"));
    }
    if (d->has_layers) RETURN_IF_ERR(dev_layers(s, c, d));
    return ops->memset_async(d->pos, 0, sizeof(int32_t), d->stream);
}

/* Each device's share of the KV cache in one allocation, split per layer. */
static int alloc_caches(hoist_session *s, gpu_state *c)
{
    uint64_t per_layer = s->kv_bytes / s->geo.n_layers / 2;
    for (int i = 0; i < c->ndev; i++) {
        gpu_dev *d = &c->dev[i];
        uint32_t nl = 0;
        for (uint32_t l = 0; l < s->geo.n_layers; l++) nl += c->layer_dev[l] == i;
        if (!nl) continue;
        RETURN_IF_ERR(dev_alloc(s, c, d, &d->cache, 2 * per_layer * nl, "KV cache"));
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

/* The devices the session's views were placed on, in first-use order. */
static int map_devices(hoist_session *s, gpu_state *c)
{
    int devices = 0;
    RETURN_IF_ERR(c->g->device_count(&devices));
    RETURN_IF(devices > MAX_DEVICES, HOIST_E_UNSUPPORTED, "%d CUDA devices (at most %d)", devices,
              MAX_DEVICES);
    c->embed_dev = dev_index(c, s->embed.device);
    for (uint32_t l = 0; l < s->geo.n_layers; l++) {
        c->layer_dev[l] = dev_index(c, s->layers[l].device);
        c->dev[c->layer_dev[l]].has_layers = 1;
    }
    c->head_dev = dev_index(c, s->head.device);
    return HOIST_OK;
}

/* The token buffers at both ends of the step. */
static int alloc_ends(hoist_session *s, gpu_state *c)
{
    const hoist_geometry *g = &s->geo;
    gpu_dev *e = &c->dev[c->embed_dev], *h = &c->dev[c->head_dev];
    RETURN_IF_ERR(dev_alloc(s, c, e, (void **)&c->tokens, (uint64_t)s->max_batch * 4, "tokens"));
    RETURN_IF_ERR(dev_alloc(s, c, h, (void **)&c->logits, (uint64_t)g->vocab * 4, "logits"));
    RETURN_IF_ERR(dev_alloc(s, c, h, (void **)&c->token, 4, "argmax"));
    RETURN_IF_ERR(dev_alloc(s, c, h, (void **)&c->history, (uint64_t)s->max_tokens * 4,
                            "tokens"));
    RETURN_IF_ERR(dev_alloc(s, c, h, (void **)&c->count, 4, "token count"));
    RETURN_IF_ERR(dev_alloc(s, c, h, &c->argmax_scratch, HOIST_ARGMAX_SCRATCH,
                            "argmax scratch"));
    RETURN_IF_ERR(use(c, h));
    return c->g->memset_async(c->argmax_scratch, 0, HOIST_ARGMAX_SCRATCH, h->stream);
}

static int sync_impl(hoist_session *s)
{
    gpu_state *c = s->backend;
    for (int i = 0; i < c->ndev; i++) RETURN_IF_ERR(c->g->stream_sync(c->dev[i].stream));
    return HOIST_OK;
}

/* Inside the scope create_impl entered. */
static int build(hoist_session *s, gpu_state *c)
{
    for (int i = 0; i < c->ndev; i++) RETURN_IF_ERR(dev_create(s, c, &c->dev[i]));
    for (int i = 0; i < c->ndev; i++)
        for (int j = 0; j < c->ndev; j++)
            if (i != j) c->g->peer_enable(c->dev[i].id, c->dev[j].id);
    RETURN_IF_ERR(alloc_caches(s, c));
    RETURN_IF_ERR(alloc_ends(s, c));
    return sync_impl(s); /* setup failures show here, not in the first step */
}

static int create_impl(hoist_session *s)
{
    const hoist_geometry *g = &s->geo;
    RETURN_IF(g->head_dim > HOIST_INFER_MAX_HEAD_DIM, HOIST_E_UNSUPPORTED,
              "head_dim %u: the CUDA attention kernels take at most %u", g->head_dim,
              HOIST_INFER_MAX_HEAD_DIM);
    gpu_state *c = hoist__calloc(1, sizeof *c);
    RETURN_IF(!c, HOIST_E_NOMEM, "out of memory for the CUDA session");
    s->backend = c;
    s->stats.device_bytes = 0;
    c->es = hoist_dtype_bits(s->wdtype) / 8;
    c->layer_dev = hoist__calloc(g->n_layers, sizeof *c->layer_dev);
    c->k_cache = hoist__calloc(g->n_layers, sizeof *c->k_cache);
    c->v_cache = hoist__calloc(g->n_layers, sizeof *c->v_cache);
    RETURN_IF(!c->layer_dev || !c->k_cache || !c->v_cache, HOIST_E_NOMEM,
              "out of memory for %u layers", g->n_layers);
    const hoist__gpu_ops *ops = NULL;
    RETURN_IF_ERR(hoist__gpu_for_device(s->embed.device, &ops));
    c->blas = hoist__gpu_blas(ops);
    RETURN_IF(!c->blas || !ops->scope_enter, HOIST_E_UNSUPPORTED,
              "device %d: the %s backend runs no inference", s->embed.device, ops->name);
    c->g = ops;
    const char *dk = getenv("HOIST_DECODE_KERNELS");
    c->fused = dk && *dk ? strcmp(dk, "fused") == 0 : FUSED_BY_DEFAULT;
    if (dk && *dk && strcmp(dk, "fused") != 0 && strcmp(dk, "cublas") != 0)
        hoist__log(HOIST_LOG_WARN, "HOIST_DECODE_KERNELS=%s: expected fused or cublas", dk);
    hoist__log(HOIST_LOG_DEBUG, "decode steps run the %s kernels", c->fused ? "fused" : "cublas");
    /* HOIST_DECODE_SPLIT=1, 2, 4 or 8 forces every few-row product's split (hoist__k_force_split,
     * process-wide), for A/B runs of the split rules */
    const char *sp = getenv("HOIST_DECODE_SPLIT");
    if (sp && *sp) {
        unsigned split = (unsigned)strtoul(sp, NULL, 10);
        if (split != 1 && split != 2 && split != 4 && split != 8)
            hoist__log(HOIST_LOG_WARN, "HOIST_DECODE_SPLIT=%s: expected 1, 2, 4 or 8", sp);
        hoist__k_force_split(split);
    }
    RETURN_IF_ERR(map_devices(s, c));
    RETURN_IF_ERR(ops->scope_enter(&c->scope, c->dev[c->embed_dev].id));
    int rc = build(s, c);
    ops->scope_leave(&c->scope);
    return rc;
}

/* A host vector of s->extras at its place in the device's copy (NULL stays NULL). */
static const float *on_dev(const hoist_session *s, const gpu_dev *d, const float *host)
{
    return host ? d->extras + (host - s->extras) : NULL;
}

/* o_proj's or down_proj's bias onto the residual stream, where the model has one. */
static int add_bias(const hoist_session *s, gpu_dev *d, const float *bias, uint32_t n)
{
    if (!bias) return HOIST_OK;
    uint32_t H = s->geo.hidden;
    return hoist__k_add_bias(d->stream, d->x, H, on_dev(s, d, bias), n, H);
}

/* Whether the fused decode kernels take matrix v of `cols` columns (kernels.h says which); a
 * part of the layer whose matrices do not all qualify runs today's kernels instead. */
static int takes(const hoist_session *s, const hoist_view *v, uint32_t cols)
{
    return hoist__k_decode_takes(v->data, v->dtype, s->wdtype, cols);
}

/* The q/k/v projection as the matrices multiplied: the fused q/k/v matrix, or q, k and v
 * apart, each with its rows and the column of d->qkv its outputs start at. */
typedef struct qkv_part {
    const void *w;
    hoist_dtype dtype;
    uint32_t rows, col;
} qkv_part;

static int qkv_parts(const hoist_session *s, const hoist__layer *L, qkv_part p[3])
{
    if (L->qkv_fused) {
        p[0] = (qkv_part){L->qkv_base, L->q.dtype, s->qkv_dim, 0};
        return 1;
    }
    p[0] = (qkv_part){L->q.data, L->q.dtype, s->q_dim, L->q_col};
    p[1] = (qkv_part){L->k.data, L->k.dtype, s->kv_dim, L->k_col};
    p[2] = (qkv_part){L->v.data, L->v.dtype, s->kv_dim, L->v_col};
    return 3;
}

static int qkv_takes(const hoist_session *s, const hoist__layer *L)
{
    qkv_part p[3];
    int np = qkv_parts(s, L, p);
    for (int i = 0; i < np; i++)
        if (!hoist__k_decode_takes(p[i].w, p[i].dtype, s->wdtype, s->geo.hidden)) return 0;
    return 1;
}

/* One kernel reads gate row i and up row i: of one dtype, wherever each tensor lies (a fused
 * gate/up matrix's views point at its parts). */
static int mlp_takes(const hoist_session *s, const hoist__layer *L)
{
    uint32_t H = s->geo.hidden;
    return L->gate.dtype == L->up.dtype && takes(s, &L->gate, H) && takes(s, &L->up, H);
}

/* The q/k/v products of a token with the attention norm in front, from the residual stream: the
 * norm in the products' kernels where their launches are small enough for it
 * (hoist__k_decode_norm_fuses), else once into d->xn, then the plain products (same bits). */
static int norm_qkv(const hoist_session *s, gpu_dev *d, const hoist__layer *L)
{
    uint32_t H = s->geo.hidden;
    float eps = (float)s->geo.rms_eps;
    const void *nw = L->attn_norm.data;
    hoist_dtype nd = L->attn_norm.dtype, wt = s->wdtype;
    qkv_part p[3];
    int np = qkv_parts(s, L, p), fuse = 1;
    for (int i = 0; i < np; i++)
        fuse = fuse && hoist__k_decode_norm_fuses(d->stream, p[i].dtype, wt, p[i].rows, H, 0);
    if (!fuse) RETURN_IF_ERR(hoist__k_rmsnorm(d->stream, d->xn, wt, d->x, nw, nd, 1, H, eps));
    for (int i = 0; i < np; i++) {
        float *y = d->qkv + p[i].col;
        RETURN_IF_ERR(fuse ? hoist__k_decode_norm_gemv(d->stream, y, p[i].w, p[i].dtype, d->x, nw,
                                                       nd, eps, wt, p[i].rows, H, 0.0f)
                           : hoist__k_decode_gemv(d->stream, y, p[i].w, p[i].dtype, d->xn, wt,
                                                  p[i].rows, H, 0.0f, NULL));
    }
    return HOIST_OK;
}

/* The MLP norm, gate/up products and SwiGLU of a token into d->act, the norm fused or not as
 * norm_qkv decides it. */
static int norm_swiglu(const hoist_session *s, gpu_dev *d, const hoist__layer *L)
{
    uint32_t H = s->geo.hidden, I = s->geo.intermediate;
    float eps = (float)s->geo.rms_eps;
    hoist_dtype wt = s->wdtype;
    const float *bg = on_dev(s, d, L->bgate), *bu = on_dev(s, d, L->bup);
    if (hoist__k_decode_norm_fuses(d->stream, L->gate.dtype, wt, I, H, 1))
        return hoist__k_decode_norm_swiglu(d->stream, d->act, wt, L->gate.data, L->up.data,
                                           L->gate.dtype, d->x, L->mlp_norm.data,
                                           L->mlp_norm.dtype, eps, I, H, bg, bu);
    RETURN_IF_ERR(hoist__k_rmsnorm(d->stream, d->xn, wt, d->x, L->mlp_norm.data,
                                   L->mlp_norm.dtype, 1, H, eps));
    return hoist__k_decode_swiglu(d->stream, d->act, wt, L->gate.data, L->up.data, L->gate.dtype,
                                  d->xn, I, H, bg, bu);
}

/* The q/k/v products of n tokens of d->xn. */
static int qkv_products(const hoist_session *s, gpu_state *c, gpu_dev *d, const hoist__layer *L,
                        uint32_t n)
{
    qkv_part p[3];
    int np = qkv_parts(s, L, p);
    for (int i = 0; i < np; i++)
        RETURN_IF_ERR(gemm(s, c, d, p[i].w, p[i].dtype, p[i].rows, s->geo.hidden, d->xn, n,
                           d->qkv + p[i].col, s->qkv_dim, 0));
    return HOIST_OK;
}

/* The MLP norm, gate/up products and SwiGLU of n tokens into d->act. */
static int mlp_products(const hoist_session *s, gpu_state *c, gpu_dev *d, const hoist__layer *L,
                        uint32_t n)
{
    uint32_t H = s->geo.hidden, I = s->geo.intermediate;
    RETURN_IF_ERR(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, d->x, L->mlp_norm.data,
                                   L->mlp_norm.dtype, n, H, (float)s->geo.rms_eps));
    if (L->gu_fused) {
        RETURN_IF_ERR(gemm(s, c, d, L->gu_base, L->gate.dtype, 2 * I, H, d->xn, n, d->gu, 2 * I,
                           0));
    } else {
        RETURN_IF_ERR(gemm(s, c, d, L->gate.data, L->gate.dtype, I, H, d->xn, n,
                           d->gu + L->g_col, 2 * I, 0));
        RETURN_IF_ERR(gemm(s, c, d, L->up.data, L->up.dtype, I, H, d->xn, n, d->gu + L->u_col,
                           2 * I, 0));
    }
    return hoist__k_swiglu(d->stream, d->act, s->wdtype, d->gu, 2 * I, L->g_col, L->u_col, n, I,
                           on_dev(s, d, L->bgate), on_dev(s, d, L->bup));
}

/* x += W . in (+ bias): o_proj and down_proj; `fused` folds the bias into the decode kernel. */
static int residual_product(const hoist_session *s, gpu_state *c, gpu_dev *d,
                            const hoist_view *w, const float *bias, uint32_t cols, const void *in,
                            uint32_t n, int fused)
{
    uint32_t H = s->geo.hidden;
    if (fused && takes(s, w, cols))
        return hoist__k_decode_gemv(d->stream, d->x, w->data, w->dtype, in, s->wdtype, H, cols,
                                    1.0f, on_dev(s, d, bias));
    RETURN_IF_ERR(gemm(s, c, d, w->data, w->dtype, H, cols, in, n, d->x, H, 1.0f));
    return add_bias(s, d, bias, n);
}

static int run_layer(hoist_session *s, gpu_state *c, gpu_dev *d, uint32_t l, uint32_t n)
{
    const hoist_geometry *g = &s->geo;
    const hoist__layer *L = &s->layers[l];
    uint32_t H = g->hidden, I = g->intermediate;
    float eps = (float)g->rms_eps;
    hoist__qkv_extra ex = {on_dev(s, d, L->bq), on_dev(s, d, L->bk), on_dev(s, d, L->bv),
                           on_dev(s, d, L->q_norm), on_dev(s, d, L->k_norm), eps};
    const hoist__qkv_extra *xp = L->bq || L->bk || L->bv || L->q_norm ? &ex : NULL;
    int fused = n == 1 && c->fused;
    if (fused && qkv_takes(s, L)) {
        RETURN_IF_ERR(norm_qkv(s, d, L));
    } else {
        RETURN_IF_ERR(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, d->x, L->attn_norm.data,
                                       L->attn_norm.dtype, n, H, eps));
        RETURN_IF_ERR(qkv_products(s, c, d, L, n));
    }
    if (n == 1) { /* decode: rotary, cache append and split attention in one kernel */
        RETURN_IF_ERR(hoist__k_attention_decode(
            d->stream, d->attn, d->qkv, L->q_col, L->k_col, L->v_col, c->k_cache[l],
            c->v_cache[l], s->wdtype, d->rope_cos, d->rope_sin, d->pos, g->n_heads,
            g->n_kv_heads, g->head_dim, d->partial, d->counters, d->nsplit, s->rope_interleaved,
            L->window, xp));
    } else {
        RETURN_IF_ERR(hoist__k_rope_cache(d->stream, d->qkv, s->qkv_dim, L->q_col, L->k_col,
                                          L->v_col, c->k_cache[l], c->v_cache[l], s->wdtype,
                                          d->rope_cos, d->rope_sin, d->pos, n, g->n_heads,
                                          g->n_kv_heads, g->head_dim, s->rope_interleaved, xp));
        RETURN_IF_ERR(hoist__k_attention(d->stream, d->attn, d->qkv, s->qkv_dim, L->q_col,
                                         c->k_cache[l], c->v_cache[l], s->wdtype, d->pos, n,
                                         g->n_heads, g->n_kv_heads, g->head_dim, L->window));
    }
    RETURN_IF_ERR(residual_product(s, c, d, &L->o, L->bo, s->q_dim, d->attn, n, fused));
    if (fused && mlp_takes(s, L))
        RETURN_IF_ERR(norm_swiglu(s, d, L));
    else
        RETURN_IF_ERR(mlp_products(s, c, d, L, n));
    return residual_product(s, c, d, &L->down, L->bdown, I, d->act, n, fused);
}

/* Hands the residual stream of n tokens from device `from` to device `to`: the copy runs on the
 * sender's stream and the receiver waits for it. */
static int move_x(gpu_state *c, int from, int to, uint32_t n, uint32_t H)
{
    const hoist__gpu_ops *g = c->g;
    gpu_dev *a = &c->dev[from], *b = &c->dev[to];
    RETURN_IF_ERR(use(c, a));
    RETURN_IF_ERR(g->copy_peer(b->x, b->id, a->x, a->id, (size_t)n * H * 4, a->stream));
    RETURN_IF_ERR(g->event_record(a->ev, a->stream));
    RETURN_IF_ERR(use(c, b));
    return g->stream_wait(b->stream, a->ev);
}

/* The final norm and the head on the last token's residual: through the fused decode kernels
 * where they take the head (the norm inside the product where its launch is small enough), else
 * the RMSNorm and cuBLAS. */
static int head_logits(const hoist_session *s, gpu_state *c, gpu_dev *d, const float *last)
{
    const hoist_geometry *g = &s->geo;
    uint32_t H = g->hidden;
    float eps = (float)g->rms_eps;
    int fused = c->fused && takes(s, &s->head, H);
    if (fused && hoist__k_decode_norm_fuses(d->stream, s->head.dtype, s->wdtype, g->vocab, H, 0))
        return hoist__k_decode_norm_gemv(d->stream, c->logits, s->head.data, s->head.dtype, last,
                                         s->final_norm.data, s->final_norm.dtype, eps, s->wdtype,
                                         g->vocab, H, 0.0f);
    RETURN_IF_ERR(hoist__k_rmsnorm(d->stream, d->xn, s->wdtype, last, s->final_norm.data,
                                   s->final_norm.dtype, 1, H, eps));
    if (fused) /* too many blocks to norm in each */
        return hoist__k_decode_gemv(d->stream, c->logits, s->head.data, s->head.dtype, d->xn,
                                    s->wdtype, g->vocab, H, 0.0f, NULL);
    return gemm(s, c, d, s->head.data, s->head.dtype, g->vocab, H, d->xn, 1, c->logits, g->vocab,
                0);
}

/* One forward step of n tokens already in c->tokens: embedding, the layers device by device,
 * the final norm and the head on the last token; with `history`, the argmax is fed back into
 * c->tokens and recorded. Enqueues only: no host synchronization. */
static int step(hoist_session *s, gpu_state *c, uint32_t n, int history)
{
    const hoist_geometry *g = &s->geo;
    uint32_t H = g->hidden;
    int cur = c->embed_dev;
    gpu_dev *d = &c->dev[cur];
    RETURN_IF_ERR(use(c, d));
    RETURN_IF_ERR(hoist__k_embed(d->stream, d->x, s->embed.data, s->embed.dtype, c->tokens, n, H));
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
        RETURN_IF_ERR(use(c, &c->dev[i]));
        RETURN_IF_ERR(hoist__k_advance(c->dev[i].stream, c->dev[i].pos, n));
    }
    RETURN_IF_ERR(use(c, d));
    if (c->head_dev != cur) {
        RETURN_IF_ERR(move_x(c, cur, c->head_dev, n, H));
        cur = c->head_dev;
        d = &c->dev[cur];
    }
    RETURN_IF_ERR(head_logits(s, c, d, d->x + (size_t)(n - 1) * H));
    if (!history) return HOIST_OK;
    gpu_dev *e = &c->dev[c->embed_dev];
    int32_t *dst = c->head_dev == c->embed_dev ? c->tokens : c->token;
    RETURN_IF_ERR(hoist__k_argmax(d->stream, c->logits, g->vocab, dst, c->history, c->count,
                                  c->argmax_scratch));
    if (dst == c->tokens) return HOIST_OK;
    return c->g->copy_peer(c->tokens, e->id, c->token, d->id, 4, d->stream);
}

/* The next step's first device waits for the end of this one (a no-op on one GPU, where stream
 * order already serializes the steps). */
static int chain_steps(gpu_state *c)
{
    if (c->head_dev == c->embed_dev) return HOIST_OK;
    gpu_dev *h = &c->dev[c->head_dev], *e = &c->dev[c->embed_dev];
    RETURN_IF_ERR(use(c, h));
    RETURN_IF_ERR(c->g->event_record(h->ev, h->stream));
    RETURN_IF_ERR(use(c, e));
    return c->g->stream_wait(e->stream, h->ev);
}

static int forward_impl(hoist_session *s, const int32_t *tokens, uint32_t n)
{
    gpu_state *c = s->backend;
    gpu_dev *e = &c->dev[c->embed_dev];
    RETURN_IF_ERR(use(c, e));
    /* pageable source: the runtime stages it before returning, so tokens may go out of scope */
    RETURN_IF_ERR(c->g->copy_h2d(c->tokens, tokens, (size_t)n * 4, e->stream));
    RETURN_IF_ERR(step(s, c, n, 0));
    return chain_steps(c);
}

/* Copies `bytes` of the head's device memory to the host once the queued work is done. */
static int read_head(gpu_state *c, void *out, const void *src, size_t bytes)
{
    gpu_dev *h = &c->dev[c->head_dev];
    RETURN_IF_ERR(c->g->copy_d2h_async(out, src, bytes, h->stream));
    return c->g->stream_sync(h->stream);
}

static int logits_impl(hoist_session *s, float *out)
{
    gpu_state *c = s->backend;
    RETURN_IF_ERR(use(c, &c->dev[c->head_dev]));
    return read_head(c, out, c->logits, (size_t)s->geo.vocab * 4);
}

static int argmax_impl(hoist_session *s, int32_t *token)
{
    gpu_state *c = s->backend;
    gpu_dev *h = &c->dev[c->head_dev];
    RETURN_IF_ERR(use(c, h));
    RETURN_IF_ERR(hoist__k_argmax(h->stream, c->logits, s->geo.vocab, c->token, NULL, NULL,
                                  c->argmax_scratch));
    return read_head(c, token, c->token, 4);
}

/* Records one fed-back decode step into c->graph. */
static int capture_step(hoist_session *s, gpu_state *c, gpu_dev *d)
{
    RETURN_IF_ERR(c->g->graph_begin(d->stream));
    int rc = step(s, c, 1, 1);
    if (rc < 0) {
        c->g->graph_abort(d->stream);
        return rc;
    }
    return c->g->graph_end(d->stream, &c->graph);
}

/* Captures the decode step as a graph (one GPU only); on any failure the steps are launched
 * directly, which is slower for small models but otherwise the same. */
static void try_graph(hoist_session *s, gpu_state *c)
{
    c->graph_state = -1;
    if (c->ndev != 1 || !s->opts.cuda_graphs) return;
    if (capture_step(s, c, &c->dev[0]) == HOIST_OK)
        c->graph_state = 1;
    else
        hoist__log(HOIST_LOG_WARN, "cuda:%d: decode step not captured as a graph (%s); launching "
                   "its kernels directly", c->dev[0].id, hoist_last_error());
    hoist__err_clear();
}

static int greedy_impl(hoist_session *s, uint32_t steps, int32_t *out)
{
    gpu_state *c = s->backend;
    const hoist__gpu_ops *g = c->g;
    gpu_dev *h = &c->dev[c->head_dev], *e = &c->dev[c->embed_dev];
    /* seed the loop: the argmax of the current logits becomes the first token fed back */
    RETURN_IF_ERR(use(c, h));
    int32_t *dst = c->head_dev == c->embed_dev ? c->tokens : c->token;
    RETURN_IF_ERR(hoist__k_argmax(h->stream, c->logits, s->geo.vocab, dst, NULL, NULL,
                                  c->argmax_scratch));
    if (dst != c->tokens) RETURN_IF_ERR(g->copy_peer(c->tokens, e->id, c->token, h->id, 4,
                                                     h->stream));
    RETURN_IF_ERR(g->memset_async(c->count, 0, 4, h->stream));
    RETURN_IF_ERR(chain_steps(c));
    if (c->graph_state == 0) try_graph(s, c);
    for (uint32_t i = 0; i < steps; i++) {
        if (c->graph_state == 1) {
            RETURN_IF_ERR(g->graph_launch(c->graph, e->stream));
        } else {
            RETURN_IF_ERR(step(s, c, 1, 1));
            RETURN_IF_ERR(chain_steps(c));
        }
    }
    RETURN_IF_ERR(use(c, h));
    RETURN_IF_ERR(g->copy_d2h_async(out, c->history, (size_t)steps * 4, h->stream));
    RETURN_IF_ERR(sync_impl(s));
    s->pos += steps;
    return HOIST_OK;
}

static int reset_impl(hoist_session *s)
{
    gpu_state *c = s->backend;
    RETURN_IF_ERR(sync_impl(s));
    for (int i = 0; i < c->ndev; i++) {
        RETURN_IF_ERR(use(c, &c->dev[i]));
        RETURN_IF_ERR(c->g->memset_async(c->dev[i].pos, 0, sizeof(int32_t), c->dev[i].stream));
    }
    return sync_impl(s);
}

/* Dynamic NTK rewrote rows of the host tables: each device's copy takes them in stream order,
 * before the kernels that read them. The host rows stay untouched until the session next
 * synchronizes (every prefill and generate ends in a sync), past the copy. */
static int rope_rows_impl(hoist_session *s, uint32_t first, uint32_t n)
{
    gpu_state *c = s->backend;
    size_t half = s->geo.head_dim / 2, off = (size_t)first * half, bytes = (size_t)n * half * 4;
    for (int i = 0; i < c->ndev; i++) {
        gpu_dev *d = &c->dev[i];
        if (!d->has_layers) continue;
        RETURN_IF_ERR(use(c, d));
        RETURN_IF_ERR(c->g->copy_h2d(d->rope_cos + off, s->rope_cos + off, bytes, d->stream));
        RETURN_IF_ERR(c->g->copy_h2d(d->rope_sin + off, s->rope_sin + off, bytes, d->stream));
    }
    return HOIST_OK;
}

/* Every entry point leaves the caller's current device as it found it (an engine's or torch's);
 * inside, the session switches between its devices freely. */
#define IN_SCOPE(s, call)                                                                         \
    do {                                                                                          \
        gpu_state *sc_c = (s)->backend;                                                           \
        RETURN_IF_ERR(sc_c->g->scope_enter(&sc_c->scope, sc_c->dev[sc_c->embed_dev].id));         \
        int sc_rc = (call);                                                                       \
        sc_c->g->scope_leave(&sc_c->scope);                                                       \
        return sc_rc;                                                                             \
    } while (0)

/* Releasing waits for the devices, which can fail too; the session may be going away because
 * of an earlier failure, whose message the caller is about to read. */
static void gpu_destroy(hoist_session *s)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", hoist_last_error());
    destroy_impl(s);
    hoist__err(HOIST_OK, "%s", why);
}
static int gpu_forward(hoist_session *s, const int32_t *tokens, uint32_t n)
{
    IN_SCOPE(s, forward_impl(s, tokens, n));
}
static int gpu_logits(hoist_session *s, float *out) { IN_SCOPE(s, logits_impl(s, out)); }
static int gpu_argmax(hoist_session *s, int32_t *token) { IN_SCOPE(s, argmax_impl(s, token)); }
static int gpu_greedy(hoist_session *s, uint32_t steps, int32_t *out)
{
    IN_SCOPE(s, greedy_impl(s, steps, out));
}
static int gpu_reset(hoist_session *s) { IN_SCOPE(s, reset_impl(s)); }
static int gpu_rope_rows(hoist_session *s, uint32_t first, uint32_t n)
{
    IN_SCOPE(s, rope_rows_impl(s, first, n));
}

/* The name is what hoist_session_stats reports: these sessions run on CUDA devices. */
static const hoist__infer_ops gpu_ops = {
    .name = "cuda",
    .create = create_impl,
    .destroy = gpu_destroy,
    .forward = gpu_forward,
    .sync = sync_impl,
    .logits = gpu_logits,
    .argmax = gpu_argmax,
    .greedy = gpu_greedy,
    .reset = gpu_reset,
    .rope_rows = gpu_rope_rows,
};

const hoist__infer_ops *hoist__infer_gpu(void) { return &gpu_ops; }
