/* Every I/O path into GPU memory (loader/source_*.c through gpu/gpu_cuda.c): odd offsets and
 * sizes, windows smaller and larger than tensors, files above 4 GiB, and each uring fallback
 * forced through the I/O seam, every tensor byte-compared with its file. Needs a CUDA device:
 * exits 77 (skipped) without one. */
#include "source_test_common.h"

static void load_on_gpu(hoist_model *m, hoist_path path, uint64_t chunk, unsigned threads,
                        const char *want_path)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.device = 0;
    o.chunk_bytes = chunk;
    o.threads = threads;
    hoist_weights *w = NULL;
    int rc = hoist_load(m, &o, &w);
    ck_assert_msg(rc == HOIST_OK, "%s chunk=%llu threads=%u: %s", hoist_path_name(path),
                  (unsigned long long)chunk, threads, hoist_last_error());
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_view(w, 0, &v), HOIST_OK);
    ck_assert_int_eq(v.device, 0);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    if (want_path) ck_assert_str_eq(s.path, want_path);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
}

START_TEST(test_odd_model_every_path)
{
    hoist_model *m = open_odd(70, 99);
    const hoist_path paths[] = {HOIST_PATH_URING, HOIST_PATH_STREAM, HOIST_PATH_MMAP,
                                HOIST_PATH_AUTO};
    for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
        load_on_gpu(m, paths[k], 4096, 3, NULL);
        load_on_gpu(m, paths[k], 1u << 20, 8, NULL);
        load_on_gpu(m, paths[k], 0, 0, NULL);
    }
    hoist_model_free(m);
}
END_TEST

/* Each fallback of the uring path, forced through the seam, still places the same bytes. */
START_TEST(test_uring_fallbacks)
{
    hoist_model *m = open_odd(40, 3);
    const hoist__io_hooks refuse_open = {.open = st_open_refuse_direct};
    const hoist__io_hooks refuse_read = {.uring_result = st_result_refuse_direct};
    const hoist__io_hooks no_uring = {.uring_init = st_uring_init_fail};
    const hoist__io_hooks no_register = {.uring_register_buffers = st_register_enomem};
    const hoist__io_hooks short_reads = {.uring_result = st_result_random_short};
    const hoist__io_hooks eintr = {.uring_result = st_result_eintr_every_other};
    const hoist__io_hooks *hooks[] = {&refuse_open, &refuse_read, &no_uring,
                                      &no_register, &short_reads, &eintr};
    for (size_t k = 0; k < sizeof hooks / sizeof *hooks; k++) {
        st_init_errno = ENOSYS;
        st_hooks(hooks[k]);
        load_on_gpu(m, HOIST_PATH_URING, 65536, 4, "uring");
        st_hooks(NULL);
    }
    hoist_model_free(m);
}
END_TEST

START_TEST(test_sparse_above_4g_every_path)
{
    st_check_sparse_above_4g_on(dir, HOIST_PATH_URING, 0);
    st_check_sparse_above_4g_on(dir, HOIST_PATH_STREAM, 0);
    st_check_sparse_above_4g_on(dir, HOIST_PATH_MMAP, 0);
}
END_TEST

/* A real (not sparse) 4.6 GB single-file checkpoint: every byte of every tensor, including those
 * past 2^32 in the file, compared after a uring and a stream load. */
START_TEST(test_generated_file_above_4g)
{
    char args[512];
    snprintf(args, sizeof args, "gen '%s/m' --size 4600M --shard-size 8G --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *mdir = tu_path(dir, "m");
    hoist_model *m = st_open(mdir);
    free(mdir);
    ck_assert_uint_eq(hoist_model_file_count(m), 1);
    ck_assert_uint_gt(hoist_model_file_size(m, 0), 1ull << 32);
    load_on_gpu(m, HOIST_PATH_URING, 0, 0, "uring");
    load_on_gpu(m, HOIST_PATH_STREAM, 0, 0, "stream");
    hoist_model_free(m);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        fprintf(stderr, "skipped: no CUDA device\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_paths");
    TCase *tc = tcase_create("paths");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_odd_model_every_path);
    tcase_add_test(tc, test_uring_fallbacks);
    tcase_add_test(tc, test_sparse_above_4g_every_path);
    tcase_add_test(tc, test_generated_file_above_4g);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
