/* Model geometry: the transformer's shape from config.json (Hugging Face keys) or from GGUF-style
 * metadata ("general.architecture" and "<arch>.block_count", ...). Both are untrusted input: every
 * value is type-checked and bounded before the planner multiplies it into byte counts. */
#include "formats/json_kind.h"
#include "formats/table.h"
#include "formats/variants.h"
#include "core/abi.h"
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* config.json of real models is a few KB; some carry large label maps. */
#define CONFIG_MAX_BYTES (16u << 20)

/* Bounds: above the largest released models by a wide margin, and small enough that the
 * planner's products (layers x kv heads x head_dim x tokens x batch x 8) stay far from 2^64. */
#define MAX_LAYERS 4096u
#define MAX_HIDDEN (1u << 20)
#define MAX_INTERMEDIATE (1u << 22)
#define MAX_HEADS 4096u
#define MAX_HEAD_DIM 4096u
#define MAX_VOCAB (1u << 24)
#define MAX_POSITION (1ull << 32)
#define MAX_RMS_EPS 0.5
#define MAX_ROPE_THETA 1e12

/* HF LlamaConfig defaults for the keys that may be absent. */
#define DEFAULT_MAX_POSITION 2048
#define DEFAULT_RMS_EPS 1e-6
#define DEFAULT_ROPE_THETA 10000.0

/* The variant fields of a caller-built geometry: what the rope tables are computed from. */
static int check_variants(const hoist_geometry *g)
{
    const hoist_rope_scaling *r = &g->rope;
    RETURN_IF((unsigned)r->type > HOIST_ROPE_LLAMA3, HOIST_E_BAD_CONFIG,
              "geometry: rope.type %d is unknown", (int)r->type);
    RETURN_IF(r->type != HOIST_ROPE_DEFAULT && !(r->factor > 0 && r->factor <= 1e6),
              HOIST_E_BAD_CONFIG, "geometry: rope.factor is %g (expected a number in (0, 1e6])",
              r->factor);
    int orig = r->type == HOIST_ROPE_YARN || r->type == HOIST_ROPE_LLAMA3;
    RETURN_IF(orig && (r->original_max_position < 1 || r->original_max_position > MAX_POSITION),
              HOIST_E_BAD_CONFIG, "geometry: rope.original_max_position is %llu",
              (unsigned long long)r->original_max_position);
    RETURN_IF(r->type == HOIST_ROPE_LLAMA3 &&
                  !(r->low_freq_factor > 0 && r->high_freq_factor > r->low_freq_factor),
              HOIST_E_BAD_CONFIG,
              "geometry: rope.low_freq_factor %g and high_freq_factor %g (expected 0 < low < high)",
              r->low_freq_factor, r->high_freq_factor);
    RETURN_IF(r->type == HOIST_ROPE_YARN &&
                  !(r->attention_factor > 0 && isfinite(r->beta_fast) &&
                    isfinite(r->beta_slow) && r->beta_fast != 0 && r->beta_slow != 0),
              HOIST_E_BAD_CONFIG,
              "geometry: rope.attention_factor %g, beta_fast %g, beta_slow %g (yarn needs a "
              "positive attention factor and non-zero betas)",
              r->attention_factor, r->beta_fast, r->beta_slow);
    RETURN_IF(g->biases & ~(HOIST_BIAS_QKV | HOIST_BIAS_O | HOIST_BIAS_MLP), HOIST_E_BAD_CONFIG,
              "geometry: biases 0x%x has unknown bits", g->biases);
    RETURN_IF(g->qk_norm != 0 && g->qk_norm != 1, HOIST_E_BAD_CONFIG,
              "geometry: qk_norm is %d (expected 0 or 1)", g->qk_norm);
    return HOIST_OK;
}

