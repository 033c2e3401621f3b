/* hoist_session: binds a geometry to the loaded views (checking every shape the file declared),
 * picks the backend from where the views live, and runs prefill, decode and greedy generation
 * with their statistics. */
#include "formats/table.h"
#include "infer/infer.h"
#include "core/abi.h"
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The planner's bounds, then what the forward pass itself needs. */
static int check_geometry(const hoist_geometry *g)
{
    RETURN_IF_ERR(hoist_geometry_check(g));
    RETURN_IF(g->head_dim % 2 != 0, HOIST_E_BAD_CONFIG,
              "geometry: head_dim %u is odd (rotary embeddings rotate pairs)", g->head_dim);
    RETURN_IF(g->head_dim > HOIST__REF_MAX_HEAD_DIM, HOIST_E_BAD_CONFIG,
              "geometry: head_dim %u is above %u", g->head_dim, HOIST__REF_MAX_HEAD_DIM);
    RETURN_IF((uint64_t)g->n_heads * g->head_dim > HOIST_INFER_MAX_DIM, HOIST_E_BAD_CONFIG,
              "geometry: n_heads * head_dim = %llu is above %u",
              (unsigned long long)g->n_heads * g->head_dim, HOIST_INFER_MAX_DIM);
    return HOIST_OK;
}

static int is_float_dtype(hoist_dtype d)
{
    return d == HOIST_DTYPE_BF16 || d == HOIST_DTYPE_F16 || d == HOIST_DTYPE_F32;
}

/* The tensor names of a checkpoint: Hugging Face's, or llama.cpp's in a GGUF file. */
typedef struct names {
    const char *embed, *final_norm, *head;
    const char *layer;                  /* printf format of a layer tensor: %u, then the part */
    const char *attn_norm, *q, *k, *v, *o, *mlp_norm, *gate, *up, *down;
} names;

static const names hf_names = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                               "model.layers.%u.%s.weight", "input_layernorm",
                               "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                               "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj",
                               "mlp.up_proj", "mlp.down_proj"};
