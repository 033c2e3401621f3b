/* The fault sweeps of test_faults.c on the CUDA backend (docs/RELIABILITY.md 33, 34; see
 * fault_sweep.h), with free VRAM checked after every run as well, and 1,000 load/unload cycles
 * with VRAM flat (35). Needs a CUDA device: exits 77 (skipped) without one. */
#include "fault_sweep.h"

typedef struct gpu_path {
    hoist_path path;
    int mmap_register;
} gpu_path;

static const gpu_path gpaths[] = {{HOIST_PATH_MMAP, 0},
                                  {HOIST_PATH_MMAP, 1},
                                  {HOIST_PATH_STREAM, 0},
                                  {HOIST_PATH_URING, 0}};
#define NGPATHS (sizeof gpaths / sizeof *gpaths)

static fs_case gpu_case(const char *model, gpu_path p)
{
    fs_case c = {.model = model};
    c.opts = (hoist_load_options)HOIST_LOAD_OPTIONS_DEFAULT;
    c.opts.device = 0;
    c.opts.path = p.path;
    c.opts.mmap_register = p.mmap_register;
    c.opts.threads = 2;
    c.opts.chunk_bytes = 65536;
    return c;
}

/* Loads once per path so that the CUDA context, its streams and lazily made state exist before
 * any snapshot is taken. */
static void warm_up(const char *model)
{
    for (size_t p = 0; p < NGPATHS; p++) {
        fs_case c = gpu_case(model, gpaths[p]);
        hoist_model *m = st_open(model);
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &c.opts, &w) == HOIST_OK, "%s", hoist_last_error());
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        hoist_model_free(m);
    }
    fs_vram_device = 0;
}

START_TEST(test_device_call_faults)
{
    char *index = st_write_sharded(dir);
    warm_up(index);
    for (size_t p = 0; p < NGPATHS; p++)
        for (int verify = 0; verify <= 1; verify++)
            for (int call = 0; call < HOIST_GPU_NCALLS; call++) {
                fs_case c = gpu_case(index, gpaths[p]);
                c.opts.verify = verify ? HOIST_VERIFY_READBACK : 0;
                c.fault = FS_GPU_CALL;
                c.call = (hoist__gpu_call)call;
                fs_result r = fs_sweep(&c, 5000);
                if (call == HOIST_GPU_MEM_ALLOC || call == HOIST_GPU_COPY_H2D ||
                    call == HOIST_GPU_EVENT_SYNC || (call == HOIST_GPU_COPY_D2H && verify) ||
                    (call == HOIST_GPU_HOST_REGISTER && gpaths[p].mmap_register))
                    ck_assert_uint_gt(r.failed, 0);
            }
    free(index);
}
END_TEST

START_TEST(test_host_alloc_and_read_faults)
{
    char *index = st_write_sharded(dir);
    warm_up(index);
    fs_fault faults[] = {FS_HOST_ALLOC, FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT};
    for (size_t p = 0; p < NGPATHS; p++)
        for (int f = 0; f < 4; f++) {
            fs_case c = gpu_case(index, gpaths[p]);
            c.fault = faults[f];
            fs_result r = fs_sweep(&c, 5000);
            if (faults[f] == FS_HOST_ALLOC) ck_assert_uint_gt(r.failed, 3);
            if (faults[f] == FS_READ_EINTR || faults[f] == FS_READ_SHORT)
                ck_assert_uint_eq(r.failed, 0);
        }
    free(index);
}
END_TEST

/* Loads by a placement plan onto cuda:0 (one arena, the plan's reservation) and into a callback
 * sink: faults of each kind, everything given back, the reservation included. */
START_TEST(test_plan_and_sink_loads)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --shard-size 64K --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *model = tu_path(dir, "m");
    warm_up(model);
    fs_fault faults[] = {FS_HOST_ALLOC, FS_READ_EIO, FS_GPU_CALL, FS_GPU_CALL, FS_GPU_CALL};
    hoist__gpu_call calls[] = {0, 0, HOIST_GPU_MEM_ALLOC, HOIST_GPU_COPY_H2D, HOIST_GPU_EVENT_SYNC};
    for (size_t p = 0; p < NGPATHS; p++)
        for (int f = 0; f < 5; f++) {
            fs_case c = gpu_case(model, gpaths[p]);
            c.plan = true;
            c.fault = faults[f];
            c.call = calls[f];
            fs_result r = fs_sweep(&c, 5000);
            if (faults[f] != FS_READ_EIO) ck_assert_uint_gt(r.failed, 0);
            if (faults[f] == FS_GPU_CALL) continue;
            c.plan = false;
            c.sink = true;
            c.opts.device = HOIST_DEVICE_HOST; /* a sink has no destination device */
            c.opts.mmap_register = -1;
            fs_sweep(&c, 5000);
        }
    free(model);
}
END_TEST

