/* loader/model.c through the public API, docs/RELIABILITY.md case 36: paths that are not model files
 * (a directory, a FIFO, /dev/zero, /proc and /sys files, an unreadable file) give a clean error
 * naming the path, at open and when a file turns into one of them before the load. */
#include "source_test_common.h"

#include <sys/stat.h>
#include <sys/types.h>

static void expect_open(const char *path, int status, const char *needle)
{
    hoist_model *m = (hoist_model *)1;
    int rc = hoist_model_open(path, NULL, &m);
    const char *e = hoist_last_error();
    ck_assert_msg(rc == status, "%s: %s, expected %s: %s", path, hoist_status_name(rc),
                  hoist_status_name(status), e);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e, needle), "%s: message lacks '%s': %s", path, needle, e);
}

START_TEST(test_directory)
{
    expect_open(dir, HOIST_E_NOT_FOUND, dir); /* holds no model */
    char *sub = tu_path(dir, "model.safetensors");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    expect_open(dir, HOIST_E_NOT_REGULAR, "a directory");
    expect_open(sub, HOIST_E_NOT_FOUND, "holds none of"); /* a directory is read as one */
    free(sub);
}
END_TEST

/* Opening a FIFO must not wait for a writer, under every name hoist reads. */
START_TEST(test_fifo)
{
    char *fifo = tu_path(dir, "w.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    expect_open(fifo, HOIST_E_NOT_REGULAR, "FIFO");
    char *index = tu_path(dir, "model.safetensors.index.json");
    ck_assert_int_eq(mkfifo(index, 0600), 0);
    expect_open(index, HOIST_E_NOT_REGULAR, "not a regular file");
    expect_open(dir, HOIST_E_NOT_REGULAR, "model.safetensors.index.json");
    free(fifo);
    free(index);
}
END_TEST

START_TEST(test_devices_and_proc)
{
    expect_open("/dev/zero", HOIST_E_NOT_REGULAR, "character device");
    /* stat says 0 bytes however much a read would return */
    expect_open("/proc/self/status", HOIST_E_TRUNCATED_HEADER, "/proc/self/status");
    /* a sysfs attribute claims 4096 bytes and holds a line of text: its first 8 bytes make no
     * sane header length */
    const char *sys = "/sys/kernel/mm/transparent_hugepage/enabled";
    struct stat st;
    if (stat(sys, &st) == 0) {
        hoist_model *m = (hoist_model *)1;
        int rc = hoist_model_open(sys, NULL, &m);
        ck_assert_msg(rc == HOIST_E_HEADER_TOO_LARGE || rc == HOIST_E_BAD_HEADER_LEN, "%s: %s",
                      hoist_status_name(rc), hoist_last_error());
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), sys));
    }
}
END_TEST

/* Root reads any file by permission bits (CI runs as root), but not a write-only sysctl: the
 * proc sysctl check ignores CAP_DAC_OVERRIDE. So that file stands for "unreadable" for everyone;
 * a chmod 000 file is tried too where the tests do not run as root. */
START_TEST(test_unreadable)
{
    const char *wo = "/proc/sys/vm/drop_caches";
    struct stat st;
    if (stat(wo, &st) == 0 && !(st.st_mode & 0444))
        expect_open(wo, HOIST_E_OPEN, strerror(EACCES));
    else
        fprintf(stderr, "note: %s is missing or readable here; skipped\n", wo);
    if (geteuid() != 0) {
        char *path = tu_path(dir, "locked.safetensors");
        tu_write_safetensors(path, "{}", NULL, 0);
        ck_assert_int_eq(chmod(path, 0), 0);
        expect_open(path, HOIST_E_OPEN, strerror(EACCES));
        free(path);
    }
}
END_TEST

/* Shards of a sharded checkpoint that are not files: a FIFO, a directory, and a link to
 * /dev/zero (a shard may be a link to anywhere, docs/PATHS.md, but what it leads to is still
 * refused by type). */
START_TEST(test_bad_shards)
{
    const char *kinds[] = {"fifo", "dir", "zero"};
    for (int k = 0; k < 3; k++) {
        char *index = st_write_sharded(dir);
        char *shard = tu_path(dir, "model-00002-of-00002.safetensors");
        ck_assert_int_eq(unlink(shard), 0);
        if (k == 0) ck_assert_int_eq(mkfifo(shard, 0600), 0);
        if (k == 1) ck_assert_int_eq(mkdir(shard, 0700), 0);
        if (k == 2) ck_assert_int_eq(symlink("/dev/zero", shard), 0);
        hoist_model *m = (hoist_model *)1;
        int rc = hoist_model_open(index, NULL, &m);
        ck_assert_msg(rc == HOIST_E_NOT_REGULAR, "%s: %s: %s",
                      kinds[k], hoist_status_name(rc), hoist_last_error());
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model-00002-of-00002.safetensors"));
        if (k == 1) ck_assert_int_eq(rmdir(shard), 0);
        else ck_assert_int_eq(unlink(shard), 0);
        free(shard);
        free(index);
    }
}
END_TEST

/* The file opened fine, then became a FIFO or a directory before the load: every path refuses
 * it (none waits for a FIFO writer), with descriptors given back. */
START_TEST(test_replaced_before_load)
{
    const hoist_path paths[] = {HOIST_PATH_AUTO, HOIST_PATH_MMAP, HOIST_PATH_STREAM,
                                HOIST_PATH_URING};
    char *path = tu_path(dir, "odd.safetensors");
    for (int kind = 0; kind < 2; kind++)
        for (int p = 0; p < 4; p++) {
            tu_write_odd_model(path, 9, 4);
            hoist_model *m = st_open(path);
            ck_assert_int_eq(unlink(path), 0);
            if (kind == 0) ck_assert_int_eq(mkfifo(path, 0600), 0);
            else ck_assert_int_eq(mkdir(path, 0700), 0);
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.path = paths[p];
            hoist_weights *w = (hoist_weights *)1;
            int fds = st_fd_count();
            int rc = hoist_load(m, &o, &w);
            ck_assert_int_eq(st_fd_count(), fds);
            ck_assert_msg(rc == HOIST_E_FILE_CHANGED, "%s, %s: %s: %s", kind ? "dir" : "FIFO",
                          hoist_path_name(paths[p]), hoist_status_name(rc), hoist_last_error());
            ck_assert_ptr_null(w);
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd.safetensors"));
            hoist_model_free(m);
            ck_assert_int_eq(kind ? rmdir(path) : unlink(path), 0);
        }
    free(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("open");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_directory);
    tcase_add_test(tc, test_fifo);
    tcase_add_test(tc, test_devices_and_proc);
    tcase_add_test(tc, test_unreadable);
    tcase_add_test(tc, test_bad_shards);
    tcase_add_test(tc, test_replaced_before_load);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
