/* loader/source.c: the check and defaults every source table goes through before a load drives
 * it, as sqlite's VFS versions its tables. */
#include "loader/source.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static int fake_open(const hoist__source_hints *h, void **state, hoist__source_needs *n)
{
    (void)h, (void)state, (void)n;
    return HOIST_OK;
}

static void fake_close(void *state) { (void)state; }

static int fake_read(void *state, int worker, const hoist__window *w, void *buf, const void **src,
                     int *dma)
{
    (void)state, (void)worker, (void)w, (void)buf, (void)src, (void)dma;
    return HOIST_OK;
}

static uint64_t fake_host_bytes(void *state, unsigned threads, uint64_t window)
{
    (void)state;
    return threads * window + 7;
}

/* Only what every source must have. */
static hoist__source_ops minimal(void)
{
    return (hoist__source_ops){.version = HOIST_SOURCE_OPS_VERSION,
                               .name = "fake",
                               .open = fake_open,
                               .close = fake_close,
                               .read = fake_read};
}

/* A table of another version is refused before any member past its name is looked at, naming
 * the source and the version; nothing is written to the output. */
START_TEST(test_wrong_version_refused)
{
    int versions[] = {0, 1, HOIST_SOURCE_OPS_VERSION + 1, -1};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        hoist__source_ops ops = minimal(), out;
        ops.version = versions[i];
        memset(&out, 0xab, sizeof out);
        ck_assert_int_eq(hoist__source_resolve(&ops, &out), HOIST_E_INTERNAL);
        const char *e = hoist_last_error();
        char want[64];
        snprintf(want, sizeof want, "version %d", versions[i]);
        ck_assert_msg(strstr(e, "'fake'") && strstr(e, want), "message: %s", e);
        unsigned char *p = (unsigned char *)&out;
        for (size_t k = 0; k < sizeof out; k++) ck_assert_uint_eq(p[k], 0xab);
    }
}
END_TEST

START_TEST(test_required_members)
{
    hoist__source_ops out;
    for (int missing = 0; missing < 4; missing++) {
        hoist__source_ops ops = minimal();
        if (missing == 0) ops.name = NULL;
        if (missing == 1) ops.open = NULL;
        if (missing == 2) ops.close = NULL;
        if (missing == 3) ops.read = NULL;
        ck_assert_int_eq(hoist__source_resolve(&ops, &out), HOIST_E_INTERNAL);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "required"));
    }
    hoist__source_ops ops = minimal();
    ops.flags = 0x80;
    ck_assert_int_eq(hoist__source_resolve(&ops, &out), HOIST_E_INTERNAL);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "flags"));
    ck_assert_int_eq(hoist__source_resolve(NULL, &out), HOIST_E_INTERNAL);
}
END_TEST

/* Optional members left NULL come back as defaults that do nothing (copy: a plain copy), so the
 * pipeline calls every member without a check; the required ones and members given are kept. */
START_TEST(test_optional_members_defaulted)
{
    hoist__source_ops ops = minimal(), out;
    ck_assert_int_eq(hoist__source_resolve(&ops, &out), HOIST_OK);
    ck_assert_int_eq(out.version, HOIST_SOURCE_OPS_VERSION);
    ck_assert_str_eq(out.name, "fake");
    ck_assert(out.open == fake_open && out.close == fake_close && out.read == fake_read);
    ck_assert(out.start && out.attach && out.release && out.host_bytes && out.copy);

    hoist__plan plan = {0};
    hoist__budget budget;
    hoist__budget_init(&budget, 0);
    ck_assert_int_eq(out.start(NULL, &plan, &budget), HOIST_OK);
    ck_assert_uint_eq(atomic_load(&budget.used), 0);
    void *bufs[1] = {&plan};
    ck_assert_int_eq(out.attach(NULL, 0, bufs, 1, 4096), HOIST_OK);
    hoist__window w = {.file = 0, .lo = 0, .hi = 10};
    out.release(NULL, &w);
    ck_assert_uint_eq(out.host_bytes(NULL, 16, 1u << 20), 0);
    const char src[] = "tensor bytes";
    char dst[sizeof src] = {0};
    ck_assert_int_eq(out.copy(NULL, &w, dst, src, sizeof src), HOIST_OK);
    ck_assert_str_eq(dst, src);

    ops.host_bytes = fake_host_bytes;
    ops.flags = HOIST_SOURCE_MAPPED | HOIST_SOURCE_SLOT_BUFFERS;
    ck_assert_int_eq(hoist__source_resolve(&ops, &out), HOIST_OK);
    ck_assert(out.host_bytes == fake_host_bytes);
    ck_assert_uint_eq(out.flags, HOIST_SOURCE_MAPPED | HOIST_SOURCE_SLOT_BUFFERS);
}
END_TEST

/* Every source of this build passes the check, as every load of it will need. */
START_TEST(test_builtin_sources)
{
    hoist_path paths[] = {HOIST_PATH_AUTO, HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const hoist__source_ops *ops = hoist__source_for(paths[i], NULL);
        ck_assert_ptr_nonnull(ops);
        hoist__source_ops out;
        ck_assert_msg(hoist__source_resolve(ops, &out) == HOIST_OK, "%s: %s", ops->name,
                      hoist_last_error());
    }
    ck_assert_ptr_null(hoist__source_for((hoist_path)99, NULL));
    ck_assert_uint_eq(hoist__source_mmap.flags & HOIST_SOURCE_MAPPED, HOIST_SOURCE_MAPPED);
    ck_assert_uint_eq(hoist__source_uring.flags & HOIST_SOURCE_MAPPED, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("source_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, test_wrong_version_refused);
    tcase_add_test(tc, test_required_members);
    tcase_add_test(tc, test_optional_members_defaulted);
    tcase_add_test(tc, test_builtin_sources);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
