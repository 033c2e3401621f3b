/* `hoist bench --device cuda:0` (tools/cmd_bench.c): every path into the GPU, each load in a
 * child of a parent that never touched CUDA. Needs a CUDA device: exits 77 (skipped) without
 * one. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* The CSV line of a load row ("load,<mode>,<path>,"), or NULL. */
static const char *row(const char *csv, const char *mode, const char *path)
{
    char key[64];
    snprintf(key, sizeof key, ",load,%s,%s,%s,", mode, path, path);
    return strstr(csv, key);
}

START_TEST(test_bench_gpu)
{
    char args[2048];
    snprintf(args, sizeof args, "gen '%s/m' --size 256M --shard-size 100M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args,
             "bench '%s/m' --device cuda:0 --repeat 2 --drop files --quiet --csv '%s/b.csv' "
             "> '%s/table'",
             dir, dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "b.csv");
    size_t n;
    char *csv = tu_read(p, &n);
    free(p);
    ck_assert_ptr_nonnull(csv);
    csv = realloc(csv, n + 1);
    csv[n] = 0;
    ck_assert_ptr_nonnull(strstr(csv, ",cuda:0,ceiling,warm,pinned_copy,"));
    const char *paths[] = {"mmap", "uring", "stream"}, *modes[] = {"cold", "warm"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            const char *r = row(csv, modes[m], paths[i]);
            ck_assert_msg(r != NULL, "no %s %s row", modes[m], paths[i]);
            /* ,load,mode,path,ran,budget,runs, */
            const char *f = r;
            for (int k = 0; k < 5; k++) f = strchr(f + 1, ',');
            ck_assert_int_eq(atoi(f + 1), 2);
        }
    free(csv);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_bench");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bench_gpu);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
