/* loader/alloc.c and gpu/gpu_seam.c: the fault seams themselves. The sweeps that use them live in
 * test_faults.c. */
#include "gpu/gpu.h"
#include "core/core.h"
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Atomic: the hooks are called from the pipeline's worker threads. */
static _Atomic int fail_at, calls;

static bool fail_kth(size_t bytes)
{
    (void)bytes;
    return ++calls == fail_at;
}

START_TEST(test_live_bytes_follow_every_wrapper)
{
    int64_t base = hoist__alloc_live_bytes();
    char *a = hoist__malloc(100);
    int64_t after_a = hoist__alloc_live_bytes();
    ck_assert_int_ge(after_a - base, 100);
    int *b = hoist__calloc(10, sizeof *b);
    ck_assert_int_eq(b[9], 0);
    ck_assert_int_ge(hoist__alloc_live_bytes() - after_a, 40);
    a = hoist__realloc(a, 100000);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_ge(hoist__alloc_live_bytes() - base, 100040);
    void *c = hoist__memalign(4096, 8192);
    ck_assert_uint_eq((uintptr_t)c % 4096, 0);
    char *d = hoist__strdup("tensor");
    ck_assert_str_eq(d, "tensor");
    hoist__free(a);
    hoist__free(b);
    hoist__free(c);
    hoist__free(d);
    hoist__free(NULL);
    ck_assert_int_eq(hoist__alloc_live_bytes(), base);
}
END_TEST

START_TEST(test_hook_fails_the_kth_allocation)
{
    hoist__alloc_hooks h = {.fail = fail_kth};
    int64_t base = hoist__alloc_live_bytes();
    calls = 0;
    fail_at = 3;
    hoist__alloc_set_hooks(&h);
    void *p1 = hoist__malloc(8), *p2 = hoist__calloc(1, 8);
    errno = 0;
    void *p3 = hoist__malloc(8);
    int e = errno;
    void *p4 = hoist__strdup("x");
    hoist__alloc_set_hooks(NULL);
    ck_assert_ptr_nonnull(p1);
    ck_assert_ptr_nonnull(p2);
    ck_assert_ptr_null(p3);
    ck_assert_int_eq(e, ENOMEM);
    ck_assert_ptr_nonnull(p4);
    hoist__free(p1);
    hoist__free(p2);
    hoist__free(p4);
    ck_assert_int_eq(hoist__alloc_live_bytes(), base);
}
END_TEST

/* A refused realloc leaves the block where it was, still counted and still the caller's. */
START_TEST(test_refused_realloc_keeps_the_block)
{
    int64_t base = hoist__alloc_live_bytes();
    char *p = hoist__malloc(16);
    strcpy(p, "kept");
    hoist__alloc_hooks h = {.fail = fail_kth};
    calls = 0;
    fail_at = 1;
    hoist__alloc_set_hooks(&h);
    char *q = hoist__realloc(p, 1 << 20);
    hoist__alloc_set_hooks(NULL);
    ck_assert_ptr_null(q);
    ck_assert_str_eq(p, "kept");
    ck_assert_int_gt(hoist__alloc_live_bytes(), base);
    hoist__free(p);
    ck_assert_int_eq(hoist__alloc_live_bytes(), base);
}
END_TEST

static hoist__gpu_call fail_call;
static _Atomic int gpu_calls[HOIST_GPU_NCALLS]; /* counted from worker threads */

static int gpu_hook(const char *backend, hoist__gpu_call call, size_t bytes)
{
    gpu_calls[call]++;
    return call == fail_call ? HOIST_E_DEVICE : HOIST_OK;
}

/* With host_as_device, a host load drives slots, streams, events and copies through the host
 * backend; each is counted, and all are gone after the weights are freed. */
START_TEST(test_host_as_device_load)
{
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "m.safetensors");
    tu_write_odd_model(path, 20, 11);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    memset(gpu_calls, 0, sizeof gpu_calls);
    fail_call = HOIST_GPU_NCALLS;
    hoist__gpu_hooks h = {.call = gpu_hook, .host_as_device = true};
    hoist__gpu_set_hooks(&h);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = HOIST_DEVICE_HOST;
    o.path = HOIST_PATH_STREAM;
    o.threads = 2;
    o.chunk_bytes = 65536;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_MEM_ALLOC], 1);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_STREAM_CREATE], 2);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_PINNED_ALLOC], 1); /* one staging pool for both workers */
    ck_assert_int_gt(gpu_calls[HOIST_GPU_COPY_H2D], 0);
    ck_assert_int_gt(gpu_calls[HOIST_GPU_EVENT_SYNC], 0);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 1);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_STREAM), 0);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_EVENT), 0);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_PINNED), 0);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 0);

    /* the first copy fails: a device error naming the call and the tensor */
    fail_call = HOIST_GPU_COPY_H2D;
    w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_DEVICE);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "host-to-device copy"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor '"));
    for (int r = 0; r < HOIST_GPU_NRES; r++) ck_assert_int_eq(hoist__gpu_live(r), 0);
    hoist__gpu_set_hooks(NULL);
    hoist_model_free(m);
    free(path);
    tu_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seams");
    TCase *tc = tcase_create("seams");
    tcase_add_test(tc, test_live_bytes_follow_every_wrapper);
    tcase_add_test(tc, test_hook_fails_the_kth_allocation);
    tcase_add_test(tc, test_refused_realloc_keeps_the_block);
    tcase_add_test(tc, test_host_as_device_load);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
