/* loader/progress.c through hoist_load's progress callback: on the calling thread, never
 * backwards, at a bounded rate, ending at the total; nothing final when the load fails. */
#include "core/io.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    hoist__io_set_hooks(NULL);
    tu_rmtree(dir);
    dir = NULL;
}

#define MAX_CALLS 100000

typedef struct calls {
    pthread_t caller;
    int n, off_thread, backwards, over, total_changed;
    uint64_t first_total, last_done;
    uint64_t done[MAX_CALLS];
} calls;

static void record(uint64_t done, uint64_t total, void *user)
{
    calls *c = user;
    if (!pthread_equal(pthread_self(), c->caller)) c->off_thread++;
    if (c->n == 0) c->first_total = total;
    if (total != c->first_total) c->total_changed++;
    if (c->n > 0 && done < c->last_done) c->backwards++;
    if (done > total) c->over++;
    if (c->n < MAX_CALLS) c->done[c->n] = done;
    c->n++;
    c->last_done = done;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static hoist_model *odd_model(void)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 60, 3);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    free(path);
    return m;
}

/* Every path: the first call reports 0, the last the model's total; in between the count only
 * grows, never passes the total, and calls come from the loading thread at most every
 * HOIST_PROGRESS_INTERVAL_MS. Small windows and one worker make the load long enough for
 * intermediate calls on most machines; the assertions hold whatever their number. */
START_TEST(test_progress_every_path)
{
    hoist_model *m = odd_model();
    uint64_t total = hoist_model_total_bytes(m);
    hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};
    for (int i = 0; i < 3; i++) {
        calls *c = calloc(1, sizeof *c);
        c->caller = pthread_self();
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = paths[i];
        o.threads = 2;
        o.chunk_bytes = 16384;
        o.progress = record;
        o.progress_user = c;
        hoist_weights *w = NULL;
        double t0 = now();
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
        double elapsed = now() - t0;
        ck_assert_int_ge(c->n, 2);
        ck_assert_uint_eq(c->done[0], 0);
        ck_assert_uint_eq(c->first_total, total);
        ck_assert_uint_eq(c->last_done, total);
        ck_assert_int_eq(c->total_changed, 0);
        ck_assert_int_eq(c->backwards, 0);
        ck_assert_int_eq(c->over, 0);
        ck_assert_int_eq(c->off_thread, 0);
        /* first and last are free; the others are an interval apart */
        ck_assert_int_le(c->n, 2 + (int)(elapsed * 1000 / HOIST_PROGRESS_INTERVAL_MS));
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        free(c);
    }
    hoist_model_free(m);
}
END_TEST

/* Without a callback nothing changes (the default options carry none). */
START_TEST(test_no_callback)
{
    hoist_model *m = odd_model();
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_ptr_null(o.progress);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    hoist_model_free(m);
}
END_TEST

static int count_sink(const hoist_piece *piece, void *user)
{
    *(uint64_t *)user += piece->nbytes;
    return 0;
}

/* A sink load reports the bytes it handed over, the same way. */
START_TEST(test_sink_progress)
{
    hoist_model *m = odd_model();
    calls *c = calloc(1, sizeof *c);
    c->caller = pthread_self();
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.chunk_bytes = 8192;
    o.progress = record;
    o.progress_user = c;
    uint64_t sunk = 0;
    ck_assert_int_eq(hoist_load_sink(m, &o, count_sink, &sunk, NULL), HOIST_OK);
    ck_assert_uint_eq(sunk, hoist_model_total_bytes(m));
    ck_assert_uint_eq(c->last_done, sunk);
    ck_assert_uint_eq(c->done[0], 0);
    ck_assert_int_eq(c->backwards + c->over + c->off_thread + c->total_changed, 0);
    free(c);
    hoist_model_free(m);
}
END_TEST

static _Atomic int preads;

/* The 40th read fails: the load stops part-way. */
static ssize_t failing_pread(int fd, void *buf, size_t n, off_t off)
{
    if (atomic_fetch_add(&preads, 1) == 40) {
        errno = EIO;
        return -1;
    }
    return pread(fd, buf, n, off);
}

/* A load that fails mid-way never reports the total. */
START_TEST(test_failed_load_does_not_finish)
{
    hoist_model *m = odd_model();
    uint64_t total = hoist_model_total_bytes(m);
    calls *c = calloc(1, sizeof *c);
    c->caller = pthread_self();
    atomic_store(&preads, 0);
    hoist__io_hooks h = {.pread = failing_pread};
    hoist__io_set_hooks(&h);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.threads = 1;
    o.chunk_bytes = 4096;
    o.progress = record;
    o.progress_user = c;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_IO);
    hoist__io_set_hooks(NULL);
    ck_assert_ptr_null(w);
    ck_assert_int_ge(c->n, 1);
    ck_assert_uint_lt(c->last_done, total);
    ck_assert_int_eq(c->backwards, 0);
    free(c);
    hoist_model_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_progress_every_path);
    tcase_add_test(tc, test_no_callback);
    tcase_add_test(tc, test_sink_progress);
    tcase_add_test(tc, test_failed_load_does_not_finish);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
