/* GGUF models into GPU memory through every path (mmap staging and registered, uring, stream):
 * the device bytes of each tensor are the file's bytes (Q8_0 blocks untouched), and a GGUF model
 * and the safetensors checkpoint of the same seed land as the same bytes (q and k rows permuted
 * as llama.cpp's converter does). Then the forward pass on cuda:0: a GGUF model generates what
 * its safetensors twin does, and Q8_0 (dequantized on the GPU) matches the CPU reference. Needs a
 * CUDA device: exits 77 (skipped) without one. */
#include "gguf_test_common.h"

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

#define GEOMETRY                                                                                  \
    "--layers 2 --hidden 2304 --heads 24 --kv-heads 8 --intermediate 5120 --vocab 4096 --seed 21"

static hoist_weights *load_gpu(hoist_model *m, hoist_path path, int reg)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.device = 0;
    o.mmap_register = reg;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s: %s", hoist_path_name(path),
                  hoist_last_error());
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_view(w, 0, &v), HOIST_OK);
    ck_assert_int_eq(v.device, 0);
    return w;
}

START_TEST(test_bf16_same_device_bytes_as_safetensors)
{
    gg_gen(dir, "st", GEOMETRY " --dtype bf16");
    gg_gen(dir, "gg", GEOMETRY " --dtype bf16 --format gguf");
    hoist_model *st = gg_open(dir, "st"), *gg = gg_open(dir, "gg");
    const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_MMAP, HOIST_PATH_URING,
                                HOIST_PATH_STREAM};
    for (int p = 0; p < 4; p++) {
        int reg = p == 1; /* mmap twice: staging, then the registered mapping */
        hoist_weights *ws = load_gpu(st, paths[p], reg), *wg = load_gpu(gg, paths[p], reg);
        tu_assert_weights_match_files(gg, wg);
        ck_assert_uint_eq(gg_compare(ws, wg, 24, 8), hoist_model_tensor_count(st));
        hoist_weights_free(ws);
        hoist_weights_free(wg);
    }
    hoist_model_free(st);
    hoist_model_free(gg);
}
END_TEST

/* Q8_0 blocks reach the device as they are in the file, on every path. */
START_TEST(test_q8_0_blocks_untouched)
{
    gg_gen(dir, "q8", GEOMETRY " --dtype q8_0 --format gguf");
    hoist_model *m = gg_open(dir, "q8");
    size_t i;
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_find(m, "blk.1.ffn_down.weight", &i), HOIST_OK);
    ck_assert_int_eq(hoist_model_tensor(m, i, &t), HOIST_OK);
    ck_assert_int_eq(t.dtype, HOIST_DTYPE_Q8_0);
    const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};
    for (int p = 0; p < 3; p++) {
        hoist_weights *w = load_gpu(m, paths[p], 0);
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
}
END_TEST

/* ---- hoist run on GGUF: the forward pass on cuda:0 ---- */

static const int32_t prompt[] = {1, 17, 200, 3, 99, 5, 42, 4000};
#define NPROMPT ((size_t)(sizeof prompt / sizeof *prompt))
#define NGEN 16

typedef struct run_out {
    int32_t tokens[NGEN];
    float *logits; /* after the prompt */
    float *step;   /* after one decode step behind the prompt */
    uint32_t vocab;
} run_out;

static run_out run_model(const char *sub, int device)
{
    hoist_model *m = gg_open(dir, sub);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_msg(hoist_model_geometry(m, &g) == HOIST_OK, "%s", hoist_last_error());
    hoist_weights *w = gg_load(m, HOIST_PATH_AUTO, device);
    hoist_session *s = NULL;
    ck_assert_msg(hoist_session_create(w, &g, NULL, &s) == HOIST_OK, "%s: %s", sub,
                  hoist_last_error());
    run_out r = {.vocab = g.vocab};
    r.logits = malloc(g.vocab * sizeof(float));
    r.step = malloc(g.vocab * sizeof(float));
    ck_assert_int_eq(hoist_session_prefill(s, prompt, NPROMPT), HOIST_OK);
    ck_assert_int_eq(hoist_session_logits(s, r.logits, g.vocab), HOIST_OK);
    ck_assert_int_eq(hoist_session_decode(s, 7), HOIST_OK);
    ck_assert_int_eq(hoist_session_logits(s, r.step, g.vocab), HOIST_OK);
    ck_assert_int_eq(hoist_session_reset(s), HOIST_OK);
    ck_assert_int_eq(hoist_session_generate(s, prompt, NPROMPT, NGEN, r.tokens), HOIST_OK);
    hoist_session_stats st = HOIST_SESSION_STATS_INIT;
    ck_assert_int_eq(hoist_session_stats_get(s, &st), HOIST_OK);
    ck_assert_str_eq(st.backend, device == HOIST_DEVICE_HOST ? "cpu" : "cuda");
    hoist_session_free(s);
    hoist_weights_free(w);
    hoist_model_free(m);
    return r;
}

