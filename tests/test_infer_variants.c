/* infer/: the Llama variants in the fp32 reference. The rope tables of each scaling type against
 * inverse frequencies worked out from transformers' formulas (modeling_rope_utils.py, evaluated
 * in double precision by hand, see the values' comments), dynamic NTK's recompute as the
 * sequence grows; biases and Qwen3's q/k norms against a naive double-precision forward pass of
 * the checkpoint; and the tensors a configuration does not announce, refused by name. */
#include "infer_test_common.h"

#include "infer/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* ---- rope scaling ------------------------------------------------------------------------- */

/* head_dim 16, theta 10000: base inverse frequencies 10000^(-i/8). */
static hoist_geometry rope_geometry(hoist_rope_type type)
{
    hoist_geometry g = {.size = sizeof g, .architecture = "llama", .n_layers = 1, .hidden = 32, .intermediate = 8,
                        .n_heads = 2, .n_kv_heads = 1, .head_dim = 16, .vocab = 8,
                        .max_position = 32, .rms_eps = 1e-5, .rope_theta = 10000.0,
                        .dtype = HOIST_DTYPE_F32};
    g.rope.type = type;
    return g;
}

static void expect_inv(const hoist_geometry *g, uint64_t seq_len, const double *want,
                       double want_attn)
{
    float inv[8], attn;
    hoist__rope_inv_freq(g, seq_len, inv, &attn);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(fabs(inv[i] - want[i]) <= 1e-6 * want[i], "type %d inv[%d]: %.9g vs %.9g",
                      (int)g->rope.type, i, inv[i], want[i]);
    ck_assert_double_eq_tol(attn, want_attn, 1e-6);
}

START_TEST(test_rope_scaling_types)
{
    /* linear, factor 4: base / 4 */
    hoist_geometry g = rope_geometry(HOIST_ROPE_LINEAR);
    g.rope.factor = 4;
    const double linear[] = {0.25,    0.0790569415,   0.025,   0.00790569415,
                             0.0025,  0.000790569415, 0.00025, 7.90569415e-05};
    expect_inv(&g, 0, linear, 1);
    /* llama3, factor 8, low 1, high 4, original 64: wavelengths 2 pi 10000^(i/8) = 6.3, 19.9,
     * 62.8, 199...; below 16 kept, above 64 divided by 8, between them smoothed */
    g = rope_geometry(HOIST_ROPE_LLAMA3);
    g.rope.factor = 8;
    g.rope.low_freq_factor = 1;
    g.rope.high_freq_factor = 4;
    g.rope.original_max_position = 64;
    const double llama3[] = {1,       0.244384599,    0.013042256, 0.00395284708,
                             0.00125, 0.000395284708, 0.000125,    3.95284708e-05};
    expect_inv(&g, 0, llama3, 1);
    /* yarn, factor 4, original 64, betas 32/1: correction range [-0.99, 2.02], truncated to
     * [0, 3]; the ramp mixes extrapolation (low i) into interpolation (/4); attention factor
     * 0.1 ln 4 + 1 */
    g = rope_geometry(HOIST_ROPE_YARN);
    g.rope.factor = 4;
    g.rope.original_max_position = 64;
    g.rope.beta_fast = 32;
    g.rope.beta_slow = 1;
    g.rope.truncate = 1;
    g.rope.attention_factor = 0.1 * log(4.0) + 1;
    const double yarn[] = {1,      0.237170825,    0.05,    0.00790569415,
                           0.0025, 0.000790569415, 0.00025, 7.90569415e-05};
    expect_inv(&g, 0, yarn, 1.138629436);
    /* without truncation: [0, 2.016] */
    g.rope.truncate = 0;
    const double yarn_f[] = {1,      0.19858352,     0.0255952459, 0.00790569415,
                             0.0025, 0.000790569415, 0.00025,      7.90569415e-05};
    expect_inv(&g, 0, yarn_f, 1.138629436);
    /* dynamic, factor 2, max_position 32: the base alone up to 32 positions; at 64 it is
     * 10000 * (2 * 64 / 32 - 1)^(16 / 14) = 35097.9244 */
    g = rope_geometry(HOIST_ROPE_DYNAMIC);
    g.rope.factor = 2;
    const double plain[] = {1,      0.316227766,    0.1,    0.0316227766,
                            0.01,   0.00316227766,  0.001,  0.000316227766};
    expect_inv(&g, 0, plain, 1);
    expect_inv(&g, 32, plain, 1);
    const double dyn64[] = {1,             0.270296126,    0.0730599956,   0.0197478337,
                            0.00533776295, 0.00144277665,  0.000389976938, 0.000105409255};
    expect_inv(&g, 64, dyn64, 1);
    /* the rows: cos and sin of position x inv, times the attention factor */
    float inv[8] = {1, 0.5f}, cs[4 * 8], sn[4 * 8];
    hoist__rope_rows(cs, sn, 0, 4, 8, inv, 1.5f);
    ck_assert_float_eq_tol(cs[3 * 8 + 0], (float)(cos(3.0) * 1.5), 1e-6);
    ck_assert_float_eq_tol(sn[3 * 8 + 1], (float)(sin(1.5) * 1.5), 1e-6);
    ck_assert_float_eq(cs[0], 1.5f);
}
END_TEST

