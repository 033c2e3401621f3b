/* Deterministic Llama-shaped checkpoint generator (see gen_model.h). */
#include "gen_model.h"
#include "gen_gguf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hoist gen writes little-endian safetensors data by storing host words; port the stores"
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define GEN_X86 1
#else
#define GEN_X86 0
#endif

#define GEN_AI static inline __attribute__((always_inline))

#define GEN_TMPFS_MAGIC 0x01021994
#define GEN_RAMFS_MAGIC 0x858458f6

/* Elements per work item (a multiple of GEN_BLOCK_ELEMS): 8 MiB of bf16, 16 MiB of f32. */
#define GEN_ITEM_ELEMS (4u * GEN_BLOCK_ELEMS)
/* Pairs of normals per inner loop (fixed trip count, so the compiler vectorizes it). */
#define GEN_SUB 1024u

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- dtypes ----------------------------------------------------------------------------------- */

const char *gen_dtype_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "bf16";
    case GEN_DTYPE_F16: return "f16";
    case GEN_DTYPE_F32: return "f32";
    case GEN_DTYPE_Q8_0: return "q8_0";
    }
    return "?";
}

const char *gen_dtype_st_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "BF16";
    case GEN_DTYPE_F16: return "F16";
    case GEN_DTYPE_F32: return "F32";
    case GEN_DTYPE_Q8_0: return "Q8_0";
    }
    return "?";
}

const char *gen_dtype_torch_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "bfloat16";
    case GEN_DTYPE_F16: return "float16";
    case GEN_DTYPE_F32:
    case GEN_DTYPE_Q8_0: return "float32";
    }
    return "?";
}

size_t gen_dtype_size(gen_dtype dtype)
{
    return dtype == GEN_DTYPE_Q8_0 ? 0 : dtype == GEN_DTYPE_F32 ? 4 : 2;
}

int gen_parse_dtype(const char *text, gen_dtype *out)
{
    static const struct {
        const char *name;
        gen_dtype dtype;
    } names[] = {
        {"bf16", GEN_DTYPE_BF16},    {"bfloat16", GEN_DTYPE_BF16}, {"f16", GEN_DTYPE_F16},
        {"fp16", GEN_DTYPE_F16},     {"float16", GEN_DTYPE_F16},   {"half", GEN_DTYPE_F16},
        {"f32", GEN_DTYPE_F32},      {"fp32", GEN_DTYPE_F32},      {"float32", GEN_DTYPE_F32},
        {"float", GEN_DTYPE_F32},    {"q8_0", GEN_DTYPE_Q8_0},     {"Q8_0", GEN_DTYPE_Q8_0},
    };
    if (!text) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].dtype;
            return 0;
        }
    }
    return -1;
}

int gen_parse_format(const char *text, gen_format *out)
{
    if (text && strcmp(text, "safetensors") == 0) *out = GEN_FORMAT_SAFETENSORS;
    else if (text && strcmp(text, "gguf") == 0) *out = GEN_FORMAT_GGUF;
    else return -1;
    return 0;
}

/* ---- presets ---------------------------------------------------------------------------------- */

typedef struct gen_preset_def {
    const char *name;
    const char *description;
    uint32_t layers, hidden, intermediate, heads, kv_heads, head_dim, vocab;
    bool tied;
    uint64_t shard_size;
} gen_preset_def;

static const gen_preset_def presets[] = {
    {"tiny", "smoke tests, a few hundred KiB", 2, 64, 172, 4, 2, 16, 256, false,
     GEN_DEFAULT_SHARD_SIZE},
    {"small", "about 1 GiB, 256 MiB shards", 9, 2048, 5632, 16, 4, 128, 32000, false,
     256ull << 20},
    {"llama-1b", "Llama-3.2-1B geometry, tied embeddings", 16, 2048, 8192, 32, 8, 64, 128256,
     true, GEN_DEFAULT_SHARD_SIZE},
    {"llama-3b", "Llama-3.2-3B geometry, tied embeddings", 28, 3072, 8192, 24, 8, 128, 128256,
     true, GEN_DEFAULT_SHARD_SIZE},
    {"llama-8b", "Llama-3-8B geometry", 32, 4096, 14336, 32, 8, 128, 128256, false,
     GEN_DEFAULT_SHARD_SIZE},
    {"llama-70b", "Llama-3-70B geometry", 80, 8192, 28672, 64, 8, 128, 128256, false,
     GEN_DEFAULT_SHARD_SIZE},
};

size_t gen_preset_count(void)
{
    return sizeof presets / sizeof presets[0];
}

const char *gen_preset_name(size_t i, const char **description)
{
    if (i >= gen_preset_count()) return NULL;
    if (description) *description = presets[i].description;
    return presets[i].name;
}

int gen_preset(const char *name, gen_config *out)
{
    if (!name || !out) return -1;
    for (size_t i = 0; i < gen_preset_count(); i++) {
        const gen_preset_def *p = &presets[i];
        if (strcmp(name, p->name) != 0) continue;
        out->layers = p->layers;
        out->hidden = p->hidden;
        out->intermediate = p->intermediate;
        out->heads = p->heads;
        out->kv_heads = p->kv_heads;
        out->head_dim = p->head_dim;
        out->vocab = p->vocab;
        out->tie_embeddings = p->tied;
        out->shard_size = p->shard_size;
        return 0;
    }
    return -1;
}

/* ---- sizes ------------------------------------------------------------------------------------ */

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Elements of a layer's family vectors: q/k/v biases, q/k norms. */
static uint64_t family_layer_elems(const gen_config *c)
{
    uint64_t q = mul_sat(c->heads, c->head_dim), kv = mul_sat(c->kv_heads, c->head_dim), n = 0;
    if (gen_family_qkv_bias(c)) n = add_sat(q, mul_sat(2, kv));
    if (gen_family_qk_norm(c)) n = add_sat(n, mul_sat(2, c->head_dim));
    return n;
}

static uint64_t layer_params(const gen_config *c)
{
    uint64_t h = c->hidden, q = mul_sat(c->heads, c->head_dim);
    uint64_t kv = mul_sat(c->kv_heads, c->head_dim);
    uint64_t p = add_sat(mul_sat(2, h), family_layer_elems(c)); /* RMSNorms, family vectors */
    p = add_sat(p, mul_sat(mul_sat(2, q), h));                  /* q_proj, o_proj */
    p = add_sat(p, mul_sat(mul_sat(2, kv), h));                 /* k_proj, v_proj */
    p = add_sat(p, mul_sat(mul_sat(3, c->intermediate), h));    /* gate, up, down */
    return p;
}

uint64_t gen_param_count(const gen_config *c)
{
    uint64_t emb = mul_sat(c->vocab, c->hidden);
    uint64_t p = mul_sat(emb, c->tie_embeddings ? 1 : 2);
    p = add_sat(p, c->hidden);
    return add_sat(p, mul_sat(layer_params(c), c->layers));
}