/* g: the library's full-size copy. */
static int check(const hoist_geometry *g)
{
    RETURN_IF(memchr(g->architecture, '\0', sizeof g->architecture) == NULL, HOIST_E_BAD_CONFIG,
              "geometry: architecture is not a terminated string");
#define CHECK_RANGE(field, lo, hi)                                                                 \
    RETURN_IF((uint64_t)g->field < (lo) || (uint64_t)g->field > (hi), HOIST_E_BAD_CONFIG,          \
              "geometry: " #field " is %llu (expected %llu..%llu)",                                \
              (unsigned long long)g->field, (unsigned long long)(lo), (unsigned long long)(hi))
    CHECK_RANGE(n_layers, 1, MAX_LAYERS);
    CHECK_RANGE(hidden, 1, MAX_HIDDEN);
    CHECK_RANGE(intermediate, 1, MAX_INTERMEDIATE);
    CHECK_RANGE(n_heads, 1, MAX_HEADS);
    CHECK_RANGE(n_kv_heads, 1, g->n_heads);
    CHECK_RANGE(head_dim, 1, MAX_HEAD_DIM);
    CHECK_RANGE(vocab, 1, MAX_VOCAB);
    CHECK_RANGE(max_position, 1, MAX_POSITION);
#undef CHECK_RANGE
    RETURN_IF(g->n_heads % g->n_kv_heads != 0, HOIST_E_BAD_CONFIG,
              "geometry: %u attention heads are not a multiple of %u key-value heads", g->n_heads,
              g->n_kv_heads);
    RETURN_IF(!(g->rms_eps > 0 && g->rms_eps <= MAX_RMS_EPS), HOIST_E_BAD_CONFIG,
              "geometry: rms_eps is %g (expected a number in (0, %g])", g->rms_eps, MAX_RMS_EPS);
    RETURN_IF(!(g->rope_theta > 0 && g->rope_theta <= MAX_ROPE_THETA), HOIST_E_BAD_CONFIG,
              "geometry: rope_theta is %g (expected a number in (0, %g])", g->rope_theta,
              MAX_ROPE_THETA);
    RETURN_IF(g->tied_embeddings != 0 && g->tied_embeddings != 1, HOIST_E_BAD_CONFIG,
              "geometry: tied_embeddings is %d (expected 0 or 1)", g->tied_embeddings);
    RETURN_IF((unsigned)g->dtype >= HOIST_DTYPE_COUNT, HOIST_E_BAD_CONFIG,
              "geometry: dtype %d is unknown", (int)g->dtype);
    RETURN_IF(memchr(g->unsupported, '\0', sizeof g->unsupported) == NULL, HOIST_E_BAD_CONFIG,
              "geometry: unsupported is not a terminated string");
    return check_variants(g);
}

int hoist_geometry_check(const hoist_geometry *geometry)
{
    RETURN_IF(!geometry, HOIST_E_INVALID_ARG, "hoist_geometry_check: geometry is NULL");
    hoist_geometry g;
    RETURN_IF_ERR(HOIST__IN(hoist_geometry, &g, geometry, NULL));
    return check(&g);
}

/* ---- config.json -------------------------------------------------------------------------- */

static int read_config(const char *path, char **out, size_t *len)
{
    /* non-blocking: a FIFO in the model's place must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s: cannot open the model configuration: %s", path,
              strerror(errno));
    int rc = hoist__io_read_whole(fd, path, CONFIG_MAX_BYTES, HOIST_E_BAD_CONFIG,
                                  "a configuration", out, len);
    close(fd);
    return rc;
}

typedef struct cfg {
    const char *path;
    const json_t *obj;  /* the object the keys are read from */
    const char *prefix; /* "" or "text_config." for messages */
} cfg;

