/* Fault sweeps on the host backend (docs/RELIABILITY.md 27, 33, 34; see fault_sweep.h) and 1,000
 * load/unload cycles (35). With host_as_device the host backend is driven through the device
 * pipeline (pinned slots, streams, events, copies), so the code a GPU load runs is swept here;
 * test_gpu_faults.c runs the same sweeps on CUDA. */
#include "fault_sweep.h"

static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};

static fs_case base_case(const char *model, hoist_path path, bool as_device)
{
    fs_case c = {.model = model, .host_as_device = as_device};
    c.opts = (hoist_load_options)HOIST_LOAD_OPTIONS_DEFAULT;
    c.opts.device = HOIST_DEVICE_HOST;
    c.opts.path = path;
    c.opts.threads = 2;
    c.opts.chunk_bytes = 65536;
    return c;
}

/* Faults from the first read or allocation of hoist_model_open on, through the load: the index,
 * both shard headers and the JSON documents. */
START_TEST(test_open_and_load)
{
    char *index = st_write_sharded(dir);
    fs_fault faults[] = {FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT, FS_HOST_ALLOC};
    for (int f = 0; f < 4; f++) {
        fs_case c = base_case(index, HOIST_PATH_STREAM, false);
        c.fault = faults[f];
        c.during_open = true;
        fs_result r = fs_sweep(&c, 20000);
        ck_assert_uint_gt(r.runs, 3); /* index, two headers, data */
        if (faults[f] == FS_READ_EIO || faults[f] == FS_HOST_ALLOC)
            ck_assert_uint_eq(r.failed, r.runs - 1); /* no fallback from these */
    }
    free(index);
}
END_TEST

/* A model partly in the page cache, then none of it: stream keeps a map of the pages that were
 * cached (its residency probe), and for a cold model first asks whether this process may have an
 * io_uring at all. An allocation of either that fails fails the load like any other. Both used
 * to be absorbed (the probe then said no page was cached, so the load would drop pages other
 * processes had cached; the ring was taken for refused, so the load read without one), which
 * made test_open_and_load's count depend on what the page cache held at the time. */
START_TEST(test_partly_cached)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/p' --preset tiny --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *model = tu_path(dir, "p/model.safetensors");
    st_partly_uncache(model);
    double f = st_cached_fraction(model);
    ck_assert_msg(f > 0.5 && f < 1.0, "%s: %.2f of its pages cached, expected a part", model, f);
    fs_case c = base_case(model, HOIST_PATH_STREAM, false);
    c.fault = FS_HOST_ALLOC;
    for (int cold = 0; cold <= 1; cold++) { /* the last quarter dropped, then all of it */
        c.partly_cold = !cold;
        c.cold = cold;
        fs_result r = fs_sweep(&c, 20000);
        ck_assert_uint_gt(r.runs, 2);
        ck_assert_uint_eq(r.failed, r.runs - 1);
    }
    free(model);
}
END_TEST

/* The same from a GGUF file (hoist gen --format gguf): its header, key-values and tensor infos
 * are read through the same seams. */
START_TEST(test_open_and_load_gguf)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/g' --preset tiny --format gguf --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *model = tu_path(dir, "g/model.gguf");
    fs_fault faults[] = {FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT, FS_HOST_ALLOC};
    for (int f = 0; f < 4; f++)
        for (int p = 0; p < 3; p++) {
            fs_case c = base_case(model, paths[p], p == 1);
            c.fault = faults[f];
            c.during_open = true;
            fs_result r = fs_sweep(&c, 20000);
            ck_assert_uint_gt(r.runs, 1);
            if (faults[f] == FS_READ_EIO)
                ck_assert_uint_eq(r.failed, r.runs - 1);
            else if (faults[f] == FS_HOST_ALLOC) /* uring registers its files if it can */
                ck_assert_uint_ge(r.failed, r.runs - 1 - (paths[p] == HOIST_PATH_URING ? 2 : 0));
            else
                ck_assert_uint_eq(r.failed, 0);
        }
    free(model);
}
END_TEST

/* A packed container (hoist pack: zstd frames, xxh3 sums): faults from the open on, and during
 * loads that decode and check every chunk, into host memory and through the device pipeline. */
START_TEST(test_packed)
{
    char ref[512], model[512];
    tu_gen_packed(dir, "bf16", "--preset tiny", "--chunk 16K", ref, model);
    fs_fault faults[] = {FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT, FS_HOST_ALLOC};
    for (int f = 0; f < 4; f++) {
        fs_case c = base_case(model, HOIST_PATH_STREAM, false);
        c.reference = ref;
        c.fault = faults[f];
        c.during_open = true;
        fs_result r = fs_sweep(&c, 20000);
        ck_assert_uint_gt(r.runs, 2);
        if (faults[f] == FS_READ_EINTR || faults[f] == FS_READ_SHORT) ck_assert_uint_eq(r.failed, 0);
        else ck_assert_uint_gt(r.failed, 0);
    }
    fs_fault load_faults[] = {FS_READ_EIO, FS_HOST_ALLOC, FS_GPU_CALL, FS_GPU_CALL};
    hoist__gpu_call calls[] = {0, 0, HOIST_GPU_COPY_H2D, HOIST_GPU_PINNED_ALLOC};
    for (int p = 0; p < 3; p++)
        for (int f = 0; f < 4; f++)
            for (int dev = 0; dev <= 1; dev++) {
                if (load_faults[f] == FS_GPU_CALL && !dev) continue;
                fs_case c = base_case(model, paths[p], dev);
                c.reference = ref;
                c.fault = load_faults[f];
                c.call = calls[f];
                fs_result r = fs_sweep(&c, 5000);
                if (load_faults[f] != FS_READ_EIO || paths[p] != HOIST_PATH_MMAP)
                    ck_assert_uint_gt(r.failed, 0);
            }
}
END_TEST

