/* The fp32 reference: every block in plain C, one token at a time, weights converted element by
 * element from the views (no copies), fp32 accumulation in a fixed order. The GPU path is tested
 * against it, and it runs models on machines without a GPU. */
#include "infer/infer.h"
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float hoist__bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float hoist__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* infinity or NaN */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else { /* subnormal: man * 2^-24, exact in float */
        float f = (float)man * 5.9604644775390625e-8f;
        memcpy(&u, &f, sizeof u);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Element i of Q8_0 data: block i / 32 holds an f16 scale and 32 int8. Blocks run along rows,
 * whose length is a multiple of 32, so the flat index works across rows too. */
static float q8_0_at(const void *p, size_t i)
{
    const uint8_t *b = (const uint8_t *)p + i / HOIST_Q8_0_BLOCK * HOIST_Q8_0_BYTES;
    uint16_t d;
    memcpy(&d, b, 2);
    return hoist__f16_to_f32(d) * (float)(int8_t)b[2 + i % HOIST_Q8_0_BLOCK];
}

float hoist__load_f32(const void *p, hoist_dtype dtype, size_t i)
{
    switch (dtype) {
    case HOIST_DTYPE_BF16: return hoist__bf16_to_f32(((const uint16_t *)p)[i]);
    case HOIST_DTYPE_F16: return hoist__f16_to_f32(((const uint16_t *)p)[i]);
    case HOIST_DTYPE_Q8_0: return q8_0_at(p, i);
    default: return ((const float *)p)[i];
    }
}

void hoist__ref_embed(float *out, const void *table, hoist_dtype dtype, uint32_t row, uint32_t n)
{
    size_t base = (size_t)row * n;
    for (uint32_t i = 0; i < n; i++) out[i] = hoist__load_f32(table, dtype, base + i);
}

void hoist__ref_rmsnorm(float *out, const float *x, const void *w, hoist_dtype wdtype, uint32_t n,
                        float eps)
{
    float ss = 0.0f;
    for (uint32_t i = 0; i < n; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (uint32_t i = 0; i < n; i++) out[i] = x[i] * inv * hoist__load_f32(w, wdtype, i);
}

/* The inner loops are per dtype so that the conversion is a shift the compiler can vectorize. */
void hoist__ref_matvec(float *y, const void *w, hoist_dtype wdtype, uint32_t rows, uint32_t cols,
                       const float *x, int accumulate)
{
    for (uint32_t r = 0; r < rows; r++) {
        size_t base = (size_t)r * cols;
        float acc = 0.0f;
        if (wdtype == HOIST_DTYPE_BF16) {
            const uint16_t *row = (const uint16_t *)w + base;
            for (uint32_t c = 0; c < cols; c++) acc += hoist__bf16_to_f32(row[c]) * x[c];
        } else if (wdtype == HOIST_DTYPE_F16) {
            const uint16_t *row = (const uint16_t *)w + base;
            for (uint32_t c = 0; c < cols; c++) acc += hoist__f16_to_f32(row[c]) * x[c];
        } else if (wdtype == HOIST_DTYPE_Q8_0) {
            /* the dequantized value times x, in the same order as the other dtypes */
            const uint8_t *row = (const uint8_t *)w + base / HOIST_Q8_0_BLOCK * HOIST_Q8_0_BYTES;
            for (uint32_t b = 0; b < cols / HOIST_Q8_0_BLOCK; b++, row += HOIST_Q8_0_BYTES) {
                uint16_t dh;
                memcpy(&dh, row, 2);
                float d = hoist__f16_to_f32(dh);
                const float *xb = x + (size_t)b * HOIST_Q8_0_BLOCK;
                for (uint32_t j = 0; j < HOIST_Q8_0_BLOCK; j++)
                    acc += d * (float)(int8_t)row[2 + j] * xb[j];
            }
        } else {
            const float *row = (const float *)w + base;
            for (uint32_t c = 0; c < cols; c++) acc += row[c] * x[c];
        }
        y[r] = accumulate ? y[r] + acc : acc;
    }
}

void hoist__ref_rope_pairs(float *x, uint32_t n_heads, uint32_t head_dim, const float *cos_row,
                           const float *sin_row, int interleaved)
{
    uint32_t half = head_dim / 2;
    float out[HOIST__REF_MAX_HEAD_DIM];
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (uint32_t i = 0; i < half; i++) {
            uint32_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
            float a = v[ia], b = v[ib];
            out[i] = a * cos_row[i] - b * sin_row[i];
            out[i + half] = b * cos_row[i] + a * sin_row[i];
        }
        memcpy(v, out, (size_t)2 * half * sizeof *v);
    }
}

void hoist__ref_rope(float *x, uint32_t n_heads, uint32_t head_dim, const float *cos_row,
                     const float *sin_row)
{
    hoist__ref_rope_pairs(x, n_heads, head_dim, cos_row, sin_row, 0);
}

void hoist__ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                          uint32_t n_keys, uint32_t n_heads, uint32_t n_kv_heads,
                          uint32_t head_dim, float *scores)
{
    uint32_t group = n_heads / n_kv_heads;
    size_t stride = (size_t)n_kv_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (uint32_t h = 0; h < n_heads; h++) {
        const float *qh = q + (size_t)h * head_dim;
        size_t kv_off = (size_t)(h / group) * head_dim;
        float mx = -INFINITY;
        for (uint32_t j = 0; j < n_keys; j++) {
            const float *k = k_cache + j * stride + kv_off;
            float d = 0.0f;
            for (uint32_t i = 0; i < head_dim; i++) d += qh[i] * k[i];
            scores[j] = d * scale;
            if (scores[j] > mx) mx = scores[j];
        }
        float sum = 0.0f;
        for (uint32_t j = 0; j < n_keys; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        float *oh = out + (size_t)h * head_dim;
        for (uint32_t i = 0; i < head_dim; i++) oh[i] = 0.0f;
        for (uint32_t j = 0; j < n_keys; j++) {
            const float *v = v_cache + j * stride + kv_off;
            float p = scores[j] / sum;
            for (uint32_t i = 0; i < head_dim; i++) oh[i] += p * v[i];
        }
    }
}

void hoist__ref_add(float *x, const float *b, uint32_t n)
{
    if (!b) return;
    for (uint32_t i = 0; i < n; i++) x[i] += b[i];
}

void hoist__ref_head_norm(float *x, const float *w, uint32_t n_heads, uint32_t head_dim,
                          float eps)
{
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        float ss = 0.0f;
        for (uint32_t i = 0; i < head_dim; i++) ss += v[i] * v[i];
        float inv = 1.0f / sqrtf(ss / (float)head_dim + eps);
        for (uint32_t i = 0; i < head_dim; i++) v[i] = v[i] * inv * w[i];
    }
}