/* transformers' dynamic_rope_update: grow past the cached length, keep a longer cache for a
 * shorter sequence above max_position, go back to the original frequencies below it. */
START_TEST(test_rope_dynamic_state)
{
    hoist_geometry g = rope_geometry(HOIST_ROPE_DYNAMIC);
    g.rope.factor = 2;
    float orig[8], inv[8], at64[8], attn;
    hoist__rope_inv_freq(&g, 0, orig, &attn);
    hoist__rope_inv_freq(&g, 64, at64, &attn);
    memcpy(inv, orig, sizeof inv);
    uint64_t cached = 32;
    hoist__rope_dynamic_update(&g, 20, &cached, inv, orig);
    ck_assert_mem_eq(inv, orig, sizeof inv);
    hoist__rope_dynamic_update(&g, 64, &cached, inv, orig);
    ck_assert_uint_eq(cached, 64);
    ck_assert_mem_eq(inv, at64, sizeof inv);
    hoist__rope_dynamic_update(&g, 40, &cached, inv, orig); /* no growth, no reset */
    ck_assert_mem_eq(inv, at64, sizeof inv);
    hoist__rope_dynamic_update(&g, 10, &cached, inv, orig);
    ck_assert_uint_eq(cached, 32);
    ck_assert_mem_eq(inv, orig, sizeof inv);
}
END_TEST

/* ---- a naive forward pass ----------------------------------------------------------------- */

static char *gen(const char *name, const char *flags)
{
    char args[1024];
    char *mdir = tu_path(dir, name);
    snprintf(args, sizeof args, "gen '%s' %s --quiet", mdir, flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
    return mdir;
}

/* Tensor `part` of layer l (l < 0: a model tensor), or NULL when absent. */
static int tensor(const loaded *l, int layer, const char *part, hoist_view *v)
{
    char name[128];
    if (layer >= 0)
        snprintf(name, sizeof name, "model.layers.%d.%s", layer, part);
    else
        snprintf(name, sizeof name, "%s", part);
    v->size = sizeof *v;
    return hoist_weights_find(l->w, name, v) == HOIST_OK;
}

static double at(const hoist_view *v, size_t i) { return hoist__load_f32(v->data, v->dtype, i); }

/* y = W x (+ b when the model has the bias), W [rows, cols]. */
static void linear(const loaded *l, int layer, const char *proj, const double *x, size_t rows,
                   size_t cols, double *y)
{
    char name[96];
    hoist_view w, b;
    snprintf(name, sizeof name, "%s.weight", proj);
    ck_assert(tensor(l, layer, name, &w));
    snprintf(name, sizeof name, "%s.bias", proj);
    int has_b = tensor(l, layer, name, &b);
    for (size_t r = 0; r < rows; r++) {
        double s = has_b ? at(&b, r) : 0;
        for (size_t c = 0; c < cols; c++) s += at(&w, r * cols + c) * x[c];
        y[r] = s;
    }
}

static void rms(const double *x, const hoist_view *w, size_t n, double eps, double *out)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1 / sqrt(ss / n + eps);
    for (size_t i = 0; i < n; i++) out[i] = x[i] * inv * at(w, i);
}

