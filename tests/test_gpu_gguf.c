/* GGUF models into GPU memory through every path (mmap staging and registered, uring, stream):
 * the device bytes of each tensor are the file's bytes (Q8_0 blocks untouched), and a GGUF model
 * and the safetensors checkpoint of the same seed land as the same bytes (q and k rows permuted
 * as llama.cpp's converter does). Needs a CUDA device: exits 77 (skipped) without one. */
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
    hoist_view v;
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
    hoist_tensor_info t;
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
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
