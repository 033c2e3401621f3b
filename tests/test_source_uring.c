/* loader/source_uring.c: O_DIRECT through io_uring into the staging slots, and every fallback
 * forced through the I/O seam (docs/RELIABILITY.md cases 27, 29, 30, 31, 37). Host destination. */
#include "source_test_common.h"

/* Case 30: offsets and lengths off the block size, small windows, several rings. No fallback
 * may happen on this filesystem (O_DIRECT and io_uring both work here): no warning. */
START_TEST(test_odd_sizes_small_windows)
{
    hoist_model *m = open_odd(60, 7);
    unsigned threads[] = {1, 3, 8, 0};
    uint64_t chunks[] = {4096, 65536, 1u << 20, 0};
    for (int i = 0; i < 4; i++) st_load_check(m, HOIST_PATH_URING, threads[i], chunks[i]);
    ck_assert_msg(st_warns() == 0, "unexpected warnings:\n%s", st_log);
    hoist_model_free(m);
}
END_TEST

/* 16 workers with a 2 MiB slot each; a small model takes no more than it has windows. */
START_TEST(test_defaults)
{
    char *path = tu_path(dir, "big.safetensors");
    st_write_random_model(path, 9, 4u << 20);
    hoist_model *m = st_open(path);
    hoist_load_stats s = st_load_stats(m, HOIST_PATH_URING);
    ck_assert_uint_eq(s.threads, 16);
    ck_assert_uint_ge(s.peak_host_bytes, 16u * (2u << 20));
    hoist_model_free(m);
    free(path);

    m = open_odd(5, 2);
    s = st_load_stats(m, HOIST_PATH_URING);
    ck_assert_uint_eq(s.threads, 1);
    ck_assert_uint_lt(s.peak_host_bytes, 1u << 20);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_sharded)
{
    char *index = st_write_sharded(dir);
    hoist_model *m = st_open(index);
    ck_assert_uint_eq(hoist_model_file_count(m), 2);
    st_load_check(m, HOIST_PATH_URING, 3, 4096);
    st_load_check(m, HOIST_PATH_URING, 2, 65536);
    ck_assert_int_eq(st_warns(), 0);
    hoist_model_free(m);
    free(index);
}
END_TEST

/* O_DIRECT keeps the page cache out of it: a cold file stays cold, and so it does when the
 * reads fall back to buffered. */
START_TEST(test_page_cache_untouched)
{
    char *path = tu_path(dir, "big.safetensors");
    st_write_random_model(path, 8, 8u << 20);
    hoist_model *m = st_open(path);
    st_uncache(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_URING;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    double after = st_cached_fraction(path);
    ck_assert_msg(after < 0.10, "%.1f%% cached after a uring load", after * 100);
    ck_assert_int_eq(st_warns(), 0);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);

    /* the buffered fallback drops what it reads */
    st_uncache(path);
    st_hooks(&(hoist__io_hooks){.open = st_open_refuse_direct});
    o.chunk_bytes = 1u << 20;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    after = st_cached_fraction(path);
    ck_assert_msg(after < 0.01, "%.1f%% cached after a buffered uring load", after * 100);
    ck_assert_int_eq(st_warns(), 1);
    hoist_weights_free(w);

    /* ... and only what it read: a file cached before stays cached for the next process */
    st_read_file(path);
    ck_assert_double_gt(st_cached_fraction(path), 0.99);
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    after = st_cached_fraction(path);
    ck_assert_msg(after > 0.99, "%.1f%% still cached after a buffered uring load", after * 100);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Case 29, at open: every file refuses O_DIRECT; one warning for the load, the rest at debug. */
START_TEST(test_direct_refused_at_open)
{
    char *index = st_write_sharded(dir);
    hoist_model *m = st_open(index);
    st_hooks(&(hoist__io_hooks){.open = st_open_refuse_direct});
    st_load_check(m, HOIST_PATH_URING, 4, 65536);
    ck_assert_msg(st_warns() == 1, "%d warnings:\n%s", st_warns(), st_log);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "O_DIRECT refused (open: Invalid argument)"), 1);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "model-00001-of-00002.safetensors"), 1);
    ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "O_DIRECT refused"), 1);
    hoist_model_free(m);
    free(index);
}
END_TEST

/* Case 29, at the first read: every worker meets EINVAL at once; one switch, one warning. */
START_TEST(test_direct_refused_at_read)
{
    hoist_model *m = open_odd(40, 3);
    st_hooks(&(hoist__io_hooks){.uring_result = st_result_refuse_direct});
    st_load_check(m, HOIST_PATH_URING, 8, 4096);
    ck_assert_msg(st_warns() == 1, "%d warnings:\n%s", st_warns(), st_log);
    st_log_start();
    st_load_check(m, HOIST_PATH_URING, 4, 1u << 20); /* several reads in flight refused */
    ck_assert_msg(st_warns() == 1, "%d warnings:\n%s", st_warns(), st_log);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "odd.safetensors: O_DIRECT refused (EINVAL"), 1);
    hoist_model_free(m);
}
END_TEST

