/* infer/: the fp32 reference blocks against hand-computed values, a handcrafted one-layer model
 * whose logits are worked out by hand (tied and untied heads, the KV cache), greedy decoding on
 * generated models (deterministic, and the same through every entry point, hoist run included),
 * and the session's argument and shape checks. */
#include "infer_test_common.h"

#include "infer/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS_F 1e-6

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

static void assert_close(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])),
                      "element %zu: got %.9g, want %.9g", i, got[i], want[i]);
}

static uint16_t bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16); /* the test values are exact in bf16 */
}

/* ---- conversions ------------------------------------------------------------------------ */

START_TEST(test_dtype_conversion)
{
    ck_assert_float_eq(hoist__bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(hoist__bf16_to_f32(0xc0a0), -5.0f);
    ck_assert_float_eq(hoist__f16_to_f32(0x3c00), 1.0f);
    ck_assert_float_eq(hoist__f16_to_f32(0xc000), -2.0f);
    ck_assert_float_eq(hoist__f16_to_f32(0x3555), 0.333251953125f);
    ck_assert_float_eq(hoist__f16_to_f32(0x0001), ldexpf(1.0f, -24)); /* smallest subnormal */
    ck_assert_float_eq(hoist__f16_to_f32(0x83ff), -ldexpf(1023.0f, -24));
    ck_assert_float_eq(hoist__f16_to_f32(0x7bff), 65504.0f);
    ck_assert(isinf(hoist__f16_to_f32(0xfc00)) && hoist__f16_to_f32(0xfc00) < 0);
    ck_assert(isnan(hoist__f16_to_f32(0x7e00)));
    ck_assert(signbit(hoist__f16_to_f32(0x8000)));
    float f32[] = {0.25f, -3.5f};
    ck_assert_float_eq(hoist__load_f32(f32, HOIST_DTYPE_F32, 1), -3.5f);
}
END_TEST

/* ---- one test per block ----------------------------------------------------------------- */

/* x = [1, 2, 2, 4]: mean square 6.25, rms 2.5; weight [1, 2, 0.5, -1] in each dtype. */
START_TEST(test_rmsnorm)
{
    const float x[] = {1, 2, 2, 4};
    const double want[] = {0.4, 1.6, 0.4, -1.6};
    const float wf[] = {1, 2, 0.5f, -1};
    const uint16_t wb[] = {bf16(1), bf16(2), bf16(0.5f), bf16(-1)};
    const uint16_t wh[] = {0x3c00, 0x4000, 0x3800, 0xbc00};
    float out[4];
    hoist__ref_rmsnorm(out, x, wf, HOIST_DTYPE_F32, 4, 0.0f);
    assert_close(out, want, 4, EPS_F);
    hoist__ref_rmsnorm(out, x, wb, HOIST_DTYPE_BF16, 4, 0.0f);
    assert_close(out, want, 4, EPS_F);
    hoist__ref_rmsnorm(out, x, wh, HOIST_DTYPE_F16, 4, 0.0f);
    assert_close(out, want, 4, EPS_F);
    /* eps enters under the root: [1, 1] with eps 3 -> 1 / sqrt(1 + 3) = 0.5 */
    const float ones[] = {1, 1}, w1[] = {1, 1};
    const double half[] = {0.5, 0.5};
    hoist__ref_rmsnorm(out, ones, w1, HOIST_DTYPE_F32, 2, 3.0f);
    assert_close(out, half, 2, EPS_F);
    /* in place, and a zero vector stays zero */
    float z[] = {0, 0};
    const double zero[] = {0, 0};
    hoist__ref_rmsnorm(z, z, w1, HOIST_DTYPE_F32, 2, 1e-5f);
    assert_close(z, zero, 2, 0);
}
END_TEST

/* head_dim 4, theta 10000: inverse frequencies 1 and 0.01; Hugging Face's rotate_half pairs
 * element i with i + 2. */
START_TEST(test_rope)
{
    float cs[3 * 2], sn[3 * 2];
    hoist__rope_table(cs, sn, 3, 4, 10000.0);
    const double want_cos[] = {1, 1, 0.5403023058681398, 0.9999500004166653,
                               -0.4161468365471424, 0.9998000066665778};
    const double want_sin[] = {0, 0, 0.8414709848078965, 0.0099998333341667,
                               0.9092974268256817, 0.0199986666933331};
    assert_close(cs, want_cos, 6, EPS_F);
    assert_close(sn, want_sin, 6, EPS_F);

    /* two heads at position 1: (x0, x2) turns by 1 radian, (x1, x3) by 0.01 */
    float x[] = {1, 2, 3, 4, 1, 0, 0, 0};
    hoist__ref_rope(x, 2, 4, cs + 2, sn + 2);
    const double want[] = {
        1 * 0.5403023058681398 - 3 * 0.8414709848078965,       /* -1.98410865 */
        2 * 0.9999500004166653 - 4 * 0.0099998333341667,       /*  1.95990067 */
        3 * 0.5403023058681398 + 1 * 0.8414709848078965,       /*  2.46237790 */
        4 * 0.9999500004166653 + 2 * 0.0099998333341667,       /*  4.01979967 */
        0.5403023058681398, 0, 0.8414709848078965, 0};
    assert_close(x, want, 8, EPS_F);
    /* position 0 is the identity */
    float y[] = {1, 2, 3, 4};
    const double same[] = {1, 2, 3, 4};
    hoist__ref_rope(y, 1, 4, cs, sn);
    assert_close(y, same, 4, 0);
}
END_TEST

/* GGUF's llama layout: q/k rows permuted within each head (row h*hd/2 + i of half h to 2i + h)
 * and rotated in interleaved pairs give the rotate_half result, bit for bit and in Hugging
 * Face's order (the permutation is undone on the way out). */
START_TEST(test_rope_interleaved)
{
    enum { HD = 8, HEADS = 2, N = HD * HEADS };
    float cs[5 * HD / 2], sn[5 * HD / 2];
    hoist__rope_table(cs, sn, 5, HD, 500000.0);
    float x[N], y[N], z[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i * 7 % 11) - 4.5f;
    memcpy(y, x, sizeof y);
    hoist__ref_rope(y, HEADS, HD, cs + 4 * HD / 2, sn + 4 * HD / 2);
    for (int h = 0; h < HEADS; h++)
        for (int half = 0; half < 2; half++)
            for (int i = 0; i < HD / 2; i++)
                z[h * HD + 2 * i + half] = x[h * HD + half * HD / 2 + i];
    hoist__ref_rope_pairs(z, HEADS, HD, cs + 4 * HD / 2, sn + 4 * HD / 2, 1);
    ck_assert_mem_eq(z, y, sizeof y);
    /* and pairing 0 is rotate_half */
    memcpy(z, x, sizeof z);
    hoist__ref_rope_pairs(z, HEADS, HD, cs + 4 * HD / 2, sn + 4 * HD / 2, 0);
    ck_assert_mem_eq(z, y, sizeof y);
}
END_TEST

/* Q8_0: each 34-byte block is an f16 scale and 32 int8; element i is d * q. */
START_TEST(test_q8_0)
{
    unsigned char w[2 * 2 * 34]; /* 2 rows of 64: 2 blocks each */
    const uint16_t d[4] = {0x3400, 0x4000, 0xb800, 0x0001}; /* 0.25, 2, -0.5, 2^-24 */
    for (int b = 0; b < 4; b++) {
        memcpy(w + b * 34, &d[b], 2);
        for (int j = 0; j < 32; j++) w[b * 34 + 2 + j] = (unsigned char)(signed char)(j * 9 - 128);
    }
    const double dv[4] = {0.25, 2, -0.5, 5.9604644775390625e-8};
    float x[64];
    for (int c = 0; c < 64; c++) x[c] = (float)(c % 5) - 2.0f;
    double want[2] = {0, 0};
    for (int i = 0; i < 128; i++) {
        double v = dv[i / 32] * (double)(signed char)(unsigned char)((i % 32) * 9 - 128);
        ck_assert_float_eq(hoist__load_f32(w, HOIST_DTYPE_Q8_0, (size_t)i), (float)v);
        want[i / 64] += v * x[i % 64];
    }
    float y[2] = {1, 1};
    hoist__ref_matvec(y, w, HOIST_DTYPE_Q8_0, 2, 64, x, 0);
    assert_close(y, want, 2, 1e-6);
    float e[64];
    hoist__ref_embed(e, w, HOIST_DTYPE_Q8_0, 1, 64);
    ck_assert_float_eq(e[0], (float)(-0.5 * -128));
    ck_assert_float_eq(e[63], (float)(dv[3] * (signed char)(31 * 9 - 128)));
}
END_TEST

/* Two query heads share one kv head (head_dim 2, scale 1/sqrt(2)). Keys k0 = 0 and
 * k1 = [sqrt(2) ln 3, 0] give head 0 (q = [1, 0]) scores 0 and ln 3, so weights 1/4 and 3/4;
 * head 1 (q = [0, 1]) scores 0 and 0, so 1/2 each. v0 = [4, 8], v1 = [8, 0]. A third cache row
 * holds NaN: it is past n_keys and must not be read. */
START_TEST(test_attention_gqa_cache)
{
    const float s2l3 = (float)(sqrt(2.0) * log(3.0));
    const float q[] = {1, 0, 0, 1};
    const float kc[] = {0, 0, s2l3, 0, NAN, NAN};
    const float vc[] = {4, 8, 8, 0, NAN, NAN};
    float out[4], scores[3];
    hoist__ref_attention(out, q, kc, vc, 2, 2, 1, 2, scores);
    const double want[] = {7, 2, 6, 4};
    assert_close(out, want, 4, 1e-5);
    /* one key: the output is its value, whatever the scores */
    hoist__ref_attention(out, q, kc, vc, 1, 2, 1, 2, scores);
    const double first[] = {4, 8, 4, 8};
    assert_close(out, first, 4, 1e-6);
}
END_TEST

/* Four query heads over two kv heads: heads 0 and 1 read kv head 0, heads 2 and 3 kv head 1.
 * Equal keys make the weights uniform, so each output is the mean of its kv head's values. */
START_TEST(test_attention_head_mapping)
{
    const float q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* cache rows: [kv0 (2 floats), kv1 (2 floats)] per position, 2 positions */
    const float kc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float vc[8] = {1, 2, 10, 20, 3, 4, 30, 40};
    float out[8], scores[2];
    hoist__ref_attention(out, q, kc, vc, 2, 4, 2, 2, scores);
    const double want[] = {2, 3, 2, 3, 20, 30, 20, 30};
    assert_close(out, want, 8, 1e-6);
    /* ratio 1: head h reads kv head h */
    hoist__ref_attention(out, q, kc, vc, 2, 2, 2, 2, scores);
    const double want1[] = {2, 3, 20, 30};
    assert_close(out, want1, 4, 1e-6);
}
END_TEST

START_TEST(test_swiglu)
{
    const float gate[] = {0, 1, -1, 2}, up[] = {5, 2, 3, 1};
    float out[4];
    hoist__ref_swiglu(out, gate, up, 4);
    /* silu(x) = x / (1 + e^-x): 0, 0.7310585786, -0.2689414214, 1.7615941560 */
    const double want[] = {0, 1.4621171573, -0.8068242641, 1.7615941560};
    assert_close(out, want, 4, EPS_F);
}
END_TEST

/* The LM head is a matrix-vector product over the vocabulary rows. */
START_TEST(test_matvec_lm_head)
{
    const uint16_t wb[] = {bf16(1), bf16(2), bf16(3), bf16(4), bf16(-1), bf16(0.5f)};
    const float x[] = {2, -1};
    float y[3];
    hoist__ref_matvec(y, wb, HOIST_DTYPE_BF16, 3, 2, x, 0);
    const double want[] = {0, 2, -2.5};
    assert_close(y, want, 3, 0);
    hoist__ref_matvec(y, wb, HOIST_DTYPE_BF16, 3, 2, x, 1); /* accumulates into y */
    const double twice[] = {0, 4, -5};
    assert_close(y, twice, 3, 0);
    const uint16_t wh[] = {0x3c00, 0x4000, 0x4200, 0x4400, 0xbc00, 0x3800};
    hoist__ref_matvec(y, wh, HOIST_DTYPE_F16, 3, 2, x, 0);
    assert_close(y, want, 3, 0);
    float row[2];
    hoist__ref_embed(row, wb, HOIST_DTYPE_BF16, 2, 2);
    const double r2[] = {-1, 0.5};
    assert_close(row, r2, 2, 0);
}
END_TEST

START_TEST(test_argmax)
{
    const float a[] = {1, 3, 3, 2};
    ck_assert_uint_eq(hoist__ref_argmax(a, 4), 1); /* the first of equals */
    const float b[] = {NAN, 1, 0};
    ck_assert_uint_eq(hoist__ref_argmax(b, 3), 1); /* NaN never wins */
    const float c[] = {-INFINITY, -INFINITY};
    ck_assert_uint_eq(hoist__ref_argmax(c, 2), 0);
    const float d[] = {-5, -2, -7};
    ck_assert_uint_eq(hoist__ref_argmax(d, 3), 1);
    ck_assert_uint_eq(hoist__ref_argmax(a, 0), 0);
}
END_TEST

/* ---- a handcrafted model ---------------------------------------------------------------- */

typedef tu_f32_tensor tensor_spec;

/* Writes an F32 safetensors file of the given tensors and a config.json into dir. */
static void write_model(const char *mdir, const tensor_spec *t, int n, int tied)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 2, "
             "\"intermediate_size\": 1, \"num_hidden_layers\": 1, \"num_attention_heads\": 1, "
             "\"num_key_value_heads\": 1, \"head_dim\": 2, \"vocab_size\": 3, "
             "\"max_position_embeddings\": 16, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, "
             "\"tie_word_embeddings\": %s}",
             tied ? "true" : "false");
    tu_write_f32_model(mdir, t, n, cfg);
}

