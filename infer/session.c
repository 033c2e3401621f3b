/* hoist_session: binds a geometry to the loaded views (checking every shape the file declared),
 * picks the backend from where the views live, and runs prefill, decode and greedy generation
 * with their statistics. */
#include "formats/table.h"
#include "formats/variants.h"
#include "infer/infer.h"
#include "core/abi.h"
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The planner's bounds, then what the forward pass itself computes. */
static int check_geometry(const hoist_geometry *g)
{
    RETURN_IF_ERR(hoist_geometry_check(g));
    RETURN_IF(g->unsupported[0], HOIST_E_BAD_CONFIG, "%s", g->unsupported);
    RETURN_IF(!hoist__arch_supported(g->architecture), HOIST_E_BAD_CONFIG,
              "geometry: architecture (model_type) is \"%s\" (hoist runs llama, mistral, qwen2, "
              "qwen3)",
              g->architecture);
    RETURN_IF(g->head_dim % 2 != 0, HOIST_E_BAD_CONFIG,
              "geometry: head_dim %u is odd (rotary embeddings rotate pairs)", g->head_dim);
    RETURN_IF(g->head_dim > HOIST__REF_MAX_HEAD_DIM, HOIST_E_BAD_CONFIG,
              "geometry: head_dim %u is above %u", g->head_dim, HOIST__REF_MAX_HEAD_DIM);
    RETURN_IF((uint64_t)g->n_heads * g->head_dim > HOIST_INFER_MAX_DIM, HOIST_E_BAD_CONFIG,
              "geometry: n_heads * head_dim = %llu is above %u",
              (unsigned long long)g->n_heads * g->head_dim, HOIST_INFER_MAX_DIM);
    return HOIST_OK;
}

/* The session's cache positions and forward batch from its options. */
static int session_sizes(const hoist_geometry *g, const hoist_session_options *o, uint32_t *tokens,
                         uint32_t *batch)
{
    uint64_t mt = o->max_tokens;
    if (mt == 0) {
        mt = g->max_position ? g->max_position : HOIST_INFER_DEFAULT_TOKENS;
        if (mt > HOIST_INFER_DEFAULT_TOKENS) mt = HOIST_INFER_DEFAULT_TOKENS;
    }
    RETURN_IF(mt > HOIST_INFER_MAX_TOKENS, HOIST_E_INVALID_ARG,
              "max_tokens %llu is above the limit of %u", (unsigned long long)mt,
              HOIST_INFER_MAX_TOKENS);
    uint32_t mb = o->max_batch ? o->max_batch : HOIST_INFER_DEFAULT_BATCH;
    RETURN_IF(mb > HOIST_INFER_MAX_BATCH, HOIST_E_INVALID_ARG,
              "max_batch %u is above the limit of %u", mb, HOIST_INFER_MAX_BATCH);
    *tokens = (uint32_t)mt;
    *batch = mb < *tokens ? mb : *tokens;
    return HOIST_OK;
}

/* Each layer's window (hoist__layer.window): the geometry's from window_from_layer on; a window
 * as long as the cache attends over every position anyway, so it runs as none. */
static void set_windows(hoist_session *s)
{
    const hoist_geometry *g = &s->geo;
    uint32_t w = g->sliding_window < s->max_tokens ? (uint32_t)g->sliding_window : 0;
    for (uint32_t l = 0; l < g->n_layers; l++)
        s->layers[l].window = l >= g->window_from_layer ? w : 0;
}

/* The caller's structs as full-size copies (docs/ABI.md), then the checks. */
static int session_check(const hoist_geometry *geometry, const hoist_session_options *opts,
                         hoist_geometry *g)
{
    RETURN_IF(!geometry, HOIST_E_INVALID_ARG, "hoist_session_check: geometry is NULL");
    static const hoist_session_options def = HOIST_SESSION_OPTIONS_DEFAULT;
    hoist_session_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_session_options, &o, opts, &def));
    RETURN_IF_ERR(HOIST__IN(hoist_geometry, g, geometry, NULL));
    uint32_t tokens = 0, batch = 0; /* set by session_sizes; -O3 cannot tell */
    RETURN_IF_ERR(check_geometry(g));
    return session_sizes(g, &o, &tokens, &batch);
}

