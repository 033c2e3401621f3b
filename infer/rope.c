/* Rotary tables as transformers computes them: the inverse frequencies of each rope type in
 * float32, operation by operation as torch does them (so that a table matches the model's to the
 * last bit where the libm agrees), then cos and sin of the float32 angle position x inv_freq,
 * times the attention factor. */
#include "infer/infer.h"

#include <math.h>
#include <stddef.h>

/* math.pi; M_PI is not C11 */
#define HOIST_PI 3.14159265358979323846

/* 1 / base^(2i / dim): `arange(0, dim, 2).float() / dim`, then the power, then the reciprocal,
 * each rounded to float32. */
static float default_inv(double base, uint32_t i, uint32_t dim)
{
    float t = (float)(2 * i) / (float)dim;
    float p = (float)pow((double)(float)base, (double)t);
    return 1.0f / p;
}

/* llama3: low frequencies divided by factor, high ones kept, a smooth mix between. */
static float llama3_inv(const hoist_rope_scaling *r, float inv)
{
    const float old = (float)r->original_max_position;
    const float low_wl = (float)((double)r->original_max_position / r->low_freq_factor);
    const float high_wl = (float)((double)r->original_max_position / r->high_freq_factor);
    float wavelen = (float)(2 * HOIST_PI) / inv;
    float scaled = wavelen > low_wl ? inv / (float)r->factor : inv;
    if (wavelen < high_wl || wavelen > low_wl) return scaled;
    float smooth = (old / wavelen - (float)r->low_freq_factor) /
                   (float)(r->high_freq_factor - r->low_freq_factor);
    return (1 - smooth) * scaled / (float)r->factor + smooth * scaled;
}

/* yarn's correction range: the dimensions whose rotations over the original context fall
 * between beta_fast and beta_slow. */
static void yarn_range(const hoist_rope_scaling *r, double base, uint32_t dim, double *low,
                       double *high)
{
#define CORR(rot)                                                                                 \
    ((double)dim * log((double)r->original_max_position / ((rot) * 2 * HOIST_PI)) / (2 * log(base)))
    double lo = CORR(r->beta_fast), hi = CORR(r->beta_slow);
#undef CORR
    if (r->truncate) {
        lo = floor(lo);
        hi = ceil(hi);
    }
    *low = lo > 0 ? lo : 0;
    *high = hi < dim - 1 ? hi : dim - 1;
}

static void yarn_inv(const hoist_rope_scaling *r, double base, uint32_t dim, float *inv)
{
    double low, high;
    yarn_range(r, base, dim, &low, &high);
    if (low == high) high += 0.001; /* as transformers avoids the singularity */
    float span = (float)(high - low);
    for (uint32_t i = 0; i < dim / 2; i++) {
        float t = (float)(2 * i) / (float)dim;
        float pos = (float)pow((double)(float)base, (double)t);
        float extra = 1.0f / pos, inter = 1.0f / ((float)r->factor * pos);
        float ramp = ((float)i - (float)low) / span;
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float ext = 1 - ramp;
        inv[i] = inter * (1 - ext) + extra * ext;
    }
}

/* Dynamic NTK's base at a sequence length: the float32 tensor arithmetic of transformers'
 * recompute (seq_len is a tensor there). */
static double dynamic_base(const hoist_geometry *g, uint64_t seq_len)
{
    uint64_t mp = g->max_position;
    if (seq_len < mp) seq_len = mp;
    uint32_t dim = g->head_dim;
    float s = (float)g->rope.factor * (float)seq_len;
    s = s / (float)mp;
    s = s - (float)(g->rope.factor - 1);
    s = (float)pow((double)s, (double)(float)((double)dim / (double)(dim - 2)));
    return (double)((float)g->rope_theta * s);
}

void hoist__rope_inv_freq(const hoist_geometry *g, uint64_t seq_len, float *inv, float *attn)
{
    const hoist_rope_scaling *r = &g->rope;
    uint32_t dim = g->head_dim, half = dim / 2;
    *attn = 1.0f;
    if (r->type == HOIST_ROPE_YARN) {
        yarn_inv(r, g->rope_theta, dim, inv);
        *attn = (float)r->attention_factor;
        return;
    }
    /* at init transformers computes with seq_len = max_position, which leaves the base alone */
    double base = r->type == HOIST_ROPE_DYNAMIC && seq_len > g->max_position
                      ? dynamic_base(g, seq_len)
                      : g->rope_theta;
    for (uint32_t i = 0; i < half; i++) {
        inv[i] = default_inv(base, i, dim);
        if (r->type == HOIST_ROPE_LINEAR) inv[i] /= (float)r->factor;
        if (r->type == HOIST_ROPE_LLAMA3) inv[i] = llama3_inv(r, inv[i]);
    }
}

void hoist__rope_rows(float *cos_t, float *sin_t, uint32_t first, uint32_t n, uint32_t half,
                      const float *inv, float attn)
{
    for (uint32_t p = first; p < first + n; p++)
        for (uint32_t i = 0; i < half; i++) {
            float a = (float)p * inv[i];
            cos_t[(size_t)p * half + i] = (float)cos((double)a) * attn;
            sin_t[(size_t)p * half + i] = (float)sin((double)a) * attn;
        }
}

void hoist__rope_table(float *cos_t, float *sin_t, uint32_t tokens, uint32_t head_dim,
                       double theta)
{
    float inv[HOIST__REF_MAX_HEAD_DIM / 2];
    for (uint32_t i = 0; i < head_dim / 2; i++) inv[i] = default_inv(theta, i, head_dim);
    hoist__rope_rows(cos_t, sin_t, 0, tokens, head_dim / 2, inv, 1.0f);
}

/* transformers' dynamic_rope_update: the frequencies grow with the longest sequence seen (a
 * module's state, which outlives generate calls: a session's outlives its resets), and return to
 * the original ones for a sequence within max_position after a longer one. */
void hoist__rope_dynamic_update(const hoist_geometry *g, uint64_t seq_len, uint64_t *cached,
                                float *inv, const float *orig)
{
    uint64_t before = *cached;
    float attn;
    if (seq_len > before) {
        hoist__rope_inv_freq(g, seq_len, inv, &attn);
        *cached = seq_len;
    }
    if (seq_len < g->max_position && before > g->max_position) {
        for (uint32_t i = 0; i < g->head_dim / 2; i++) inv[i] = orig[i];
        *cached = g->max_position;
    }
}