static const float embed[] = {1, 1, 2, -2, 0, 3};
static const float ones2[] = {1, 1}, zero4[] = {0, 0, 0, 0}, eye[] = {1, 0, 0, 1};
static const float zero2[] = {0, 0}, head[] = {1, 0, 0, 1, 1, -1};

/* One layer whose queries and keys are zero (uniform attention), v_proj and o_proj the
 * identity, and an MLP that adds nothing (down_proj zero). */
static void write_hand_model(const char *mdir, int tied)
{
    tensor_spec t[] = {
        {"model.embed_tokens.weight", 3, 2, embed},
        {"model.layers.0.input_layernorm.weight", 2, 0, ones2},
        {"model.layers.0.self_attn.q_proj.weight", 2, 2, zero4},
        {"model.layers.0.self_attn.k_proj.weight", 2, 2, zero4},
        {"model.layers.0.self_attn.v_proj.weight", 2, 2, eye},
        {"model.layers.0.self_attn.o_proj.weight", 2, 2, eye},
        {"model.layers.0.post_attention_layernorm.weight", 2, 0, ones2},
        {"model.layers.0.mlp.gate_proj.weight", 1, 2, ones2},
        {"model.layers.0.mlp.up_proj.weight", 1, 2, ones2},
        {"model.layers.0.mlp.down_proj.weight", 2, 1, zero2},
        {"model.norm.weight", 2, 0, ones2},
        {"lm_head.weight", 3, 2, head},
    };
    write_model(mdir, t, tied ? 11 : 12, tied);
}

