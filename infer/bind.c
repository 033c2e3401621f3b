/* Binding a geometry to a tensor table: the tensors a Llama-family checkpoint names (Hugging
 * Face's names, or llama.cpp's in a GGUF file), each checked against the geometry, and no tensor
 * of a decoder layer left over: a layer past num_hidden_layers, a bias or a q/k norm the
 * configuration does not announce would otherwise be silently dropped. */
#include "formats/table.h"
#include "infer/infer.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tensor tables ------------------------------------------------------------------------ */

static void view_of_info(const hoist_tensor_info *ti, hoist_view *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->name = ti->name;
    out->dtype = ti->dtype;
    out->ndim = ti->ndim;
    memcpy(out->shape, ti->shape, sizeof out->shape);
    out->nbytes = ti->nbytes;
    out->device = HOIST_DEVICE_HOST;
}

static int model_at(const void *ctx, size_t i, hoist_view *out)
{
    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
    RETURN_IF_ERR(hoist_model_tensor(ctx, i, &ti));
    view_of_info(&ti, out);
    return HOIST_OK;
}

static int model_find(const void *ctx, const char *name, hoist_view *out)
{
    size_t i;
    int rc = hoist_model_find(ctx, name, &i);
    return rc < 0 ? rc : model_at(ctx, i, out);
}

static int weights_at(const void *ctx, size_t i, hoist_view *out)
{
    out->size = sizeof *out;
    return hoist_weights_view(ctx, i, out);
}

static int weights_find(const void *ctx, const char *name, hoist_view *out)
{
    out->size = sizeof *out;
    return hoist_weights_find(ctx, name, out);
}

void hoist__tensors_of_model(const hoist_model *m, hoist__tensors *out)
{
    *out = (hoist__tensors){m, hoist_model_tensor_count(m), model_at, model_find};
}

void hoist__tensors_of_weights(const hoist_weights *w, hoist__tensors *out)
{
    *out = (hoist__tensors){w, hoist_weights_count(w), weights_at, weights_find};
}

/* ---- names -------------------------------------------------------------------------------- */

/* The parts of a decoder layer: the nine matrices and norms of every Llama layer, then the
 * variants' vectors, in hoist__layer's order. */
enum part {
    P_ATTN_NORM, P_Q, P_K, P_V, P_O, P_MLP_NORM, P_GATE, P_UP, P_DOWN,
    P_BQ, P_BK, P_BV, P_BO, P_BGATE, P_BUP, P_BDOWN, P_QNORM, P_KNORM,
    P_COUNT
};

static const char *const hf_parts[P_COUNT] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias",
    "self_attn.o_proj.bias", "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias",
    "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
static const char *const gguf_parts[P_COUNT] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
    "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias",
    "ffn_gate.bias", "ffn_up.bias", "ffn_down.bias", "attn_q_norm.weight",
    "attn_k_norm.weight"};

typedef struct names {
    const char *embed, *final_norm, *head, *layer_prefix; /* layer_prefix: "...%u." */
    const char *const *parts;
} names;

static const names hf_names = {"model.embed_tokens.weight", "model.norm.weight",
                               "lm_head.weight", "model.layers.%u.", hf_parts};
static const names gguf_names = {"token_embd.weight", "output_norm.weight", "output.weight",
                                 "blk.%u.", gguf_parts};

/* Whether the geometry announces a part, and if not, the configuration that would. */
static int announced(const hoist_geometry *g, int part, const char **why)
{
    *why = NULL;
    if (part < P_BQ) return 1;
    if (part <= P_BV) *why = "q/k/v biases (attention_bias, or model_type qwen2)";
    else if (part == P_BO) *why = "an o_proj bias (attention_bias)";
    else if (part <= P_BDOWN) *why = "MLP biases (mlp_bias)";
    else *why = "q/k norms (model_type qwen3)";
    if (part <= P_BV) return (g->biases & HOIST_BIAS_QKV) != 0;
    if (part == P_BO) return (g->biases & HOIST_BIAS_O) != 0;
    if (part <= P_BDOWN) return (g->biases & HOIST_BIAS_MLP) != 0;
    return g->qk_norm;
}

