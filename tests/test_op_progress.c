/* Progress of hoist_model_sum, hoist_model_verify (a manifest, and a packed model) and hoist_pack
 * (hoist.h's hoist_progress_fn contract): first call done = 0, done never decreasing and never
 * past total, the last call done == total = every tensor byte, calls on the calling thread and
 * never overlapping; no call after a failure's last; none without a callback. And the CLI draws
 * no bar where stderr is not a terminal. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    pthread_t caller;
    int calls, bad;
    _Atomic int inside;
    uint64_t first, last, total;
    char why[160];
} seen;

static void on_progress(uint64_t done, uint64_t total, void *user)
{
    seen *s = user;
    if (atomic_fetch_add(&s->inside, 1) != 0 && !s->bad++)
        snprintf(s->why, sizeof s->why, "overlapping calls");
    if (!pthread_equal(pthread_self(), s->caller) && !s->bad++)
        snprintf(s->why, sizeof s->why, "called on another thread");
    if (s->calls && (done < s->last || total != s->total) && !s->bad++)
        snprintf(s->why, sizeof s->why, "done %llu after %llu (total %llu, was %llu)",
                 (unsigned long long)done, (unsigned long long)s->last,
                 (unsigned long long)total, (unsigned long long)s->total);
    if (done > total && !s->bad++) snprintf(s->why, sizeof s->why, "done past total");
    if (!s->calls) s->first = done;
    s->calls++;
    s->last = done;
    s->total = total;
    atomic_fetch_sub(&s->inside, 1);
}

static void expect_complete(const seen *s, uint64_t total, const char *what)
{
    ck_assert_msg(!s->bad, "%s: %s", what, s->why);
    ck_assert_msg(s->calls >= 2, "%s: %d calls", what, s->calls);
    ck_assert_uint_eq(s->first, 0);
    ck_assert_uint_eq(s->total, total);
    ck_assert_uint_eq(s->last, total);
}

static char *dir;
static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(dir); }

static hoist_model *gen_open(const char *name, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gen '%s/%s' %s --quiet", dir, name, args);
    ck_assert_int_eq(tu_run_cli(cmd), 0);
    char *p = tu_path(dir, name);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    free(p);
    return m;
}

START_TEST(test_sum_and_verify)
{
    hoist_model *m = gen_open("m", "--size 6M --shard-size 2M");
    uint64_t total = hoist_model_total_bytes(m);
    hoist_sum_options o = HOIST_SUM_OPTIONS_DEFAULT;
    o.chunk_bytes = 64u << 10; /* many units */
    o.threads = 3;
    seen s = {.caller = pthread_self()};
    o.progress = on_progress;
    o.progress_user = &s;
    ck_assert_int_eq(hoist_model_sum(m, &o), HOIST_OK);
    expect_complete(&s, total, "sum");
    seen v = {.caller = pthread_self()};
    o.progress_user = &v;
    ck_assert_int_eq(hoist_model_verify(m, &o), HOIST_OK);
    expect_complete(&v, total, "verify");
    /* without a manifest: the failure comes before any byte is read, and no last call */
    o.manifest = "/nonexistent/manifest";
    seen f = {.caller = pthread_self()};
    o.progress_user = &f;
    ck_assert_int_eq(hoist_model_verify(m, &o), HOIST_E_NOT_FOUND);
    ck_assert_msg(f.calls == 0 || f.last < total, "a failed verify reported completion");
    hoist_model_free(m);
}
END_TEST

START_TEST(test_pack_and_verify_packed)
{
    hoist_model *m = gen_open("m", "--size 6M");
    uint64_t total = hoist_model_total_bytes(m);
    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.chunk_bytes = 16u << 10;
    po.threads = 2;
    seen s = {.caller = pthread_self()};
    po.progress = on_progress;
    po.progress_user = &s;
    char *out = tu_path(dir, "m.hoist");
    ck_assert_int_eq(hoist_pack(m, out, &po, NULL), HOIST_OK);
    expect_complete(&s, total, "pack");
    hoist_model_free(m);
    ck_assert_int_eq(hoist_model_open(out, NULL, &m), HOIST_OK);
    hoist_sum_options o = HOIST_SUM_OPTIONS_DEFAULT;
    seen v = {.caller = pthread_self()};
    o.progress = on_progress;
    o.progress_user = &v;
    ck_assert_int_eq(hoist_model_verify(m, &o), HOIST_OK);
    expect_complete(&v, total, "verify packed");
    hoist_model_free(m);
    free(out);
}
END_TEST

/* hoist sum, verify and pack with stderr a file: no bar (no carriage return, no "ETA"). */
START_TEST(test_cli_no_bar_off_a_terminal)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "gen '%s/m' --size 2M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(cmd), 0);
    const char *runs[] = {"sum '%s/m'", "verify '%s/m'", "pack '%s/m' '%s/m.hoist'"};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char args[1024], *err = NULL;
        snprintf(args, sizeof args, runs[i], dir, dir);
        ck_assert_int_eq(tu_run_cli_capture(args, NULL, &err), 0);
        ck_assert_msg(!strchr(err, '\r') && !strstr(err, "ETA"), "%s drew a bar: %s", args, err);
        free(err);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("op_progress");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sum_and_verify);
    tcase_add_test(tc, test_pack_and_verify_packed);
    tcase_add_test(tc, test_cli_no_bar_off_a_terminal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