static hoist_session *session(const loaded *l, const hoist_session_options *o)
{
    hoist_session *s = NULL;
    int rc = hoist_session_create(l->w, &l->g, o, &s);
    ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_status_name(rc), hoist_last_error());
    return s;
}

/* Token 0 alone: x = [1, 1] normalizes to ~[1, 1]; attention over one key returns its value,
 * so x becomes [2, 2] and the final norm gives [1, 1] again. Tied logits: embed . [1, 1] =
 * [2, 0, 3]; untied: head . [1, 1] = [1, 1, 0].
 * Then token 1 at position 1: its normalized input [2, -2] / 2 = [1, -1]; uniform attention over
 * v0 = [1, 1] and v1 = [1, -1] gives [1, 0]; x = [3, -2], rms sqrt(6.5), so the final norm is
 * [1.1766968, -0.7844645]; tied logits [0.3922323, 3.9223227, -2.3533936]. */
START_TEST(test_hand_model_logits)
{
    /* the first norm's eps scales the values a little: v0 = [s, s], v1 = [t, -t] */
    const double sc = 1.0 / sqrt(1 + 1e-5), tc = 2.0 / sqrt(4 + 1e-5);
    for (int tied = 0; tied <= 1; tied++) {
        char *mdir = tu_path(dir, tied ? "tied" : "untied");
        char cmd[600];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", mdir);
        ck_assert_int_eq(system(cmd), 0);
        write_hand_model(mdir, tied);
        loaded l = it_load(mdir, false);
        ck_assert_int_eq(l.g.tied_embeddings, tied);
        hoist_session *s = session(&l, NULL);
        int32_t t0 = 0, t1 = 1;
        ck_assert_int_eq(hoist_session_prefill(s, &t0, 1), HOIST_OK);
        float logits[3];
        ck_assert_int_eq(hoist_session_logits(s, logits, 3), HOIST_OK);
        const double want_tied[] = {2, 0, 3}, want_untied[] = {1, 1, 0};
        assert_close(logits, tied ? want_tied : want_untied, 3, 2e-5);
        ck_assert_int_eq(hoist_session_decode(s, t1), HOIST_OK);
        ck_assert_int_eq(hoist_session_logits(s, logits, 3), HOIST_OK);
        double x0 = 2 + (sc + tc) / 2, x1 = -2 + (sc - tc) / 2;
        double r = 1 / sqrt((x0 * x0 + x1 * x1) / 2 + 1e-5), n0 = x0 * r, n1 = x1 * r;
        const double w_tied[] = {n0 + n1, 2 * n0 - 2 * n1, 3 * n1};
        const double w_untied[] = {n0, n1, n0 - n1};
        assert_close(logits, tied ? w_tied : w_untied, 3, 2e-5);
        if (tied) { /* the figures of the comment */
            const double fig[] = {0.3922323, 3.9223227, -2.3533936};
            assert_close(logits, fig, 3, 1e-4);
        }
        hoist_session_stats st = HOIST_SESSION_STATS_INIT;
        ck_assert_int_eq(hoist_session_stats_get(s, &st), HOIST_OK);
        ck_assert_str_eq(st.backend, "cpu");
        ck_assert_uint_eq(st.position, 2);
        ck_assert_uint_eq(st.prefill_tokens, 1);
        ck_assert_uint_eq(st.decode_tokens, 1);
        /* every tensor once per token, the head counted once when tied, one embedding row */
        uint64_t want_bytes = hoist_model_total_bytes(l.m) - 6 * 4 + 2 * 4 + (tied ? 6 * 4 : 0);
        ck_assert_uint_eq(st.weight_bytes_per_token, want_bytes);
        hoist_session_free(s);
        it_unload(&l);
        free(mdir);
    }
}
END_TEST