/* Layer and part of a decoder-layer tensor name: 1, 0 when the name is not a layer's, -1 (a
 * message set) when it is a layer's that the geometry does not hold. */
static int classify(const hoist_geometry *g, const names *nm, const char *name, uint32_t *layer,
                    int *part)
{
    unsigned l;
    int used = 0;
    char fmt[32];
    snprintf(fmt, sizeof fmt, "%s%%n", nm->layer_prefix);
    if (sscanf(name, fmt, &l, &used) != 1 || used == 0) return 0;
    const char *rest = name + used;
    RETURN_IF(l >= g->n_layers, HOIST_E_BAD_TENSOR,
              "%s: a tensor of layer %u, but the configuration has %u layers "
              "(num_hidden_layers)",
              name, l, g->n_layers);
    /* buffers old transformers saved and loading ignores */
    if (strcmp(rest, "self_attn.rotary_emb.inv_freq") == 0) return 0;
    for (int p = 0; p < P_COUNT; p++) {
        if (strcmp(rest, nm->parts[p]) != 0) continue;
        const char *why;
        RETURN_IF(!announced(g, p, &why), HOIST_E_BAD_TENSOR,
                  "%s: the configuration (model_type %s) announces no %s", name, g->architecture,
                  why);
        *layer = l;
        *part = p;
        return 1;
    }
    return hoist__err(HOIST_E_BAD_TENSOR,
                      "%s: not a tensor of a %s layer (hoist would leave it out of the "
                      "computation)",
                      name, g->architecture);
}

static int scan_layers(const hoist_session *s, const names *nm, const hoist__tensors *t)
{
    for (size_t i = 0; i < t->count; i++) {
        hoist_view v = HOIST_VIEW_INIT;
        RETURN_IF_ERR(t->at(t->ctx, i, &v));
        uint32_t l;
        int p;
        int rc = classify(&s->geo, nm, v.name, &l, &p);
        if (rc < 0) return rc;
    }
    return HOIST_OK;
}

/* ---- binding ------------------------------------------------------------------------------ */

static int is_float_dtype(hoist_dtype d)
{
    return d == HOIST_DTYPE_BF16 || d == HOIST_DTYPE_F16 || d == HOIST_DTYPE_F32;
}

/* Looks a tensor up and checks its dtype and shape ([rows] when cols is 0, else [rows, cols]). */
static int bind(const hoist__tensors *t, const char *name, uint64_t rows, uint64_t cols,
                hoist_view *out)
{
    int rc = t->find(t->ctx, name, out);
    if (rc < 0) return hoist__err(rc, "%s: the model has no such tensor", name);
    /* Q8_0 for matrices only: its blocks run along rows */
    RETURN_IF(!is_float_dtype(out->dtype) && !(cols && out->dtype == HOIST_DTYPE_Q8_0),
              HOIST_E_UNSUPPORTED, "%s: dtype %s (inference takes BF16, F16 or F32, and Q8_0 "
              "matrices)",
              name, hoist_dtype_name(out->dtype));
    int ok = cols ? out->ndim == 2 && (uint64_t)out->shape[0] == rows &&
                        (uint64_t)out->shape[1] == cols
                  : out->ndim == 1 && (uint64_t)out->shape[0] == rows;
    if (!ok) {
        char have[64] = "";
        for (uint32_t i = 0; i < out->ndim && i < 4; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? ", " : "",
                     (long long)out->shape[i]);
        if (cols)
            return hoist__err(HOIST_E_BAD_TENSOR,
                              "%s: shape [%s] does not match the geometry's [%llu, %llu]", name,
                              have, (unsigned long long)rows, (unsigned long long)cols);
        return hoist__err(HOIST_E_BAD_TENSOR, "%s: shape [%s] does not match the geometry's [%llu]",
                          name, have, (unsigned long long)rows);
    }
    return HOIST_OK;
}