/* A packed container decoded on its way to cuda:0: faults of each kind, bytes equal to the model
 * it was packed from, everything given back. */
START_TEST(test_packed)
{
    char ref[512], model[512];
    tu_gen_packed(dir, "bf16", "--preset tiny", "--chunk 16K", ref, model);
    warm_up(ref);
    fs_fault faults[] = {FS_HOST_ALLOC, FS_READ_EIO, FS_GPU_CALL, FS_GPU_CALL, FS_GPU_CALL,
                         FS_GPU_CALL};
    hoist__gpu_call calls[] = {0, 0, HOIST_GPU_MEM_ALLOC, HOIST_GPU_PINNED_ALLOC,
                               HOIST_GPU_COPY_H2D, HOIST_GPU_EVENT_SYNC};
    for (size_t p = 0; p < NGPATHS; p++)
        for (int f = 0; f < 6; f++) {
            fs_case c = gpu_case(model, gpaths[p]);
            c.reference = ref;
            c.fault = faults[f];
            c.call = calls[f];
            fs_result r = fs_sweep(&c, 5000);
            if (faults[f] != FS_READ_EIO) ck_assert_uint_gt(r.failed, 0);
        }
}
END_TEST

/* Case 28 on the device: the file cut or replaced at every window, staging through pinned slots
 * and registering the mapping. */
START_TEST(test_file_cut_during_load)
{
    for (int reg = 0; reg <= 1; reg++)
        for (unsigned threads = 1; threads <= 3; threads += 2) {
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.device = 0;
            o.path = HOIST_PATH_MMAP;
            o.mmap_register = reg;
            o.threads = threads;
            o.chunk_bytes = 8192;
            unsigned guarded = fs_cut_sweep(FS_TRUNCATE, o, false);
            if (!reg && threads == 1) ck_assert_uint_gt(guarded, 10);
            fs_cut_sweep(FS_REPLACE, o, false);
        }
}
END_TEST

/* Case 35 on the device: 1,000 open/load/free cycles over every path and mode. Free VRAM within
 * 2 MiB, host bytes, device handles and descriptors exactly flat; resident memory within 8 MiB. */
START_TEST(test_cycles_flat)
{
    char *index = st_write_sharded(dir);
    warm_up(index);
    fs_vram_device = -1; /* compared here with its own slack */
    fs_snapshot first = fs_take();
    uint64_t vram0 = 0, rss0 = tu_rss_bytes();
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    ck_assert_int_eq(hoist_device_info_get(0, &info), HOIST_OK);
    vram0 = info.free_bytes;
    for (int i = 0; i < 1000; i++) {
        fs_case c = gpu_case(index, gpaths[i % NGPATHS]);
        hoist_model *m = st_open(index);
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &c.opts, &w) == HOIST_OK, "cycle %d: %s", i,
                      hoist_last_error());
        if (i % 100 == 0) tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        hoist_model_free(m);
    }
    fs_snapshot last = fs_take();
    fs_case any = gpu_case(index, gpaths[0]);
    any.fault = FS_NONE;
    fs_assert_same(&first, &last, &any, 1000, HOIST_OK);
    ck_assert_int_eq(hoist_device_info_get(0, &info), HOIST_OK);
    ck_assert_msg(info.free_bytes + (2u << 20) >= vram0, "free VRAM fell from %llu to %llu",
                  (unsigned long long)vram0, (unsigned long long)info.free_bytes);
#ifndef __SANITIZE_ADDRESS__
    uint64_t rss1 = tu_rss_bytes();
    ck_assert_msg(rss1 <= rss0 + (8u << 20), "RSS grew from %llu to %llu",
                  (unsigned long long)rss0, (unsigned long long)rss1);
#else
    (void)rss0;
#endif
    free(index);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    fs_init();
    Suite *s = suite_create("gpu_faults");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_device_call_faults);
    tcase_add_test(tc, test_host_alloc_and_read_faults);
    tcase_add_test(tc, test_plan_and_sink_loads);
    tcase_add_test(tc, test_packed);
    tcase_add_test(tc, test_file_cut_during_load);
    tcase_add_test(tc, test_cycles_flat);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
