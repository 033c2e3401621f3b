/* gpu/host_pages.c: memory for a backend to pin, mapped aligned and faulted in up front. */
#include "gpu/gpu.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages of [p, p + bytes) that mincore reports resident. */
static size_t resident_pages(void *p, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = (bytes + page - 1) / page;
    unsigned char *vec = calloc(n, 1);
    ck_assert_ptr_nonnull(vec);
    ck_assert_int_eq(mincore(p, bytes, vec), 0);
    size_t in = 0;
    for (size_t i = 0; i < n; i++) in += vec[i] & 1;
    free(vec);
    return in;
}

static void check_map(size_t bytes)
{
    void *p = NULL;
    ck_assert_int_eq(hoist__host_pages_map(bytes, &p), HOIST_OK);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % (2u << 20), 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = bytes ? (bytes + page - 1) / page * page : page;
    /* every page is present before anyone touches it: that is what makes pinning it cheap */
    ck_assert_uint_eq(resident_pages(p, len), len / page);
    unsigned char *b = p;
    for (size_t i = 0; i < len; i += page / 2) ck_assert_uint_eq(b[i], 0);
    memset(p, 0xa5, len);
    ck_assert_uint_eq(b[len - 1], 0xa5);
    hoist__host_pages_unmap(p, bytes);
    /* the whole range went back: mincore on an unmapped range fails with ENOMEM */
    unsigned char v;
    ck_assert_int_eq(mincore(p, page, &v), -1);
    ck_assert_int_eq(mincore((char *)p + len - page, page, &v), -1);
}

START_TEST(test_sizes)
{
    size_t sizes[] = {0, 1, 4096, 65537, 2u << 20, (3u << 20) + 1, 96u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) check_map(sizes[i]);
}
END_TEST

/* Excluded from fork: the child of a process that pins staging does not see it. */
START_TEST(test_not_inherited)
{
    void *p = NULL;
    ck_assert_int_eq(hoist__host_pages_map(8u << 20, &p), HOIST_OK);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsigned char v;
        _exit(mincore(p, 4096, &v) == -1 ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    hoist__host_pages_unmap(p, 8u << 20);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host_pages");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_not_inherited);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