/* Matrices share one dtype: the GPU feeds one activation type to every product. Q8_0 matrices
 * are dequantized into that type before their product, so they go with any. */
static int check_matrix(hoist_session *s, const hoist_view *v)
{
    if (v->dtype == HOIST_DTYPE_Q8_0) {
        s->has_q8_0 = 1;
        return HOIST_OK;
    }
    RETURN_IF(v->dtype != s->wdtype, HOIST_E_UNSUPPORTED,
              "%s: dtype %s differs from the embedding's %s (one dtype for every matrix)",
              v->name, hoist_dtype_name(v->dtype), hoist_dtype_name(s->wdtype));
    return HOIST_OK;
}

static int check_device(const hoist_view *v, int device)
{
    RETURN_IF(v->device != device, HOIST_E_UNSUPPORTED,
              "%s: on device %d, but the rest of its %s is on device %d", v->name, v->device,
              strstr(v->name, "layers.") || strstr(v->name, "blk.") ? "layer" : "model", device);
    return HOIST_OK;
}

/* Parts of one dtype that lie back to back in memory (in any order) become one product: returns
 * 1 and each part's first output column. */
static int fuse(hoist_view *const *parts, int n, const void **base, uint32_t *cols)
{
    for (int i = 1; i < n; i++)
        if (parts[i]->dtype != parts[0]->dtype) return 0;
    int order[3] = {0, 1, 2};
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if ((uintptr_t)parts[order[j]]->data < (uintptr_t)parts[order[i]]->data) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    uint32_t col = 0;
    for (int i = 0; i < n; i++) {
        const hoist_view *p = parts[order[i]];
        if (i > 0) {
            const hoist_view *prev = parts[order[i - 1]];
            if ((uintptr_t)prev->data + prev->nbytes != (uintptr_t)p->data) return 0;
        }
        cols[order[i]] = col;
        col += (uint32_t)p->shape[0];
    }
    *base = parts[order[0]]->data;
    return 1;
}

/* Rows of each part's tensor (its length for a vector), and whether it is a matrix's. */
static void part_shape(const hoist_session *s, int p, uint64_t *rows, uint64_t *cols)
{
    uint64_t H = s->geo.hidden, I = s->geo.intermediate, hd = s->geo.head_dim;
    static const int vec[P_COUNT] = {[P_ATTN_NORM] = 1, [P_MLP_NORM] = 1, [P_BQ] = 1,
                                     [P_BK] = 1,        [P_BV] = 1,       [P_BO] = 1,
                                     [P_BGATE] = 1,     [P_BUP] = 1,      [P_BDOWN] = 1,
                                     [P_QNORM] = 1,     [P_KNORM] = 1};
    const uint64_t r[P_COUNT] = {H, s->q_dim, s->kv_dim, s->kv_dim, H, H, I, I, H,
                                 s->q_dim, s->kv_dim, s->kv_dim, H, I, I, H, hd, hd};
    const uint64_t c[P_COUNT] = {0, H, H, H, s->q_dim, 0, H, H, I};
    *rows = r[p];
    *cols = vec[p] ? 0 : c[p];
}