/* The dtype a tensor is written in: the model's, except GGUF's vectors, which llama.cpp's
 * converter always writes F32, and a Q8_0 file's odd matrices (see gen_dtype). */
static gen_dtype tensor_dtype(const gen_config *c, uint64_t cols, bool norm)
{
    if (c->format == GEN_FORMAT_GGUF && (norm || cols == 0)) return GEN_DTYPE_F32;
    if (c->dtype != GEN_DTYPE_Q8_0) return c->dtype;
    return cols % GEN_Q8_0_BLOCK == 0 ? GEN_DTYPE_Q8_0 : GEN_DTYPE_F16;
}

/* Bytes of a [rows, cols] tensor (cols 0: a vector of rows), saturating. */
static uint64_t tensor_bytes(const gen_config *c, uint64_t rows, uint64_t cols, bool norm)
{
    gen_dtype d = tensor_dtype(c, cols, norm);
    uint64_t n = cols ? mul_sat(rows, cols) : rows;
    if (d == GEN_DTYPE_Q8_0) return mul_sat(n / GEN_Q8_0_BLOCK, GEN_Q8_0_BYTES);
    return mul_sat(n, gen_dtype_size(d));
}

uint64_t gen_total_bytes(const gen_config *c)
{
    uint64_t h = c->hidden, q = mul_sat(c->heads, c->head_dim);
    uint64_t kv = mul_sat(c->kv_heads, c->head_dim), in = c->intermediate;
    uint64_t layer = mul_sat(2, tensor_bytes(c, h, 0, true));
    layer = add_sat(layer, tensor_bytes(c, q, h, false));                 /* q_proj */
    layer = add_sat(layer, mul_sat(2, tensor_bytes(c, kv, h, false)));    /* k_proj, v_proj */
    layer = add_sat(layer, tensor_bytes(c, h, q, false));                 /* o_proj */
    layer = add_sat(layer, mul_sat(2, tensor_bytes(c, in, h, false)));    /* gate, up */
    layer = add_sat(layer, tensor_bytes(c, h, in, false));                /* down */
    layer = add_sat(layer, tensor_bytes(c, family_layer_elems(c), 0, true));
    uint64_t emb = tensor_bytes(c, c->vocab, h, false);
    uint64_t total = add_sat(mul_sat(emb, c->tie_embeddings ? 1 : 2), tensor_bytes(c, h, 0, true));
    if (gen_family_rope_freqs(c)) total = add_sat(total, tensor_bytes(c, c->head_dim / 2, 0, true));
    return add_sat(total, mul_sat(layer, c->layers));
}

int gen_validate(const gen_config *c, char *err, size_t errlen)
{
    if (!c) {
        set_err(err, errlen, "no config");
        return -1;
    }
    const struct {
        const char *name;
        uint32_t value, max;
    } dims[] = {
        {"layers", c->layers, GEN_MAX_LAYERS},
        {"hidden", c->hidden, GEN_MAX_DIM},
        {"intermediate", c->intermediate, GEN_MAX_DIM},
        {"heads", c->heads, GEN_MAX_DIM},
        {"kv-heads", c->kv_heads, GEN_MAX_DIM},
        {"head-dim", c->head_dim, GEN_MAX_DIM},
        {"vocab", c->vocab, GEN_MAX_DIM},
        {"max-position", c->max_position, 1u << 30},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i].value == 0 || dims[i].value > dims[i].max) {
            set_err(err, errlen, "%s must be between 1 and %u (got %u)", dims[i].name, dims[i].max,
                    dims[i].value);
            return -1;
        }
    }
    if (c->dtype != GEN_DTYPE_BF16 && c->dtype != GEN_DTYPE_F16 && c->dtype != GEN_DTYPE_F32 &&
        c->dtype != GEN_DTYPE_Q8_0) {
        set_err(err, errlen, "unknown dtype %d", (int)c->dtype);
        return -1;
    }
    if (c->format != GEN_FORMAT_SAFETENSORS && c->format != GEN_FORMAT_GGUF) {
        set_err(err, errlen, "unknown format %d", (int)c->format);
        return -1;
    }
    if (c->dtype == GEN_DTYPE_Q8_0 && c->format != GEN_FORMAT_GGUF) {
        set_err(err, errlen, "q8_0 is a GGUF type: give --format gguf");
        return -1;
    }
    if (c->format == GEN_FORMAT_GGUF && c->head_dim % 2 != 0) {
        set_err(err, errlen, "head-dim (%u) must be even for GGUF's rotary layout", c->head_dim);
        return -1;
    }
    if (c->heads % c->kv_heads != 0) {
        set_err(err, errlen, "heads (%u) must be a multiple of kv-heads (%u)", c->heads,
                c->kv_heads);
        return -1;
    }
    if ((uint64_t)c->heads * c->head_dim > GEN_MAX_DIM) {
        set_err(err, errlen, "heads * head-dim (%llu) above %u",
                (unsigned long long)c->heads * c->head_dim, GEN_MAX_DIM);
        return -1;
    }
    if (c->shard_size == 0) {
        set_err(err, errlen, "shard size must be positive");
        return -1;
    }
    if (c->threads > GEN_MAX_THREADS) {
        set_err(err, errlen, "threads must be at most %u", GEN_MAX_THREADS);
        return -1;
    }
    if (gen_family_validate(c, err, errlen) != 0) return -1;
    uint64_t total = gen_total_bytes(c);
    if (total > GEN_MAX_TOTAL_BYTES) {
        set_err(err, errlen, "model of %llu bytes is above the 1 TiB limit",
                (unsigned long long)total);
        return -1;
    }
    return 0;
}

/* ---- size targeting --------------------------------------------------------------------------- */

static uint64_t absdiff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

static uint32_t round_to(double v, uint32_t unit, uint32_t lo)
{
    double r = (double)unit * (double)(uint64_t)(v / unit + 0.5);
    if (r < lo) r = lo;
    if (r > GEN_MAX_DIM) r = GEN_MAX_DIM;
    return (uint32_t)r;
}

/* Moves *field in steps of `unit` within [lo, hi] to bring the total closest to target. */
static void tune_field(gen_config *c, uint32_t *field, uint32_t lo, uint32_t hi, uint32_t unit,
                       uint64_t target)
{
    if (hi < lo) hi = lo;
    uint32_t best = *field;
    uint64_t best_diff = absdiff(gen_total_bytes(c), target);
    /* Total is linear in the field: estimate the step, then check around it. */
    *field = lo;
    uint64_t t_lo = gen_total_bytes(c);
    uint32_t steps = (hi - lo) / unit;
    if (steps > 0) {
        *field = lo + unit;
        uint64_t step_bytes = gen_total_bytes(c) - t_lo;
        uint64_t k = target > t_lo && step_bytes ? (target - t_lo) / step_bytes : 0;
        if (k > steps) k = steps;
        for (uint64_t cand = k; cand <= k + 1 && cand <= steps; cand++) {
            *field = lo + (uint32_t)cand * unit;
            uint64_t d = absdiff(gen_total_bytes(c), target);
            if (d < best_diff) {
                best_diff = d;
                best = *field;
            }
        }
    }
    *field = lo;
    if (absdiff(t_lo, target) < best_diff) best = lo;
    *field = best;
}