/* ---- generated models: determinism and consistency -------------------------------------- */

static char *gen(const char *name, const char *flags)
{
    char args[1024];
    char *mdir = tu_path(dir, name);
    snprintf(args, sizeof args, "gen '%s' %s --quiet", mdir, flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
    return mdir;
}

static const int32_t prompt[] = {1, 17, 200, 3, 99, 5, 42};
#define NPROMPT ((size_t)(sizeof prompt / sizeof *prompt))
#define NGEN 12

START_TEST(test_decode_deterministic)
{
    char *mdir = gen("tiny", "--preset tiny");
    loaded l = it_load(mdir, false);
    ck_assert_uint_eq(l.g.n_layers, 2);
    ck_assert_uint_eq(l.g.vocab, 256);
    hoist_session *a = session(&l, NULL), *b = session(&l, NULL);
    int32_t ta[NGEN], tb[NGEN], tc[NGEN];
    ck_assert_int_eq(hoist_session_generate(a, prompt, NPROMPT, NGEN, ta), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(b, prompt, NPROMPT, NGEN, tb), HOIST_OK);
    ck_assert_mem_eq(ta, tb, sizeof ta);
    /* after a reset the same session repeats itself */
    ck_assert_int_eq(hoist_session_reset(a), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(a, prompt, NPROMPT, NGEN, tc), HOIST_OK);
    ck_assert_mem_eq(ta, tc, sizeof ta);
    /* and the step-by-step API gives the same tokens and logits */
    float *la = malloc(256 * sizeof(float)), *lb = malloc(256 * sizeof(float));
    ck_assert_int_eq(hoist_session_reset(b), HOIST_OK);
    ck_assert_int_eq(hoist_session_prefill(b, prompt, NPROMPT), HOIST_OK);
    for (int i = 0; i < NGEN; i++) {
        ck_assert_int_eq(hoist_session_logits(b, lb, 256), HOIST_OK);
        ck_assert_int_eq((int)hoist__ref_argmax(lb, 256), ta[i]);
        if (i + 1 < NGEN) ck_assert_int_eq(hoist_session_decode(b, ta[i]), HOIST_OK);
    }
    ck_assert_int_eq(hoist_session_logits(a, la, 256), HOIST_OK);
    ck_assert_mem_eq(la, lb, 256 * sizeof(float));
    hoist_session_stats st = HOIST_SESSION_STATS_INIT;
    ck_assert_int_eq(hoist_session_stats_get(a, &st), HOIST_OK);
    ck_assert_uint_eq(st.position, NPROMPT + NGEN - 1);
    ck_assert_uint_eq(st.decode_tokens, 2 * (NGEN - 1));
    free(la);
    free(lb);
    hoist_session_free(a);
    hoist_session_free(b);
    it_unload(&l);
    free(mdir);
}
END_TEST

/* Each weight dtype (tied head here) runs, gives finite non-zero logits, and gives the same
 * logits when the prompt is split into forward passes of 2 tokens. */
START_TEST(test_prefill_chunks_and_dtypes)
{
    const char *dtypes[] = {"bf16", "f16", "f32"};
    for (int i = 0; i < 3; i++) {
        char flags[64], name[16];
        snprintf(flags, sizeof flags, "--preset tiny --dtype %s --tie-embeddings", dtypes[i]);
        snprintf(name, sizeof name, "m%d", i);
        char *mdir = gen(name, flags);
        loaded l = it_load(mdir, false);
        ck_assert_int_eq(l.g.tied_embeddings, 1);
        hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
        o.max_batch = 2;
        hoist_session *a = session(&l, NULL), *b = session(&l, &o);
        ck_assert_int_eq(hoist_session_prefill(a, prompt, NPROMPT), HOIST_OK);
        ck_assert_int_eq(hoist_session_prefill(b, prompt, NPROMPT), HOIST_OK);
        float la[256], lb[256];
        ck_assert_int_eq(hoist_session_logits(a, la, 256), HOIST_OK);
        ck_assert_int_eq(hoist_session_logits(b, lb, 256), HOIST_OK);
        ck_assert_mem_eq(la, lb, sizeof la);
        float mx = 0;
        for (int k = 0; k < 256; k++) {
            ck_assert(isfinite(la[k]));
            mx = fmaxf(mx, fabsf(la[k]));
        }
        ck_assert_float_gt(mx, 0);
        hoist_session_free(a);
        hoist_session_free(b);
        it_unload(&l);
        free(mdir);
    }
}
END_TEST

/* ---- GGUF ------------------------------------------------------------------------------- */

/* The GGUF model of a seed and its safetensors twin run alike: the same tokens and bit-identical
 * logits (the permuted q/k rows are put back in order by the rotary step). Q8_0 stays near the
 * f32 values it quantizes. Through hoist run too. */
START_TEST(test_gguf_same_as_safetensors)
{
    const char *flags[] = {"--preset tiny --dtype f32 --seed 4",
                           "--preset tiny --dtype bf16 --seed 4 --tie-embeddings",
                           "--layers 2 --hidden 256 --heads 4 --kv-heads 1 --intermediate 320 "
                           "--vocab 300 --dtype f32 --seed 4"};
    for (int i = 0; i < 3; i++) {
        char st_flags[256], gg_flags[256], st_name[16], gg_name[16];
        snprintf(st_flags, sizeof st_flags, "%s", flags[i]);
        snprintf(gg_flags, sizeof gg_flags, "%s --format gguf", flags[i]);
        snprintf(st_name, sizeof st_name, "st%d", i);
        snprintf(gg_name, sizeof gg_name, "gg%d", i);
        char *sd = gen(st_name, st_flags), *gd = gen(gg_name, gg_flags);
        loaded a = it_load(sd, false), b = it_load(gd, false);
        uint32_t V = a.g.vocab;
        hoist_session *sa = session(&a, NULL), *sb = session(&b, NULL);
        int32_t ta[NGEN], tb[NGEN];
        ck_assert_int_eq(hoist_session_generate(sa, prompt, NPROMPT, NGEN, ta), HOIST_OK);
        ck_assert_int_eq(hoist_session_generate(sb, prompt, NPROMPT, NGEN, tb), HOIST_OK);
        ck_assert_mem_eq(ta, tb, sizeof ta);
        float *la = malloc(V * sizeof(float)), *lb = malloc(V * sizeof(float));
        ck_assert_int_eq(hoist_session_logits(sa, la, V), HOIST_OK);
        ck_assert_int_eq(hoist_session_logits(sb, lb, V), HOIST_OK);
        for (uint32_t k = 0; k < V; k++)
            ck_assert_msg(memcmp(&la[k], &lb[k], sizeof la[k]) == 0,
                          "model %d logit %u: %.9g vs %.9g", i, k, la[k], lb[k]);
        hoist_session_stats sta = HOIST_SESSION_STATS_INIT, stb = HOIST_SESSION_STATS_INIT;
        ck_assert_int_eq(hoist_session_stats_get(sa, &sta), HOIST_OK);
        ck_assert_int_eq(hoist_session_stats_get(sb, &stb), HOIST_OK);
        /* GGUF's norms are F32 in every dtype */
        if (i != 1) ck_assert_uint_eq(sta.weight_bytes_per_token, stb.weight_bytes_per_token);
        if (i == 2) {
            /* Q8_0 of the same f32 values: logits within a few percent of the range */
            char q_flags[256];
            snprintf(q_flags, sizeof q_flags, "%s --format gguf --dtype q8_0", flags[i]);
            char *qd = gen("q8", q_flags);
            loaded q = it_load(qd, false);
            hoist_session *sq = session(&q, NULL);
            float *lq = malloc(V * sizeof(float));
            ck_assert_int_eq(hoist_session_prefill(sq, prompt, NPROMPT), HOIST_OK);
            ck_assert_int_eq(hoist_session_reset(sa), HOIST_OK);
            ck_assert_int_eq(hoist_session_prefill(sa, prompt, NPROMPT), HOIST_OK);
            ck_assert_int_eq(hoist_session_logits(sa, la, V), HOIST_OK);
            ck_assert_int_eq(hoist_session_logits(sq, lq, V), HOIST_OK);
            float range = 0, err = 0;
            for (uint32_t k = 0; k < V; k++) {
                range = fmaxf(range, fabsf(la[k]));
                err = fmaxf(err, fabsf(la[k] - lq[k]));
            }
            ck_assert_msg(err <= 0.02f * range, "Q8_0 logits off by %g (range %g)", err, range);
            ck_assert_msg(err > 0, "Q8_0 logits equal to f32: nothing was quantized");
            free(lq);
            hoist_session_free(sq);
            it_unload(&q);
            free(qd);
        }
        /* hoist run prints the same tokens for both */
        char args[1024], *outs[2];
        for (int f = 0; f < 2; f++) {
            outs[f] = tu_path(dir, f ? "run_gg.txt" : "run_st.txt");
            snprintf(args, sizeof args,
                     "run '%s' --device host --tokens 1,17,200,3,99,5,42 --n 12 | grep generated "
                     "> '%s'",
                     f ? gd : sd, outs[f]);
            ck_assert_int_eq(tu_run_cli(args), 0);
        }
        size_t n0, n1;
        char *o0 = tu_read(outs[0], &n0), *o1 = tu_read(outs[1], &n1);
        ck_assert_uint_gt(n0, 16);
        ck_assert_uint_eq(n0, n1);
        ck_assert_mem_eq(o0, o1, n0);
        free(o0);
        free(o1);
        free(outs[0]);
        free(outs[1]);
        free(la);
        free(lb);
        hoist_session_free(sa);
        hoist_session_free(sb);
        it_unload(&a);
        it_unload(&b);
        free(sd);
        free(gd);
    }
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(test_errors)
{
    char *mdir = gen("tiny", "--preset tiny");
    loaded l = it_load(mdir, false);
    hoist_session *s = NULL;
    hoist_geometry g = l.g;

    /* shapes that disagree with the geometry name the tensor */
    g.hidden = 128;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_TENSOR);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model.embed_tokens.weight"));
    g = l.g;
    g.intermediate = 171;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_TENSOR);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model.layers.0.mlp.gate_proj.weight"));
    g = l.g;
    g.n_layers = 3;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model.layers.2.input_layernorm.weight"));
    /* tied in the geometry but a head in the file is fine; untied without a head is not */
    g = l.g;
    g.tied_embeddings = 1;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_OK);
    hoist_session_free(s);
    s = NULL;
    /* geometries that make no sense */
    g = l.g;
    g.n_kv_heads = 3;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_CONFIG);
    g = l.g;
    g.head_dim = 15;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd"));
    g = l.g;
    g.rms_eps = 0;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_CONFIG);
    g = l.g;
    g.rope_theta = NAN;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_CONFIG);
    g = l.g;
    g.n_layers = 0;
    ck_assert_int_eq(hoist_session_create(l.w, &g, NULL, &s), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_null(s);
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = (1u << 24) + 1;
    ck_assert_int_eq(hoist_session_create(l.w, &l.g, &o, &s), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_session_create(NULL, &l.g, NULL, &s), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(s);

    /* a small cache: 8 positions */
    o.max_tokens = 8;
    s = session(&l, &o);
    float logits[256];
    ck_assert_int_eq(hoist_session_logits(s, logits, 256), HOIST_E_INVALID_ARG); /* nothing ran */
    int32_t bad[] = {1, 256};
    ck_assert_int_eq(hoist_session_prefill(s, bad, 2), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "token 1 is 256"));
    bad[1] = -1;
    ck_assert_int_eq(hoist_session_prefill(s, bad, 2), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_session_prefill(s, prompt, 0), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_session_prefill(s, prompt, NPROMPT), HOIST_OK);
    ck_assert_int_eq(hoist_session_logits(s, logits, 255), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_session_decode(s, 3), HOIST_OK); /* position 7: the last */
    ck_assert_int_eq(hoist_session_decode(s, 3), HOIST_E_TOO_MANY);
    int32_t out[4];
    ck_assert_int_eq(hoist_session_reset(s), HOIST_OK);
    /* 7 prompt tokens + 3 new need 9 positions: refused before anything runs */
    ck_assert_int_eq(hoist_session_generate(s, prompt, NPROMPT, 3, out), HOIST_E_TOO_MANY);
    ck_assert_int_eq(hoist_session_generate(s, prompt, NPROMPT, 2, out), HOIST_OK);
    hoist_session_stats st = HOIST_SESSION_STATS_INIT;
    ck_assert_int_eq(hoist_session_stats_get(s, &st), HOIST_OK);
    ck_assert_uint_eq(st.position, 8);
    hoist_session_free(s);
    hoist_session_free(NULL);
    it_unload(&l);
    free(mdir);
}
END_TEST

