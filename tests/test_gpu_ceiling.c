/* loader/ceiling.c into a GPU: the staging ceiling through pinned slots and async copies, and the
 * pinned copy it is bounded by. Needs a CUDA device: exits 77 (skipped) without one. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static hoist_model *model;
static uint64_t files;

static void setup(void)
{
    dir = tu_mkdtemp();
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --size 96M --shard-size 40M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "m");
    ck_assert_int_eq(hoist_model_open(p, NULL, &model), HOIST_OK);
    free(p);
    files = 0;
    for (size_t i = 0; i < hoist_model_file_count(model); i++)
        files += hoist_model_file_size(model, i);
}

static void teardown(void)
{
    hoist_model_free(model);
    model = NULL;
    tu_rmtree(dir);
    dir = NULL;
}

typedef struct calls {
    pthread_t caller;
    int n, bad;
    uint64_t last, total;
} calls;

static void record(uint64_t done, uint64_t total, void *user)
{
    calls *c = user;
    if (!pthread_equal(pthread_self(), c->caller) || done < c->last || done > total) c->bad++;
    c->n++;
    c->last = done;
    c->total = total;
}

START_TEST(test_staging_into_gpu)
{
    calls k = {.caller = pthread_self()};
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.device = 0;
    o.progress = record;
    o.progress_user = &k;
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_msg(hoist_staging_ceiling(model, &o, &c) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_uint_eq(c.bytes, files);
    ck_assert_uint_eq(c.queue_depth, 3);
    ck_assert_uint_ge(c.threads, 1);
    ck_assert(c.gbps > 1.0);
    ck_assert_ptr_nonnull(strstr(c.note, "1 thread"));
    ck_assert_int_eq(k.bad, 0);
    ck_assert_uint_eq(k.last, k.total);
    /* staging goes through the pinned copy, so it cannot be much faster than it */
    double pinned = 0;
    ck_assert_int_eq(hoist_device_copy_bandwidth(0, 256u << 20, 1, 5, &pinned), HOIST_OK);
    ck_assert_msg(c.gbps < pinned * 1.2, "staging %.1f GB/s above pinned copy %.1f", c.gbps,
                  pinned);

    o.threads = 2;
    o.block_bytes = 256 << 10;
    ck_assert_int_eq(hoist_staging_ceiling(model, &o, &c), HOIST_OK);
    ck_assert_uint_eq(c.bytes, files);
    ck_assert_uint_eq(c.threads, 2);
}
END_TEST

START_TEST(test_read_ceiling_beside_gpu)
{
    hoist_ceiling c = HOIST_CEILING_INIT;
    /* the default sweep times each shape over its own quarter of the files */
    ck_assert_int_eq(hoist_read_ceiling(model, NULL, &c), HOIST_OK);
    ck_assert_uint_gt(c.bytes, 0);
    ck_assert_uint_lt(c.bytes, files / 2);
    ck_assert(c.gbps > 0);
    /* one shape asked for reads every byte */
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 4;
    ck_assert_int_eq(hoist_read_ceiling(model, &o, &c), HOIST_OK);
    ck_assert_uint_eq(c.bytes, files);
    ck_assert(c.gbps > 0);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_ceiling");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_staging_into_gpu);
    tcase_add_test(tc, test_read_ceiling_beside_gpu);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