static uint32_t gcd_u32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int gen_fit_size(uint64_t target, gen_config *cfg)
{
    if (!cfg || target == 0 || gen_validate(cfg, NULL, 0) != 0) return -1;
    gen_config c = *cfg;
    c.layers = 1;
    uint64_t one = gen_total_bytes(&c);
    if (one <= target) {
        c.layers = 2;
        uint64_t per = gen_total_bytes(&c) - one;
        uint64_t n = per ? 1 + (target - one) / per : 1;
        if (n > GEN_MAX_LAYERS) n = GEN_MAX_LAYERS;
        c.layers = (uint32_t)n;
        uint64_t d = absdiff(gen_total_bytes(&c), target);
        if (n < GEN_MAX_LAYERS) {
            c.layers = (uint32_t)n + 1;
            if (absdiff(gen_total_bytes(&c), target) >= d) c.layers = (uint32_t)n;
        }
        while (c.layers > 1 && gen_total_bytes(&c) > GEN_MAX_TOTAL_BYTES) c.layers--;
        *cfg = c;
        return 0;
    }

    /* Even one layer is too big: shrink the geometry proportionally, one layer. */
    const gen_config base = c;
    uint32_t unit = base.head_dim / gcd_u32(base.head_dim, 64) * 64; /* lcm(head_dim, 64) */
    uint32_t kmax = base.hidden / unit;
    if (kmax == 0) kmax = 1;
    for (uint32_t k = kmax; k >= 1; k--) {
        gen_config g = base;
        double s = 1.0;
        if (base.hidden >= unit) {
            g.hidden = k * unit;
            g.heads = g.hidden / g.head_dim;
            s = (double)g.hidden / base.hidden;
            uint32_t kv = base.kv_heads < g.heads ? base.kv_heads : g.heads;
            while (g.heads % kv) kv--;
            g.kv_heads = kv;
        }
        uint32_t inter_lo = base.intermediate < 64 ? base.intermediate : 64;
        uint32_t vocab_lo = base.vocab < 64 ? base.vocab : 64;
        if (k == 1) {
            g.intermediate = inter_lo;
            g.vocab = vocab_lo;
        } else {
            g.intermediate = round_to(base.intermediate * s, 64, inter_lo);
            g.vocab = round_to(base.vocab * s, 64, vocab_lo);
            if (g.intermediate > base.intermediate) g.intermediate = base.intermediate;
            if (g.vocab > base.vocab) g.vocab = base.vocab;
        }
        if (gen_total_bytes(&g) > target && k > 1) continue;
        uint32_t v_hi = base.vocab >= 64 ? base.vocab / 64 * 64 : base.vocab;
        uint32_t i_hi = base.intermediate >= 64 ? base.intermediate / 64 * 64 : base.intermediate;
        if (k == 1 && base.hidden >= unit) {
            /* Smallest hidden: grow intermediate first (it is the layer's bulk), then vocab. */
            tune_field(&g, &g.intermediate, g.intermediate, i_hi, 64, target);
            tune_field(&g, &g.vocab, g.vocab, v_hi, 64, target);
        } else {
            tune_field(&g, &g.vocab, g.vocab, v_hi, 64, target);
            tune_field(&g, &g.intermediate, g.intermediate, i_hi, 64, target);
        }
        *cfg = g;
        return 0;
    }
    return -1; /* unreachable: k == 1 always returns */
}

/* ---- plan: tensors, shards, headers ----------------------------------------------------------- */

typedef struct gen_tensor {
    char name[64];   /* the Hugging Face name (GGUF: llama.cpp's) */
    uint64_t shape[2];
    int ndim;
    uint64_t numel;
    uint64_t nbytes;
    gen_dtype dtype; /* as written (see tensor_dtype) */
    bool ones;       /* RMSNorm weight: all 1.0 */
    bool jitter;     /* q/k norm weight: 1 + N(0, 0.02) */
    bool factors;    /* rope_freqs.weight: gen_rope_factors */
    uint32_t rope_heads; /* GGUF q/k projection: rows permuted over this many heads; else 0 */
    uint32_t file;
    uint64_t offset; /* within the file's data section */
} gen_tensor;

typedef struct gen_plan {
    gen_tensor *t;
    size_t nt;
    uint32_t nfiles;
    uint64_t *file_data;   /* data bytes per file */
    uint64_t *file_start;  /* header bytes per file */
    char **headers;        /* per file: 8-byte length, JSON, padding; or the GGUF header */
} gen_plan;

static void plan_free(gen_plan *p)
{
    if (p->headers)
        for (uint32_t i = 0; i < p->nfiles; i++) free(p->headers[i]);
    free(p->headers);
    free(p->t);
    free(p->file_data);
    free(p->file_start);
    memset(p, 0, sizeof *p);
}

static gen_tensor *add_tensor(gen_plan *p, const gen_config *c, const char *name, uint64_t rows,
                              uint64_t cols, bool ones)
{
    gen_tensor *t = &p->t[p->nt++];
    if (c->format != GEN_FORMAT_GGUF || gen_gguf_name(name, t->name, sizeof t->name) != 0)
        snprintf(t->name, sizeof t->name, "%s", name);
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->ndim = cols ? 2 : 1;
    t->numel = cols ? rows * cols : rows;
    t->dtype = tensor_dtype(c, cols, ones);
    t->nbytes = tensor_bytes(c, rows, cols, ones);
    t->ones = ones;
    if (c->format == GEN_FORMAT_GGUF && gen_family_permutes(c)) {
        size_t n = strlen(name);
        if (n > 19 && strcmp(name + n - 19, "self_attn.q_proj.weight" + 4) == 0)
            t->rope_heads = c->heads;
        else if (n > 19 && strcmp(name + n - 19, "self_attn.k_proj.weight" + 4) == 0)
            t->rope_heads = c->kv_heads;
    }
    return t;
}