static int bind_layer(hoist_session *s, const hoist__tensors *t, const names *nm, uint32_t l,
                      hoist_view *views)
{
    const hoist_geometry *g = &s->geo;
    hoist__layer *L = &s->layers[l];
    char name[128];
    int n = snprintf(name, sizeof name, nm->layer_prefix, l);
    for (int p = 0; p < P_COUNT; p++) {
        const char *why;
        uint64_t rows, cols;
        if (!announced(g, p, &why)) continue;
        part_shape(s, p, &rows, &cols);
        snprintf(name + n, sizeof name - (size_t)n, "%s", nm->parts[p]);
        RETURN_IF_ERR(bind(t, name, rows, cols, &views[p]));
    }
    hoist_view *main[] = {&L->attn_norm, &L->q, &L->k, &L->v, &L->o,
                          &L->mlp_norm, &L->gate, &L->up, &L->down};
    for (int p = 0; p < P_BQ; p++) *main[p] = views[p];
    L->device = L->q.device;
    for (int p = 0; p < P_COUNT; p++) {
        const char *why;
        if (!announced(g, p, &why)) continue;
        RETURN_IF_ERR(check_device(&views[p], L->device));
        if (views[p].ndim == 2) RETURN_IF_ERR(check_matrix(s, &views[p]));
        s->weight_bytes_per_token += views[p].nbytes;
    }
    hoist_view *qkv[] = {&L->q, &L->k, &L->v};
    uint32_t c3[3];
    L->qkv_fused = fuse(qkv, 3, &L->qkv_base, c3);
    if (L->qkv_fused) {
        L->q_col = c3[0];
        L->k_col = c3[1];
        L->v_col = c3[2];
    } else {
        L->q_col = 0;
        L->k_col = s->q_dim;
        L->v_col = s->q_dim + s->kv_dim;
    }
    hoist_view *gu[] = {&L->gate, &L->up};
    uint32_t c2[2];
    L->gu_fused = fuse(gu, 2, &L->gu_base, c2);
    L->g_col = L->gu_fused ? c2[0] : 0;
    L->u_col = L->gu_fused ? c2[1] : g->intermediate;
    return HOIST_OK;
}

int hoist__bind_model(hoist_session *s, const hoist__tensors *t)
{
    const hoist_geometry *g = &s->geo;
    hoist_view probe = HOIST_VIEW_INIT;
    /* GGUF: llama.cpp's names; its converter permuted the q and k rows of the llama architecture
     * for interleaved rotary pairs, and left qwen2's and qwen3's alone */
    const names *nm =
        t->find(t->ctx, gguf_names.embed, &probe) == HOIST_OK ? &gguf_names : &hf_names;
    s->rope_interleaved = nm == &gguf_names && strcmp(g->architecture, "llama") == 0;
    RETURN_IF(s->rope_interleaved && g->qk_norm, HOIST_E_UNSUPPORTED,
              "GGUF llama architecture with q/k norms: the norm weights' order in the permuted "
              "rows is not defined");
    RETURN_IF_ERR(scan_layers(s, nm, t));
    RETURN_IF_ERR(bind(t, nm->embed, g->vocab, g->hidden, &s->embed));
    s->wdtype = s->embed.dtype == HOIST_DTYPE_Q8_0 ? HOIST_DTYPE_F16 : s->embed.dtype;
    RETURN_IF_ERR(check_matrix(s, &s->embed));
    RETURN_IF_ERR(bind(t, nm->final_norm, g->hidden, 0, &s->final_norm));
    if (g->tied_embeddings)
        s->head = s->embed;
    else
        RETURN_IF_ERR(bind(t, nm->head, g->vocab, g->hidden, &s->head));
    RETURN_IF_ERR(check_matrix(s, &s->head));
    RETURN_IF_ERR(check_device(&s->final_norm, s->head.device));
    hoist_view views[P_COUNT];
    for (uint32_t l = 0; l < g->n_layers; l++) RETURN_IF_ERR(bind_layer(s, t, nm, l, views));
    /* one backend: all in host memory (the reference) or all on GPUs */
    int host = s->embed.device == HOIST_DEVICE_HOST;
    const hoist_view *firsts[] = {&s->head, &s->final_norm};
    for (size_t i = 0; i < 2; i++)
        RETURN_IF((firsts[i]->device == HOIST_DEVICE_HOST) != host, HOIST_E_UNSUPPORTED,
                  "%s and %s are split between host and GPU memory", firsts[i]->name,
                  nm->embed);
    for (uint32_t l = 0; l < g->n_layers; l++)
        RETURN_IF((s->layers[l].device == HOIST_DEVICE_HOST) != host, HOIST_E_UNSUPPORTED,
                  "layer %u and %s are split between host and GPU memory", l, nm->embed);
    uint64_t embed_row;
    if (!hoist__dtype_row_bytes(s->embed.dtype, g->hidden, &embed_row)) embed_row = 0;
    s->weight_bytes_per_token += s->final_norm.nbytes + s->head.nbytes + embed_row;
    return HOIST_OK;
}