static const names gguf_names = {"token_embd.weight", "output_norm.weight", "output.weight",
                                 "blk.%u.%s.weight", "attn_norm", "attn_q", "attn_k", "attn_v",
                                 "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};

/* Looks a tensor up and checks its dtype and shape ([rows] when cols is 0, else [rows, cols]). */
static int bind(const hoist_weights *w, const char *name, uint64_t rows, uint64_t cols,
                hoist_view *out)
{
    out->size = sizeof *out;
    int rc = hoist_weights_find(w, name, out);
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
              strstr(v->name, "layers.") ? "layer" : "model", device);
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

static int bind_layer(hoist_session *s, const hoist_weights *w, const names *nm, uint32_t l)
{
    const hoist_geometry *g = &s->geo;
    hoist__layer *L = &s->layers[l];
    char name[96];
    uint64_t H = g->hidden, I = g->intermediate;
#define BIND(field, part, rows, cols)                                                             \
    do {                                                                                          \
        snprintf(name, sizeof name, nm->layer, l, nm->part);                                      \
        RETURN_IF_ERR(bind(w, name, (rows), (cols), &L->field));                                  \
    } while (0)
    BIND(attn_norm, attn_norm, H, 0);
    BIND(q, q, s->q_dim, H);
    BIND(k, k, s->kv_dim, H);
    BIND(v, v, s->kv_dim, H);
    BIND(o, o, H, s->q_dim);
    BIND(mlp_norm, mlp_norm, H, 0);
    BIND(gate, gate, I, H);
    BIND(up, up, I, H);
    BIND(down, down, H, I);
#undef BIND
    hoist_view *all[] = {&L->attn_norm, &L->q, &L->k, &L->v, &L->o,
                         &L->mlp_norm, &L->gate, &L->up, &L->down};
    L->device = L->q.device;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        RETURN_IF_ERR(check_device(all[i], L->device));
        if (all[i]->ndim == 2) RETURN_IF_ERR(check_matrix(s, all[i]));
        s->weight_bytes_per_token += all[i]->nbytes;
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

static int bind_model(hoist_session *s, const hoist_weights *w)
{
    const hoist_geometry *g = &s->geo;
    hoist_view probe = HOIST_VIEW_INIT;
    /* GGUF's llama tensors: llama.cpp's names, and q/k rows permuted for interleaved rotary pairs */
    const names *nm = hoist_weights_find(w, gguf_names.embed, &probe) == HOIST_OK ? &gguf_names
                                                                                 : &hf_names;
    s->rope_interleaved = nm == &gguf_names;
    RETURN_IF_ERR(bind(w, nm->embed, g->vocab, g->hidden, &s->embed));
    s->wdtype = s->embed.dtype == HOIST_DTYPE_Q8_0 ? HOIST_DTYPE_F16 : s->embed.dtype;
    RETURN_IF_ERR(check_matrix(s, &s->embed));
    RETURN_IF_ERR(bind(w, nm->final_norm, g->hidden, 0, &s->final_norm));
    if (g->tied_embeddings)
        s->head = s->embed;
    else
        RETURN_IF_ERR(bind(w, nm->head, g->vocab, g->hidden, &s->head));
    RETURN_IF_ERR(check_matrix(s, &s->head));
    RETURN_IF_ERR(check_device(&s->final_norm, s->head.device));
    for (uint32_t l = 0; l < g->n_layers; l++) RETURN_IF_ERR(bind_layer(s, w, nm, l));
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

static int session_init(hoist_session *s, const hoist_weights *w)
{
    const hoist_geometry *g = &s->geo;
    RETURN_IF_ERR(check_geometry(g));
    s->q_dim = g->n_heads * g->head_dim;
    s->kv_dim = g->n_kv_heads * g->head_dim;
    s->qkv_dim = s->q_dim + 2 * s->kv_dim;
    uint64_t mt = s->opts.max_tokens;
    if (mt == 0) {
        mt = g->max_position ? g->max_position : HOIST_INFER_DEFAULT_TOKENS;
        if (mt > HOIST_INFER_DEFAULT_TOKENS) mt = HOIST_INFER_DEFAULT_TOKENS;
    }
    RETURN_IF(mt > HOIST_INFER_MAX_TOKENS, HOIST_E_INVALID_ARG,
              "max_tokens %llu is above the limit of %u", (unsigned long long)mt,
              HOIST_INFER_MAX_TOKENS);
    s->max_tokens = (uint32_t)mt;
    uint32_t mb = s->opts.max_batch ? s->opts.max_batch : HOIST_INFER_DEFAULT_BATCH;
    RETURN_IF(mb > HOIST_INFER_MAX_BATCH, HOIST_E_INVALID_ARG,
              "max_batch %u is above the limit of %u", mb, HOIST_INFER_MAX_BATCH);
    s->max_batch = mb < s->max_tokens ? mb : s->max_tokens;

    s->layers = hoist__calloc(g->n_layers, sizeof *s->layers);
    RETURN_IF(!s->layers, HOIST_E_NOMEM, "out of memory for %u layers", g->n_layers);
    RETURN_IF_ERR(bind_model(s, w));

    size_t half = g->head_dim / 2;
    s->rope_cos = hoist__malloc((size_t)s->max_tokens * half * sizeof(float));
    s->rope_sin = hoist__malloc((size_t)s->max_tokens * half * sizeof(float));
    RETURN_IF(!s->rope_cos || !s->rope_sin, HOIST_E_NOMEM,
              "out of memory for the rotary tables of %u positions", s->max_tokens);
    hoist__rope_table(s->rope_cos, s->rope_sin, s->max_tokens, g->head_dim, g->rope_theta);

    if (s->embed.device == HOIST_DEVICE_HOST) {
        s->ops = &hoist__infer_cpu;
    } else {
        s->ops = hoist__infer_gpu();
        RETURN_IF(!s->ops, HOIST_E_UNSUPPORTED,
                  "the weights are on cuda:%d but this build of hoist has no CUDA inference",
                  s->embed.device);
    }
    s->stats.backend = s->ops->name;
    /* the cache is sized as the planner sizes it */
    s->kv_dtype = s->ops == &hoist__infer_cpu || s->wdtype == HOIST_DTYPE_F32 ? HOIST_KV_F32
                  : s->wdtype == HOIST_DTYPE_BF16                              ? HOIST_KV_BF16
                                                                               : HOIST_KV_F16;
    RETURN_IF_ERR(hoist_kv_cache_bytes(g, s->kv_dtype, s->max_tokens, 1, &s->kv_bytes));
    return s->ops->create(s);
}

int hoist_session_create(const hoist_weights *weights, const hoist_geometry *g,
                         const hoist_session_options *opts, hoist_session **out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_session_create: out is NULL");
    *out = NULL;
    RETURN_IF(!weights || !g, HOIST_E_INVALID_ARG, "hoist_session_create: NULL argument");
    static const hoist_session_options def = HOIST_SESSION_OPTIONS_DEFAULT;
    hoist_session_options o;
    hoist_geometry geo;
    RETURN_IF_ERR(HOIST__IN(hoist_session_options, &o, opts, &def));
    RETURN_IF_ERR(HOIST__IN(hoist_geometry, &geo, g, NULL));
    hoist_session *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory for a session");
    s->opts = o;
    s->geo = geo;
    int rc = session_init(s, weights);
    if (rc < 0) {
        hoist_session_free(s);
        return rc;
    }
    *out = s;
    hoist__err_clear();
    return HOIST_OK;
}

void hoist_session_free(hoist_session *s)
{
    if (!s) return;
    if (s->ops) s->ops->destroy(s);
    hoist__free(s->rope_cos);
    hoist__free(s->rope_sin);
    hoist__free(s->layers);
    hoist__free(s);
}

int hoist_session_reset(hoist_session *s)
{
    RETURN_IF(!s, HOIST_E_INVALID_ARG, "hoist_session_reset: session is NULL");
    RETURN_IF_ERR(s->ops->reset(s));
    s->pos = 0;
    s->have_logits = 0;
    return HOIST_OK;
}

static int check_tokens(const hoist_session *s, const int32_t *tokens, size_t n, size_t extra)
{
    RETURN_IF(!tokens || n == 0, HOIST_E_INVALID_ARG, "no tokens to run");
    for (size_t i = 0; i < n; i++)
        RETURN_IF(tokens[i] < 0 || (uint32_t)tokens[i] >= s->geo.vocab, HOIST_E_INVALID_ARG,
                  "token %zu is %d, outside the vocabulary of %u", i, tokens[i], s->geo.vocab);
    RETURN_IF(n > s->max_tokens - s->pos || extra > s->max_tokens - s->pos - n, HOIST_E_TOO_MANY,
              "%zu tokens at position %u do not fit a KV cache of %u positions", n + extra, s->pos,
              s->max_tokens);
    return HOIST_OK;
}

/* Runs tokens in chunks of max_batch and waits for them; returns the seconds taken. */
static int run_tokens(hoist_session *s, const int32_t *tokens, size_t n, double *seconds)
{
    double t0 = hoist__now();
    s->have_logits = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = n - i < s->max_batch ? (uint32_t)(n - i) : s->max_batch;
        RETURN_IF_ERR(s->ops->forward(s, tokens + i, c));
        s->pos += c;
        i += c;
    }
    RETURN_IF_ERR(s->ops->sync(s));
    s->have_logits = 1;
    *seconds = hoist__now() - t0;
    return HOIST_OK;
}

int hoist_session_prefill(hoist_session *s, const int32_t *tokens, size_t n)
{
    RETURN_IF(!s, HOIST_E_INVALID_ARG, "hoist_session_prefill: session is NULL");
    RETURN_IF_ERR(check_tokens(s, tokens, n, 0));
    double dt;
    RETURN_IF_ERR(run_tokens(s, tokens, n, &dt));
    s->stats.prefill_tokens += n;
    s->stats.prefill_seconds += dt;
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_session_decode(hoist_session *s, int32_t token)
{
    RETURN_IF(!s, HOIST_E_INVALID_ARG, "hoist_session_decode: session is NULL");
    RETURN_IF_ERR(check_tokens(s, &token, 1, 0));
    double dt;
    RETURN_IF_ERR(run_tokens(s, &token, 1, &dt));
    s->stats.decode_tokens++;
    s->stats.decode_seconds += dt;
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_session_logits(hoist_session *s, float *out, size_t n)
{
    RETURN_IF(!s || !out, HOIST_E_INVALID_ARG, "hoist_session_logits: NULL argument");
    RETURN_IF(n < s->geo.vocab, HOIST_E_INVALID_ARG, "room for %zu logits, the vocabulary has %u",
              n, s->geo.vocab);
    RETURN_IF(!s->have_logits, HOIST_E_INVALID_ARG, "no token has run since the last reset");
    RETURN_IF_ERR(s->ops->logits(s, out));
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_session_generate(hoist_session *s, const int32_t *prompt, size_t n_prompt,
                           size_t n_new, int32_t *out)
{
    RETURN_IF(!s || (n_new && !out), HOIST_E_INVALID_ARG, "hoist_session_generate: NULL argument");
    /* the last new token is produced, never run: it takes no cache position */
    RETURN_IF_ERR(check_tokens(s, prompt, n_prompt, n_new ? n_new - 1 : 0));
    double t0 = hoist__now(), dt;
    RETURN_IF_ERR(run_tokens(s, prompt, n_prompt, &dt));
    s->stats.prefill_tokens += n_prompt;
    s->stats.prefill_seconds += dt;
    if (n_new == 0) return HOIST_OK;
    RETURN_IF_ERR(s->ops->argmax(s, &out[0]));
    s->stats.first_token_seconds = hoist__now() - t0;
    if (n_new > 1) {
        double t1 = hoist__now();
        s->have_logits = 0;
        RETURN_IF_ERR(s->ops->greedy(s, (uint32_t)(n_new - 1), out + 1));
        s->have_logits = 1;
        s->stats.decode_seconds += hoist__now() - t1;
        s->stats.decode_tokens += n_new - 1;
    }
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_session_stats_get(const hoist_session *s, hoist_session_stats *out)
{
    RETURN_IF(!s || !out, HOIST_E_INVALID_ARG, "hoist_session_stats_get: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_session_stats, out));
    hoist_session_stats st = s->stats;
    st.position = s->pos;
    st.weight_bytes_per_token = s->weight_bytes_per_token;
    st.kv_cache_bytes = s->kv_bytes;
    HOIST__OUT(hoist_session_stats, out, &st);
    return HOIST_OK;
}