/* Absent and null are the same: HF writes "head_dim": null for "derive it". */
static const json_t *cfg_get(const cfg *c, const char *key)
{
    const json_t *v = json_object_get(c->obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int cfg_uint(const cfg *c, const char *key, int required, uint64_t def, uint64_t lo,
                    uint64_t hi, uint64_t *out)
{
    const json_t *v = cfg_get(c, key);
    if (!v) {
        RETURN_IF(required, HOIST_E_BAD_CONFIG, "%s: key \"%s%s\" is missing", c->path, c->prefix,
                  key);
        *out = def;
        return HOIST_OK;
    }
    RETURN_IF(!json_is_integer(v), HOIST_E_BAD_CONFIG,
              "%s: key \"%s%s\" is a JSON %s, expected an integer", c->path, c->prefix, key,
              hoist__json_kind(v));
    json_int_t n = json_integer_value(v);
    RETURN_IF(n < 0 || (uint64_t)n < lo || (uint64_t)n > hi, HOIST_E_BAD_CONFIG,
              "%s: key \"%s%s\" is %lld (expected %llu..%llu)", c->path, c->prefix, key,
              (long long)n, (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)n;
    return HOIST_OK;
}

static int cfg_u32(const cfg *c, const char *key, int required, uint64_t def, uint64_t lo,
                   uint64_t hi, uint32_t *out)
{
    uint64_t v;
    RETURN_IF_ERR(cfg_uint(c, key, required, def, lo, hi, &v));
    *out = (uint32_t)v;
    return HOIST_OK;
}

static int cfg_real(const cfg *c, const char *key, double def, double lo_excl, double hi,
                    double *out)
{
    const json_t *v = cfg_get(c, key);
    if (!v) {
        *out = def;
        return HOIST_OK;
    }
    RETURN_IF(!json_is_number(v), HOIST_E_BAD_CONFIG,
              "%s: key \"%s%s\" is a JSON %s, expected a number", c->path, c->prefix, key,
              hoist__json_kind(v));
    double d = json_number_value(v);
    RETURN_IF(!(d > lo_excl && d <= hi), HOIST_E_BAD_CONFIG,
              "%s: key \"%s%s\" is %g (expected a number in (%g, %g])", c->path, c->prefix, key, d,
              lo_excl, hi);
    *out = d;
    return HOIST_OK;
}

static const struct {
    const char *torch;
    hoist_dtype dtype;
} torch_dtypes[] = {
    {"bfloat16", HOIST_DTYPE_BF16}, {"float16", HOIST_DTYPE_F16},
    {"half", HOIST_DTYPE_F16},      {"float32", HOIST_DTYPE_F32},
    {"float", HOIST_DTYPE_F32},     {"float64", HOIST_DTYPE_F64},
    {"int8", HOIST_DTYPE_I8},       {"uint8", HOIST_DTYPE_U8},
    {"float8_e4m3fn", HOIST_DTYPE_F8_E4M3}, {"float8_e5m2", HOIST_DTYPE_F8_E5M2},
};

static int cfg_dtype(const cfg *c, hoist_dtype def, hoist_dtype *out)
{
    const char *key = "torch_dtype";
    const json_t *v = cfg_get(c, key);
    if (!v) v = cfg_get(c, key = "dtype"); /* transformers 4.56+ writes "dtype" */
    if (!v) {
        *out = def;
        return HOIST_OK;
    }
    RETURN_IF(!json_is_string(v), HOIST_E_BAD_CONFIG,
              "%s: key \"%s%s\" is a JSON %s, expected a string", c->path, c->prefix, key,
              hoist__json_kind(v));
    const char *s = json_string_value(v);
    if (strncmp(s, "torch.", 6) == 0) s += 6;
    for (size_t i = 0; i < sizeof torch_dtypes / sizeof *torch_dtypes; i++) {
        if (strcmp(s, torch_dtypes[i].torch) != 0) continue;
        *out = torch_dtypes[i].dtype;
        return HOIST_OK;
    }
    return hoist__err(HOIST_E_BAD_CONFIG, "%s: key \"%s%s\" is \"%.40s\", not a known dtype",
                      c->path, c->prefix, key, json_string_value(v));
}

static int cfg_architecture(const cfg *c, const json_t *root, char *out, size_t cap)
{
    const json_t *v = cfg_get(c, "model_type");
    if (!v && c->obj != root) v = json_object_get(root, "model_type");
    RETURN_IF(!v, HOIST_E_BAD_CONFIG, "%s: key \"model_type\" is missing", c->path);
    RETURN_IF(!json_is_string(v), HOIST_E_BAD_CONFIG,
              "%s: key \"model_type\" is a JSON %s, expected a string", c->path,
              hoist__json_kind(v));
    size_t n = json_string_length(v);
    RETURN_IF(n == 0 || n >= cap || strlen(json_string_value(v)) != n, HOIST_E_BAD_CONFIG,
              "%s: key \"model_type\" is %zu bytes (expected 1..%zu, no NUL)", c->path, n,
              cap - 1);
    memcpy(out, json_string_value(v), n + 1);
    return HOIST_OK;
}

/* transformers 5 takes the rope dict (rope_scaling, else rope_parameters) and sets its
 * rope_theta only when the dict has none: the dict's wins. */
static int cfg_rope_theta(const cfg *c, double *out)
{
    const char *dict = "rope_scaling.";
    const json_t *rp = cfg_get(c, "rope_scaling");
    if (!rp) rp = cfg_get(c, "rope_parameters"), dict = "rope_parameters.";
    if (rp && json_is_object(rp) && cfg_get(&(cfg){c->path, rp, ""}, "rope_theta")) {
        cfg sub = {c->path, rp, dict};
        return cfg_real(&sub, "rope_theta", 0, 0, MAX_ROPE_THETA, out);
    }
    if (cfg_get(c, "rope_theta")) return cfg_real(c, "rope_theta", 0, 0, MAX_ROPE_THETA, out);
    *out = DEFAULT_ROPE_THETA;
    return HOIST_OK;
}

/* The defaults of each configuration class where they differ from LlamaConfig's. */
static uint64_t default_max_position(const char *arch)
{
    if (strcmp(arch, "mistral") == 0) return 4096 * 32;
    if (strcmp(arch, "qwen2") == 0 || strcmp(arch, "qwen3") == 0) return 32768;
    return DEFAULT_MAX_POSITION;
}

static int geometry_from_json(const char *path, const json_t *root, hoist_dtype def_dtype,
                              hoist_geometry *g)
{
    RETURN_IF(!json_is_object(root), HOIST_E_BAD_CONFIG,
              "%s: the configuration is a JSON %s, not an object", path, hoist__json_kind(root));
    cfg c = {path, root, ""};
    /* multimodal configs keep the language model's keys in text_config */
    const json_t *tc = json_object_get(root, "text_config");
    if (!json_object_get(root, "num_hidden_layers") && tc && json_is_object(tc))
        c = (cfg){path, tc, "text_config."};

    RETURN_IF_ERR(cfg_architecture(&c, root, g->architecture, sizeof g->architecture));
    RETURN_IF_ERR(cfg_u32(&c, "num_hidden_layers", 1, 0, 1, MAX_LAYERS, &g->n_layers));
    RETURN_IF_ERR(cfg_u32(&c, "hidden_size", 1, 0, 1, MAX_HIDDEN, &g->hidden));
    RETURN_IF_ERR(cfg_u32(&c, "intermediate_size", 1, 0, 1, MAX_INTERMEDIATE, &g->intermediate));
    RETURN_IF_ERR(cfg_u32(&c, "num_attention_heads", 1, 0, 1, MAX_HEADS, &g->n_heads));
    RETURN_IF_ERR(cfg_u32(&c, "num_key_value_heads", 0, g->n_heads, 1, g->n_heads,
                          &g->n_kv_heads));
    RETURN_IF(g->n_heads % g->n_kv_heads != 0, HOIST_E_BAD_CONFIG,
              "%s: key \"%snum_attention_heads\" (%u) is not a multiple of "
              "\"num_key_value_heads\" (%u)",
              path, c.prefix, g->n_heads, g->n_kv_heads);
    /* Qwen3Config's head_dim defaults to 128, the others' to hidden_size / heads */
    int qwen3 = strcmp(g->architecture, "qwen3") == 0;
    if (!cfg_get(&c, "head_dim") && !qwen3)
        RETURN_IF(g->hidden % g->n_heads != 0, HOIST_E_BAD_CONFIG,
                  "%s: key \"%shead_dim\" is missing and hidden_size %u is not a multiple of "
                  "num_attention_heads %u",
                  path, c.prefix, g->hidden, g->n_heads);
    RETURN_IF_ERR(cfg_u32(&c, "head_dim", 0, qwen3 ? 128 : g->hidden / g->n_heads, 1,
                          MAX_HEAD_DIM, &g->head_dim));
    RETURN_IF_ERR(cfg_u32(&c, "vocab_size", 1, 0, 1, MAX_VOCAB, &g->vocab));
    RETURN_IF_ERR(cfg_uint(&c, "max_position_embeddings", 0,
                           default_max_position(g->architecture), 1, MAX_POSITION,
                           &g->max_position));
    RETURN_IF_ERR(cfg_real(&c, "rms_norm_eps", DEFAULT_RMS_EPS, 0, MAX_RMS_EPS, &g->rms_eps));
    RETURN_IF_ERR(cfg_rope_theta(&c, &g->rope_theta));
    const json_t *tie = cfg_get(&c, "tie_word_embeddings");
    if (!tie && c.obj != root) tie = json_object_get(root, "tie_word_embeddings");
    RETURN_IF(tie && !json_is_boolean(tie) && !json_is_null(tie), HOIST_E_BAD_CONFIG,
              "%s: key \"tie_word_embeddings\" is a JSON %s, expected true or false", path,
              hoist__json_kind(tie));
    g->tied_embeddings = tie && json_is_true(tie);
    hoist__variants_from_json(path, root, c.obj, c.prefix, g);
    /* torch_dtype sits at the top level of multimodal configs, or in text_config */
    cfg dc = c;
    if (c.obj != root && !cfg_get(&c, "torch_dtype") && !cfg_get(&c, "dtype"))
        dc = (cfg){path, root, ""};
    return cfg_dtype(&dc, def_dtype, &g->dtype);
}

int hoist__geometry_from_config_text(const char *path, const char *text, size_t len,
                                     hoist_dtype def_dtype, hoist_geometry *g)
{
    json_error_t jerr;
    int oom;
    json_t *root = hoist__json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    RETURN_IF(oom, HOIST_E_NOMEM, "%s: out of memory parsing the %zu-byte config", path, len);
    if (!root) {
        int dup = json_error_code(&jerr) == json_error_duplicate_key;
        return hoist__err(dup ? HOIST_E_DUPLICATE_KEY : HOIST_E_BAD_JSON,
                          "%s: %s at byte %d (line %d, column %d): %s", path,
                          dup ? "duplicate key" : "malformed JSON", jerr.position, jerr.line,
                          jerr.column, jerr.text);
    }
    int rc = geometry_from_json(path, root, def_dtype, g);
    json_decref(root);
    return rc;
}

static int geometry_from_config(const char *path, hoist_dtype def_dtype, hoist_geometry *g)
{
    char *text = NULL;
    size_t len = 0;
    RETURN_IF_ERR(read_config(path, &text, &len));
    int rc = hoist__geometry_from_config_text(path, text, len, def_dtype, g);
    hoist__free(text);
    return rc;
}

/* ---- GGUF metadata ------------------------------------------------------------------------ */

/* GGUF keeps the geometry in "<arch>.block_count" and friends (llama.cpp's naming), typed: any
 * integer type holding a value in range is taken (llama.cpp itself reads u32 and accepts the
 * other integer types), a float or an array is refused. Metadata that arrived as text (a
 * safetensors __metadata__) is read as decimal text. */
static const hoist__meta *meta_entry(const hoist__table *t, const char *arch, const char *key,
                                     char *full, size_t len)
{
    snprintf(full, len, "%s.%s", arch, key);
    long i = hoist__table_find_meta(t, full);
    return i < 0 ? NULL : &t->meta[i];
}

static bool meta_is_int(hoist_meta_type type, bool *is_signed)
{
    *is_signed = type == HOIST_META_I8 || type == HOIST_META_I16 || type == HOIST_META_I32 ||
                 type == HOIST_META_I64;
    return *is_signed || type == HOIST_META_U8 || type == HOIST_META_U16 ||
           type == HOIST_META_U32 || type == HOIST_META_U64;
}

static int meta_uint(const hoist__table *t, const char *arch, const char *key, int required,
                     uint64_t def, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char full[96];
    const hoist__meta *e = meta_entry(t, arch, key, full, sizeof full);
    const char *file = t->nfiles ? t->files[0].path : "model";
    if (!e) {
        RETURN_IF(required, HOIST_E_BAD_CONFIG, "%s: metadata key \"%s\" is missing", file, full);
        *out = def;
        return HOIST_OK;
    }
    const char *v = e->value;
    unsigned long long n;
    bool is_signed;
    if (meta_is_int(e->type, &is_signed)) {
        RETURN_IF(is_signed && e->num.i < 0, HOIST_E_BAD_CONFIG,
                  "%s: metadata key \"%s\" is %lld, expected an unsigned integer", file, full,
                  (long long)e->num.i);
        n = e->num.u;
    } else {
        RETURN_IF(e->type != HOIST_META_STRING, HOIST_E_BAD_CONFIG,
                  "%s: metadata key \"%s\" has type %s (%.40s), expected an integer", file, full,
                  hoist_meta_type_name(e->type), v);
        char *end;
        errno = 0;
        n = strtoull(v, &end, 10);
        RETURN_IF(!*v || *v == '-' || *v == '+' || *end || errno, HOIST_E_BAD_CONFIG,
                  "%s: metadata key \"%s\" is \"%.40s\", expected an unsigned integer", file,
                  full, v);
    }
    RETURN_IF(n < lo || n > hi, HOIST_E_BAD_CONFIG,
              "%s: metadata key \"%s\" is %llu (expected %llu..%llu)", file, full, n,
              (unsigned long long)lo, (unsigned long long)hi);
    *out = n;
    return HOIST_OK;
}

static int meta_real(const hoist__table *t, const char *arch, const char *key, double def,
                     double hi, double *out)
{
    char full[96];
    const hoist__meta *e = meta_entry(t, arch, key, full, sizeof full);
    if (!e) {
        *out = def;
        return HOIST_OK;
    }
    const char *v = e->value;
    bool is_signed;
    char *end = (char *)v + strlen(v);
    double d;
    if (e->type == HOIST_META_F32 || e->type == HOIST_META_F64)
        d = e->num.f;
    else if (meta_is_int(e->type, &is_signed))
        d = is_signed ? (double)e->num.i : (double)e->num.u;
    else if (e->type == HOIST_META_STRING)
        d = strtod(v, &end);
    else
        return hoist__err(HOIST_E_BAD_CONFIG, "%s: metadata key \"%s\" has type %s, expected a "
                          "number", t->nfiles ? t->files[0].path : "model", full,
                          hoist_meta_type_name(e->type));
    RETURN_IF(end == v || *end || !(d > 0 && d <= hi), HOIST_E_BAD_CONFIG,
              "%s: metadata key \"%s\" is \"%.40s\" (expected a number in (0, %g])",
              t->nfiles ? t->files[0].path : "model", full, v, hi);
    *out = d;
    return HOIST_OK;
}

/* GGUF files often leave <arch>.vocab_size out: the embedding matrix's other dimension is it
 * (0, which the bound rejects, when there is none). */
static uint64_t embedding_rows(const hoist__table *t, uint32_t hidden)
{
    long i = hoist__table_find(t, "token_embd.weight");
    if (i < 0 || t->tensors[i].ndim != 2) return 0;
    const int64_t *s = t->tensors[i].shape;
    return (uint64_t)(s[0] == (int64_t)hidden ? s[1] : s[0]);
}

static int geometry_from_meta(const hoist__table *t, const char *arch, hoist_geometry *g)
{
    const char *file = t->nfiles ? t->files[0].path : "model";
    size_t n = strlen(arch);
    RETURN_IF(n == 0 || n >= sizeof g->architecture || n > 48, HOIST_E_BAD_CONFIG,
              "%s: metadata key \"general.architecture\" is %zu bytes (expected 1..%zu)", file, n,
              sizeof g->architecture - 1);
    memcpy(g->architecture, arch, n + 1);
    uint64_t v;
#define U32(key, req, def, lo, hi, field)                                                         \
    do {                                                                                          \
        RETURN_IF_ERR(meta_uint(t, arch, key, req, def, lo, hi, &v));                             \
        g->field = (uint32_t)v;                                                                   \
    } while (0)
    U32("block_count", 1, 0, 1, MAX_LAYERS, n_layers);
    U32("embedding_length", 1, 0, 1, MAX_HIDDEN, hidden);
    U32("feed_forward_length", 1, 0, 1, MAX_INTERMEDIATE, intermediate);
    U32("attention.head_count", 1, 0, 1, MAX_HEADS, n_heads);
    U32("attention.head_count_kv", 0, g->n_heads, 1, g->n_heads, n_kv_heads);
    RETURN_IF(g->n_heads % g->n_kv_heads != 0, HOIST_E_BAD_CONFIG,
              "%s: %u attention heads are not a multiple of %u key-value heads", file,
              g->n_heads, g->n_kv_heads);
    U32("attention.key_length", 0, g->hidden / g->n_heads, 1, MAX_HEAD_DIM, head_dim);
    U32("vocab_size", 0, embedding_rows(t, g->hidden), 1, MAX_VOCAB, vocab);
#undef U32
    RETURN_IF_ERR(meta_uint(t, arch, "context_length", 0, DEFAULT_MAX_POSITION, 1, MAX_POSITION,
                            &g->max_position));
    RETURN_IF_ERR(meta_real(t, arch, "attention.layer_norm_rms_epsilon", DEFAULT_RMS_EPS,
                            MAX_RMS_EPS, &g->rms_eps));
    RETURN_IF_ERR(
        meta_real(t, arch, "rope.freq_base", DEFAULT_ROPE_THETA, MAX_ROPE_THETA, &g->rope_theta));
    hoist__variants_from_meta(t, arch, g);
    return HOIST_OK;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* The dtype holding most of the model's bytes: what torch_dtype would have said. */
static hoist_dtype majority_dtype(const hoist__table *t)
{
    uint64_t bytes[HOIST_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < t->ntensors; i++)
        if ((unsigned)t->tensors[i].dtype < HOIST_DTYPE_COUNT)
            bytes[t->tensors[i].dtype] += t->tensors[i].nbytes;
    int best = HOIST_DTYPE_F32;
    for (int d = 0; d < HOIST_DTYPE_COUNT; d++)
        if (bytes[d] > bytes[best]) best = d;
    return (hoist_dtype)best;
}

int hoist__geometry_of_table(const hoist__table *t, hoist_geometry *out)
{
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    g.dtype = majority_dtype(t);
    long arch_i = hoist__table_find_meta(t, "general.architecture");
    const char *arch = arch_i < 0 ? NULL : t->meta[arch_i].value;
    int rc;
    if (arch) {
        rc = geometry_from_meta(t, arch, &g);
        /* GGUF has no flag: a model without an output matrix reuses the embeddings */
        g.tied_embeddings = hoist__table_find(t, "output.weight") < 0;
    } else {
        RETURN_IF(t->nfiles == 0, HOIST_E_BAD_CONFIG, "model has no files to find config.json by");
        const char *first = t->files[0].path;
        const char *slash = strrchr(first, '/');
        size_t dirlen = slash ? (size_t)(slash - first) : 0;
        char *path = hoist__malloc(dirlen + sizeof "/config.json");
        RETURN_IF(!path, HOIST_E_NOMEM, "out of memory");
        if (slash)
            snprintf(path, dirlen + sizeof "/config.json", "%.*s/config.json", (int)dirlen, first);
        else
            strcpy(path, "config.json");
        rc = geometry_from_config(path, g.dtype, &g);
        hoist__free(path);
    }
    if (rc == HOIST_OK) rc = check(&g);
    if (rc < 0) return rc;
    *out = g;
    return HOIST_OK;
}

int hoist_geometry_from_config(const char *path, hoist_geometry *out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_geometry_from_config: out is NULL");
    RETURN_IF_ERR(HOIST__CHECK(hoist_geometry, out));
    HOIST__ZERO(hoist_geometry, out); /* what a failure leaves */
    RETURN_IF(!path, HOIST_E_INVALID_ARG, "hoist_geometry_from_config: path is NULL");
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    RETURN_IF_ERR(geometry_from_config(path, HOIST_DTYPE_F32, &g));
    RETURN_IF_ERR(check(&g));
    HOIST__OUT(hoist_geometry, out, &g);
    hoist__err_clear();
    return HOIST_OK;
}