/* Tensor list in Hugging Face order plus shard assignment. Config must be valid. */
static int plan_tensors(gen_plan *p, const gen_config *c)
{
    memset(p, 0, sizeof *p);
    size_t cap = 3 + 14 * (size_t)c->layers + (c->tie_embeddings ? 0 : 1);
    p->t = calloc(cap, sizeof *p->t);
    if (!p->t) return -1;
    uint64_t h = c->hidden, q = (uint64_t)c->heads * c->head_dim,
             kv = (uint64_t)c->kv_heads * c->head_dim, in = c->intermediate;
    char name[64];
    add_tensor(p, c, "model.embed_tokens.weight", c->vocab, h, false);
    for (uint32_t l = 0; l < c->layers; l++) {
#define LAYER(suffix, rows, cols, ones)                                                           \
    do {                                                                                          \
        snprintf(name, sizeof name, "model.layers.%u." suffix, l);                                \
        add_tensor(p, c, name, rows, cols, ones);                                                 \
    } while (0)
        LAYER("input_layernorm.weight", h, 0, true);
        LAYER("self_attn.q_proj.weight", q, h, false);
        LAYER("self_attn.k_proj.weight", kv, h, false);
        LAYER("self_attn.v_proj.weight", kv, h, false);
        if (gen_family_qkv_bias(c)) {
            LAYER("self_attn.q_proj.bias", q, 0, false);
            LAYER("self_attn.k_proj.bias", kv, 0, false);
            LAYER("self_attn.v_proj.bias", kv, 0, false);
        }
        if (gen_family_qk_norm(c)) {
            LAYER("self_attn.q_norm.weight", c->head_dim, 0, true);
            p->t[p->nt - 1].ones = false;
            p->t[p->nt - 1].jitter = true;
            LAYER("self_attn.k_norm.weight", c->head_dim, 0, true);
            p->t[p->nt - 1].ones = false;
            p->t[p->nt - 1].jitter = true;
        }
        LAYER("self_attn.o_proj.weight", h, q, false);
        LAYER("post_attention_layernorm.weight", h, 0, true);
        LAYER("mlp.gate_proj.weight", in, h, false);
        LAYER("mlp.up_proj.weight", in, h, false);
        LAYER("mlp.down_proj.weight", h, in, false);
#undef LAYER
    }
    add_tensor(p, c, "model.norm.weight", h, 0, true);
    if (!c->tie_embeddings) add_tensor(p, c, "lm_head.weight", c->vocab, h, false);
    if (gen_family_rope_freqs(c)) {
        gen_tensor *t = add_tensor(p, c, "rope_freqs.weight", c->head_dim / 2, 0, true);
        t->ones = false;
        t->factors = true;
    }

    uint32_t file = 0;
    uint64_t cur = 0;
    for (size_t i = 0; i < p->nt; i++) {
        gen_tensor *t = &p->t[i];
        if (c->format == GEN_FORMAT_GGUF) { /* one file, each tensor aligned */
            t->file = 0;
            t->offset = (cur + GEN_GGUF_ALIGNMENT - 1) / GEN_GGUF_ALIGNMENT * GEN_GGUF_ALIGNMENT;
            cur = t->offset + t->nbytes;
            continue;
        }
        if (cur > 0 && (cur + t->nbytes > c->shard_size || cur + t->nbytes < cur)) {
            file++;
            cur = 0;
        }
        t->file = file;
        t->offset = cur;
        cur += t->nbytes;
    }
    p->nfiles = file + 1;
    return 0;
}

uint32_t gen_file_count(const gen_config *cfg)
{
    if (gen_validate(cfg, NULL, 0) != 0) return 0;
    gen_plan p;
    if (plan_tensors(&p, cfg) != 0) return 0;
    uint32_t n = p.nfiles;
    plan_free(&p);
    return n;
}

void gen_file_name(uint32_t i, uint32_t n, char *buf, size_t len)
{
    if (n <= 1)
        snprintf(buf, len, "model.safetensors");
    else
        snprintf(buf, len, "model-%05u-of-%05u.safetensors", i + 1, n);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* Builds every file's header: 8-byte little-endian length N, then the JSON padded with spaces so
 * that 8 + N is a multiple of 8. */
/* The GGUF header of the one file; its data ends padded to the alignment, as llama.cpp's writer
 * leaves it. */
static int plan_gguf_header(gen_plan *p, const gen_config *c)
{
    static const uint32_t types[] = {[GEN_DTYPE_BF16] = GEN_GGML_BF16,
                                     [GEN_DTYPE_F16] = GEN_GGML_F16,
                                     [GEN_DTYPE_F32] = GEN_GGML_F32,
                                     [GEN_DTYPE_Q8_0] = GEN_GGML_Q8_0};
    gen_gguf_tensor *infos = calloc(p->nt ? p->nt : 1, sizeof *infos);
    if (!infos) return -1;
    for (size_t i = 0; i < p->nt; i++) {
        const gen_tensor *t = &p->t[i];
        /* ne is innermost first: [cols, rows] */
        infos[i] = (gen_gguf_tensor){.name = t->name,
                                     .n_dims = (uint32_t)t->ndim,
                                     .ne = {t->ndim == 2 ? t->shape[1] : t->shape[0],
                                            t->shape[0]},
                                     .type = types[t->dtype],
                                     .offset = t->offset};
        p->file_data[0] = t->offset + t->nbytes;
    }
    p->file_data[0] = (p->file_data[0] + GEN_GGUF_ALIGNMENT - 1) / GEN_GGUF_ALIGNMENT *
                      GEN_GGUF_ALIGNMENT;
    unsigned char *head;
    uint64_t len;
    int rc = gen_gguf_header(c, infos, p->nt, &head, &len);
    free(infos);
    if (rc != 0) return -1;
    p->headers[0] = (char *)head;
    p->file_start[0] = len;
    return 0;
}

static int plan_headers(gen_plan *p, const gen_config *c)
{
    p->file_data = calloc(p->nfiles, sizeof *p->file_data);
    p->file_start = calloc(p->nfiles, sizeof *p->file_start);
    p->headers = calloc(p->nfiles, sizeof *p->headers);
    if (!p->file_data || !p->file_start || !p->headers) return -1;
    if (c->format == GEN_FORMAT_GGUF) return plan_gguf_header(p, c);
    size_t ti = 0;
    for (uint32_t f = 0; f < p->nfiles; f++) {
        sbuf b = {0};
        sb_printf(&b, "%8s", ""); /* room for the length */
        sb_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (; ti < p->nt && p->t[ti].file == f; ti++) {
            const gen_tensor *t = &p->t[ti];
            sb_printf(&b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu", t->name,
                      gen_dtype_st_name(t->dtype), (unsigned long long)t->shape[0]);
            if (t->ndim == 2) sb_printf(&b, ",%llu", (unsigned long long)t->shape[1]);
            sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->offset,
                      (unsigned long long)(t->offset + t->nbytes));
            p->file_data[f] = t->offset + t->nbytes;
        }
        sb_printf(&b, "}");
        while (!b.oom && b.len % 8) sb_printf(&b, " ");
        if (b.oom) {
            free(b.p);
            return -1;
        }
        uint64_t n = b.len - 8;
        for (int i = 0; i < 8; i++) b.p[i] = (char)(unsigned char)(n >> (8 * i));
        p->headers[f] = b.p;
        p->file_start[f] = b.len;
    }
    return 0;
}

/* ---- the normal generator --------------------------------------------------------------------- */

/* The same bits from every code path: no a * b + c contracted into an FMA (clang contracts by
 * default and its avx512f implies FMA; GCC does in GNU mode when the target has FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t gen_block_key(uint64_t seed, uint64_t tensor, uint64_t block)
{
    return mix64(mix64(mix64(seed) ^ tensor) ^ (block * 0xd1b54a32d192ed03ull));
}

GEN_AI uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

GEN_AI float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

GEN_AI uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

typedef struct gen_pair {
    uint32_t a, b; /* two independent N(0, GEN_STD) floats, as bits */
} gen_pair;

