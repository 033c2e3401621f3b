/* loader/load.c, plan.c, pipeline.c, source_mmap.c, verify.c: loads into host memory. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

static hoist_model *open_odd(int count, uint32_t seed, char **path_out)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, count, seed);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    if (path_out)
        *path_out = path;
    else
        free(path);
    return m;
}

/* Odd sizes and offsets, windows much smaller than tensors and many threads: every byte lands. */
START_TEST(test_odd_sizes_small_windows)
{
    hoist_model *m = open_odd(60, 7, NULL);
    unsigned threads[] = {1, 3, 8};
    uint64_t chunks[] = {4096, 65536, 16u << 20};
    for (int i = 0; i < 3; i++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_MMAP;
        o.threads = threads[i];
        o.chunk_bytes = chunks[i];
        hoist_weights *w = NULL;
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
        tu_assert_weights_match_files(m, w);
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
        ck_assert_str_eq(s.path, "mmap");
        ck_assert_uint_eq(s.bytes, hoist_model_total_bytes(m));
        ck_assert_uint_ge(s.arena_bytes, s.bytes);
        ck_assert_uint_eq(s.threads, threads[i]);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
}
END_TEST

START_TEST(test_verify_passes)
{
    hoist_model *m = open_odd(30, 3, NULL);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.verify = HOIST_VERIFY_READBACK;
    o.chunk_bytes = 8192;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert(s.readback_seconds > 0);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    hoist_model_free(m);
}
END_TEST

/* The weights keep the model alive: names and views stay valid after hoist_model_free. */
START_TEST(test_weights_outlive_model)
{
    hoist_model *m = open_odd(12, 5, NULL);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    hoist_model_free(m);
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_find(w, "t011", &v), HOIST_OK);
    ck_assert_str_eq(v.name, "t011");
    ck_assert_int_eq(v.device, HOIST_DEVICE_HOST);
    ck_assert_int_eq(hoist_weights_find(w, "nope", &v), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "nope"));
    hoist_weights_free(w);
}
END_TEST

/* References: the arena lives until the last hoist_weights_free, and hoist_weights_live counts
 * exactly the weights whose arena is still held. */
START_TEST(test_weights_references)
{
    uint64_t base_bytes = 0;
    size_t base = hoist_weights_live(&base_bytes);
    hoist_model *m = open_odd(12, 6, NULL);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    uint64_t bytes = 0;
    ck_assert_uint_eq(hoist_weights_live(&bytes), base + 1);
    ck_assert_uint_eq(bytes, base_bytes + s.arena_bytes);

    ck_assert_ptr_eq(hoist_weights_retain(w), w);
    ck_assert_ptr_null(hoist_weights_retain(NULL));
    hoist_weights_free(w); /* the first reference: the second keeps the arena */
    ck_assert_uint_eq(hoist_weights_live(NULL), base + 1);
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_find(w, "t011", &v), HOIST_OK);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    ck_assert_uint_eq(hoist_weights_live(&bytes), base);
    ck_assert_uint_eq(bytes, base_bytes);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_budget_too_small)
{
    hoist_model *m = open_odd(40, 9, NULL);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.ram_budget = 64; /* smaller than the plan itself */
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_BUDGET);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "budget"));
    hoist_model_free(m);
}
END_TEST

/* A file touched between open and load is refused: nothing is published. */
START_TEST(test_file_changed_is_refused)
{
    char *path;
    hoist_model *m = open_odd(8, 11, &path);
    struct utimbuf t = {.actime = 1000000, .modtime = 1000000};
    ck_assert_int_eq(utime(path, &t), 0);
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd.safetensors"));
    free(path);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_empty_model_loads)
{
    char *path = tu_path(dir, "empty.safetensors");
    tu_write_safetensors(path, "{}", NULL, 0);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    ck_assert_uint_eq(hoist_weights_count(w), 0);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_bad_arguments)
{
    hoist_model *m = open_odd(4, 1, NULL);
    hoist_weights *w = NULL;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.chunk_bytes = 1000; /* not a multiple of 4096 */
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
    o = (hoist_load_options)HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 4096; /* no such device */
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_NO_DEVICE);
    ck_assert_int_eq(hoist_load(NULL, NULL, &w), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_load(m, NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(w);
    /* reads outside a tensor are refused */
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    hoist_view v = HOIST_VIEW_INIT;
    unsigned char b[4];
    ck_assert_int_eq(hoist_weights_view(w, 0, &v), HOIST_OK);
    ck_assert_int_eq(hoist_weights_read(w, 0, v.nbytes, b, 1), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_weights_read(w, 0, UINT64_MAX, b, 2), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_weights_view(w, 99, &v), HOIST_E_INVALID_ARG);
    hoist_weights_free(w);
    hoist_weights_free(NULL);
    hoist_model_free(NULL);
    hoist_model_free(m);
}
END_TEST

typedef struct job {
    const char *path;
    int rc;
} job;

static void *load_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < 5 && j->rc == HOIST_OK; r++) {
        hoist_model *m = NULL;
        hoist_weights *w = NULL;
        j->rc = hoist_model_open(j->path, NULL, &m);
        if (j->rc == HOIST_OK) j->rc = hoist_load(m, NULL, &w);
        if (j->rc == HOIST_OK) tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        hoist_model_free(m);
    }
    return NULL;
}