/* Rotate-half rotation of each head at position p, plain rope. */
static void rotate(double *x, size_t heads, size_t hd, size_t p, double theta)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t i = 0; i < hd / 2; i++) {
            double a = p * pow(theta, -2.0 * i / hd), *v = x + h * hd;
            double x0 = v[i], x1 = v[i + hd / 2];
            v[i] = x0 * cos(a) - x1 * sin(a);
            v[i + hd / 2] = x1 * cos(a) + x0 * sin(a);
        }
}

/* The logits after tokens[0..n), as transformers' modeling code spells the block out, in double;
 * a layer with a sliding window masks key j from position p unless j > p - window
 * (masking_utils' sliding_window_overlay), and windows false runs without any. */
static void naive_logits(const loaded *l, const int32_t *tokens, size_t n, bool windows,
                         double *logits)
{
    const hoist_geometry *g = &l->g;
    size_t H = g->hidden, I = g->intermediate, hd = g->head_dim, nh = g->n_heads,
           nkv = g->n_kv_heads, L = g->n_layers;
    size_t qd = nh * hd, kvd = nkv * hd;
    double *x = calloc(H, 8), *xn = calloc(H, 8), *q = calloc(qd, 8), *o = calloc(qd, 8);
    double *kc = calloc(L * n * kvd, 8), *vc = calloc(L * n * kvd, 8), *t = calloc(H, 8);
    double *gt = calloc(I, 8), *up = calloc(I, 8), *sc = calloc(n, 8);
    hoist_view emb, w, qn, kn;
    ck_assert(tensor(l, -1, "model.embed_tokens.weight", &emb));
    for (size_t p = 0; p < n; p++) {
        for (size_t i = 0; i < H; i++) x[i] = at(&emb, (size_t)tokens[p] * H + i);
        for (size_t ly = 0; ly < L; ly++) {
            double *k = kc + (ly * n + p) * kvd, *v = vc + (ly * n + p) * kvd;
            ck_assert(tensor(l, (int)ly, "input_layernorm.weight", &w));
            rms(x, &w, H, g->rms_eps, xn);
            linear(l, (int)ly, "self_attn.q_proj", xn, qd, H, q);
            linear(l, (int)ly, "self_attn.k_proj", xn, kvd, H, k);
            linear(l, (int)ly, "self_attn.v_proj", xn, kvd, H, v);
            if (tensor(l, (int)ly, "self_attn.q_norm.weight", &qn)) {
                ck_assert(tensor(l, (int)ly, "self_attn.k_norm.weight", &kn));
                for (size_t h = 0; h < nh; h++) rms(q + h * hd, &qn, hd, g->rms_eps, q + h * hd);
                for (size_t h = 0; h < nkv; h++) rms(k + h * hd, &kn, hd, g->rms_eps, k + h * hd);
            }
            rotate(q, nh, hd, p, g->rope_theta);
            rotate(k, nkv, hd, p, g->rope_theta);
            size_t win = windows && ly >= g->window_from_layer ? g->sliding_window : 0;
            size_t j0 = win && p + 1 > win ? p + 1 - win : 0;
            for (size_t h = 0; h < nh; h++) {
                size_t kh = h / (nh / nkv);
                double mx = -INFINITY, sum = 0;
                for (size_t j = j0; j <= p; j++) {
                    double d = 0;
                    for (size_t i = 0; i < hd; i++)
                        d += q[h * hd + i] * kc[(ly * n + j) * kvd + kh * hd + i];
                    sc[j] = d / sqrt((double)hd);
                    mx = fmax(mx, sc[j]);
                }
                for (size_t j = j0; j <= p; j++) sum += sc[j] = exp(sc[j] - mx);
                for (size_t i = 0; i < hd; i++) {
                    double a = 0;
                    for (size_t j = j0; j <= p; j++)
                        a += sc[j] / sum * vc[(ly * n + j) * kvd + kh * hd + i];
                    o[h * hd + i] = a;
                }
            }
            linear(l, (int)ly, "self_attn.o_proj", o, H, qd, t);
            for (size_t i = 0; i < H; i++) x[i] += t[i];
            ck_assert(tensor(l, (int)ly, "post_attention_layernorm.weight", &w));
            rms(x, &w, H, g->rms_eps, xn);
            linear(l, (int)ly, "mlp.gate_proj", xn, I, H, gt);
            linear(l, (int)ly, "mlp.up_proj", xn, I, H, up);
            for (size_t i = 0; i < I; i++) gt[i] = gt[i] / (1 + exp(-gt[i])) * up[i];
            linear(l, (int)ly, "mlp.down_proj", gt, H, I, t);
            for (size_t i = 0; i < H; i++) x[i] += t[i];
        }
    }
    ck_assert(tensor(l, -1, "model.norm.weight", &w));
    rms(x, &w, H, g->rms_eps, xn);
    hoist_view head;
    if (!tensor(l, -1, "lm_head.weight", &head) || g->tied_embeddings) head = emb;
    for (size_t r = 0; r < g->vocab; r++) {
        double s = 0;
        for (size_t c = 0; c < H; c++) s += at(&head, r * H + c) * xn[c];
        logits[r] = s;
    }
    free(x), free(xn), free(q), free(o), free(kc), free(vc), free(t), free(gt), free(up), free(sc);
}