/* ---- the variants' vectors ------------------------------------------------------------------ */

/* n elements of tensor `name` as fp32 into dst, read from wherever the weights live. */
static int read_vector(const hoist_weights *w, const char *name, uint64_t n, float *dst)
{
    size_t count = hoist_weights_count(w), i;
    hoist_view v = HOIST_VIEW_INIT;
    for (i = 0; i < count; i++)
        if (hoist_weights_view(w, i, &v) == HOIST_OK && strcmp(v.name, name) == 0) break;
    RETURN_IF(i == count, HOIST_E_NOT_FOUND, "%s: the model has no such tensor", name);
    RETURN_IF(!is_float_dtype(v.dtype) || v.nbytes != n * (hoist_dtype_bits(v.dtype) / 8),
              HOIST_E_BAD_TENSOR, "%s: expected %llu BF16, F16 or F32 values", name,
              (unsigned long long)n);
    void *raw = hoist__malloc(v.nbytes);
    RETURN_IF(!raw, HOIST_E_NOMEM, "out of memory for %s", name);
    int rc = hoist_weights_read(w, i, 0, raw, v.nbytes);
    for (uint64_t k = 0; rc == HOIST_OK && k < n; k++) dst[k] = hoist__load_f32(raw, v.dtype, k);
    hoist__free(raw);
    return rc;
}

int hoist__bind_extras(hoist_session *s, const hoist_weights *w)
{
    const hoist_geometry *g = &s->geo;
    hoist_view probe = HOIST_VIEW_INIT;
    int gguf = hoist_weights_find(w, gguf_names.embed, &probe) == HOIST_OK;
    const names *nm = gguf ? &gguf_names : &hf_names;
    size_t per = 0;
    for (int p = P_BQ; p < P_COUNT; p++) {
        const char *why;
        uint64_t rows, cols;
        part_shape(s, p, &rows, &cols);
        if (announced(g, p, &why)) per += rows;
    }
    if (gguf && hoist_weights_find(w, "rope_freqs.weight", &probe) == HOIST_OK) {
        s->rope_freqs = hoist__malloc((size_t)g->head_dim / 2 * sizeof(float));
        RETURN_IF(!s->rope_freqs, HOIST_E_NOMEM, "out of memory for rope_freqs.weight");
        RETURN_IF_ERR(read_vector(w, "rope_freqs.weight", g->head_dim / 2, s->rope_freqs));
    }
    if (per == 0) return HOIST_OK;
    s->extras_floats = per * g->n_layers;
    s->extras = hoist__malloc(s->extras_floats * sizeof(float));
    RETURN_IF(!s->extras, HOIST_E_NOMEM, "out of memory for %zu bias and norm values",
              s->extras_floats);
    float *at = s->extras;
    char name[128];
    for (uint32_t l = 0; l < g->n_layers; l++) {
        hoist__layer *L = &s->layers[l];
        float **dst[P_COUNT] = {[P_BQ] = &L->bq,       [P_BK] = &L->bk,   [P_BV] = &L->bv,
                                [P_BO] = &L->bo,       [P_BGATE] = &L->bgate,
                                [P_BUP] = &L->bup,     [P_BDOWN] = &L->bdown,
                                [P_QNORM] = &L->q_norm, [P_KNORM] = &L->k_norm};
        int n = snprintf(name, sizeof name, nm->layer_prefix, l);
        for (int p = P_BQ; p < P_COUNT; p++) {
            const char *why;
            uint64_t rows, cols;
            if (!announced(g, p, &why)) continue;
            part_shape(s, p, &rows, &cols);
            snprintf(name + n, sizeof name - (size_t)n, "%s", nm->parts[p]);
            RETURN_IF_ERR(read_vector(w, name, rows, at));
            *dst[p] = at;
            at += rows;
        }
    }
    return HOIST_OK;
}
