/* The planner on real GPUs (loader/planner.c, coordinator.c, arenas.c): a plan that fits loads
 * and verifies, one that does not fails before any device memory is taken, the coordinator
 * counts the first model against the second, and with two GPUs an autosplit load verifies every
 * byte on both. Needs a CUDA device: exits 77 (skipped) without one. */
#include "gpu/gpu.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GiB (1ull << 30)

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* A small Llama-shaped model (8 layers, about 40 MB) from hoist gen. */
static hoist_model *gen_model(void)
{
    char args[512];
    snprintf(args, sizeof args,
             "gen '%s/m' --layers 8 --hidden 512 --intermediate 1536 --heads 8 --kv-heads 2 "
             "--vocab 4000 --dtype bf16 --shard-size 16M --quiet",
             dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "m");
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(p, NULL, &m) == HOIST_OK, "%s", hoist_last_error());
    free(p);
    return m;
}

static uint64_t used_bytes(const hoist_plan_usage *u)
{
    return u->weights_bytes + u->kv_bytes + u->workspace_bytes;
}

static uint64_t free_of(int device)
{
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    ck_assert_int_eq(hoist_device_info_get(device, &info), HOIST_OK);
    return info.free_bytes;
}

START_TEST(test_fits_loads_and_verifies)
{
    hoist_model *m = gen_model();
    hoist_coordinator *c;
    ck_assert_int_eq(hoist_coordinator_create(&c), HOIST_OK);
    hoist_plan_device dev = TU_PLAN_DEVICE(0, 0, 256u << 20); /* asked of the device */
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    po.devices = &dev;
    po.ndevices = 1;
    po.max_seq_len = 4096;
    po.coordinator = c;
    hoist_plan *p;
    ck_assert_msg(hoist_plan_create(m, &po, &p) == HOIST_OK, "%s", hoist_last_error());
    hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
    ck_assert_int_eq(hoist_plan_usage_get(p, 0, &u), HOIST_OK);
    ck_assert_uint_eq(u.layers, 8);
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    lo.verify = HOIST_VERIFY_READBACK;
    hoist_weights *w;
    ck_assert_msg(hoist_load(m, &lo, &w) == HOIST_OK, "%s", hoist_last_error());
    for (size_t i = 0; i < hoist_weights_count(w); i++) {
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
        ck_assert_int_eq(v.device, 0);
    }
    tu_assert_weights_match_files(m, w);

    /* a second model is planned into what the first left: the device's free memory now already
     * lacks the first model's arena, and the coordinator subtracts its unallocated cache and
     * workspace too */
    hoist_plan *p2;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p2), HOIST_OK);
    hoist_plan_usage u2 = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p2, 0, &u2);
    ck_assert_uint_le(u2.free_bytes, u.free_bytes - used_bytes(&u));
    hoist_plan_free(p2);
    hoist_plan_free(p);
    hoist_weights_free(w);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* A plan that does not fit fails before anything is allocated: the device's free memory and the
 * live device buffers are as they were. */
START_TEST(test_no_fit_allocates_nothing)
{
    hoist_model *m = gen_model();
    uint64_t before = free_of(0);
    int64_t live = hoist__gpu_live(HOIST_GPU_RES_DEVICE);
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    hoist_plan_device dev = TU_PLAN_DEVICE(0, 0, 0);
    po.devices = &dev;
    po.ndevices = 1;
    po.max_seq_len = 1ull << 32; /* 4G tokens of cache: 128 KiB per token here */
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_E_NO_FIT);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "cuda:0 lacks"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "max_seq_len <= "));
    ck_assert_uint_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), live);
    ck_assert_uint_eq(free_of(0), before);
    ck_assert_uint_eq(hoist_coordinator_reserved(NULL, 0), 0);
    hoist_model_free(m);
}
END_TEST

/* Two GPUs: device 0 given room for about half the layers, so the split is real; the load puts
 * one arena on each and verifies every byte. */
START_TEST(test_autosplit_two_gpus)
{
    if (hoist_device_count() < 2) {
        fprintf(stderr, "one GPU: the two-GPU autosplit load is not run\n");
        return;
    }
    hoist_model *m = gen_model();
    hoist_coordinator *c;
    ck_assert_int_eq(hoist_coordinator_create(&c), HOIST_OK);
    hoist_plan_device big[2] = {TU_PLAN_DEVICE(0, 64 * GiB, 0), TU_PLAN_DEVICE(1, 64 * GiB, 0)};
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    po.devices = big;
    po.ndevices = 2;
    po.max_seq_len = 4096;
    po.coordinator = c;
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK);
    hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u);
    uint64_t all = u.weights_bytes + u.kv_bytes + u.workspace_bytes;
    hoist_plan_free(p);
    big[0].free_bytes = all - (all - u.workspace_bytes) / 2; /* about half the layers */
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK);
    hoist_plan_usage u0 = HOIST_PLAN_USAGE_INIT, u1 = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u0);
    hoist_plan_usage_get(p, 1, &u1);
    ck_assert_uint_gt(u0.layers, 0);
    ck_assert_uint_gt(u1.layers, 0);
    ck_assert_uint_eq(u0.layers + u1.layers, 8);
    uint64_t f0 = free_of(0), f1 = free_of(1);
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    lo.verify = HOIST_VERIFY_READBACK;
    lo.threads = 4;
    lo.chunk_bytes = 1u << 20;
    hoist_weights *w;
    ck_assert_msg(hoist_load(m, &lo, &w) == HOIST_OK, "%s", hoist_last_error());
    tu_assert_weights_match_files(m, w);
    int seen[2] = {0, 0};
    for (size_t i = 0; i < hoist_weights_count(w); i++) {
        hoist_view v = HOIST_VIEW_INIT;
        int want;
        ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
        ck_assert_int_eq(hoist_plan_tensor_device(p, i, &want), HOIST_OK);
        ck_assert_int_eq(v.device, want);
        seen[v.device]++;
    }
    ck_assert(seen[0] > 0 && seen[1] > 0);
    ck_assert_uint_le(free_of(0), f0 - u0.weights_bytes);
    ck_assert_uint_le(free_of(1), f1 - u1.weights_bytes);
    hoist_weights_free(w);
    hoist_plan_free(p);
    /* the arenas went back (the load's streams and events may leave the contexts a little
     * larger than before, never by an arena) */
    ck_assert_uint_ge(free_of(0) + (32u << 20), f0);
    ck_assert_uint_ge(free_of(1) + (32u << 20), f1);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_plan");
    TCase *tc = tcase_create("gpu_plan");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fits_loads_and_verifies);
    tcase_add_test(tc, test_no_fit_allocates_nothing);
    tcase_add_test(tc, test_autosplit_two_gpus);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