/* Pair j of a block keyed (k0, k1, k2): Box-Muller with hash-counter uniforms. Written with only
 * IEEE +, -, *, / and integer ops (no libm, no sqrt, no FMA in C11 mode), so every vector width
 * produces the same bits. Uniforms: u1 in (0, 1] from 24 bits, the angle in [-pi/4, pi/4) from 24
 * bits, then one of the 8 symmetries of the square (3 more bits) spreads it over the circle.
 * Accuracy is a few float ulps: exact enough for f32, far below bf16/f16 rounding. */
GEN_AI gen_pair normal_pair(uint32_t j, uint32_t k0, uint32_t k1, uint32_t k2)
{
    uint32_t a = lowbias32(j + k0);
    uint32_t h1 = lowbias32(a ^ k1);
    uint32_t h2 = a ^ k2; /* a is already mixed: one multiply round decorrelates h2 from h1 */
    h2 ^= h2 >> 16;
    h2 *= 0x2c1b3c6du;
    h2 ^= h2 >> 15;

    /* v = -2 ln(u1), u1 = f / 2^24, f in [1, 2^24]. ln f = e ln2 + ln m, m in [sqrt(1/2), sqrt(2)),
     * ln m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172. */
    float f = (float)(int32_t)((h1 >> 8) + 1);
    int32_t fb = (int32_t)f2u(f);
    int32_t mb = (fb & 0x7fffff) | 0x3f800000;
    int32_t big = mb > 0x3fb504f3 ? 0x800000 : 0;
    mb -= big;
    int32_t e = ((fb - 0x3f800000 + big) >> 23); /* exponent of f, rounded for m */
    float m = u2f((uint32_t)mb);
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float ln_m = s * (2.0f + s2 * (0.66666669f + s2 * (0.40000001f + s2 * 0.28571430f)));
    float v = (float)(24 - e) * 1.38629436f - 2.0f * ln_m; /* >= 0 */

    /* r = GEN_STD * sqrt(v) = GEN_STD * v / sqrt(v): reciprocal square root by Moroz et al.'s
     * magic constant and modified Newton step (6.5e-4), then one Newton step (6e-7). */
    float y = u2f(0x5f1ffff9u - (f2u(v) >> 1));
    y = y * 0.703952253f * (2.38924456f - v * y * y);
    y = y * (1.5f - 0.5f * v * y * y);
    float r = GEN_STD * v * y;

    /* sin and cos on [-pi/4, pi/4] (Cephes' single-precision polynomials). */
    float x = ((float)(int32_t)(h2 >> 8) * (1.0f / 16777216.0f) - 0.5f) * 1.57079633f;
    float x2 = x * x;
    float sn = x + x * x2 *
                       (-1.6666654611e-1f + x2 * (8.3321608736e-3f + x2 * -1.9515295891e-4f));
    float cs = 1.0f - 0.5f * x2 +
               x2 * x2 *
                   (4.166664568298827e-2f +
                    x2 * (-1.388731625493765e-3f + x2 * 2.443315711809948e-5f));
    uint32_t zc = f2u(r * cs), zs = f2u(r * sn);
    uint32_t swap = 0u - (h2 & 1u);
    gen_pair p;
    p.a = ((zc & ~swap) | (zs & swap)) ^ ((h2 & 2u) << 30);
    p.b = ((zs & ~swap) | (zc & swap)) ^ ((h2 & 4u) << 29);
    return p;
}

GEN_AI uint16_t to_bf16(uint32_t x)
{
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); /* round to nearest even; no NaN */
}

/* IEEE binary16 with round to nearest even over the whole range: subnormals, overflow to
 * infinity, NaN kept quiet. */
GEN_AI uint16_t to_f16(uint32_t bits)
{
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t x = (int32_t)(bits & 0x7fffffffu); /* signed compares vectorize everywhere */
    int32_t normal = (int32_t)(((uint32_t)x + 0xc8000fffu + (((uint32_t)x >> 13) & 1u)) >> 13);
    int32_t sub = (int32_t)(f2u(u2f((uint32_t)x) + 0.5f) - 0x3f000000u); /* rounds to 2^-24 */
    int32_t special = 0x7c00 | ((x > 0x7f800000) << 9); /* infinity, or a quiet NaN */
    /* Bitwise selects: a branch here would keep the loop from vectorizing. */
    int32_t is_sub = -(int32_t)(x < 0x38800000), is_big = -(int32_t)(x >= 0x47800000);
    int32_t o = (sub & is_sub) | (normal & ~is_sub);
    o = (special & is_big) | (o & ~is_big);
    return (uint16_t)((uint32_t)o | sign);
}

GEN_AI void sub_block(uint32_t j0, uint32_t k0, uint32_t k1, uint32_t k2, gen_dtype dtype,
                      void *restrict out)
{
    if (dtype == GEN_DTYPE_BF16) {
        uint16_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = to_bf16(p.a);
            o[2 * i + 1] = to_bf16(p.b);
        }
    } else if (dtype == GEN_DTYPE_F16) {
        uint16_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = to_f16(p.a);
            o[2 * i + 1] = to_f16(p.b);
        }
    } else {
        uint32_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = p.a;
            o[2 * i + 1] = p.b;
        }
    }
}

GEN_AI void fill_body(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32), k2 = (uint32_t)mix64(key);
    size_t esz = dtype == GEN_DTYPE_F32 ? 4 : 2;
    const uint32_t per = 2 * GEN_SUB;
    uint32_t full = n / per, rem = n % per;
    unsigned char *p = dst;
    for (uint32_t c = 0; c < full; c++)
        sub_block(c * GEN_SUB, k0, k1, k2, dtype, p + (size_t)c * per * esz);
    if (rem) {
        _Alignas(64) unsigned char tmp[2 * GEN_SUB * 4];
        sub_block(full * GEN_SUB, k0, k1, k2, dtype, tmp);
        memcpy(p + (size_t)full * per * esz, tmp, rem * esz);
    }
}

#define GEN_DEFINE_FILL(suffix, attr)                                                             \
    static attr void fill_##suffix(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)          \
    {                                                                                             \
        switch (dtype) {                                                                          \
        case GEN_DTYPE_BF16: fill_body(key, n, GEN_DTYPE_BF16, dst); break;                       \
        case GEN_DTYPE_F16: fill_body(key, n, GEN_DTYPE_F16, dst); break;                         \
        case GEN_DTYPE_F32: fill_body(key, n, GEN_DTYPE_F32, dst); break;                         \
        case GEN_DTYPE_Q8_0: break; /* values are made as f32, then quantized */                  \
        }                                                                                         \
    }

GEN_DEFINE_FILL(generic, )
#if GEN_X86
GEN_DEFINE_FILL(avx2, __attribute__((target("avx2"))))
GEN_DEFINE_FILL(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))))
#endif

typedef void (*fill_fn)(uint64_t key, uint32_t n, gen_dtype dtype, void *dst);

