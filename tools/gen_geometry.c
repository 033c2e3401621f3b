/* Sizes of a geometry (bytes, parameters) and the search behind `hoist gen --size`. */
#include "gen_family.h"
#include "gen_gguf.h"
#include "gen_internal.h"

/* Elements of a layer's family vectors: q/k/v biases, q/k norms. */
static uint64_t family_layer_elems(const gen_config *c)
{
    uint64_t q = gen_mul_sat(c->heads, c->head_dim), kv = gen_mul_sat(c->kv_heads, c->head_dim);
    uint64_t n = 0;
    if (gen_family_qkv_bias(c)) n = gen_add_sat(q, gen_mul_sat(2, kv));
    if (gen_family_qk_norm(c)) n = gen_add_sat(n, gen_mul_sat(2, c->head_dim));
    return n;
}

static uint64_t layer_params(const gen_config *c)
{
    uint64_t h = c->hidden, q = gen_mul_sat(c->heads, c->head_dim);
    uint64_t kv = gen_mul_sat(c->kv_heads, c->head_dim);
    uint64_t p = gen_add_sat(gen_mul_sat(2, h), family_layer_elems(c)); /* norms, family vectors */
    p = gen_add_sat(p, gen_mul_sat(gen_mul_sat(2, q), h));               /* q_proj, o_proj */
    p = gen_add_sat(p, gen_mul_sat(gen_mul_sat(2, kv), h));              /* k_proj, v_proj */
    p = gen_add_sat(p, gen_mul_sat(gen_mul_sat(3, c->intermediate), h)); /* gate, up, down */
    return p;
}

uint64_t gen_param_count(const gen_config *c)
{
    uint64_t emb = gen_mul_sat(c->vocab, c->hidden);
    uint64_t p = gen_mul_sat(emb, c->tie_embeddings ? 1 : 2);
    p = gen_add_sat(p, c->hidden);
    return gen_add_sat(p, gen_mul_sat(layer_params(c), c->layers));
}

/* GGUF's vectors are F32 whatever the dtype, as llama.cpp's converter writes them (llama.cpp's
 * CPU kernels refuse a BF16 or F16 norm weight against F32 activations). */
gen_dtype gen_tensor_dtype(const gen_config *c, uint64_t cols, bool norm)
{
    if (c->format == GEN_FORMAT_GGUF && (norm || cols == 0)) return GEN_DTYPE_F32;
    if (c->dtype != GEN_DTYPE_Q8_0) return c->dtype;
    return cols % GEN_Q8_0_BLOCK == 0 ? GEN_DTYPE_Q8_0 : GEN_DTYPE_F16;
}

uint64_t gen_tensor_bytes(const gen_config *c, uint64_t rows, uint64_t cols, bool norm)
{
    gen_dtype d = gen_tensor_dtype(c, cols, norm);
    uint64_t n = cols ? gen_mul_sat(rows, cols) : rows;
    if (d == GEN_DTYPE_Q8_0) return gen_mul_sat(n / GEN_Q8_0_BLOCK, GEN_Q8_0_BYTES);
    return gen_mul_sat(n, gen_dtype_size(d));
}

uint64_t gen_total_bytes(const gen_config *c)
{
    uint64_t h = c->hidden, q = gen_mul_sat(c->heads, c->head_dim);
    uint64_t kv = gen_mul_sat(c->kv_heads, c->head_dim), in = c->intermediate;
    uint64_t layer = gen_mul_sat(2, gen_tensor_bytes(c, h, 0, true));
    layer = gen_add_sat(layer, gen_tensor_bytes(c, q, h, false));                  /* q_proj */
    layer = gen_add_sat(layer, gen_mul_sat(2, gen_tensor_bytes(c, kv, h, false))); /* k, v_proj */
    layer = gen_add_sat(layer, gen_tensor_bytes(c, h, q, false));                  /* o_proj */
    layer = gen_add_sat(layer, gen_mul_sat(2, gen_tensor_bytes(c, in, h, false))); /* gate, up */
    layer = gen_add_sat(layer, gen_tensor_bytes(c, h, in, false));                 /* down */
    layer = gen_add_sat(layer, gen_tensor_bytes(c, family_layer_elems(c), 0, true));
    uint64_t emb = gen_tensor_bytes(c, c->vocab, h, false);
    uint64_t total = gen_add_sat(gen_mul_sat(emb, c->tie_embeddings ? 1 : 2),
                                 gen_tensor_bytes(c, h, 0, true));
    if (gen_family_rope_freqs(c))
        total = gen_add_sat(total, gen_tensor_bytes(c, c->head_dim / 2, 0, true));
    return gen_add_sat(total, gen_mul_sat(layer, c->layers));
}

/* ---- size targeting -------------------------------------------------------------------------- */

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