/* A codec 2 container (hoist pack --codec gpu) through the device pipeline, which then decodes
 * on the "device" (the host backend's twin of the kernel): every kind of device call fails in
 * turn, and host allocations and reads, and everything comes back. */
START_TEST(test_packed_gpu_codec)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "pack '%s/m' '%s/m.hoist' --codec gpu --chunk 16K > /dev/null",
             dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *model = tu_path(dir, "m.hoist"), *ref = tu_path(dir, "m");
    for (int call = 0; call <= HOIST_GPU_NCALLS; call++) {
        fs_case c = base_case(model, HOIST_PATH_STREAM, true);
        c.reference = ref;
        c.fault = call < HOIST_GPU_NCALLS ? FS_GPU_CALL : FS_HOST_ALLOC;
        c.call = (hoist__gpu_call)(call % HOIST_GPU_NCALLS);
        fs_result r = fs_sweep(&c, 5000);
        switch (call) {
        case HOIST_GPU_MEM_ALLOC: /* the arena, then each worker's staging */
        case HOIST_GPU_STREAM_CREATE:
        case HOIST_GPU_STREAM_SYNC: /* the error words' start */
        case HOIST_GPU_EVENT_CREATE:
        case HOIST_GPU_EVENT_RECORD:
        case HOIST_GPU_EVENT_SYNC:
        case HOIST_GPU_COPY_H2D:
        case HOIST_GPU_COPY_D2H: /* the error words' readback */
        case HOIST_GPU_DECODE:
        case HOIST_GPU_NCALLS: /* host allocations */
            ck_assert_msg(r.failed > 0, "call %d: %u runs, none failed", call, r.runs);
            break;
        default: break;
        }
    }
    free(model);
    free(ref);
}
END_TEST

/* Read faults during the load, on every path that reads (mmap maps instead: case 28). */
START_TEST(test_read_faults)
{
    char *index = st_write_sharded(dir);
    fs_fault faults[] = {FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT};
    for (int p = 0; p < 3; p++)
        for (int dev = 0; dev <= 1; dev++)
            for (int f = 0; f < 3; f++) {
                fs_case c = base_case(index, paths[p], dev);
                c.fault = faults[f];
                fs_result r = fs_sweep(&c, 5000);
                if (paths[p] != HOIST_PATH_MMAP) ck_assert_uint_gt(r.runs, 4);
                if (faults[f] != FS_READ_EIO) ck_assert_uint_eq(r.failed, 0);
            }
    free(index);
}
END_TEST

/* A cold model through stream: the O_DIRECT reads of its workers' rings (and its files'
 * O_DIRECT descriptors) under every read fault and host allocation failure, into host memory
 * (read into the worker's buffer, copied out) and through the device pipeline (read into the
 * slots). */
START_TEST(test_stream_cold_faults)
{
    char *model = tu_path(dir, "cold.safetensors");
    st_write_random_model(model, 4, 300001);
    fs_fault faults[] = {FS_READ_EIO, FS_READ_EINTR, FS_READ_SHORT, FS_HOST_ALLOC};
    for (int dev = 0; dev <= 1; dev++)
        for (int f = 0; f < 4; f++) {
            fs_case c = base_case(model, HOIST_PATH_STREAM, dev);
            c.fault = faults[f];
            c.cold = true;
            st_log_start();
            fs_result r = fs_sweep(&c, 5000);
            ck_assert_int_ge(st_lines(HOIST_LOG_DEBUG, "reading what is not cached with O_DIRECT"),
                             1);
            ck_assert_uint_gt(r.runs, 4);
            if (faults[f] == FS_READ_EIO) ck_assert_uint_eq(r.failed, r.runs - 1);
            if (faults[f] == FS_READ_EINTR || faults[f] == FS_READ_SHORT)
                ck_assert_uint_eq(r.failed, 0);
            if (faults[f] == FS_HOST_ALLOC) ck_assert_uint_gt(r.failed, 3);
        }
    free(model);
}
END_TEST

/* Every host allocation of a load fails in turn, into host memory and through the device
 * pipeline, on every path. */
START_TEST(test_host_alloc_faults)
{
    char *index = st_write_sharded(dir);
    for (int p = 0; p < 3; p++)
        for (int dev = 0; dev <= 1; dev++) {
            fs_case c = base_case(index, paths[p], dev);
            c.fault = FS_HOST_ALLOC;
            fs_result r = fs_sweep(&c, 5000);
            ck_assert_uint_gt(r.failed, 3); /* load state, source state, plan, weights */
        }
    free(index);
}
END_TEST