int hoist_session_check(const hoist_geometry *geometry, const hoist_session_options *opts)
{
    hoist_geometry g;
    RETURN_IF_ERR(session_check(geometry, opts, &g));
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_session_check_model(const hoist_model *model, const hoist_geometry *geometry,
                              const hoist_session_options *opts)
{
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_session_check_model: model is NULL");
    hoist_geometry g;
    RETURN_IF_ERR(session_check(geometry, opts, &g));
    hoist_session s = {.geo = g};
    s.q_dim = g.n_heads * g.head_dim;
    s.kv_dim = g.n_kv_heads * g.head_dim;
    s.layers = hoist__calloc(g.n_layers, sizeof *s.layers);
    RETURN_IF(!s.layers, HOIST_E_NOMEM, "out of memory for %u layers", g.n_layers);
    hoist__tensors t;
    hoist__tensors_of_model(model, &t);
    int rc = hoist__bind_model(&s, &t);
    hoist__free(s.layers);
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}

/* The tables at creation: every position with the initial frequencies (dynamic NTK rewrites
 * rows as sequences grow), GGUF's frequency divisors applied. */
static int rope_init(hoist_session *s)
{
    const hoist_geometry *g = &s->geo;
    size_t half = g->head_dim / 2;
    s->rope_cos = hoist__malloc((size_t)s->max_tokens * half * sizeof(float));
    s->rope_sin = hoist__malloc((size_t)s->max_tokens * half * sizeof(float));
    s->inv_freq = hoist__malloc(half * sizeof(float));
    s->inv_orig = hoist__malloc(half * sizeof(float));
    RETURN_IF(!s->rope_cos || !s->rope_sin || !s->inv_freq || !s->inv_orig, HOIST_E_NOMEM,
              "out of memory for the rotary tables of %u positions", s->max_tokens);
    hoist__rope_inv_freq(g, 0, s->inv_orig, &s->rope_attn);
    /* llama.cpp's theta = position * base^(-2i/d) / freq_factor[i] */
    for (size_t i = 0; s->rope_freqs && i < half; i++) s->inv_orig[i] /= s->rope_freqs[i];
    memcpy(s->inv_freq, s->inv_orig, half * sizeof(float));
    s->rope_cached = g->max_position;
    hoist__rope_rows(s->rope_cos, s->rope_sin, 0, s->max_tokens, (uint32_t)half, s->inv_freq,
                     s->rope_attn);
    return HOIST_OK;
}

/* Dynamic NTK: before positions [first, first + n) run, their rows take the frequencies
 * transformers would use, one forward call at a time (per_step 0: one call of n tokens; 1: n
 * decode steps, each a call of its own). */
static int rope_prepare(hoist_session *s, uint32_t first, uint32_t n, int per_step)
{
    if (s->geo.rope.type != HOIST_ROPE_DYNAMIC || n == 0) return HOIST_OK;
    uint32_t half = s->geo.head_dim / 2;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq_len = per_step ? (uint64_t)first + i + 1 : (uint64_t)first + n;
        if (per_step || i == 0)
            hoist__rope_dynamic_update(&s->geo, seq_len, &s->rope_cached, s->inv_freq,
                                       s->inv_orig);
        hoist__rope_rows(s->rope_cos, s->rope_sin, first + i, 1, half, s->inv_freq,
                         s->rope_attn);
    }
    return s->ops->rope_rows ? s->ops->rope_rows(s, first, n) : HOIST_OK;
}

static int session_init(hoist_session *s, const hoist_weights *w)
{
    const hoist_geometry *g = &s->geo;
    RETURN_IF_ERR(check_geometry(g));
    s->q_dim = g->n_heads * g->head_dim;
    s->kv_dim = g->n_kv_heads * g->head_dim;
    s->qkv_dim = s->q_dim + 2 * s->kv_dim;
    RETURN_IF_ERR(session_sizes(g, &s->opts, &s->max_tokens, &s->max_batch));

    s->layers = hoist__calloc(g->n_layers, sizeof *s->layers);
    RETURN_IF(!s->layers, HOIST_E_NOMEM, "out of memory for %u layers", g->n_layers);
    hoist__tensors t;
    hoist__tensors_of_weights(w, &t);
    RETURN_IF_ERR(hoist__bind_model(s, &t));
    RETURN_IF_ERR(hoist__bind_extras(s, w));
    set_windows(s);
    RETURN_IF_ERR(rope_init(s));

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
    hoist__free(s->inv_freq);
    hoist__free(s->inv_orig);
    hoist__free(s->rope_freqs);
    hoist__free(s->extras);
    hoist__free(s->layers);
    hoist__free(s);
}

int hoist_session_reset(hoist_session *s)
{
    RETURN_IF(!s, HOIST_E_INVALID_ARG, "hoist_session_reset: session is NULL");
    RETURN_IF_ERR(s->ops->reset(s));
    s->pos = 0;
    s->have_logits = 0;
    /* as a freshly loaded transformers model: hoist run's warm-up must not leave the timed run
     * the frequencies of a longer sequence */
    memcpy(s->inv_freq, s->inv_orig, (size_t)s->geo.head_dim / 2 * sizeof(float));
    s->rope_cached = s->geo.max_position;
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
    /* one call of transformers' covers the whole run, whatever max_batch cuts it into */
    RETURN_IF_ERR(rope_prepare(s, s->pos, (uint32_t)n, 0));
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
        RETURN_IF_ERR(rope_prepare(s, s->pos, (uint32_t)(n_new - 1), 1));
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
