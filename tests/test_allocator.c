/* hoist_load_options.allocator (loader/arenas.c): the embedder's allocator takes and gives back
 * every arena, on every path; a NULL from it, a misaligned block or a load that fails after the
 * arena was taken leave nothing behind and name the device; a malformed allocator is refused
 * before anything is taken. On the host device (the hook's contract is the same on a GPU). */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct counting {
    int allocs, frees, fail_alloc, misalign;
    void *last;                /* the block handed out */
    size_t last_bytes, freed_bytes;
    int last_device, freed_device;
    void *freed;
} counting;

static void *count_alloc(void *user, int device, size_t bytes)
{
    counting *c = user;
    if (c->fail_alloc) return NULL;
    c->allocs++;
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes + 64) != 0) return NULL;
    c->last = c->misalign ? (uint8_t *)p + 8 : p;
    c->last_bytes = bytes;
    c->last_device = device;
    return c->last;
}

static void count_free(void *user, int device, void *ptr, size_t bytes)
{
    counting *c = user;
    c->frees++;
    c->freed = ptr;
    c->freed_bytes = bytes;
    c->freed_device = device;
    free(c->misalign ? (uint8_t *)ptr - 8 : ptr);
}

static char *dir, *model_path;

static void setup(void)
{
    dir = tu_mkdtemp();
    model_path = tu_path(dir, "m.safetensors");
    tu_write_odd_model(model_path, 12, 7);
}

static void teardown(void)
{
    free(model_path);
    tu_rmtree(dir);
}

static int load_with(counting *c, hoist_path path, unsigned verify, hoist_model **m,
                     hoist_weights **w)
{
    ck_assert_int_eq(hoist_model_open(model_path, NULL, m), HOIST_OK);
    hoist_allocator a = HOIST_ALLOCATOR_INIT;
    a.alloc = count_alloc;
    a.free = count_free;
    a.user = c;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.verify = verify;
    o.allocator = &a;
    return hoist_load(*m, &o, w); /* a is copied: it may go out of scope now */
}

START_TEST(test_arena_from_the_embedder)
{
    static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING,
                                       HOIST_PATH_AUTO};
    hoist_path path = paths[_i];
    counting c = {0};
    hoist_model *m = NULL;
    hoist_weights *w = NULL;
    uint64_t live_bytes;
    size_t live = hoist_weights_live(&live_bytes);
    ck_assert_int_eq(load_with(&c, path, 0, &m, &w), HOIST_OK);
    ck_assert_int_eq(c.allocs, 1);
    ck_assert_int_eq(c.frees, 0);
    ck_assert_int_eq(c.last_device, HOIST_DEVICE_HOST);
    hoist_load_stats st = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &st), HOIST_OK);
    ck_assert_uint_eq(c.last_bytes, st.arena_bytes);
    /* every view lies in the embedder's block, and holds the file's bytes */
    for (size_t i = 0; i < hoist_weights_count(w); i++) {
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
        ck_assert_ptr_nonnull(v.data);
        ck_assert((uint8_t *)v.data >= (uint8_t *)c.last &&
                  (uint8_t *)v.data + v.nbytes <= (uint8_t *)c.last + c.last_bytes);
    }
    tu_assert_weights_match_files(m, w);
    hoist_model_free(m);
    hoist_weights *extra = hoist_weights_retain(w);
    hoist_weights_free(w);
    ck_assert_int_eq(c.frees, 0); /* a reference is left */
    hoist_weights_free(extra);
    ck_assert_int_eq(c.frees, 1);
    ck_assert_ptr_eq(c.freed, c.last);
    ck_assert_uint_eq(c.freed_bytes, c.last_bytes);
    ck_assert_int_eq(c.freed_device, HOIST_DEVICE_HOST);
    uint64_t after_bytes;
    ck_assert_uint_eq(hoist_weights_live(&after_bytes), live);
    ck_assert_uint_eq(after_bytes, live_bytes);
}
END_TEST

START_TEST(test_null_from_the_embedder)
{
    counting c = {.fail_alloc = 1};
    hoist_model *m = NULL;
    hoist_weights *w = (hoist_weights *)&c; /* must come back NULL */
    ck_assert_int_eq(load_with(&c, HOIST_PATH_STREAM, 0, &m, &w), HOIST_E_NOMEM);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "host"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "allocator returned NULL"));
    ck_assert_int_eq(c.allocs, 0);
    ck_assert_int_eq(c.frees, 0);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_misaligned_block_goes_back)
{
    counting c = {.misalign = 1};
    hoist_model *m = NULL;
    hoist_weights *w = NULL;
    ck_assert_int_eq(load_with(&c, HOIST_PATH_STREAM, 0, &m, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "not aligned to 64 bytes"));
    ck_assert_int_eq(c.allocs, 1);
    ck_assert_int_eq(c.frees, 1);
    ck_assert_ptr_eq(c.freed, c.last);
    hoist_model_free(m);
}
END_TEST

/* The arena is taken, then the load fails (a byte differs from the manifest): the arena goes
 * back to the embedder, once. */
START_TEST(test_failure_after_alloc_gives_it_back)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sum '%s' > /dev/null", model_path);
    ck_assert_int_eq(tu_run_cli(cmd), 0);
    size_t n;
    uint8_t *bytes = tu_read(model_path, &n);
    ck_assert_ptr_nonnull(bytes);
    bytes[n - 1] ^= 0x5a;
    tu_write(model_path, bytes, n);
    free(bytes);
    counting c = {0};
    hoist_model *m = NULL;
    hoist_weights *w = NULL;
    size_t live = hoist_weights_live(NULL);
    ck_assert_int_eq(load_with(&c, HOIST_PATH_STREAM, HOIST_VERIFY_MANIFEST, &m, &w),
                     HOIST_E_INTEGRITY);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(c.allocs, 1);
    ck_assert_int_eq(c.frees, 1);
    ck_assert_ptr_eq(c.freed, c.last);
    ck_assert_uint_eq(c.freed_bytes, c.last_bytes);
    ck_assert_uint_eq(hoist_weights_live(NULL), live);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_malformed_allocator_is_refused)
{
    counting c = {0};
    hoist_model *m = NULL;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_model_open(model_path, NULL, &m), HOIST_OK);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_allocator a = HOIST_ALLOCATOR_INIT;
    a.alloc = count_alloc; /* no free */
    a.user = &c;
    o.allocator = &a;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "free NULL"));
    a.free = count_free;
    a.size = 0; /* not initialised */
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "HOIST_ALLOCATOR_INIT"));
    ck_assert_int_eq(c.allocs, 0);
    ck_assert_ptr_null(w);
    hoist_model_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("allocator");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_arena_from_the_embedder, 0, 4);
    tcase_add_test(tc, test_null_from_the_embedder);
    tcase_add_test(tc, test_misaligned_block_goes_back);
    tcase_add_test(tc, test_failure_after_alloc_gives_it_back);
    tcase_add_test(tc, test_malformed_allocator_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