/* max |a - b| over the largest |b|: the error relative to the logits' range */
static double rel_err_of(const float *a, const float *b, uint32_t vocab)
{
    double err = 0, range = 0;
    for (uint32_t k = 0; k < vocab; k++) {
        err = fmax(err, fabs((double)a[k] - b[k]));
        range = fmax(range, fabs((double)b[k]));
    }
    return range > 0 ? err / range : err;
}

static double rel_err(const run_out *a, const run_out *b)
{
    return rel_err_of(a->logits, b->logits, b->vocab);
}

static void run_out_free(run_out *r)
{
    free(r->logits);
    free(r->step);
}

/* A bf16 GGUF model and its safetensors twin give the same tokens and bit-identical logits on
 * the GPU: the GGUF rotary pairs are interleaved and its q/k rows permuted, and the rotary step
 * puts them back in Hugging Face's order before the attention adds anything. */
START_TEST(test_run_bf16_same_as_safetensors)
{
    gg_gen(dir, "st", GEOMETRY " --dtype bf16");
    gg_gen(dir, "gg", GEOMETRY " --dtype bf16 --format gguf");
    run_out a = run_model("st", 0), b = run_model("gg", 0);
    ck_assert_mem_eq(a.tokens, b.tokens, sizeof a.tokens);
    ck_assert_msg(memcmp(a.logits, b.logits, a.vocab * sizeof(float)) == 0,
                  "GGUF logits differ from safetensors' by %g of their range", rel_err(&b, &a));
    ck_assert_msg(memcmp(a.step, b.step, a.vocab * sizeof(float)) == 0,
                  "GGUF decode-step logits differ from safetensors' by %g of their range",
                  rel_err_of(b.step, a.step, a.vocab));
    run_out_free(&a);
    run_out_free(&b);
}
END_TEST

/* Q8_0 matrices on the GPU, dequantized for the prompt and read by the fused kernel for a decode
 * step: the logits of the CPU reference on the same weights (fp32 there, f16 activations on the
 * GPU), and close to the f32 model they quantize. */
START_TEST(test_run_q8_0)
{
    gg_gen(dir, "q8", GEOMETRY " --dtype q8_0 --format gguf");
    gg_gen(dir, "f32", GEOMETRY " --dtype f32 --format gguf");
    run_out gpu = run_model("q8", 0), cpu = run_model("q8", HOIST_DEVICE_HOST);
    run_out f32 = run_model("f32", 0);
    double e = rel_err(&gpu, &cpu);
    ck_assert_msg(e < 1e-2, "Q8_0 on the GPU differs from the CPU reference by %g", e);
    e = rel_err_of(gpu.step, cpu.step, cpu.vocab);
    ck_assert_msg(e < 1e-2, "Q8_0 decode step on the GPU differs from the CPU reference by %g", e);
    double q = rel_err(&gpu, &f32);
    ck_assert_msg(q < 5e-2 && q > 0, "Q8_0 logits against f32: %g of the range", q);
    q = rel_err_of(gpu.step, f32.step, f32.vocab);
    ck_assert_msg(q < 5e-2 && q > 0, "Q8_0 decode-step logits against f32: %g of the range", q);
    run_out_free(&gpu);
    run_out_free(&cpu);
    run_out_free(&f32);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_gguf");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bf16_same_device_bytes_as_safetensors);
    tcase_add_test(tc, test_q8_0_blocks_untouched);
    tcase_add_test(tc, test_run_bf16_same_as_safetensors);
    tcase_add_test(tc, test_run_q8_0);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