static const int32_t prompt[] = {1, 17, 200, 3, 99, 5, 42};
#define NPROMPT (sizeof prompt / sizeof *prompt)

/* The largest absolute difference between got and want, and want's largest magnitude. */
static double logit_err(const float *got, const double *want, uint32_t n, double *range)
{
    double err = 0;
    *range = 0;
    for (uint32_t i = 0; i < n; i++) {
        *range = fmax(*range, fabs(want[i]));
        err = fmax(err, fabs(got[i] - want[i]));
    }
    return err;
}

/* The session's logits after the prompt against naive_logits; with a window, the logits without
 * it must differ, or the prompt did not reach past the window. */
static void expect_naive(const char *mdir)
{
    loaded l = it_load(mdir, true);
    hoist_session *s = NULL;
    ck_assert_msg(hoist_session_create(l.w, &l.g, NULL, &s) == HOIST_OK, "%s",
                  hoist_last_error());
    ck_assert_int_eq(hoist_session_prefill(s, prompt, NPROMPT), HOIST_OK);
    float *got = malloc(l.g.vocab * sizeof *got);
    double *want = malloc(l.g.vocab * sizeof *want);
    ck_assert_int_eq(hoist_session_logits(s, got, l.g.vocab), HOIST_OK);
    naive_logits(&l, prompt, NPROMPT, true, want);
    double range, err = logit_err(got, want, l.g.vocab, &range);
    ck_assert_msg(err <= 1e-5 * range + 1e-6, "%s: logits off by %g (range %g)", mdir, err,
                  range);
    ck_assert_double_gt(range, 0);
    if (l.g.sliding_window) {
        naive_logits(&l, prompt, NPROMPT, false, want);
        err = logit_err(got, want, l.g.vocab, &range);
        ck_assert_msg(err > 1e-3 * range, "%s: the window changed nothing (%g)", mdir, err);
    }
    free(got);
    free(want);
    hoist_session_free(s);
    it_unload(&l);
}

/* Each case ({name, gen flags}) generated and run against naive_logits. */
static void expect_naive_gen(const char *const cases[][2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *m = gen(cases[i][0], cases[i][1]);
        expect_naive(m);
        free(m);
    }
}