/* Two models (a main and a draft, say) loaded at once from two threads. */
START_TEST(test_concurrent_loads)
{
    char *a = tu_path(dir, "a.safetensors"), *b = tu_path(dir, "b.safetensors");
    tu_write_odd_model(a, 40, 21);
    tu_write_odd_model(b, 25, 22);
    job ja = {a, HOIST_OK}, jb = {b, HOIST_OK};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, load_job, &ja), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, load_job, &jb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(ja.rc, HOIST_OK);
    ck_assert_int_eq(jb.rc, HOIST_OK);
    free(a);
    free(b);
}
END_TEST

/* Whether the smaps entry of the mapping that holds p says THPeligible: 1 (-1: no such line). */
static int thp_eligible(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int found = 0, eligible = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            found = a >= lo && a < hi;
        else if (found && sscanf(line, "THPeligible: %d", &eligible) == 1)
            break;
    }
    fclose(f);
    return eligible;
}

/* A host arena of 2 MiB or more asks for transparent huge pages (gpu/gpu_host.c): a load writes
 * all of a fresh arena, and a fault per 4 KiB page was a large part of a host load. Checked where
 * THP is "madvise": there only the advice makes memory eligible ("always" makes all of it,
 * "never" none). */
START_TEST(test_host_arena_asks_for_huge_pages)
{
    char mode[256] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f && !fgets(mode, sizeof mode, f)) mode[0] = 0;
    if (f) fclose(f);
    if (!strstr(mode, "[madvise]")) {
        fprintf(stderr, "skipped: transparent huge pages are not in madvise mode (%s)\n", mode);
        return;
    }
    char *path = tu_path(dir, "big.safetensors");
    size_t n = 8u << 20;
    uint8_t *data = calloc(1, n);
    tu_write_safetensors(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[8388608],"
                               "\"data_offsets\":[0,8388608]}}", data, n);
    hoist_model *m = tu_open_ok(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = HOIST_DEVICE_HOST;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_view(w, 0, &v), HOIST_OK);
    int eligible = thp_eligible(v.data);
    if (eligible < 0)
        fprintf(stderr, "skipped: /proc/self/smaps has no THPeligible line\n");
    else
        ck_assert_int_eq(eligible, 1);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(data);
    free(path);
}
END_TEST

START_TEST(test_path_and_device_names)
{
    hoist_path p;
    int d;
    ck_assert_int_eq(hoist_path_parse("mmap", &p), HOIST_OK);
    ck_assert_int_eq(p, HOIST_PATH_MMAP);
    ck_assert_int_eq(hoist_path_parse("floppy", &p), HOIST_E_INVALID_ARG);
    ck_assert_str_eq(hoist_path_name(HOIST_PATH_MMAP), "mmap");
    ck_assert_int_eq(hoist_device_parse("cuda:3", &d), HOIST_OK);
    ck_assert_int_eq(d, 3);
    ck_assert_int_eq(hoist_device_parse("host", &d), HOIST_OK);
    ck_assert_int_eq(d, HOIST_DEVICE_HOST);
    ck_assert_int_eq(hoist_device_parse("cuda:x", &d), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_device_parse("gpu", &d), HOIST_E_INVALID_ARG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("load");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_odd_sizes_small_windows);
    tcase_add_test(tc, test_verify_passes);
    tcase_add_test(tc, test_weights_outlive_model);
    tcase_add_test(tc, test_weights_references);
    tcase_add_test(tc, test_budget_too_small);
    tcase_add_test(tc, test_file_changed_is_refused);
    tcase_add_test(tc, test_empty_model_loads);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_concurrent_loads);
    tcase_add_test(tc, test_path_and_device_names);
    tcase_add_test(tc, test_host_arena_asks_for_huge_pages);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