void hoist__ref_swiglu(float *out, const float *gate, const float *up, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

uint32_t hoist__ref_argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    float bv = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        if (x[i] > bv) {
            bv = x[i];
            best = i;
        }
    }
    return best;
}

/* ---- the CPU backend -------------------------------------------------------------------- */

typedef struct cpu_state {
    float *k_cache, *v_cache; /* [layer][max_tokens][kv_dim] */
    float *x, *xn, *q, *k, *v, *attn, *gate, *up, *scores, *logits;
} cpu_state;

static void cpu_destroy(hoist_session *s)
{
    cpu_state *c = s->backend;
    if (!c) return;
    hoist__free(c->k_cache);
    hoist__free(c->v_cache);
    hoist__free(c->x);
    hoist__free(c->xn);
    hoist__free(c->q);
    hoist__free(c->k);
    hoist__free(c->v);
    hoist__free(c->attn);
    hoist__free(c->gate);
    hoist__free(c->up);
    hoist__free(c->scores);
    hoist__free(c->logits);
    hoist__free(c);
    s->backend = NULL;
}

static int cpu_create(hoist_session *s)
{
    const hoist_geometry *g = &s->geo;
    cpu_state *c = hoist__calloc(1, sizeof *c);
    RETURN_IF(!c, HOIST_E_NOMEM, "out of memory for the CPU session");
    s->backend = c;
    uint64_t cache = s->kv_bytes / 2; /* f32: at least max_tokens * kv_dim floats per layer */
    RETURN_IF(cache > SIZE_MAX, HOIST_E_OVERFLOW, "KV cache of %llu bytes", (unsigned long long)cache);
    /* calloc: the kernel hands out zero pages lazily, so a large cache costs only what is used */
    c->k_cache = hoist__calloc(1, (size_t)cache);
    c->v_cache = hoist__calloc(1, (size_t)cache);
    c->x = hoist__calloc(g->hidden, sizeof(float));
    c->xn = hoist__calloc(g->hidden, sizeof(float));
    c->q = hoist__calloc(s->q_dim, sizeof(float));
    c->k = hoist__calloc(s->kv_dim, sizeof(float));
    c->v = hoist__calloc(s->kv_dim, sizeof(float));
    c->attn = hoist__calloc(s->q_dim, sizeof(float));
    c->gate = hoist__calloc(g->intermediate, sizeof(float));
    c->up = hoist__calloc(g->intermediate, sizeof(float));
    c->scores = hoist__calloc(s->max_tokens, sizeof(float));
    c->logits = hoist__calloc(g->vocab, sizeof(float));
    if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->q || !c->k || !c->v || !c->attn ||
        !c->gate || !c->up || !c->scores || !c->logits) {
        cpu_destroy(s);
        return hoist__err(HOIST_E_NOMEM, "out of host memory for a %llu-byte KV cache",
                          (unsigned long long)(2 * cache));
    }
    s->stats.device_bytes = 2 * cache;
    return HOIST_OK;
}

