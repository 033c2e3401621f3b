/* Variants of the Llama block from config.json or GGUF metadata (see variants.h). The keys are
 * read as transformers 5 reads them for LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM
 * and Qwen3ForCausalLM: a key those classes ignore is ignored here too, and one that changes what
 * they compute is either honoured or recorded as unsupported. */
#include "formats/variants.h"
#include "formats/json_kind.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROPE_FACTOR 1e6

static const char *const supported_archs[] = {"llama", "mistral", "qwen2", "qwen3"};

int hoist__arch_supported(const char *arch)
{
    for (size_t i = 0; i < sizeof supported_archs / sizeof *supported_archs; i++)
        if (strcmp(arch, supported_archs[i]) == 0) return 1;
    return 0;
}

/* The first reason wins: it is the one a reader fixes first. */
static void note(hoist_geometry *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(hoist_geometry *g, const char *fmt, ...)
{
    if (g->unsupported[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->unsupported, sizeof g->unsupported, fmt, ap);
    va_end(ap);
}

double hoist__yarn_attention_factor(double factor, double mscale, double mscale_all_dim)
{
#define MSCALE(s, m) ((s) <= 1 ? 1.0 : 0.1 * (m) * log(s) + 1.0)
    if (mscale != 0 && mscale_all_dim != 0)
        return MSCALE(factor, mscale) / MSCALE(factor, mscale_all_dim);
    return MSCALE(factor, 1.0);
#undef MSCALE
}

/* ---- config.json ------------------------------------------------------------------------- */

typedef struct vctx {
    const char *path;
    const json_t *root, *obj;
    const char *prefix;
    hoist_geometry *g;
} vctx;

static const json_t *get(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* A JSON value as a message shows it. */
static const char *describe(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        snprintf(buf, n, "\"%.60s\"", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, n, "a JSON %s", hoist__json_kind(v));
    return buf;
}

static void note_key(vctx *c, const char *dict, const char *key, const json_t *v, const char *why)
{
    char val[96];
    note(c->g, "%s: key \"%s%s%s%s\" is %s (%s)", c->path, c->prefix, dict ? dict : "",
         dict ? "." : "", key, describe(v, val, sizeof val), why);
}

/* A number from obj (dict names it in messages): absent or null gives def; a non-number or one
 * outside (lo, hi] is noted. 0 when usable. */
static int num(vctx *c, const json_t *obj, const char *dict, const char *key, int required,
               double def, double lo_excl, double hi, double *out)
{
    const json_t *v = get(obj, key);
    if (!v) {
        if (required) {
            note(c->g, "%s: key \"%s%s%s%s\" is missing (the rope type needs it)", c->path,
                 c->prefix, dict ? dict : "", dict ? "." : "", key);
            return -1;
        }
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) {
        note_key(c, dict, key, v, "expected a number");
        return -1;
    }
    double d = json_number_value(v);
    if (!(d > lo_excl && d <= hi)) {
        char why[64];
        snprintf(why, sizeof why, "expected a number in (%g, %g]", lo_excl, hi);
        note_key(c, dict, key, v, why);
        return -1;
    }
    *out = d;
    return 0;
}

/* true/false (absent or null: def); anything else is noted and taken as def. */
static int flag(vctx *c, const json_t *obj, const char *key, int def)
{
    const json_t *v = get(obj, key);
    if (!v) return def;
    if (!json_is_boolean(v)) {
        note_key(c, NULL, key, v, "expected true or false");
        return def;
    }
    return json_is_true(v);
}

static int is_arch(const hoist_geometry *g, const char *arch)
{
    return strcmp(g->architecture, arch) == 0;
}

static void json_partial_rotary(vctx *c, const json_t *obj, const char *dict)
{
    const json_t *v = get(obj, "partial_rotary_factor");
    if (v && !(json_is_number(v) && json_number_value(v) == 1.0))
        note_key(c, dict, "partial_rotary_factor", v, "hoist rotates the whole head");
}

/* original_max_position_embeddings of llama3 and yarn: a top-level key wins (transformers 5
 * gives it priority), then the rope dict's, then max_position_embeddings. */
static int json_original_max(vctx *c, const json_t *rd, const char *dict, uint64_t *out)
{
    const json_t *top = get(c->obj, "original_max_position_embeddings");
    const json_t *v = top ? top : get(rd, "original_max_position_embeddings");
    if (!v) {
        *out = c->g->max_position;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        note_key(c, top ? NULL : dict, "original_max_position_embeddings", v,
                 "expected a positive integer");
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static void json_yarn(vctx *c, const json_t *rd, const char *dict)
{
    hoist_rope_scaling *r = &c->g->rope;
    double attn, mscale, mscale_all, bf, bs;
    if (json_original_max(c, rd, dict, &r->original_max_position) < 0) return;
    /* transformers 5: an explicit null factor is the ratio of the two lengths */
    if (json_object_get(rd, "factor") && json_is_null(json_object_get(rd, "factor")))
        r->factor = (double)c->g->max_position / (double)r->original_max_position;
    else if (num(c, rd, dict, "factor", 1, 0, 0, MAX_ROPE_FACTOR, &r->factor) < 0)
        return;
    if (num(c, rd, dict, "mscale", 0, 0, -1e9, 1e9, &mscale) < 0 ||
        num(c, rd, dict, "mscale_all_dim", 0, 0, -1e9, 1e9, &mscale_all) < 0 ||
        num(c, rd, dict, "attention_factor", 0, 0, 0, 1e6, &attn) < 0 ||
        num(c, rd, dict, "beta_fast", 0, 0, -1e9, 1e9, &bf) < 0 ||
        num(c, rd, dict, "beta_slow", 0, 0, -1e9, 1e9, &bs) < 0)
        return;
    r->attention_factor =
        attn != 0 ? attn : hoist__yarn_attention_factor(r->factor, mscale, mscale_all);
    /* `beta_fast or 32`: zero means the default too */
    r->beta_fast = bf != 0 ? bf : 32;
    r->beta_slow = bs != 0 ? bs : 1;
    r->truncate = flag(c, rd, "truncate", 1);
}

static void json_llama3(vctx *c, const json_t *rd, const char *dict)
{
    hoist_rope_scaling *r = &c->g->rope;
    if (num(c, rd, dict, "factor", 1, 0, 0, MAX_ROPE_FACTOR, &r->factor) < 0 ||
        num(c, rd, dict, "low_freq_factor", 1, 0, 0, MAX_ROPE_FACTOR, &r->low_freq_factor) < 0 ||
        num(c, rd, dict, "high_freq_factor", 1, 0, 0, MAX_ROPE_FACTOR, &r->high_freq_factor) < 0 ||
        json_original_max(c, rd, dict, &r->original_max_position) < 0)
        return;
    if (r->high_freq_factor <= r->low_freq_factor)
        note(c->g, "%s: key \"%s%s.high_freq_factor\" (%g) is not above low_freq_factor (%g)",
             c->path, c->prefix, dict, r->high_freq_factor, r->low_freq_factor);
}

static const struct {
    const char *name;
    hoist_rope_type type;
} rope_types[] = {{"default", HOIST_ROPE_DEFAULT}, {"linear", HOIST_ROPE_LINEAR},
                  {"dynamic", HOIST_ROPE_DYNAMIC}, {"yarn", HOIST_ROPE_YARN},
                  {"llama3", HOIST_ROPE_LLAMA3}};

/* rope_scaling (transformers 4), or rope_parameters (transformers 5); "type" is the old name of
 * "rope_type". */
static void json_rope(vctx *c)
{
    const char *dict = "rope_scaling";
    const json_t *rd = get(c->obj, dict);
    if (!rd) rd = get(c->obj, dict = "rope_parameters");
    json_partial_rotary(c, c->obj, NULL);
    if (!rd) return;
    if (!json_is_object(rd)) {
        note_key(c, NULL, dict, rd, "expected an object");
        return;
    }
    json_partial_rotary(c, rd, dict);
    const char *tkey = "rope_type";
    const json_t *tv = get(rd, tkey);
    if (!tv) tv = get(rd, tkey = "type");
    if (!tv) {
        /* transformers 5 nests one dict per layer type; anything but one global dict is another
         * model's */
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)rd, k, v)
            if (json_is_object(v)) {
                note_key(c, dict, k, v, "per-layer-type rope parameters are not supported");
                return;
            }
        return; /* rope_theta alone: the default type */
    }
    if (!json_is_string(tv)) {
        note_key(c, dict, tkey, tv, "expected a string");
        return;
    }
    const char *type = json_string_value(tv);
    size_t i = 0, n = sizeof rope_types / sizeof *rope_types;
    while (i < n && strcmp(type, rope_types[i].name) != 0) i++;
    if (i == n) {
        note_key(c, dict, tkey, tv, "hoist runs default, linear, dynamic, yarn and llama3");
        return;
    }
    hoist_rope_scaling *r = &c->g->rope;
    r->type = rope_types[i].type;
    if (r->type == HOIST_ROPE_LINEAR || r->type == HOIST_ROPE_DYNAMIC)
        num(c, rd, dict, "factor", 1, 0, 0, MAX_ROPE_FACTOR, &r->factor);
    else if (r->type == HOIST_ROPE_YARN)
        json_yarn(c, rd, dict);
    else if (r->type == HOIST_ROPE_LLAMA3)
        json_llama3(c, rd, dict);
}

/* Keys every supported model_type reads the same way. */
static void json_common(vctx *c)
{
    hoist_geometry *g = c->g;
    const json_t *v = get(c->obj, "hidden_act");
    /* transformers' ACT2FN maps "swish" to the same SiLU */
    if (v && !(json_is_string(v) && (strcmp(json_string_value(v), "silu") == 0 ||
                                      strcmp(json_string_value(v), "swish") == 0)))
        note_key(c, NULL, "hidden_act", v, "the MLP computes silu");
    v = get(c->obj, "pretraining_tp");
    if (v && !(json_is_integer(v) && json_integer_value(v) == 1))
        note_key(c, NULL, "pretraining_tp", v, "hoist runs pretraining_tp 1");
    v = get(c->obj, "quantization_config");
    if (!v && c->obj != c->root) v = get(c->root, "quantization_config");
    if (v) {
        const json_t *m = json_is_object(v) ? get(v, "quant_method") : NULL;
        char val[96];
        note(g, "%s: key \"quantization_config\" is present%s%s (hoist computes with the tensors "
             "as stored, which take bf16, f16, f32 or Q8_0)",
             c->path, m ? ", quant_method " : "", m ? describe(m, val, sizeof val) : "");
    }
    v = get(c->obj, "layer_types");
    if (v) {
        size_t i;
        const json_t *e;
        if (!json_is_array(v)) note_key(c, NULL, "layer_types", v, "expected an array");
        json_array_foreach(v, i, e)
            if (!json_is_string(e) ||
                (strcmp(json_string_value(e), "full_attention") != 0 &&
                 strcmp(json_string_value(e), "sliding_attention") != 0)) {
                char k[48];
                snprintf(k, sizeof k, "layer_types[%zu]", i);
                note_key(c, NULL, k, e, "hoist runs full and sliding attention");
                break;
            }
    }
}

/* The layer_types entry at i; "" for one that is not a string (json_common noted it). */
static const char *layer_type(const json_t *types, size_t i)
{
    const char *s = json_string_value(json_array_get(types, i));
    return s ? s : "";
}

/* The layers that attend over the window, as transformers marks them: layer_types when the
 * config carries it, else Qwen's max_window_layers (28 by default, as Qwen2Config and
 * Qwen3Config) and Mistral's every layer. hoist runs the window in the layers from one on, which
 * is every pattern those classes derive; another one is noted naming the entry. */
static void json_window_layers(vctx *c, int mistral)
{
    hoist_geometry *g = c->g;
    const json_t *types = get(c->obj, "layer_types");
    if (types && json_is_array(types)) {
        size_t n = json_array_size(types), first = n;
        if (n != g->n_layers) {
            char why[96];
            snprintf(why, sizeof why, "an array of %zu entries for %u layers", n, g->n_layers);
            note(g, "%s: key \"%slayer_types\" is %s", c->path, c->prefix, why);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            int sliding = strcmp(layer_type(types, i), "sliding_attention") == 0;
            if (sliding && first == n) first = i;
            if (sliding || (first == n && !mistral)) continue;
            char k[48];
            snprintf(k, sizeof k, "layer_types[%zu]", i);
            note_key(c, NULL, k, json_array_get(types, i),
                     mistral ? "MistralForCausalLM attends over the window in every layer"
                             : "hoist runs the window in every layer after the first sliding one");
            return;
        }
        g->window_from_layer = (uint32_t)first;
        return;
    }
    if (mistral) return;
    const json_t *v = get(c->obj, "max_window_layers");
    if (!v) {
        g->window_from_layer = 28;
        return;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)UINT32_MAX) {
        note_key(c, NULL, "max_window_layers", v, "expected an integer from 0");
        return;
    }
    g->window_from_layer = (uint32_t)json_integer_value(v);
}

/* The window a model_type attends over: Mistral's sliding_window (4096 when absent, as
 * MistralConfig defaults; null: none); Qwen2's and Qwen3's only with use_sliding_window (without
 * it their configs drop the window, and a layer_types entry asking for one is an error in
 * transformers). Llama has no window, whatever the keys say. */
static void json_window(vctx *c)
{
    hoist_geometry *g = c->g;
    int mistral = is_arch(g, "mistral");
    int qwen = is_arch(g, "qwen2") || is_arch(g, "qwen3");
    if (!mistral && !(qwen && flag(c, c->obj, "use_sliding_window", 0))) {
        const json_t *types = get(c->obj, "layer_types");
        for (size_t i = 0; qwen && json_is_array(types) && i < json_array_size(types); i++)
            if (strcmp(layer_type(types, i), "sliding_attention") == 0) {
                char k[48];
                snprintf(k, sizeof k, "layer_types[%zu]", i);
                note_key(c, NULL, k, json_array_get(types, i),
                         "use_sliding_window is false: there is no window to attend over");
                return;
            }
        return;
    }
    const json_t *raw = json_object_get(c->obj, "sliding_window");
    if (mistral && !raw) {
        g->sliding_window = 4096;
    } else {
        const json_t *v = get(c->obj, "sliding_window");
        if (!v) return;
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            note_key(c, NULL, "sliding_window", v, "expected a positive integer or null");
            return;
        }
        g->sliding_window = (uint64_t)json_integer_value(v);
    }
    json_window_layers(c, mistral);
}

void hoist__variants_from_json(const char *path, const json_t *root, const json_t *obj,
                               const char *prefix, hoist_geometry *g)
{
    vctx c = {path, root, obj, prefix, g};
    if (!hoist__arch_supported(g->architecture)) {
        note(g, "%s: key \"model_type\" is \"%s\" (hoist runs llama, mistral, qwen2, qwen3)",
             path, g->architecture);
        return;
    }
    json_common(&c);
    json_rope(&c);
    json_window(&c);
    /* half-read parameters must not fail hoist_geometry_check: loading needs only the shapes */
    if (g->unsupported[0]) g->rope = (hoist_rope_scaling){0};
    /* biases as each class builds its layers: Llama's attention_bias covers q, k, v and o and its
     * mlp_bias the MLP; Qwen2 always has q/k/v biases; Qwen3 has attention_bias and q/k norms;
     * Mistral has none (it ignores both keys, as transformers does) */
    if (is_arch(g, "llama")) {
        if (flag(&c, obj, "attention_bias", 0)) g->biases |= HOIST_BIAS_QKV | HOIST_BIAS_O;
        if (flag(&c, obj, "mlp_bias", 0)) g->biases |= HOIST_BIAS_MLP;
    } else if (is_arch(g, "qwen2")) {
        g->biases |= HOIST_BIAS_QKV;
    } else if (is_arch(g, "qwen3")) {
        if (flag(&c, obj, "attention_bias", 0)) g->biases |= HOIST_BIAS_QKV | HOIST_BIAS_O;
        g->qk_norm = 1;
    }
}

/* ---- GGUF metadata ------------------------------------------------------------------------ */

static const hoist__meta *meta(const hoist__table *t, const char *arch, const char *key,
                               char *full, size_t n)
{
    snprintf(full, n, "%s.%s", arch, key);
    long i = hoist__table_find_meta(t, full);
    return i < 0 ? NULL : &t->meta[i];
}

static int meta_number(const hoist__meta *e, double *out)
{
    switch (e->type) {
    case HOIST_META_F32:
    case HOIST_META_F64: *out = e->num.f; return 1;
    case HOIST_META_I8:
    case HOIST_META_I16:
    case HOIST_META_I32:
    case HOIST_META_I64: *out = (double)e->num.i; return 1;
    case HOIST_META_U8:
    case HOIST_META_U16:
    case HOIST_META_U32:
    case HOIST_META_U64: *out = (double)e->num.u; return 1;
    case HOIST_META_STRING: { /* a safetensors __metadata__ holds text */
        char *end;
        *out = strtod(e->value, &end);
        return end != e->value && *end == '\0';
    }
    default: return 0;
    }
}

/* A positive number at <arch>.key, or def when absent; noted otherwise. */
static double meta_positive(const hoist__table *t, const char *arch, const char *key, double def,
                            hoist_geometry *g)
{
    char full[96];
    const hoist__meta *e = meta(t, arch, key, full, sizeof full);
    double d;
    if (!e) return def;
    if (!meta_number(e, &d) || !(d > 0 && d <= MAX_ROPE_FACTOR * 1e6)) {
        note(g, "metadata key \"%s\" is \"%.40s\" (expected a positive number)", full, e->value);
        return def;
    }
    return d;
}

static void meta_rope(const hoist__table *t, const char *arch, hoist_geometry *g)
{
    char full[96];
    hoist_rope_scaling *r = &g->rope;
    const hoist__meta *e = meta(t, arch, "rope.scaling.type", full, sizeof full);
    /* the older key llama.cpp still reads */
    double linear = meta_positive(t, arch, "rope.scale_linear", 0, g);
    if (!e) {
        if (linear != 0 && linear != 1) {
            r->type = HOIST_ROPE_LINEAR;
            r->factor = linear;
        }
        return;
    }
    const char *type = e->type == HOIST_META_STRING ? e->value : "";
    if (strcmp(type, "none") == 0) return;
    r->factor = meta_positive(t, arch, "rope.scaling.factor", linear ? linear : 1, g);
    if (strcmp(type, "linear") == 0) {
        r->type = HOIST_ROPE_LINEAR;
    } else if (strcmp(type, "yarn") == 0) {
        r->type = HOIST_ROPE_YARN;
        r->original_max_position = (uint64_t)meta_positive(
            t, arch, "rope.scaling.original_context_length", (double)g->max_position, g);
        /* llama.cpp multiplies its attn_factor into the default magnitude scale */
        r->attention_factor = meta_positive(t, arch, "rope.scaling.attn_factor", 1, g) *
                              hoist__yarn_attention_factor(r->factor, 0, 0);
        r->beta_fast = meta_positive(t, arch, "rope.scaling.yarn_beta_fast", 32, g);
        r->beta_slow = meta_positive(t, arch, "rope.scaling.yarn_beta_slow", 1, g);
        r->truncate = 1;
    } else {
        note(g, "metadata key \"%s\" is \"%.40s\" (hoist runs none, linear and yarn)", full,
             e->value);
    }
}

/* Metadata that would make the forward pass another model's. */
static void meta_refusals(const hoist__table *t, const char *arch, hoist_geometry *g)
{
    char full[96];
    const hoist__meta *e = meta(t, arch, "rope.dimension_count", full, sizeof full);
    double d;
    if (e && (!meta_number(e, &d) || d != g->head_dim))
        note(g, "metadata key \"%s\" is %s, not head_dim %u (hoist rotates the whole head)", full,
             e->value, g->head_dim);
    e = meta(t, arch, "attention.value_length", full, sizeof full);
    if (e && (!meta_number(e, &d) || d != g->head_dim))
        note(g, "metadata key \"%s\" is %s, not the key length %u", full, e->value, g->head_dim);
    e = meta(t, arch, "expert_count", full, sizeof full);
    if (e && (!meta_number(e, &d) || d != 0))
        note(g, "metadata key \"%s\" is %s (hoist runs dense models)", full, e->value);
    e = meta(t, arch, "attention.sliding_window", full, sizeof full);
    if (e) {
        if (meta_number(e, &d) && d >= 1)
            g->sliding_window = (uint64_t)d;
        else if (!meta_number(e, &d) || d != 0)
            note(g, "metadata key \"%s\" is %s (expected a positive integer)", full, e->value);
    }
}

void hoist__variants_from_meta(const hoist__table *t, const char *arch, hoist_geometry *g)
{
    if (!hoist__arch_supported(arch) || strcmp(arch, "mistral") == 0) {
        note(g, "metadata key \"general.architecture\" is \"%.40s\" (hoist runs llama, qwen2, "
             "qwen3)", arch);
        return;
    }
    meta_refusals(t, arch, g);
    meta_rope(t, arch, g);
    if (g->unsupported[0]) g->rope = (hoist_rope_scaling){0};
    /* llama.cpp's qwen2 requires q/k/v biases and qwen3 q/k norms; its llama takes biases when
     * they are there, so layer 0 announces them for the rest */
    if (strcmp(arch, "qwen2") == 0) g->biases |= HOIST_BIAS_QKV;
    if (strcmp(arch, "qwen3") == 0) g->qk_norm = 1;
    if (hoist__table_find(t, "blk.0.attn_q.bias") >= 0) g->biases |= HOIST_BIAS_QKV;
    if (hoist__table_find(t, "blk.0.attn_output.bias") >= 0) g->biases |= HOIST_BIAS_O;
    if (hoist__table_find(t, "blk.0.ffn_down.bias") >= 0) g->biases |= HOIST_BIAS_MLP;
}