/* Qwen2's q/k/v biases and Qwen3's q/k norms (weights 1 + noise, so their order counts). */
START_TEST(test_biases_and_qk_norm_naive)
{
    static const char *const cases[][2] = {
        {"qwen2", "--preset tiny --family qwen2 --dtype f32 --seed 3"},
        {"qwen3", "--preset tiny --family qwen3 --dtype f32 --head-dim 32 --seed 3"},
        {"qwen3b", "--preset tiny --family qwen3 --dtype bf16 --seed 3"},
    };
    expect_naive_gen(cases, sizeof cases / sizeof *cases);
}
END_TEST

/* Sliding windows shorter than the prompt: Mistral's in every layer, Qwen2's from
 * max_window_layers on (layer 0 full, layer 1 windowed), and a Qwen3 window in both. */
START_TEST(test_sliding_window_naive)
{
    static const char *const cases[][2] = {
        {"mistral", "--preset tiny --family mistral --dtype f32 --sliding-window 3 --seed 5"},
        {"qwen2w", "--preset tiny --family qwen2 --dtype f32 --sliding-window 2 "
                   "--window-layers 1 --seed 5"},
        {"qwen3w", "--preset tiny --family qwen3 --dtype bf16 --head-dim 32 --sliding-window 4 "
                   "--seed 5"},
    };
    expect_naive_gen(cases, sizeof cases / sizeof *cases);
}
END_TEST

/* Llama's attention_bias (q, k, v and o) and mlp_bias: a checkpoint written here, every bias
 * non-zero. */
START_TEST(test_llama_biases_naive)
{
    char *mdir = tu_path(dir, "biased");
    tu_write_biased_llama(mdir, 8, 6);
    expect_naive(mdir);
    free(mdir);
}
END_TEST

/* ---- tensors the configuration does not announce ------------------------------------------- */

START_TEST(test_tensor_refusals)
{
    char *llama = gen("llama", "--preset tiny --dtype f32");
    char *qwen2 = gen("q2", "--preset tiny --family qwen2 --dtype f32");
    char *qwen3 = gen("q3", "--preset tiny --family qwen3 --dtype f32");
    static const struct {
        int model; /* 0 llama, 1 qwen2, 2 qwen3 */
        const char *arch;
        uint32_t layers, biases;
        int qk_norm, status;
        const char *tensor;
    } cases[] = {
        /* num_hidden_layers below the checkpoint's */
        {0, "llama", 1, 0, 0, HOIST_E_BAD_TENSOR, "model.layers.1.input_layernorm.weight"},
        /* announced but missing */
        {0, "llama", 2, HOIST_BIAS_QKV, 0, HOIST_E_NOT_FOUND, "self_attn.q_proj.bias"},
        {0, "llama", 2, HOIST_BIAS_MLP, 0, HOIST_E_NOT_FOUND, "mlp.gate_proj.bias"},
        {0, "qwen3", 2, 0, 1, HOIST_E_NOT_FOUND, "self_attn.q_norm.weight"},
        /* present but not announced: qwen2's biases under model_type llama, q_norm for llama */
        {1, "llama", 2, 0, 0, HOIST_E_BAD_TENSOR, "self_attn.q_proj.bias"},
        {2, "llama", 2, 0, 0, HOIST_E_BAD_TENSOR, "self_attn.q_norm.weight"},
    };
    const char *dirs[] = {llama, qwen2, qwen3};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        loaded l = it_load(dirs[cases[i].model], true);
        hoist_geometry g = l.g;
        strcpy(g.architecture, cases[i].arch);
        g.n_layers = cases[i].layers;
        g.biases = cases[i].biases;
        g.qk_norm = cases[i].qk_norm;
        hoist_session *s = NULL;
        ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), cases[i].status);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(hoist_last_error(), cases[i].tensor), "case %zu: '%s'", i,
                      hoist_last_error());
        /* the same before a byte is read */
        ck_assert_int_eq(hoist_session_check_model(l.m, &g, NULL), cases[i].status);
        ck_assert_msg(strstr(hoist_last_error(), cases[i].tensor), "case %zu: '%s'", i,
                      hoist_last_error());
        it_unload(&l);
    }
    /* and hoist run refuses before loading */
    char cfg_path[600], args[1024];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", llama);
    snprintf(args, sizeof args, "sed -i 's/\"num_hidden_layers\": 2/\"num_hidden_layers\": 1/' '%s'",
             cfg_path);
    ck_assert_int_eq(system(args), 0);
    snprintf(args, sizeof args, "run '%s' --device host --n 2 2> '%s/err.txt'", llama, dir);
    ck_assert_int_eq(tu_run_cli(args), 1);
    char *e = tu_path(dir, "err.txt");
    size_t n;
    char *text = tu_read(e, &n);
    text = realloc(text, n + 1);
    text[n] = 0;
    ck_assert_msg(strstr(text, "model.layers.1.") && strstr(text, "num_hidden_layers"), "%s", text);
    free(text);
    free(e);
    free(llama);
    free(qwen2);
    free(qwen3);
}
END_TEST

