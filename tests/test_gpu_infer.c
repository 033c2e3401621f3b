/* infer/'s CUDA path (cuda.c, kernels.cu) against the fp32 reference: the same generated model
 * loaded into host memory and into cuda:0, the same tokens, logits compared by relative L2 error
 * (||gpu - cpu|| / ||cpu||) under 1e-2 for bf16 and f16, 1e-4 for f32, for tied and untied heads
 * and GQA ratios 1, 4 and 8. Needs a CUDA device: exits 77 (skipped) without one. */
#include "testutil.h"

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

typedef struct loaded {
    hoist_model *m;
    hoist_weights *host, *gpu;
    hoist_geometry g;
} loaded;

static loaded load_both(const char *name, const char *flags)
{
    char args[1024];
    char *mdir = tu_path(dir, name);
    snprintf(args, sizeof args, "gen '%s' %s --quiet", mdir, flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
    loaded l;
    ck_assert_msg(hoist_model_open(mdir, NULL, &l.m) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_msg(hoist_model_geometry(l.m, &l.g) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_msg(hoist_load(l.m, &o, &l.host) == HOIST_OK, "%s", hoist_last_error());
    o.device = 0;
    ck_assert_msg(hoist_load(l.m, &o, &l.gpu) == HOIST_OK, "%s", hoist_last_error());
    free(mdir);
    return l;
}

static void unload(loaded *l)
{
    hoist_weights_free(l->host);
    hoist_weights_free(l->gpu);
    hoist_model_free(l->m);
}

static hoist_session *session(const hoist_weights *w, const hoist_geometry *g,
                              const hoist_session_options *o)
{
    hoist_session *s = NULL;
    int rc = hoist_session_create(w, g, o, &s);
    ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_status_name(rc), hoist_last_error());
    return s;
}

static double rel_err(const float *got, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(got[i]), "logit %zu is %g", i, got[i]);
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    ck_assert(den > 0);
    return sqrt(num / den);
}

static void compare(hoist_session *gpu, hoist_session *cpu, uint32_t vocab, double tol,
                    const char *what, int step)
{
    float *a = malloc(vocab * sizeof(float)), *b = malloc(vocab * sizeof(float));
    ck_assert_int_eq(hoist_session_logits(gpu, a, vocab), HOIST_OK);
    ck_assert_int_eq(hoist_session_logits(cpu, b, vocab), HOIST_OK);
    double e = rel_err(a, b, vocab);
    ck_assert_msg(e < tol, "%s, step %d: relative error %.3g (limit %g)", what, step, e, tol);
    free(a);
    free(b);
}

/* Runs a prompt, then decode steps fed with the reference's own greedy choice, comparing the
 * logits after every step. */
static void check_model(const char *name, const char *flags, double tol, uint32_t prompt_len)
{
    loaded l = load_both(name, flags);
    hoist_session *g = session(l.gpu, &l.g, NULL), *c = session(l.host, &l.g, NULL);
    hoist_session_stats st;
    hoist_session_stats_get(g, &st);
    ck_assert_str_eq(st.backend, "cuda");
    int32_t *prompt = malloc(prompt_len * sizeof *prompt);
    for (uint32_t i = 0; i < prompt_len; i++) prompt[i] = (int32_t)((i * 7919u + 13) % l.g.vocab);
    ck_assert_int_eq(hoist_session_prefill(g, prompt, prompt_len), HOIST_OK);
    ck_assert_int_eq(hoist_session_prefill(c, prompt, prompt_len), HOIST_OK);
    compare(g, c, l.g.vocab, tol, flags, 0);
    float *logits = malloc(l.g.vocab * sizeof(float));
    for (int step = 1; step <= 6; step++) {
        ck_assert_int_eq(hoist_session_logits(c, logits, l.g.vocab), HOIST_OK);
        uint32_t best = 0;
        for (uint32_t i = 1; i < l.g.vocab; i++)
            if (logits[i] > logits[best]) best = i;
        ck_assert_int_eq(hoist_session_decode(g, (int32_t)best), HOIST_OK);
        ck_assert_int_eq(hoist_session_decode(c, (int32_t)best), HOIST_OK);
        compare(g, c, l.g.vocab, tol, flags, step);
    }
    free(logits);
    free(prompt);
    hoist_session_free(g);
    hoist_session_free(c);
    unload(&l);
}

#define SMALL "--layers 2 --hidden 256 --intermediate 512 --vocab 1000 "

START_TEST(test_gqa1_untied_bf16)
{
    check_model("a", SMALL "--heads 4 --kv-heads 4 --head-dim 64", 1e-2, 9);
}
END_TEST

START_TEST(test_gqa4_tied_bf16)
{
    check_model("b", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --tie-embeddings", 1e-2, 9);
}
END_TEST

START_TEST(test_gqa8_untied_bf16_head128)
{
    check_model("c", SMALL "--heads 8 --kv-heads 1 --head-dim 128", 1e-2, 9);
}
END_TEST

START_TEST(test_f32)
{
    check_model("d", SMALL "--heads 4 --kv-heads 4 --head-dim 64 --dtype f32", 1e-4, 9);
    check_model("e", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f32 --tie-embeddings",
                1e-4, 9);
    check_model("f", SMALL "--heads 8 --kv-heads 1 --head-dim 128 --dtype f32", 1e-4, 9);
}
END_TEST

START_TEST(test_f16)
{
    check_model("g", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f16", 1e-2, 9);
}
END_TEST

/* A long prompt: many keys per attention warp, several prefill chunks (default 256 tokens). */
START_TEST(test_long_prompt)
{
    check_model("h", SMALL "--heads 8 --kv-heads 2 --head-dim 64 --dtype f32", 1e-4, 600);
}
END_TEST

/* The preset with head_dim 16 and a vocab below the argmax kernel's block. */
START_TEST(test_tiny_preset)
{
    check_model("i", "--preset tiny", 1e-2, 5);
}
END_TEST

/* generate (argmax fed back on the device, graph replay) gives the same tokens as decode steps
 * driven from the host on the GPU, and the f32 model's tokens equal the reference's. */
START_TEST(test_generate_matches_steps)
{
    loaded l = load_both("j", SMALL "--heads 8 --kv-heads 2 --head-dim 64 --dtype f32");
    const int32_t prompt[] = {5, 77, 300, 2, 999};
    enum { N = 24 };
    int32_t tg[N], tn[N], tc[N];
    hoist_session_options nograph = HOIST_SESSION_OPTIONS_DEFAULT;
    nograph.cuda_graphs = 0;
    hoist_session *g = session(l.gpu, &l.g, NULL), *n = session(l.gpu, &l.g, &nograph);
    hoist_session *c = session(l.host, &l.g, NULL);
    ck_assert_int_eq(hoist_session_generate(g, prompt, 5, N, tg), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(n, prompt, 5, N, tn), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(c, prompt, 5, N, tc), HOIST_OK);
    ck_assert_mem_eq(tg, tn, sizeof tg);
    ck_assert_mem_eq(tg, tc, sizeof tg);
    /* the same again after a reset (the graph is replayed, not rebuilt) */
    ck_assert_int_eq(hoist_session_reset(g), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(g, prompt, 5, N, tn), HOIST_OK);
    ck_assert_mem_eq(tg, tn, sizeof tg);
    /* the host-driven steps */
    ck_assert_int_eq(hoist_session_reset(n), HOIST_OK);
    ck_assert_int_eq(hoist_session_prefill(n, prompt, 5), HOIST_OK);
    float *logits = malloc(l.g.vocab * sizeof(float));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(hoist_session_logits(n, logits, l.g.vocab), HOIST_OK);
        uint32_t best = 0;
        for (uint32_t k = 1; k < l.g.vocab; k++)
            if (logits[k] > logits[best]) best = k;
        ck_assert_int_eq((int32_t)best, tg[i]);
        if (i + 1 < N) ck_assert_int_eq(hoist_session_decode(n, tg[i]), HOIST_OK);
    }
    /* after generate, the logits are those of the last step */
    float *lg = malloc(l.g.vocab * sizeof(float));
    ck_assert_int_eq(hoist_session_logits(g, lg, l.g.vocab), HOIST_OK);
    ck_assert_msg(rel_err(lg, logits, l.g.vocab) < 1e-5, "generate's last logits differ");
    hoist_session_stats st;
    hoist_session_stats_get(g, &st);
    ck_assert_uint_eq(st.position, 5 + N - 1);
    ck_assert_uint_eq(st.decode_tokens, 2 * (N - 1));
    ck_assert(st.first_token_seconds > 0);
    free(logits);
    free(lg);
    hoist_session_free(g);
    hoist_session_free(n);
    hoist_session_free(c);
    unload(&l);
}
END_TEST

START_TEST(test_memory_bandwidth_args)
{
    double gbs = 0;
    ck_assert_int_eq(hoist_device_memory_bandwidth(0, 64u << 20, 3, &gbs), HOIST_OK);
    ck_assert(gbs > 0);
    ck_assert_int_eq(hoist_device_memory_bandwidth(0, 0, 3, &gbs), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_device_memory_bandwidth(0, 1024, 0, &gbs), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_device_memory_bandwidth(hoist_device_count(), 1024, 1, &gbs),
                     HOIST_E_NO_DEVICE);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) return TU_SKIP;
    Suite *s = suite_create("gpu_infer");
    TCase *tc = tcase_create("gpu_infer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gqa1_untied_bf16);
    tcase_add_test(tc, test_gqa4_tied_bf16);
    tcase_add_test(tc, test_gqa8_untied_bf16_head128);
    tcase_add_test(tc, test_f32);
    tcase_add_test(tc, test_f16);
    tcase_add_test(tc, test_long_prompt);
    tcase_add_test(tc, test_tiny_preset);
    tcase_add_test(tc, test_generate_matches_steps);
    tcase_add_test(tc, test_memory_bandwidth_args);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