/* The untied model without its lm_head.weight. */
START_TEST(test_missing_head)
{
    char *mdir = tu_path(dir, "nohead");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", mdir);
    ck_assert_int_eq(system(cmd), 0);
    write_hand_model(mdir, 1);
    loaded l = it_load(mdir, false);
    l.g.tied_embeddings = 0;
    hoist_session *s = NULL;
    ck_assert_int_eq(hoist_session_create(l.w, &l.g, NULL, &s), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "lm_head.weight"));
    it_unload(&l);
    free(mdir);
}
END_TEST

/* hoist run prints the tokens the API generates, and refuses bad arguments with usage errors. */
START_TEST(test_cli_run)
{
    char *mdir = gen("tiny", "--preset tiny");
    char *outp = tu_path(dir, "run.txt");
    char args[1024];
    snprintf(args, sizeof args, "run '%s' --device host --tokens 1,17,200,3,99,5,42 --n 12 > '%s'",
             mdir, outp);
    ck_assert_int_eq(tu_run_cli(args), 0);
    size_t len;
    char *text = tu_read(outp, &len);
    ck_assert_ptr_nonnull(text);
    text = realloc(text, len + 1);
    text[len] = '\0';
    loaded l = it_load(mdir, false);
    hoist_session *s = session(&l, NULL);
    int32_t t[NGEN];
    ck_assert_int_eq(hoist_session_generate(s, prompt, NPROMPT, NGEN, t), HOIST_OK);
    char want[512] = "generated (12): ";
    for (int i = 0; i < NGEN; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? " " : "", t[i]);
    strcat(want, "\n");
    ck_assert_msg(strstr(text, want), "'%s' not in:\n%s", want, text);
    ck_assert_ptr_nonnull(strstr(text, "roofline:"));
    ck_assert_ptr_nonnull(strstr(text, "time to first token:"));
    free(text);
    hoist_session_free(s);
    it_unload(&l);
    const char *bad[] = {"--tokens 1,x", "--tokens ''", "--tokens 1,,2", "--n -1",
                         "--device host --devices host", "--frobnicate"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "run '%s' %s 2> /dev/null", mdir, bad[i]);
        ck_assert_msg(tu_run_cli(args) == 2, "hoist run %s", bad[i]);
    }
    /* a token outside the vocabulary is a failure of the run, not of the usage */
    snprintf(args, sizeof args, "run '%s' --device host --tokens 256 2> /dev/null", mdir);
    ck_assert_int_eq(tu_run_cli(args), 1);
    free(outp);
    free(mdir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("infer");
    TCase *blocks = tcase_create("blocks");
    tcase_add_test(blocks, test_dtype_conversion);
    tcase_add_test(blocks, test_rmsnorm);
    tcase_add_test(blocks, test_rope);
    tcase_add_test(blocks, test_rope_interleaved);
    tcase_add_test(blocks, test_q8_0);
    tcase_add_test(blocks, test_attention_gqa_cache);
    tcase_add_test(blocks, test_attention_head_mapping);
    tcase_add_test(blocks, test_swiglu);
    tcase_add_test(blocks, test_matvec_lm_head);
    tcase_add_test(blocks, test_argmax);
    suite_add_tcase(s, blocks);
    TCase *model = tcase_create("model");
    tcase_add_checked_fixture(model, setup, teardown);
    tcase_add_test(model, test_hand_model_logits);
    tcase_add_test(model, test_decode_deterministic);
    tcase_add_test(model, test_prefill_chunks_and_dtypes);
    tcase_add_test(model, test_errors);
    tcase_add_test(model, test_missing_head);
    tcase_add_test(model, test_cli_run);
    tcase_add_test(model, test_gguf_same_as_safetensors);
    suite_add_tcase(s, model);
    return tu_run_suite(s);
}