/* Dynamic NTK in a session: a prompt past max_position rotates every one of its positions with
 * the frequencies of its whole length, however max_batch cuts it, and decode steps with their own
 * length; generate and step-by-step decoding agree. */
START_TEST(test_dynamic_session)
{
    char *mdir = gen("dyn", "--preset tiny --dtype f32 --rope-scaling dynamic --rope-factor 2 "
                            "--max-position 4");
    loaded l = it_load(mdir, true);
    ck_assert_int_eq(l.g.rope.type, HOIST_ROPE_DYNAMIC);
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = 32;
    hoist_session *a = NULL, *b = NULL;
    ck_assert_int_eq(hoist_session_create(l.w, &l.g, &o, &a), HOIST_OK);
    o.max_batch = 2;
    ck_assert_int_eq(hoist_session_create(l.w, &l.g, &o, &b), HOIST_OK);
    int32_t ta[6], tb[6];
    ck_assert_int_eq(hoist_session_generate(a, prompt, NPROMPT, 6, ta), HOIST_OK);
    /* rows 0 and 6 of the prompt: the frequencies of length 7; row 7 (first decode): length 8 */
    float inv7[8], inv8[8], attn;
    hoist__rope_inv_freq(&l.g, 7, inv7, &attn);
    hoist__rope_inv_freq(&l.g, 8, inv8, &attn);
    ck_assert_float_eq_tol(a->rope_cos[6 * 8 + 1], (float)cos(6.0 * inv7[1]), 1e-6);
    ck_assert_float_eq_tol(a->rope_sin[7 * 8 + 2], (float)sin(7.0 * inv8[2]), 1e-6);
    ck_assert(inv7[1] != inv8[1]);
    /* b: the prompt in forwards of two tokens, then one decode call per token */
    ck_assert_int_eq(hoist_session_prefill(b, prompt, NPROMPT), HOIST_OK);
    float la[256], lb[256];
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(hoist_session_logits(b, lb, 256), HOIST_OK);
        tb[i] = (int32_t)hoist__ref_argmax(lb, 256);
        if (i < 5) ck_assert_int_eq(hoist_session_decode(b, tb[i]), HOIST_OK);
    }
    ck_assert_mem_eq(ta, tb, sizeof ta);
    ck_assert_int_eq(hoist_session_logits(a, la, 256), HOIST_OK);
    ck_assert_mem_eq(la, lb, sizeof la);
    /* after a reset a session runs as a fresh one: the same tokens again, although the longer
     * sequence it saw would otherwise keep its frequencies */
    int32_t tr[6];
    ck_assert_int_eq(hoist_session_reset(a), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(a, prompt, NPROMPT, 6, tr), HOIST_OK);
    ck_assert_mem_eq(ta, tr, sizeof ta);
    hoist_session_free(a);
    hoist_session_free(b);
    it_unload(&l);
    free(mdir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("infer_variants");
    TCase *tc = tcase_create("variants");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rope_scaling_types);
    tcase_add_test(tc, test_rope_dynamic_state);
    tcase_add_test(tc, test_biases_and_qk_norm_naive);
    tcase_add_test(tc, test_llama_biases_naive);
    tcase_add_test(tc, test_sliding_window_naive);
    tcase_add_test(tc, test_tensor_refusals);
    tcase_add_test(tc, test_dynamic_session);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