static fill_fn pick_fill(const char **name)
{
    const char *want = getenv("HOIST_GEN_SIMD");
    if (want && !*want) want = NULL;
#if GEN_X86
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    bool avx2 = __builtin_cpu_supports("avx2");
    if (avx512 && (!want || strcmp(want, "avx512") == 0)) {
        *name = "avx512";
        return fill_avx512;
    }
    if (avx2 && (!want || strcmp(want, "avx2") == 0 || strcmp(want, "avx512") == 0)) {
        *name = "avx2";
        return fill_avx2;
    }
#else
    (void)want;
#endif
    *name = "generic";
    return fill_generic;
}

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

static fill_fn the_fill;
static const char *the_fill_name;
static pthread_once_t fill_once = PTHREAD_ONCE_INIT;

static void init_fill(void)
{
    the_fill = pick_fill(&the_fill_name);
}

void gen_fill_normal(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)
{
    pthread_once(&fill_once, init_fill);
    if (n > GEN_BLOCK_ELEMS) n = GEN_BLOCK_ELEMS;
    the_fill(key, n, dtype, dst);
}

static void fill_ones(uint64_t n, gen_dtype dtype, void *dst)
{
    if (dtype == GEN_DTYPE_F32) {
        uint32_t *o = dst;
        for (uint64_t i = 0; i < n; i++) o[i] = 0x3f800000u;
    } else {
        uint16_t *o = dst, one = dtype == GEN_DTYPE_BF16 ? 0x3f80u : 0x3c00u;
        for (uint64_t i = 0; i < n; i++) o[i] = one;
    }
}

/* ---- files ------------------------------------------------------------------------------------ */

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    size_t len = strlen(dir);
    char *path = malloc(len + 1);
    if (!path) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            set_err(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            free(path);
            return -1;
        }
        path[i] = saved;
    }
    free(path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

static bool is_model_file(const char *name, gen_format format)
{
    if (format == GEN_FORMAT_GGUF) return strcmp(name, GEN_GGUF_FILE) == 0;
    size_t n = strlen(name), sl = strlen(".safetensors");
    return strncmp(name, "model", 5) == 0 && n >= 5 + sl && strcmp(name + n - sl, ".safetensors") == 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    size_t at = dl;
    if (dl == 0 || dir[dl - 1] != '/') p[at++] = '/';
    memcpy(p + at, name, nl + 1);
    return p;
}

/* Refuses (or with force, clears) an existing checkpoint; removes a stale index either way. */
static int prepare_dir(const char *dir, gen_format format, bool force, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_model_file(de->d_name, format)) continue;
        char *path = join_path(dir, de->d_name);
        if (!path) {
            set_err(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (!force) {
            set_err(err, errlen, "%s already holds a checkpoint (%s); use --force to replace it",
                    dir, de->d_name);
            rc = -1;
        } else if (unlink(path) != 0 && errno != ENOENT) {
            set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
            rc = -1;
        }
        free(path);
        if (rc) break;
    }
    closedir(d);
    if (rc || format == GEN_FORMAT_GGUF) return rc;
    char *index = join_path(dir, "model.safetensors.index.json");
    if (!index) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (unlink(index) != 0 && errno != ENOENT) {
        set_err(err, errlen, "cannot remove %s: %s", index, strerror(errno));
        rc = -1;
    }
    free(index);
    return rc;
}

/* ---- workers ---------------------------------------------------------------------------------- */

typedef struct gen_item {
    uint32_t tensor;
    uint64_t first; /* first element: a multiple of GEN_BLOCK_ELEMS, or of a head's elements */
    uint32_t count;
} gen_item;

typedef struct gen_job {
    const gen_config *cfg;
    const gen_plan *plan;
    const gen_item *items;
    size_t nitems;
    const int *fds;
    char *const *paths;
    size_t bufsize;          /* bytes of the largest item's values */
    bool need_permuted, need_quantized;
    atomic_size_t next;
    atomic_bool failed;
    atomic_uint_fast64_t bytes_done;
    atomic_uint running;
    pthread_mutex_t mu;
    char err[1024];
} gen_job;

static void job_fail(gen_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_fail(gen_job *job, const char *fmt, ...)
{
    pthread_mutex_lock(&job->mu);
    if (!atomic_load(&job->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->err, sizeof job->err, fmt, ap);
        va_end(ap);
        atomic_store(&job->failed, true);
    }
    pthread_mutex_unlock(&job->mu);
}

/* Elements [first, first + count) of a tensor in row-major order, as dtype (a float type). A
 * block only partly inside the range is generated whole into scratch and cut. */
static void fill_range(uint64_t seed, uint32_t tensor, uint64_t first, uint64_t count,
                       gen_dtype dtype, unsigned char *dst, unsigned char *scratch)
{
    size_t esz = gen_dtype_size(dtype);
    for (uint64_t pos = first, end = first + count; pos < end;) {
        uint64_t block = pos / GEN_BLOCK_ELEMS, base = block * GEN_BLOCK_ELEMS;
        uint64_t lo = pos - base, hi = end - base < GEN_BLOCK_ELEMS ? end - base : GEN_BLOCK_ELEMS;
        uint64_t key = gen_block_key(seed, tensor, block);
        if (lo == 0) {
            gen_fill_normal(key, (uint32_t)hi, dtype, dst + (pos - first) * esz);
        } else {
            gen_fill_normal(key, (uint32_t)hi, dtype, scratch);
            memcpy(dst + (pos - first) * esz, scratch + lo * esz, (hi - lo) * esz);
        }
        pos = base + hi;
    }
}

static unsigned char *aligned_buf(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 4096, n) == 0 ? p : NULL;
}

/* 1 + N(0, 0.02) as dtype: the f32 values are made in scratch, which a vector of at most a
 * block leaves free (q/k norms are head_dim long). */
static void fill_jitter(uint64_t seed, const gen_item *it, gen_dtype dtype, unsigned char *dst,
                        unsigned char *scratch)
{
    float *v = (float *)scratch;
    uint32_t n = it->count < GEN_BLOCK_ELEMS ? it->count : GEN_BLOCK_ELEMS;
    gen_fill_normal(gen_block_key(seed, it->tensor, 0), n, GEN_DTYPE_F32, v);
    for (uint32_t i = 0; i < n; i++) {
        float one = 1.0f + v[i];
        uint32_t u = f2u(one);
        if (dtype == GEN_DTYPE_F32)
            memcpy(dst + 4 * (size_t)i, &u, 4);
        else {
            uint16_t h = dtype == GEN_DTYPE_BF16 ? to_bf16(u) : to_f16(u);
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
    }
}

typedef struct gen_buffers {
    unsigned char *values, *permuted, *quantized, *scratch;
} gen_buffers;

/* Produces the bytes of one work item: the values (f32 when they are to be quantized), rows
 * permuted for a GGUF q/k projection, Q8_0 blocks. *out and *len receive what to write, *at
 * its offset from the tensor's start. */
static void make_item(const gen_job *job, const gen_item *it, gen_buffers *b,
                      const unsigned char **out, size_t *len, uint64_t *at)
{
    const gen_config *c = job->cfg;
    const gen_tensor *t = &job->plan->t[it->tensor];
    gen_dtype vd = t->dtype == GEN_DTYPE_Q8_0 ? GEN_DTYPE_F32 : t->dtype;
    size_t esz = gen_dtype_size(vd);
    unsigned char *p = b->values;
    if (t->ones)
        fill_ones(it->count, vd, p);
    else if (t->factors)
        gen_rope_factors(c, (float *)p); /* F32, one item */
    else if (t->jitter)
        fill_jitter(c->seed, it, vd, p, b->scratch);
    else
        fill_range(c->seed, it->tensor, it->first, it->count, vd, p, b->scratch);
    if (t->rope_heads) {
        uint64_t head = (uint64_t)c->head_dim * t->shape[1];
        gen_rope_permute(p, b->permuted, it->count / head, c->head_dim, t->shape[1], esz);
        p = b->permuted;
    }
    if (t->dtype == GEN_DTYPE_Q8_0) {
        gen_quantize_q8_0((const float *)p, it->count, b->quantized);
        *out = b->quantized;
        *len = (size_t)it->count / GEN_Q8_0_BLOCK * GEN_Q8_0_BYTES;
        *at = it->first / GEN_Q8_0_BLOCK * GEN_Q8_0_BYTES;
        return;
    }
    *out = p;
    *len = (size_t)it->count * esz;
    *at = it->first * esz;
}

/* Work items in file order: up to GEN_ITEM_ELEMS elements of one tensor, or, for a permuted q/k
 * projection, as many whole heads as fit (at least one). Sets the job's buffer needs. */
static int plan_items(const gen_plan *p, const gen_config *c, gen_item **out, size_t *n,
                      gen_job *job)
{
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (size_t i = 0; i < p->nt; i++) {
            const gen_tensor *t = &p->t[i];
            uint64_t step = GEN_ITEM_ELEMS;
            if (t->rope_heads) {
                uint64_t head = (uint64_t)c->head_dim * t->shape[1];
                step = head * (head < GEN_ITEM_ELEMS ? GEN_ITEM_ELEMS / head : 1);
            }
            size_t vsz = t->dtype == GEN_DTYPE_Q8_0 ? 4 : gen_dtype_size(t->dtype);
            for (uint64_t e = 0; e < t->numel; e += step, k++) {
                uint64_t left = t->numel - e, cnt = left < step ? left : step;
                if (pass == 0) {
                    if (cnt * vsz > job->bufsize) job->bufsize = (size_t)(cnt * vsz);
                    continue;
                }
                (*out)[k] = (gen_item){(uint32_t)i, e, (uint32_t)cnt};
            }
            if (pass == 0) {
                job->need_permuted |= t->rope_heads != 0;
                job->need_quantized |= t->dtype == GEN_DTYPE_Q8_0;
            }
        }
        if (pass == 0) {
            count = k;
            *out = malloc((count ? count : 1) * sizeof **out);
            if (!*out) return -1;
        }
    }
    *n = count;
    return 0;
}

static void *worker(void *arg)
{
    gen_job *job = arg;
    const size_t n = job->bufsize;
    gen_buffers b = {0};
    bool ok = (b.values = aligned_buf(n)) != NULL &&
              (b.scratch = aligned_buf((size_t)GEN_BLOCK_ELEMS * 4)) != NULL &&
              (!job->need_permuted || (b.permuted = aligned_buf(n)) != NULL) &&
              (!job->need_quantized || (b.quantized = aligned_buf(n)) != NULL);
    if (!ok) job_fail(job, "out of memory for %zu-byte buffers", n);
    while (ok && !atomic_load_explicit(&job->failed, memory_order_relaxed)) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->nitems) break;
        const gen_item *it = &job->items[i];
        const gen_tensor *t = &job->plan->t[it->tensor];
        const unsigned char *out;
        size_t len;
        uint64_t at;
        make_item(job, it, &b, &out, &len, &at);
        uint64_t off = job->plan->file_start[t->file] + t->offset + at;
        if (pwrite_all(job->fds[t->file], out, len, off) != 0) {
            job_fail(job, "cannot write %zu bytes to %s at offset %llu (tensor %s): %s", len,
                     job->paths[t->file], (unsigned long long)off, t->name, strerror(errno));
            break;
        }
        atomic_fetch_add_explicit(&job->bytes_done, len, memory_order_relaxed);
    }
    free(b.values);
    free(b.permuted);
    free(b.quantized);
    free(b.scratch);
    atomic_fetch_sub(&job->running, 1);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- JSON side files -------------------------------------------------------------------------- */

