/* Packed models and manifest verification into GPU memory (CUDA): every path decodes into the
 * device arena byte-identical to the original; verified loads pass, and a damaged container or
 * file fails naming the tensor with the device memory given back. Exits 77 (skipped) without a
 * CUDA device. */
#include "gpu/gpu.h"
#include "testutil.h"

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

static hoist_model *open_ok(const char *path)
{
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(path, NULL, &m) == HOIST_OK, "%s", hoist_last_error());
    return m;
}

/* Every tensor of orig (from its file) equals the tensor of that name in w. */
static void assert_same_as(const hoist_model *orig, const hoist_weights *w)
{
    size_t n;
    unsigned char *file = NULL;
    const char *loaded_path = NULL;
    for (size_t i = 0; i < hoist_model_tensor_count(orig); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_model_tensor(orig, i, &t);
        const char *p = hoist_model_file_path(orig, t.file);
        if (!loaded_path || strcmp(p, loaded_path) != 0) {
            free(file);
            file = tu_read(p, &n);
            loaded_path = p;
        }
        size_t wi = 0;
        hoist_view v = HOIST_VIEW_INIT;
        for (; wi < hoist_weights_count(w); wi++) {
            hoist_weights_view(w, wi, &v);
            if (strcmp(v.name, t.name) == 0) break;
        }
        ck_assert_uint_lt(wi, hoist_weights_count(w));
        ck_assert_int_eq(v.device, 0);
        unsigned char *got = malloc(t.nbytes + 1);
        ck_assert_int_eq(hoist_weights_read(w, wi, 0, got, t.nbytes), HOIST_OK);
        ck_assert_msg(memcmp(file + t.offset, got, t.nbytes) == 0, "%s differs", t.name);
        free(got);
    }
    free(file);
}

static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};

static int load_gpu(hoist_model *m, hoist_path path, unsigned verify, int reg, hoist_weights **w)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 0;
    o.path = path;
    o.verify = verify;
    o.mmap_register = reg;
    *w = NULL;
    return hoist_load(m, &o, w);
}

START_TEST(test_packed_every_path)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 66, 31);
    hoist_model *orig = open_ok(src);
    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.chunk_bytes = 16384;
    ck_assert_int_eq(hoist_pack(orig, dst, &po, NULL), HOIST_OK);
    hoist_model *m = open_ok(dst);
    for (size_t p = 0; p < 3; p++)
        for (int reg = -1; reg <= 1; reg += 2) {
            hoist_weights *w;
            int rc = load_gpu(m, paths[p], HOIST_VERIFY_READBACK, reg, &w);
            ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_path_name(paths[p]), hoist_last_error());
            assert_same_as(orig, w);
            hoist_weights_free(w);
        }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_gen_model_packed_and_verified)
{
    char args[1024], *mdir = tu_path(dir, "m"), *out = tu_path(dir, "m.hoist");
    snprintf(args, sizeof args,
             "gen '%s' --preset tiny --hidden 512 --intermediate 1376 --vocab 4096 --layers 4 "
             "--shard-size 4M --quiet",
             mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    hoist_model *orig = open_ok(mdir);
    ck_assert_int_eq(hoist_model_sum(orig, NULL), HOIST_OK);
    ck_assert_int_eq(hoist_pack(orig, out, NULL, NULL), HOIST_OK);
    hoist_model *m = open_ok(out);
    for (size_t p = 0; p < 3; p++) {
        hoist_weights *w;
        ck_assert_msg(load_gpu(m, paths[p], HOIST_VERIFY_MANIFEST, -1, &w) == HOIST_OK, "%s",
                      hoist_last_error());
        assert_same_as(orig, w);
        hoist_weights_free(w);
        ck_assert_msg(load_gpu(orig, paths[p], HOIST_VERIFY_MANIFEST, -1, &w) == HOIST_OK, "%s",
                      hoist_last_error());
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
        ck_assert(s.verify_seconds > 0);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(mdir);
    free(out);
}
END_TEST

/* A flipped bit fails the load naming the tensor and leaves no device memory behind. */
START_TEST(test_damage_fails_and_releases)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 40, 12);
    hoist_model *orig = open_ok(src);
    ck_assert_int_eq(hoist_model_sum(orig, NULL), HOIST_OK);
    ck_assert_int_eq(hoist_pack(orig, dst, NULL, NULL), HOIST_OK);
    size_t ti;
    ck_assert_int_eq(hoist_model_find(orig, "t037", &ti), HOIST_OK);
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    hoist_model_tensor(orig, ti, &t);
    hoist_model_free(orig);
    size_t n;
    unsigned char *b = tu_read(src, &n);
    b[t.offset + 100] ^= 1;
    tu_write(src, b, n);
    free(b);
    b = tu_read(dst, &n);
    b[n / 2] ^= 1; /* in the frames of some large tensor */
    tu_write(dst, b, n);
    free(b);
    orig = open_ok(src);
    hoist_model *m = open_ok(dst);
    for (size_t p = 0; p < 3; p++) {
        hoist_weights *w;
        ck_assert_int_eq(load_gpu(orig, paths[p], HOIST_VERIFY_MANIFEST, -1, &w),
                         HOIST_E_INTEGRITY);
        ck_assert_ptr_null(w);
        ck_assert_msg(strstr(hoist_last_error(), "t037"), "%s: %s", hoist_path_name(paths[p]),
                      hoist_last_error());
        int rc = load_gpu(m, paths[p], 0, -1, &w);
        ck_assert_msg(rc == HOIST_E_INTEGRITY || rc == HOIST_E_DECODE, "%s",
                      hoist_status_name(rc));
        ck_assert_ptr_null(w);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor '"));
        for (int r = 0; r < HOIST_GPU_NRES; r++)
            if (r != HOIST_GPU_RES_PINNED) /* the pinned cache keeps staging between loads */
                ck_assert_int_eq(hoist__gpu_live(r), 0);
    }
    /* a registered window that fails the manifest check is unregistered */
    hoist_weights *w;
    ck_assert_int_eq(load_gpu(orig, HOIST_PATH_MMAP, HOIST_VERIFY_MANIFEST, 1, &w),
                     HOIST_E_INTEGRITY);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_REGISTERED), 0);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 0);
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_packed");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_packed_every_path);
    tcase_add_test(tc, test_gen_model_packed_and_verified);
    tcase_add_test(tc, test_damage_fails_and_releases);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