/* Case 31: io_uring_queue_init refused three ways -> threaded pread, one warning each load. */
START_TEST(test_uring_unavailable)
{
    hoist_model *m = open_odd(30, 5);
    int errs[] = {EPERM, ENOSYS, ENOMEM};
    for (int i = 0; i < 3; i++) {
        st_log_start();
        st_init_errno = errs[i];
        st_hooks(&(hoist__io_hooks){.uring_init = st_uring_init_fail});
        st_load_check(m, HOIST_PATH_URING, 8, 65536);
        ck_assert_msg(st_warns() == 1, "%d warnings:\n%s", st_warns(), st_log);
        ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "io_uring unavailable"), 1);
        ck_assert_int_eq(st_lines(HOIST_LOG_WARN, strerror(errs[i])), 1);
    }
    hoist_model_free(m);
}
END_TEST

/* Fixed buffers refused (a container's memlock limit): io_uring without them, one warning. */
START_TEST(test_register_buffers_refused)
{
    hoist_model *m = open_odd(30, 6);
    st_hooks(&(hoist__io_hooks){.uring_register_buffers = st_register_enomem});
    st_load_check(m, HOIST_PATH_URING, 4, 65536);
    ck_assert_msg(st_warns() == 1, "%d warnings:\n%s", st_warns(), st_log);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "cannot register the staging buffers"), 1);
    hoist_model_free(m);
}
END_TEST

/* Both at once: no io_uring, and O_DIRECT refused on pread. */
START_TEST(test_pread_fallback_direct_refused)
{
    hoist_model *m = open_odd(30, 8);
    st_init_errno = ENOSYS;
    st_hooks(&(hoist__io_hooks){.uring_init = st_uring_init_fail,
                                .pread = st_pread_refuse_direct});
    st_load_check(m, HOIST_PATH_URING, 4, 8192);
    ck_assert_msg(st_warns() == 2, "%d warnings:\n%s", st_warns(), st_log);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "io_uring unavailable"), 1);
    ck_assert_int_eq(st_lines(HOIST_LOG_WARN, "O_DIRECT refused"), 1);
    hoist_model_free(m);
}
END_TEST

/* Case 27 on the pread fallback. */
START_TEST(test_pread_fallback_short_reads)
{
    hoist_model *m = open_odd(7, 13);
    st_init_errno = EPERM;
    hoist__io_hooks hooks[] = {
        {.uring_init = st_uring_init_fail, .pread = st_pread_one_byte},
        {.uring_init = st_uring_init_fail, .pread = st_pread_random_short},
        {.uring_init = st_uring_init_fail, .pread = st_pread_eintr_every_other},
    };
    for (int i = 0; i < 3; i++) {
        st_hooks(&hooks[i]);
        st_load_check(m, HOIST_PATH_URING, 3, 8192);
        st_load_check(m, HOIST_PATH_URING, 1, 65536);
    }
    hoist_model_free(m);
}
END_TEST

/* Case 27 on io_uring completions: one byte, random short counts, EINTR every other one. */
START_TEST(test_uring_short_reads)
{
    hoist_model *m = open_odd(7, 14);
    hoist__io_hooks hooks[] = {
        {.uring_result = st_result_one_byte},
        {.uring_result = st_result_random_short},
        {.uring_result = st_result_eintr_every_other},
    };
    for (int i = 0; i < 3; i++) {
        st_hooks(&hooks[i]);
        st_load_check(m, HOIST_PATH_URING, 3, 8192);
        st_load_check(m, HOIST_PATH_URING, 1, 65536);
        st_load_check(m, HOIST_PATH_URING, 2, 1u << 20); /* several reads in flight */
    }
    ck_assert_int_eq(st_warns(), 0);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_read_error_and_truncation)
{
    hoist_model *m = open_odd(20, 4);
    st_fail_off = 100000;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_URING;
    o.chunk_bytes = 65536;
    hoist_weights *w = (hoist_weights *)1;
    int fds = st_fd_count();

    st_hooks(&(hoist__io_hooks){.uring_result = st_result_eio_above});
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_IO);
    ck_assert_ptr_null(w);
    const char *e = hoist_last_error();
    ck_assert_msg(strstr(e, "odd.safetensors") && strstr(e, "at byte") &&
                      strstr(e, strerror(EIO)),
                  "message: %s", e);

    st_hooks(&(hoist__io_hooks){.uring_result = st_result_eof_above});
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_FILE_CHANGED);
    e = hoist_last_error();
    ck_assert_msg(strstr(e, "odd.safetensors") && strstr(e, "ends at byte"), "message: %s", e);

    st_init_errno = EPERM; /* the same through the pread fallback */
    st_hooks(&(hoist__io_hooks){.uring_init = st_uring_init_fail, .pread = st_pread_eio_above});
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_IO);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd.safetensors"));
    ck_assert_int_eq(st_fd_count(), fds);
    hoist_model_free(m);
}
END_TEST

