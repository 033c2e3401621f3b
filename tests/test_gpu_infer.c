/* infer/'s GPU path (gpu_forward.c, kernels.cu) against the fp32 reference: the same generated
 * model loaded into host memory and into cuda:0, the same tokens, logits compared by relative L2
 * error (||gpu - cpu|| / ||cpu||) under 1e-2 for bf16 and f16, 1e-4 for f32, for tied and untied
 * heads and GQA ratios 1, 4 and 8. Then the device-call seam (gpu/gpu.h) over a session: every
 * call of a kind fails in turn, during hoist_session_create and during generation, and each
 * failure is a clean status that gives back every buffer, stream, event, handle and graph.
 * Needs a CUDA device: exits 77 (skipped) without one. */
#include "testutil.h"
#include "gpu/gpu.h"
#include "core/core.h"

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

static loaded open_both(const char *mdir);

static loaded load_both(const char *name, const char *flags)
{
    char args[1024];
    char *mdir = tu_path(dir, name);
    snprintf(args, sizeof args, "gen '%s' %s --quiet", mdir, flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
    loaded l = open_both(mdir);
    free(mdir);
    return l;
}

/* The checkpoint in mdir loaded into host memory and into cuda:0. */
static loaded open_both(const char *mdir)
{
    loaded l = {.g = HOIST_GEOMETRY_INIT};
    ck_assert_msg(hoist_model_open(mdir, NULL, &l.m) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_msg(hoist_model_geometry(l.m, &l.g) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_msg(hoist_load(l.m, &o, &l.host) == HOIST_OK, "%s", hoist_last_error());
    o.device = 0;
    ck_assert_msg(hoist_load(l.m, &o, &l.gpu) == HOIST_OK, "%s", hoist_last_error());
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

/* Which decode kernels the sessions created next use (HOIST_DECODE_KERNELS is read when a
 * session is created); NULL: the default. */
static void decode_kernels(const char *which)
{
    if (which) setenv("HOIST_DECODE_KERNELS", which, 1);
    else unsetenv("HOIST_DECODE_KERNELS");
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
static void check_loaded(loaded l, const char *flags, double tol, uint32_t prompt_len);

static void check_model(const char *name, const char *flags, double tol, uint32_t prompt_len)
{
    check_loaded(load_both(name, flags), flags, tol, prompt_len);
}

static void check_loaded(loaded l, const char *flags, double tol, uint32_t prompt_len)
{
    /* room for the prompt and the steps whatever max_position says (dynamic NTK runs past it) */
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = prompt_len + 8;
    hoist_session *g = session(l.gpu, &l.g, &o), *c = session(l.host, &l.g, &o);
    hoist_session_stats st = HOIST_SESSION_STATS_INIT;
    ck_assert_int_eq(hoist_session_stats_get(g, &st), HOIST_OK);
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

/* The Llama variants: biases, q/k norms and every rope scaling, prompts past the original
 * contexts, safetensors and GGUF (rope_freqs.weight, unpermuted qwen rows). */
#define WIDE SMALL "--heads 8 --kv-heads 2 --head-dim 32 "
START_TEST(test_variants_f32)
{
    check_model("v1", WIDE "--dtype f32 --family qwen2", 1e-4, 80);
    check_model("v2", SMALL "--heads 4 --kv-heads 2 --head-dim 64 --dtype f32 --family qwen3",
                1e-4, 80);
    check_model("v3", WIDE "--dtype f32 --family mistral", 1e-4, 80);
    check_model("v4", WIDE "--dtype f32 --family llama3.1 --rope-original 16", 1e-4, 80);
    check_model("v5", WIDE "--dtype f32 --rope-scaling yarn --max-position 128", 1e-4, 80);
    check_model("v6", WIDE "--dtype f32 --rope-scaling dynamic --max-position 16", 1e-4, 80);
    check_model("v7", WIDE "--dtype f32 --rope-scaling linear", 1e-4, 80);
    check_model("v8", WIDE "--dtype f32 --family llama3.1 --rope-original 16 --format gguf",
                1e-4, 80);
    check_model("v9", SMALL "--heads 4 --kv-heads 2 --head-dim 64 --dtype f32 --family qwen3 "
                "--format gguf", 1e-4, 80);
}
END_TEST

START_TEST(test_variants_bf16)
{
    check_model("w1", WIDE "--family qwen2", 1e-2, 40);
    check_model("w2", SMALL "--heads 8 --kv-heads 1 --head-dim 128 --family qwen3", 1e-2, 40);
    check_model("w3", WIDE "--family qwen2 --format gguf --dtype q8_0", 2e-2, 40);
}
END_TEST

/* Sliding windows on both kernels: a 600-token prompt in several prefill chunks, then decode
 * steps whose window (100 keys) is split over several blocks, all starting past position 0;
 * Qwen2's full layer 0 beside its windowed layer 1. */
START_TEST(test_sliding_window)
{
    check_model("s1", WIDE "--dtype f32 --family mistral --sliding-window 100", 1e-4, 600);
    check_model("s2", WIDE "--dtype f32 --family qwen2 --sliding-window 40 --window-layers 1",
                1e-4, 300);
    check_model("s3", WIDE "--family mistral --sliding-window 33", 1e-2, 120);
}
END_TEST

/* Dynamic NTK through generate: the table rows of every decode step reach the device before the
 * replayed graph reads them. */
START_TEST(test_dynamic_generate)
{
    loaded l = load_both("dyn", WIDE "--dtype f32 --rope-scaling dynamic --max-position 16");
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = 64;
    hoist_session *g = session(l.gpu, &l.g, &o), *c = session(l.host, &l.g, &o);
    int32_t prompt[24], tg[24], tc[24];
    for (int i = 0; i < 24; i++) prompt[i] = (int32_t)((i * 7919u + 13) % l.g.vocab);
    ck_assert_int_eq(hoist_session_generate(g, prompt, 24, 24, tg), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(c, prompt, 24, 24, tc), HOIST_OK);
    ck_assert_mem_eq(tg, tc, sizeof tg);
    hoist_session_free(g);
    hoist_session_free(c);
    unload(&l);
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
    hoist_session_stats st = HOIST_SESSION_STATS_INIT;
    ck_assert_int_eq(hoist_session_stats_get(g, &st), HOIST_OK);
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

/* Layers split over two GPUs by a plan: cuda:0 is told it has only enough memory for part of
 * the model, so the planner puts the embeddings and the first layers there and the rest, with the
 * head, on cuda:1; the hidden state crosses over every step. Logits and greedy tokens match the
 * reference. */
START_TEST(test_two_gpus)
{
    char args[1024];
    char *mdir = tu_path(dir, "two");
    snprintf(args, sizeof args,
             "gen '%s' --layers 6 --hidden 256 --intermediate 512 --vocab 1000 --heads 8 "
             "--kv-heads 2 --head-dim 32 --dtype f32 --quiet", mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(mdir, NULL, &m), HOIST_OK);
    hoist_geometry geo = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &geo), HOIST_OK);
    hoist_coordinator *co = NULL;
    ck_assert_int_eq(hoist_coordinator_create(&co), HOIST_OK);
    /* the smallest memory for cuda:0 that still takes the embeddings and a layer, found by
     * bisection: every layer fits below hi, none above lo */
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, 0, 0), TU_PLAN_DEVICE(1, 0, 0)};
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    po.devices = devs;
    po.ndevices = 2;
    po.max_seq_len = 256;
    po.coordinator = co;
    uint64_t lo = 1, hi = 1ull << 32;
    hoist_plan *plan = NULL;
    while (hi - lo > 4096) {
        devs[0].free_bytes = lo + (hi - lo) / 2;
        hoist_plan *p = NULL;
        hoist_plan_usage u0 = HOIST_PLAN_USAGE_INIT;
        int rc = hoist_plan_create(m, &po, &p);
        if (rc == HOIST_OK) ck_assert_int_eq(hoist_plan_usage_get(p, 0, &u0), HOIST_OK);
        if (rc == HOIST_OK && u0.layers > 0 && u0.layers < geo.n_layers) {
            plan = p;
            break;
        }
        if (rc == HOIST_OK && u0.layers == geo.n_layers)
            hi = devs[0].free_bytes;
        else
            lo = devs[0].free_bytes;
        hoist_plan_free(p);
    }
    ck_assert_msg(plan != NULL, "no memory size for cuda:0 splits the layers");
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.plan = plan;
    hoist_weights *gw = NULL, *hw = NULL;
    ck_assert_msg(hoist_load(m, &o, &gw) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_options ho = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_int_eq(hoist_load(m, &ho, &hw), HOIST_OK);
    hoist_view first = HOIST_VIEW_INIT, last = HOIST_VIEW_INIT, head = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_find(gw, "model.layers.0.mlp.up_proj.weight", &first), HOIST_OK);
    ck_assert_int_eq(hoist_weights_find(gw, "model.layers.5.mlp.up_proj.weight", &last), HOIST_OK);
    ck_assert_int_eq(hoist_weights_find(gw, "lm_head.weight", &head), HOIST_OK);
    ck_assert_int_eq(first.device, 0);
    ck_assert_int_eq(last.device, 1);
    ck_assert_int_eq(head.device, 1);

    hoist_session *g = session(gw, &geo, NULL), *c = session(hw, &geo, NULL);
    const int32_t prompt[] = {5, 77, 300, 2, 999, 41, 8};
    ck_assert_int_eq(hoist_session_prefill(g, prompt, 7), HOIST_OK);
    ck_assert_int_eq(hoist_session_prefill(c, prompt, 7), HOIST_OK);
    compare(g, c, geo.vocab, 1e-4, "two GPUs", 0);
    ck_assert_int_eq(hoist_session_decode(g, 17), HOIST_OK);
    ck_assert_int_eq(hoist_session_decode(c, 17), HOIST_OK);
    compare(g, c, geo.vocab, 1e-4, "two GPUs", 1);
    enum { N = 16 };
    int32_t tg[N], tc[N];
    ck_assert_int_eq(hoist_session_reset(g), HOIST_OK);
    ck_assert_int_eq(hoist_session_reset(c), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(g, prompt, 7, N, tg), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(c, prompt, 7, N, tc), HOIST_OK);
    ck_assert_mem_eq(tg, tc, sizeof tg);
    compare(g, c, geo.vocab, 1e-4, "two GPUs after generate", N);
    /* the fused decode kernels on each layer's device */
    decode_kernels("fused");
    hoist_session *f = session(gw, &geo, NULL);
    decode_kernels(NULL);
    int32_t tf[N];
    ck_assert_int_eq(hoist_session_generate(f, prompt, 7, N, tf), HOIST_OK);
    ck_assert_mem_eq(tf, tc, sizeof tf);
    hoist_session_free(f);
    hoist_session_free(g);
    hoist_session_free(c);
    hoist_weights_free(gw);
    hoist_weights_free(hw);
    hoist_plan_free(plan);
    hoist_coordinator_free(co);
    hoist_model_free(m);
    free(mdir);
}
END_TEST

/* ---- the device-call seam over a session ------------------------------------------------ */

static hoist__gpu_call fault_call;
static unsigned fault_k; /* 0: disarmed */
static _Atomic unsigned fault_seen;

static int fault_status(hoist__gpu_call call)
{
    return call == HOIST_GPU_MEM_ALLOC ? HOIST_E_DEVICE_NOMEM : HOIST_E_DEVICE;
}

static int fault_hook(const char *backend, hoist__gpu_call call, size_t bytes)
{
    if (fault_k == 0 || call != fault_call) return HOIST_OK;
    return atomic_fetch_add(&fault_seen, 1) + 1 == fault_k ? fault_status(call) : HOIST_OK;
}

static void fault_arm(hoist__gpu_call call, unsigned k)
{
    fault_call = call;
    fault_k = k;
    atomic_store(&fault_seen, 0);
}

/* Calls of the armed kind made since fault_arm; disarms. */
static unsigned fault_disarm(void)
{
    fault_k = 0;
    return atomic_load(&fault_seen);
}

typedef struct live {
    int64_t host;
    int64_t gpu[HOIST_GPU_NRES];
} live;

static live live_now(void)
{
    live l = {.host = hoist__alloc_live_bytes()};
    for (int r = 0; r < HOIST_GPU_NRES; r++) l.gpu[r] = hoist__gpu_live((hoist__gpu_res)r);
    return l;
}

static void assert_given_back(const live *before, hoist__gpu_call call, unsigned k)
{
    live after = live_now();
    ck_assert_msg(after.host == before->host, "%s #%u: %lld host bytes not given back",
                  hoist__gpu_call_name(call), k, (long long)(after.host - before->host));
    for (int r = 0; r < HOIST_GPU_NRES; r++)
        ck_assert_msg(after.gpu[r] == before->gpu[r], "%s #%u: %lld %s left",
                      hoist__gpu_call_name(call), k, (long long)(after.gpu[r] - before->gpu[r]),
                      hoist__gpu_res_name((hoist__gpu_res)r));
}

static void assert_failed_cleanly(int rc, hoist__gpu_call call, unsigned k)
{
    const char *e = hoist_last_error();
    ck_assert_msg(rc == fault_status(call), "%s #%u: status %s, expected %s: %s",
                  hoist__gpu_call_name(call), k, hoist_status_name(rc),
                  hoist_status_name(fault_status(call)), e);
    ck_assert_msg(strstr(e, "injected") && strstr(e, hoist__gpu_call_name(call)),
                  "%s #%u: message '%s'", hoist__gpu_call_name(call), k, e);
}

enum { FAULT_NEW = 6, FAULT_MAX_K = 2000 };
static const int32_t fault_prompt[] = {5, 77, 300, 2, 999};

/* Tokens a session makes without faults; f32 weights, so that steps launched directly (a graph
 * that could not be captured) give the very tokens the graph gives. Also loads the CUDA context,
 * cuBLAS and the kernels' modules before the first run that is counted. */
static void reference_tokens(const loaded *l, int32_t *out)
{
    hoist_session *s = session(l->gpu, &l->g, NULL);
    ck_assert_int_eq(hoist_session_generate(s, fault_prompt, 5, FAULT_NEW, out), HOIST_OK);
    hoist_session_free(s);
}

/* The k-th call of each kind hoist_session_create makes fails, for every k: the status of that
 * call, no session, everything given back; past the last such call the session works. */
START_TEST(test_create_faults)
{
    loaded l = load_both("faults", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f32");
    int32_t want[FAULT_NEW], got[FAULT_NEW];
    reference_tokens(&l, want);
    const hoist__gpu_call calls[] = {HOIST_GPU_MEM_ALLOC,   HOIST_GPU_STREAM_CREATE,
                                     HOIST_GPU_EVENT_CREATE, HOIST_GPU_BLAS_CREATE,
                                     HOIST_GPU_MEMSET,      HOIST_GPU_COPY_H2D,
                                     HOIST_GPU_STREAM_SYNC};
    hoist__gpu_set_hooks(&(hoist__gpu_hooks){.call = fault_hook});
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        unsigned failed = 0;
        for (unsigned k = 1;; k++) {
            ck_assert_msg(k < FAULT_MAX_K, "%s: no end", hoist__gpu_call_name(calls[i]));
            live before = live_now();
            hoist_session *s = (hoist_session *)1;
            fault_arm(calls[i], k);
            int rc = hoist_session_create(l.gpu, &l.g, NULL, &s);
            unsigned seen = fault_disarm();
            if (seen < k) { /* no k-th call: nothing failed */
                ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
                ck_assert_int_eq(hoist_session_generate(s, fault_prompt, 5, FAULT_NEW, got),
                                 HOIST_OK);
                ck_assert_mem_eq(got, want, sizeof got);
                hoist_session_free(s);
                assert_given_back(&before, calls[i], k);
                break;
            }
            assert_failed_cleanly(rc, calls[i], k);
            ck_assert_ptr_null(s);
            assert_given_back(&before, calls[i], k);
            failed++;
        }
        /* buffers, one stream, event and handle, the setup's copies, memsets and final sync */
        ck_assert_msg(failed >= (calls[i] == HOIST_GPU_MEM_ALLOC ? 15u : 1u), "%s: %u failures",
                      hoist__gpu_call_name(calls[i]), failed);
    }
    hoist__gpu_set_hooks(NULL);
    unload(&l);
}
END_TEST

/* The k-th call of each kind generation makes fails, for every k: either a device error, after
 * which the session still frees everything, or (a graph that cannot be captured or a product
 * inside the capture) the steps launched directly, with the same tokens. */
START_TEST(test_generate_faults)
{
    loaded l = load_both("gfaults", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f32");
    int32_t want[FAULT_NEW], got[FAULT_NEW];
    reference_tokens(&l, want);
    const hoist__gpu_call calls[] = {HOIST_GPU_GEMM,       HOIST_GPU_GRAPH_CAPTURE,
                                     HOIST_GPU_GRAPH_LAUNCH, HOIST_GPU_MEMSET,
                                     HOIST_GPU_COPY_H2D,   HOIST_GPU_COPY_D2H,
                                     HOIST_GPU_STREAM_SYNC};
    hoist__gpu_set_hooks(&(hoist__gpu_hooks){.call = fault_hook});
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        unsigned failed = 0;
        for (unsigned k = 1;; k++) {
            ck_assert_msg(k < FAULT_MAX_K, "%s: no end", hoist__gpu_call_name(calls[i]));
            live before = live_now();
            hoist_session *s = session(l.gpu, &l.g, NULL);
            fault_arm(calls[i], k);
            int rc = hoist_session_generate(s, fault_prompt, 5, FAULT_NEW, got);
            unsigned seen = fault_disarm();
            if (rc == HOIST_OK) {
                ck_assert_mem_eq(got, want, sizeof got);
            } else {
                assert_failed_cleanly(rc, calls[i], k);
                failed++;
            }
            hoist_session_free(s);
            assert_given_back(&before, calls[i], k);
            if (seen < k) break;
        }
        if (calls[i] == HOIST_GPU_GRAPH_CAPTURE)
            ck_assert_uint_eq(failed, 0); /* falls back to launching the steps */
        else
            ck_assert_uint_gt(failed, 0);
    }
    hoist__gpu_set_hooks(NULL);
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

/* ---- the fused decode kernels --------------------------------------------------------------- */


/* Decode steps through either path (the default picks by the weights' dtype) against the fp32
 * reference, in the same tolerances: every dtype, tied and untied heads, q/k/v biases (qwen2),
 * q/k norms (qwen3), sliding windows, Q8_0 matrices (GGUF) and the tiny preset's widths. */
START_TEST(test_decode_paths_match_reference)
{
    static const char *const paths[] = {"fused", "cublas"};
    char nm[9][4]; /* a model of each path's own: "fa".."fi", "ca".."ci" */
    for (int k = 0; k < 9; k++) snprintf(nm[k], sizeof nm[k], "%c%c", paths[_i][0], 'a' + k);
    decode_kernels(paths[_i]);
    check_model(nm[0], SMALL "--heads 4 --kv-heads 4 --head-dim 64", 1e-2, 9);
    check_model(nm[1], SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f32 --tie-embeddings",
                1e-4, 9);
    check_model(nm[2], SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f16", 1e-2, 9);
    check_model(nm[3], WIDE "--dtype f32 --family qwen2", 1e-4, 20);
    check_model(nm[4], SMALL "--heads 4 --kv-heads 2 --head-dim 64 --dtype f32 --family qwen3",
                1e-4, 20);
    check_model(nm[5], WIDE "--family qwen2 --format gguf --dtype q8_0", 2e-2, 20);
    check_model(nm[6], WIDE "--dtype f32 --family llama3.1 --rope-original 16 --format gguf",
                1e-4, 20);
    check_model(nm[7], WIDE "--dtype f32 --family mistral --sliding-window 33", 1e-4, 60);
    check_model(nm[8], "--preset tiny", 1e-2, 5);
    decode_kernels(NULL);
}
END_TEST

/* Greedy tokens (generate: graph capture and replay) of the fused kernels equal the cuBLAS
 * path's, and for f32 weights the reference's. */
static void same_tokens(const char *name, const char *flags, int vs_reference)
{
    loaded l = load_both(name, flags);
    const int32_t prompt[] = {5, 77, 300, 2, 999};
    enum { N = 16 };
    int32_t td[N], tf[N], tc[N];
    decode_kernels("cublas");
    hoist_session *d = session(l.gpu, &l.g, NULL);
    decode_kernels("fused");
    hoist_session *f = session(l.gpu, &l.g, NULL);
    decode_kernels(NULL);
    ck_assert_int_eq(hoist_session_generate(d, prompt, 5, N, td), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(f, prompt, 5, N, tf), HOIST_OK);
    ck_assert_msg(memcmp(td, tf, sizeof td) == 0, "%s: the fused kernels' tokens differ", flags);
    if (vs_reference) {
        hoist_session *c = session(l.host, &l.g, NULL);
        ck_assert_int_eq(hoist_session_generate(c, prompt, 5, N, tc), HOIST_OK);
        ck_assert_mem_eq(tf, tc, sizeof tf);
        hoist_session_free(c);
    }
    hoist_session_free(d);
    hoist_session_free(f);
    unload(&l);
}

START_TEST(test_fused_generate_matches_default)
{
    same_tokens("ga", SMALL "--heads 8 --kv-heads 2 --head-dim 64 --dtype f32", 1);
    same_tokens("gb", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --dtype f32 --family qwen2",
                1);
    same_tokens("gc", SMALL "--heads 4 --kv-heads 4 --head-dim 64", 0);
    same_tokens("gd", WIDE "--family qwen2 --format gguf --dtype q8_0", 0);
}
END_TEST

/* Llama's attention_bias and mlp_bias (o, gate, up and down biases: the fused kernels'
 * epilogues), q, k, v and gate, up in tensors apart (a bias between each), written here in f32
 * with widths the fused kernels take; the fused decode steps against the reference. */
START_TEST(test_fused_llama_biases)
{
    char *mdir = tu_path(dir, "biased");
    tu_write_biased_llama(mdir, 64, 48);
    decode_kernels("fused");
    check_loaded(open_both(mdir), "llama biases", 1e-4, 7);
    decode_kernels(NULL);
    free(mdir);
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
    tcase_add_test(tc, test_variants_f32);
    tcase_add_test(tc, test_variants_bf16);
    tcase_add_test(tc, test_sliding_window);
    tcase_add_test(tc, test_dynamic_generate);
    tcase_add_loop_test(tc, test_decode_paths_match_reference, 0, 2);
    tcase_add_test(tc, test_fused_generate_matches_default);
    tcase_add_test(tc, test_fused_llama_biases);
    tcase_add_test(tc, test_memory_bandwidth_args);
    tcase_add_test(tc, test_create_faults);
    tcase_add_test(tc, test_generate_faults);
    if (hoist_device_count() >= 2) tcase_add_test(tc, test_two_gpus);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