static int finish_file(FILE *f, const char *path, char *err, size_t errlen)
{
    int bad = ferror(f);
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        set_err(err, errlen, "cannot write %s: %s", path, strerror(saved ? saved : EIO));
        return -1;
    }
    return 0;
}

static int write_config(const char *path, const gen_config *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    gen_family_config_json(f, c, gen_dtype_torch_name(c->dtype));
    return finish_file(f, path, err, errlen);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const gen_tensor *x = *(const gen_tensor *const *)a, *y = *(const gen_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int write_index(const char *path, const gen_plan *p, char *err, size_t errlen)
{
    const gen_tensor **sorted = malloc(p->nt * sizeof *sorted);
    if (!sorted) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < p->nt; i++) {
        sorted[i] = &p->t[i];
        total += p->t[i].nbytes;
    }
    qsort(sorted, p->nt, sizeof *sorted, cmp_tensor_name);
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        free(sorted);
        return -1;
    }
    fprintf(f, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
            (unsigned long long)total);
    char fname[64];
    for (size_t i = 0; i < p->nt; i++) {
        gen_file_name(sorted[i]->file, p->nfiles, fname, sizeof fname);
        fprintf(f, "    \"%s\": \"%s\"%s\n", sorted[i]->name, fname, i + 1 < p->nt ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    free(sorted);
    return finish_file(f, path, err, errlen);
}

/* ---- gen_model_write -------------------------------------------------------------------------- */

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > (long)GEN_MAX_THREADS) n = GEN_MAX_THREADS;
    return (unsigned)n;
}

static void print_progress(uint64_t done, uint64_t total, double secs, bool final)
{
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    double rate = secs > 0 ? (double)done / secs / 1e9 : 0.0;
    fprintf(stderr, "\r  %5.1f%%  %.2f of %.2f GB  %.2f GB/s   %s", pct, (double)done / 1e9,
            (double)total / 1e9, rate, final ? "\n" : "");
    fflush(stderr);
}