static void cpu_token(hoist_session *s, cpu_state *c, int32_t token, uint32_t pos)
{
    const hoist_geometry *g = &s->geo;
    uint32_t H = g->hidden, hd = g->head_dim, half = hd / 2;
    float eps = (float)g->rms_eps;
    const float *cos_row = s->rope_cos + (size_t)pos * half, *sin_row = s->rope_sin + (size_t)pos * half;
    hoist__ref_embed(c->x, s->embed.data, s->embed.dtype, (uint32_t)token, H);
    for (uint32_t l = 0; l < g->n_layers; l++) {
        const hoist__layer *L = &s->layers[l];
        size_t layer_off = (size_t)l * s->max_tokens * s->kv_dim;
        float *kc = c->k_cache + layer_off, *vc = c->v_cache + layer_off;
        hoist__ref_rmsnorm(c->xn, c->x, L->attn_norm.data, L->attn_norm.dtype, H, eps);
        hoist__ref_matvec(c->q, L->q.data, L->q.dtype, s->q_dim, H, c->xn, 0);
        hoist__ref_matvec(c->k, L->k.data, L->k.dtype, s->kv_dim, H, c->xn, 0);
        hoist__ref_matvec(c->v, L->v.data, L->v.dtype, s->kv_dim, H, c->xn, 0);
        hoist__ref_add(c->q, L->bq, s->q_dim);
        hoist__ref_add(c->k, L->bk, s->kv_dim);
        hoist__ref_add(c->v, L->bv, s->kv_dim);
        if (L->q_norm) {
            hoist__ref_head_norm(c->q, L->q_norm, g->n_heads, hd, eps);
            hoist__ref_head_norm(c->k, L->k_norm, g->n_kv_heads, hd, eps);
        }
        hoist__ref_rope_pairs(c->q, g->n_heads, hd, cos_row, sin_row, s->rope_interleaved);
        hoist__ref_rope_pairs(c->k, g->n_kv_heads, hd, cos_row, sin_row, s->rope_interleaved);
        memcpy(kc + (size_t)pos * s->kv_dim, c->k, s->kv_dim * sizeof(float));
        memcpy(vc + (size_t)pos * s->kv_dim, c->v, s->kv_dim * sizeof(float));
        uint32_t first = L->window && pos + 1 > L->window ? pos + 1 - L->window : 0;
        hoist__ref_attention(c->attn, c->q, kc + (size_t)first * s->kv_dim,
                             vc + (size_t)first * s->kv_dim, pos + 1 - first, g->n_heads,
                             g->n_kv_heads, hd, c->scores);
        hoist__ref_matvec(c->x, L->o.data, L->o.dtype, H, s->q_dim, c->attn, 1);
        hoist__ref_add(c->x, L->bo, H);
        hoist__ref_rmsnorm(c->xn, c->x, L->mlp_norm.data, L->mlp_norm.dtype, H, eps);
        hoist__ref_matvec(c->gate, L->gate.data, L->gate.dtype, g->intermediate, H, c->xn, 0);
        hoist__ref_matvec(c->up, L->up.data, L->up.dtype, g->intermediate, H, c->xn, 0);
        hoist__ref_add(c->gate, L->bgate, g->intermediate);
        hoist__ref_add(c->up, L->bup, g->intermediate);
        hoist__ref_swiglu(c->gate, c->gate, c->up, g->intermediate);
        hoist__ref_matvec(c->x, L->down.data, L->down.dtype, H, g->intermediate, c->gate, 1);
        hoist__ref_add(c->x, L->bdown, H);
    }
}

static int cpu_forward(hoist_session *s, const int32_t *tokens, uint32_t n)
{
    cpu_state *c = s->backend;
    for (uint32_t i = 0; i < n; i++) cpu_token(s, c, tokens[i], s->pos + i);
    /* only the last token's logits are asked for */
    const hoist_geometry *g = &s->geo;
    hoist__ref_rmsnorm(c->xn, c->x, s->final_norm.data, s->final_norm.dtype, g->hidden,
                       (float)g->rms_eps);
    hoist__ref_matvec(c->logits, s->head.data, s->head.dtype, g->vocab, g->hidden, c->xn, 0);
    return HOIST_OK;
}

static int cpu_sync(hoist_session *s) { return HOIST_OK; }

static int cpu_logits(hoist_session *s, float *out)
{
    cpu_state *c = s->backend;
    memcpy(out, c->logits, (size_t)s->geo.vocab * sizeof(float));
    return HOIST_OK;
}

static int cpu_argmax(hoist_session *s, int32_t *token)
{
    cpu_state *c = s->backend;
    *token = (int32_t)hoist__ref_argmax(c->logits, s->geo.vocab);
    return HOIST_OK;
}

static int cpu_greedy(hoist_session *s, uint32_t steps, int32_t *out)
{
    int32_t tok;
    cpu_argmax(s, &tok);
    for (uint32_t i = 0; i < steps; i++) {
        cpu_forward(s, &tok, 1);
        s->pos++;
        cpu_argmax(s, &tok);
        out[i] = tok;
    }
    return HOIST_OK;
}

static int cpu_reset(hoist_session *s) { return HOIST_OK; }

const hoist__infer_ops hoist__infer_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .forward = cpu_forward,
    .sync = cpu_sync,
    .logits = cpu_logits,
    .argmax = cpu_argmax,
    .greedy = cpu_greedy,
    .reset = cpu_reset,
};