/* A worker failing while other workers' reads are in flight: everything drains and closes
 * (ASan/LSan check the rest). */
START_TEST(test_failure_with_reads_in_flight)
{
    hoist_model *m = open_odd(60, 9);
    st_fail_off = 1u << 20;
    st_hooks(&(hoist__io_hooks){.uring_result = st_result_eio_above});
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_URING;
    o.chunk_bytes = 262144;
    o.threads = 8;
    int fds = st_fd_count();
    for (int i = 0; i < 20; i++) {
        hoist_weights *w = (hoist_weights *)1;
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_IO);
        ck_assert_ptr_null(w);
    }
    ck_assert_int_eq(st_fd_count(), fds);
    hoist_model_free(m);
}
END_TEST

/* Case 37. */
static _Atomic unsigned preads, ring_reads;

static ssize_t count_pread(int fd, void *buf, size_t n, off_t off)
{
    atomic_fetch_add(&preads, 1);
    return pread(fd, buf, n, off);
}

static int count_ring_read(int direct, uint64_t off, unsigned len, int res)
{
    (void)direct, (void)off, (void)len;
    atomic_fetch_add(&ring_reads, 1);
    return res;
}

/* A model on tmpfs: read by the workers with pread (through the seam), never through a ring;
 * said once at INFO, no warning, the same bytes. */
START_TEST(test_memory_filesystem)
{
    char *shm = st_shm_dir();
    char *path = tu_path(shm, "odd.safetensors");
    tu_write_odd_model(path, 40, 3);
    hoist_model *m = st_open(path);
    st_log_start();
    hoist__io_set_hooks(&(hoist__io_hooks){.pread = count_pread, .uring_result = count_ring_read});
    st_load_check(m, HOIST_PATH_URING, 3, 65536);
    st_load_check(m, HOIST_PATH_URING, 0, 0);
    hoist__io_set_hooks(NULL);
    ck_assert_uint_eq(atomic_load(&ring_reads), 0);
    ck_assert_uint_gt(atomic_load(&preads), 0);
    ck_assert_msg(st_warns() == 0, "unexpected warnings:\n%s", st_log);
    ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "is in memory"), 2); /* once per load */

    /* and a file on this test's own filesystem (a disk, unless TMPDIR is memory too) still
     * goes through the rings */
    struct statfs here;
    ck_assert_int_eq(statfs(dir, &here), 0);
    int on_disk = here.f_type != TMPFS_MAGIC && here.f_type != RAMFS_MAGIC;
    hoist_model *disk = open_odd(40, 3);
    atomic_store(&preads, 0);
    hoist__io_set_hooks(&(hoist__io_hooks){.pread = count_pread, .uring_result = count_ring_read});
    st_load_check(disk, HOIST_PATH_URING, 3, 65536);
    hoist__io_set_hooks(NULL);
    if (on_disk) ck_assert_uint_gt(atomic_load(&ring_reads), 0);
    hoist_model_free(disk);
    hoist_model_free(m);
    tu_rmtree(shm);
    free(path);
}
END_TEST

START_TEST(test_above_4g) { st_check_sparse_above_4g(dir, HOIST_PATH_URING); }
END_TEST

int main(void)
{
    Suite *s = suite_create("source_uring");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_odd_sizes_small_windows);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_sharded);
    tcase_add_test(tc, test_page_cache_untouched);
    tcase_add_test(tc, test_direct_refused_at_open);
    tcase_add_test(tc, test_direct_refused_at_read);
    tcase_add_test(tc, test_uring_unavailable);
    tcase_add_test(tc, test_register_buffers_refused);
    tcase_add_test(tc, test_pread_fallback_direct_refused);
    tcase_add_test(tc, test_pread_fallback_short_reads);
    tcase_add_test(tc, test_uring_short_reads);
    tcase_add_test(tc, test_read_error_and_truncation);
    tcase_add_test(tc, test_failure_with_reads_in_flight);
    tcase_add_test(tc, test_memory_filesystem);
    tcase_add_test(tc, test_above_4g);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