int gen_model_write(const char *out_dir, const gen_config *cfg, char *err, size_t errlen)
{
    if (!out_dir || !*out_dir) {
        set_err(err, errlen, "no output directory");
        return -1;
    }
    if (gen_validate(cfg, err, errlen) != 0) return -1;

    int rc = -1;
    gen_plan plan;
    memset(&plan, 0, sizeof plan);
    gen_item *items = NULL;
    int *fds = NULL;
    char **paths = NULL;
    char *config_path = NULL, *index_path = NULL;
    bool created_index = false, created_config = false;
    pthread_t *tids = NULL;
    unsigned nthreads = 0;
    uint32_t ncreated = 0; /* files 0..ncreated-1 were created by this call */
    gen_job job;
    memset(&job, 0, sizeof job);
    bool mu_init = false;

    if (mkdir_p(out_dir, err, errlen) != 0) return -1;
    if (prepare_dir(out_dir, cfg->format, cfg->force, err, errlen) != 0) return -1;

    if (plan_tensors(&plan, cfg) != 0 || plan_headers(&plan, cfg) != 0) {
        set_err(err, errlen, "out of memory planning the files");
        goto out;
    }

    size_t nitems = 0;
    if (plan_items(&plan, cfg, &items, &nitems, &job) != 0) {
        set_err(err, errlen, "out of memory planning the work");
        goto out;
    }
    fds = malloc(plan.nfiles * sizeof *fds);
    paths = calloc(plan.nfiles, sizeof *paths);
    config_path = join_path(out_dir, "config.json");
    index_path = join_path(out_dir, "model.safetensors.index.json");
    if (!fds || !paths || !config_path || !index_path) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t f = 0; f < plan.nfiles; f++) fds[f] = -1;

    /* Create and preallocate every file, write the headers. */
    for (uint32_t f = 0; f < plan.nfiles; f++) {
        char fname[64];
        if (cfg->format == GEN_FORMAT_GGUF)
            snprintf(fname, sizeof fname, "%s", GEN_GGUF_FILE);
        else
            gen_file_name(f, plan.nfiles, fname, sizeof fname);
        paths[f] = join_path(out_dir, fname);
        if (!paths[f]) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        fds[f] = open(paths[f], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fds[f] < 0) {
            set_err(err, errlen, "cannot create %s: %s", paths[f], strerror(errno));
            goto out;
        }
        ncreated = f + 1;
        uint64_t size = plan.file_start[f] + plan.file_data[f];
        struct statfs sfs;
        bool in_memory = false;
        if (fstatfs(fds[f], &sfs) == 0) {
            in_memory = sfs.f_type == GEN_TMPFS_MAGIC || sfs.f_type == GEN_RAMFS_MAGIC;
            if (f == 0 && sfs.f_type != GEN_RAMFS_MAGIC &&
                (uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize < gen_total_bytes(cfg)) {
                char have[32], need[32];
                snprintf(have, sizeof have, "%llu",
                         (unsigned long long)sfs.f_bavail * (unsigned long long)sfs.f_bsize);
                snprintf(need, sizeof need, "%llu", (unsigned long long)gen_total_bytes(cfg));
                set_err(err, errlen, "not enough space in %s: %s bytes free, %s needed", out_dir,
                        have, need);
                goto out;
            }
        }
        /* Preallocate on disk filesystems (no fragmentation, ENOSPC up front). On tmpfs it would
         * zero every page in this one thread before the workers overwrite them: skip it there. */
        int fe = in_memory ? 0 : fallocate(fds[f], 0, 0, (off_t)size);
        if (fe != 0 && (errno == ENOSPC || errno == EFBIG)) {
            set_err(err, errlen, "cannot preallocate %llu bytes for %s: %s",
                    (unsigned long long)size, paths[f], strerror(errno));
            goto out;
        }
        if (ftruncate(fds[f], (off_t)size) != 0) {
            set_err(err, errlen, "cannot size %s to %llu bytes: %s", paths[f],
                    (unsigned long long)size, strerror(errno));
            goto out;
        }
        if (pwrite_all(fds[f], plan.headers[f], plan.file_start[f], 0) != 0) {
            set_err(err, errlen, "cannot write the header of %s at offset 0: %s", paths[f],
                    strerror(errno));
            goto out;
        }
    }

    /* Fill the data in parallel. */
    nthreads = cfg->threads ? cfg->threads : default_threads();
    if (nthreads > nitems) nthreads = (unsigned)nitems;
    if (nthreads == 0) nthreads = 1;
    job.cfg = cfg;
    job.plan = &plan;
    job.items = items;
    job.nitems = nitems;
    job.fds = fds;
    job.paths = paths;
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, false);
    atomic_init(&job.bytes_done, 0);
    atomic_init(&job.running, nthreads);
    pthread_mutex_init(&job.mu, NULL);
    mu_init = true;
    pthread_once(&fill_once, init_fill);

    tids = calloc(nthreads, sizeof *tids);
    if (!tids) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    double t0 = now_s();
    uint64_t total = gen_total_bytes(cfg);
    unsigned started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&tids[started], NULL, worker, &job) != 0) break;
    if (started < nthreads) atomic_fetch_sub(&job.running, nthreads - started);
    if (started == 0) {
        atomic_fetch_add(&job.running, 1);
        worker(&job);
    } else if (cfg->progress) {
        while (atomic_load(&job.running) > 0) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
            print_progress(atomic_load(&job.bytes_done), total, now_s() - t0, false);
        }
    }
    for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
    if (cfg->progress && started > 0)
        print_progress(atomic_load(&job.bytes_done), total, now_s() - t0, true);
    if (atomic_load(&job.failed)) {
        set_err(err, errlen, "%s", job.err);
        goto out;
    }
    if (cfg->sync) {
        for (uint32_t f = 0; f < plan.nfiles; f++) {
            if (fsync(fds[f]) != 0) {
                set_err(err, errlen, "cannot flush %s to storage: %s", paths[f], strerror(errno));
                goto out;
            }
        }
    }

    for (uint32_t f = 0; f < plan.nfiles; f++) {
        int fd = fds[f];
        fds[f] = -1;
        if (close(fd) != 0) {
            set_err(err, errlen, "cannot close %s: %s", paths[f], strerror(errno));
            goto out;
        }
    }
    if (plan.nfiles > 1) {
        created_index = true;
        if (write_index(index_path, &plan, err, errlen) != 0) goto out;
    }
    if (cfg->format != GEN_FORMAT_GGUF) { /* GGUF carries its config in its metadata */
        created_config = true;
        if (write_config(config_path, cfg, err, errlen) != 0) goto out;
    }
    rc = 0;

out:
    if (fds) {
        for (uint32_t f = 0; f < plan.nfiles; f++) {
            if (fds[f] >= 0) close(fds[f]);
            if (rc != 0 && f < ncreated) unlink(paths[f]);
        }
    }
    if (rc != 0 && created_index) unlink(index_path);
    if (rc != 0 && created_config) unlink(config_path);
    if (paths)
        for (uint32_t f = 0; f < plan.nfiles; f++) free(paths[f]);
    if (mu_init) pthread_mutex_destroy(&job.mu);
    free(tids);
    free(paths);
    free(fds);
    free(items);
    free(config_path);
    free(index_path);
    plan_free(&plan);
    return rc;
}

const char *gen_simd_name(void)
{
    pthread_once(&fill_once, init_fill);
    return the_fill_name;
}
