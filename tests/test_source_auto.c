/* loader/source_auto.c: HOIST_PATH_AUTO probes the files and picks mmap, uring or stream; the
 * choice shows in stats.path and in one INFO log line. Host destination. */
#include "source_test_common.h"

/* Loads by auto and returns the name of the path that ran (static storage). */
static const char *auto_load(hoist_model *m)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_int_eq(o.path, HOIST_PATH_AUTO);
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    tu_assert_weights_match_files(m, w);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    const char *name = s.path;
    hoist_weights_free(w);
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "auto: picked"), 1);
    return name;
}

static hoist_model *cold_model(char **path_out)
{
    char *path = tu_path(dir, "cold.safetensors");
    st_write_random_model(path, 4, 4u << 20);
    hoist_model *m = st_open(path);
    st_uncache(path);
    *path_out = path;
    return m;
}

/* A file just written sits in the page cache: mmap. */
START_TEST(test_cached_picks_mmap)
{
    char *path = tu_path(dir, "warm.safetensors");
    tu_write_odd_model(path, 20, 1);
    hoist_model *m = st_open(path);
    ck_assert_str_eq(auto_load(m), "mmap");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "in the page cache"), 1);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Files on tmpfs are in memory however the probe reads them, and pread beats a mapping there. */
START_TEST(test_memory_filesystem_picks_stream)
{
    char *shm = st_shm_dir();
    char *path = tu_path(shm, "odd.safetensors");
    tu_write_odd_model(path, 20, 2);
    hoist_model *m = st_open(path);
    ck_assert_str_eq(auto_load(m), "stream");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "memory filesystem"), 1);
    hoist_model_free(m);
    tu_rmtree(shm);
    free(path);
}
END_TEST

START_TEST(test_cold_picks_uring)
{
    char *path;
    hoist_model *m = cold_model(&path);
    ck_assert_str_eq(auto_load(m), "uring");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "O_DIRECT and io_uring work"), 1);
    ck_assert_int_eq(st_warns(), 0);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_cold_without_direct_picks_stream)
{
    char *path;
    hoist_model *m = cold_model(&path);
    st_hooks(&(hoist__io_hooks){.open = st_open_refuse_direct});
    ck_assert_str_eq(auto_load(m), "stream");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "O_DIRECT open refused"), 1);
    hoist_model_free(m);

    /* opens, but refuses the reads */
    m = st_open(path);
    st_log_start();
    st_uncache(path);
    st_hooks(&(hoist__io_hooks){.pread = st_pread_refuse_direct});
    ck_assert_str_eq(auto_load(m), "stream");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "O_DIRECT read refused"), 1);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_cold_without_uring_picks_stream)
{
    char *path;
    hoist_model *m = cold_model(&path);
    st_init_errno = EPERM;
    st_hooks(&(hoist__io_hooks){.uring_init = st_uring_init_fail});
    ck_assert_str_eq(auto_load(m), "stream");
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "io_uring is unavailable"), 1);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_empty_model)
{
    char *path = tu_path(dir, "empty.safetensors");
    tu_write_safetensors(path, "{}", NULL, 0);
    hoist_model *m = st_open(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    ck_assert_uint_eq(hoist_weights_count(w), 0);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_path_names)
{
    hoist_path p;
    ck_assert_int_eq(hoist_path_parse("uring", &p), HOIST_OK);
    ck_assert_int_eq(p, HOIST_PATH_URING);
    ck_assert_int_eq(hoist_path_parse("stream", &p), HOIST_OK);
    ck_assert_int_eq(p, HOIST_PATH_STREAM);
    ck_assert_int_eq(hoist_path_parse("auto", &p), HOIST_OK);
    ck_assert_int_eq(p, HOIST_PATH_AUTO);
    ck_assert_int_eq(hoist_path_parse("floppy", &p), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "uring or stream"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("source_auto");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cached_picks_mmap);
    tcase_add_test(tc, test_memory_filesystem_picks_stream);
    tcase_add_test(tc, test_cold_picks_uring);
    tcase_add_test(tc, test_cold_without_direct_picks_stream);
    tcase_add_test(tc, test_cold_without_uring_picks_stream);
    tcase_add_test(tc, test_empty_model);
    tcase_add_test(tc, test_path_names);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