/* Every device call of every kind fails in turn: allocations of the arena and the pinned slots,
 * stream and event creation, event record and sync, copies both ways (verify reads back). */
START_TEST(test_device_call_faults)
{
    char *index = st_write_sharded(dir);
    for (int p = 0; p < 3; p++)
        for (int verify = 0; verify <= 1; verify++)
            for (int call = 0; call < HOIST_GPU_NCALLS; call++) {
                fs_case c = base_case(index, paths[p], true);
                c.opts.verify = verify ? HOIST_VERIFY_READBACK : 0;
                c.fault = FS_GPU_CALL;
                c.call = (hoist__gpu_call)call;
                fs_result r = fs_sweep(&c, 5000);
                switch (call) {
                case HOIST_GPU_HOST_REGISTER: /* the host backend registers nothing */
                case HOIST_GPU_STREAM_SYNC:   /* events order the pipeline, not stream syncs */
                case HOIST_GPU_MEMSET:        /* the rest are the inference block's */
                case HOIST_GPU_COPY_PEER:
                case HOIST_GPU_STREAM_WAIT:
                case HOIST_GPU_BLAS_CREATE:
                case HOIST_GPU_GEMM:
                case HOIST_GPU_GRAPH_CAPTURE:
                case HOIST_GPU_GRAPH_LAUNCH:
                case HOIST_GPU_DECODE:        /* a packed model's codec 2 chunks only */
                    ck_assert_uint_eq(r.runs, 1);
                    break;
                case HOIST_GPU_COPY_D2H:
                    ck_assert_uint_eq(r.failed, verify ? r.runs - 1 : 0);
                    break;
                default: ck_assert_uint_gt(r.failed, 0);
                }
            }
    free(index);
}
END_TEST

/* The same faults under the other two ways to load: into the embedder's callback (sink), and by
 * a placement plan (its reservation must come back too). The plan needs the model's geometry:
 * a generated checkpoint with its config.json. */
START_TEST(test_sink_and_plan_loads)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --shard-size 64K --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *model = tu_path(dir, "m");
    fs_fault faults[] = {FS_READ_EIO, FS_READ_SHORT, FS_HOST_ALLOC, FS_GPU_CALL};
    for (int p = 0; p < 3; p++)
        for (int how = 0; how < 2; how++)
            for (int f = 0; f < 4; f++) {
                if (faults[f] == FS_GPU_CALL && how == 0) continue; /* a sink has no device */
                fs_case c = base_case(model, paths[p], how == 1);
                c.sink = how == 0;
                c.plan = how == 1;
                c.fault = faults[f];
                c.call = HOIST_GPU_COPY_H2D;
                fs_result r = fs_sweep(&c, 5000);
                if (faults[f] == FS_HOST_ALLOC || faults[f] == FS_GPU_CALL)
                    ck_assert_uint_gt(r.failed, 2);
                if (faults[f] == FS_READ_SHORT) ck_assert_uint_eq(r.failed, 0);
            }
    free(model);
}
END_TEST

/* Case 35: 1,000 open/load/free cycles over every path, both ways into host memory: host bytes,
 * device-side handles and descriptors exactly flat, resident memory within 8 MiB. */
START_TEST(test_cycles_flat)
{
    char *index = st_write_sharded(dir);
    fs_snapshot first = {0};
    uint64_t rss0 = 0;
    for (int i = 0; i < 1000; i++) {
        bool as_device = (i / 3) % 2;
        hoist__gpu_set_hooks(&(hoist__gpu_hooks){.host_as_device = as_device});
        fs_case c = base_case(index, paths[i % 3], as_device);
        hoist_model *m = st_open(index);
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &c.opts, &w) == HOIST_OK, "cycle %d: %s", i,
                      hoist_last_error());
        if (i % 100 == 0) tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        hoist_model_free(m);
        hoist__gpu_set_hooks(NULL);
        if (i == 5) { /* one cycle of each path and mode first: lazily made state is made */
            first = fs_take();
            rss0 = tu_rss_bytes();
        }
    }
    fs_snapshot last = fs_take();
    fs_case any = base_case(index, HOIST_PATH_AUTO, false);
    any.fault = FS_NONE;
    fs_assert_same(&first, &last, &any, 1000, HOIST_OK);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine holds freed memory on purpose */
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
    fs_init();
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_open_and_load);
    tcase_add_test(tc, test_partly_cached);
    tcase_add_test(tc, test_open_and_load_gguf);
    tcase_add_test(tc, test_packed);
    tcase_add_test(tc, test_packed_gpu_codec);
    tcase_add_test(tc, test_read_faults);
    tcase_add_test(tc, test_stream_cold_faults);
    tcase_add_test(tc, test_host_alloc_faults);
    tcase_add_test(tc, test_device_call_faults);
    tcase_add_test(tc, test_sink_and_plan_loads);
    tcase_add_test(tc, test_cycles_flat);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
