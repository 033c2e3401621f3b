/* The mmap path into GPU memory (loader/ + gpu/gpu_cuda.c). Needs a CUDA device: exits 77
 * (skipped) without one. */
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

static hoist_model *open_path(const char *path)
{
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(path, NULL, &m) == HOIST_OK, "%s", hoist_last_error());
    return m;
}

static void load_and_check(hoist_model *m, int mmap_register, uint64_t chunk, unsigned threads)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_MMAP;
    o.device = 0;
    o.mmap_register = mmap_register;
    o.chunk_bytes = chunk;
    o.threads = threads;
    hoist_weights *w = NULL;
    int rc = hoist_load(m, &o, &w);
    ck_assert_msg(rc == HOIST_OK, "register=%d chunk=%llu: %s", mmap_register,
                  (unsigned long long)chunk, hoist_last_error());
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_view(w, 0, &v), HOIST_OK);
    ck_assert_int_eq(v.device, 0);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
}

/* Every dtype, odd sizes and offsets, windows smaller and larger than tensors, both modes. */
START_TEST(test_odd_model_both_modes)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 70, 99);
    hoist_model *m = open_path(path);
    for (int reg = 0; reg <= 1; reg++) {
        load_and_check(m, reg, 4096, 3);
        load_and_check(m, reg, 1u << 20, 8);
        load_and_check(m, reg, 0, 0);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A sharded checkpoint written by hoist gen: every tensor of every shard lands intact. */
START_TEST(test_sharded_model)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --shard-size 96K --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *mdir = tu_path(dir, "m");
    hoist_model *m = open_path(mdir);
    ck_assert_uint_gt(hoist_model_file_count(m), 1);
    load_and_check(m, 0, 0, 0);
    load_and_check(m, 1, 0, 0);
    hoist_model_free(m);
    free(mdir);
}
END_TEST

START_TEST(test_verify_on_device)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 30, 5);
    hoist_model *m = open_path(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 0;
    o.verify = HOIST_VERIFY_READBACK;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert(s.readback_seconds > 0);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

static uint64_t free_vram(void)
{
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    ck_assert_int_eq(hoist_device_info_get(0, &info), HOIST_OK);
    return info.free_bytes;
}

/* 100 load/unload cycles leave free VRAM and host RSS where the first cycle left them. */
START_TEST(test_cycles_flat)
{
    char *path = tu_path(dir, "cycle.safetensors");
    tu_write_odd_model(path, 50, 17);
    hoist_model *m = open_path(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 0;
    uint64_t vram0 = 0, rss0 = 0;
    for (int i = 0; i < 100; i++) {
        o.mmap_register = i % 2;
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "cycle %d: %s", i, hoist_last_error());
        hoist_weights_free(w);
        if (i == 1) { /* after one cycle of each mode: runtime caches are warm */
            vram0 = free_vram();
            rss0 = tu_rss_bytes();
        }
    }
    uint64_t vram1 = free_vram(), rss1 = tu_rss_bytes();
    ck_assert_msg(vram1 + (2u << 20) >= vram0, "free VRAM fell from %llu to %llu",
                  (unsigned long long)vram0, (unsigned long long)vram1);
    ck_assert_msg(rss1 <= rss0 + (8u << 20), "RSS grew from %llu to %llu",
                  (unsigned long long)rss0, (unsigned long long)rss1);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_copy_ceiling)
{
    double gbps = 0;
    ck_assert_int_eq(hoist_device_copy_bandwidth(0, 64u << 20, 1, 3, &gbps), HOIST_OK);
    ck_assert(gbps > 1.0); /* any PCIe link moves more than 1 GB/s pinned */
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_load");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_odd_model_both_modes);
    tcase_add_test(tc, test_sharded_model);
    tcase_add_test(tc, test_verify_on_device);
    tcase_add_test(tc, test_cycles_flat);
    tcase_add_test(tc, test_copy_ceiling);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
