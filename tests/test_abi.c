/* core/abi.c and the public functions over it: the size-prefixed structs (docs/ABI.md). How a
 * caller built against an older, the same, or a newer hoist.h is served; what a bad size gets;
 * every initializer's size; hoist_device_name. The 0.1 ABI itself is tests/abi/test_abi_v0.c. */
#include "core/abi.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dir, *model_dir;

static void setup(void)
{
    dir = tu_mkdtemp();
    model_dir = tu_path(dir, "m");
    char args[512];
    snprintf(args, sizeof args, "gen '%s' --preset tiny --quiet", model_dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
}

static void teardown(void)
{
    free(model_dir);
    tu_rmtree(dir);
}

static hoist_model *open_model(void)
{
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(model_dir, NULL, &m) == HOIST_OK, "%s", hoist_last_error());
    return m;
}

/* ---- the helpers, on a struct that grew once --------------------------------------------- */

/* Its first layout ended at a; b and c were appended (at or after the first layout's sizeof, as
 * docs/ABI.md requires). */
typedef struct first {
    size_t size;
    uint64_t a;
} first;
typedef struct grown {
    size_t size;
    uint64_t a;
    uint32_t b, c;
} grown;
/* A caller built against a header newer still. */
typedef struct newer {
    size_t size;
    uint64_t a;
    uint32_t b, c;
    uint64_t d;
} newer;

static const hoist__sized K = {"grown", "GROWN_INIT", offsetof(grown, a) + sizeof(uint64_t),
                               sizeof(grown)};
static const grown DEFAULTS = {.size = sizeof(grown), .a = 1, .b = 2, .c = 3};

START_TEST(test_in_older_caller_gets_defaults)
{
    first f = {.size = sizeof f, .a = 42};
    grown g;
    memset(&g, 0xee, sizeof g);
    ck_assert_int_eq(hoist__struct_in(&K, &g, &f, &DEFAULTS, "fn"), HOIST_OK);
    ck_assert_uint_eq(g.size, sizeof g);
    ck_assert_uint_eq(g.a, 42);
    ck_assert_uint_eq(g.b, 2);
    ck_assert_uint_eq(g.c, 3);
    /* no defaults: zeros */
    ck_assert_int_eq(hoist__struct_in(&K, &g, &f, NULL, "fn"), HOIST_OK);
    ck_assert(g.a == 42 && g.b == 0 && g.c == 0);
    /* NULL: the defaults alone */
    ck_assert_int_eq(hoist__struct_in(&K, &g, NULL, &DEFAULTS, "fn"), HOIST_OK);
    ck_assert(g.size == sizeof g && g.a == 1 && g.b == 2 && g.c == 3);
}
END_TEST

START_TEST(test_in_newer_caller_is_cut)
{
    newer n = {.size = sizeof n, .a = 5, .b = 6, .c = 7, .d = 8};
    grown g;
    ck_assert_int_eq(hoist__struct_in(&K, &g, &n, &DEFAULTS, "fn"), HOIST_OK);
    ck_assert(g.size == sizeof g && g.a == 5 && g.b == 6 && g.c == 7);
}
END_TEST

START_TEST(test_bad_sizes)
{
    static const size_t bad[] = {0, 1, sizeof(size_t), offsetof(grown, a) + 7};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        grown caller = {.size = bad[i], .a = 9}, g;
        ck_assert_int_eq(hoist__struct_in(&K, &g, &caller, &DEFAULTS, "my_fn"),
                         HOIST_E_INVALID_ARG);
        char want[128];
        snprintf(want, sizeof want, "my_fn: grown.size is %zu; initialise it with GROWN_INIT",
                 bad[i]);
        ck_assert_msg(strstr(hoist_last_error(), want), "%s", hoist_last_error());
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "at least 16"));
        ck_assert(g.size == sizeof g && g.a == 1); /* the defaults, not the caller's bytes */
        ck_assert_int_eq(hoist__struct_check(&K, &caller, "my_fn"), HOIST_E_INVALID_ARG);
    }
    first f = {.size = sizeof f};
    ck_assert_int_eq(hoist__struct_check(&K, &f, "my_fn"), HOIST_OK);
}
END_TEST

START_TEST(test_out_writes_only_the_callers_bytes)
{
    const grown src = {.size = 999, .a = 11, .b = 12, .c = 13};
    /* an older caller: its a, and not one byte more */
    unsigned char buf[sizeof(grown) + 16];
    memset(buf, 0x5a, sizeof buf);
    first f = {.size = sizeof f};
    memcpy(buf, &f, sizeof f);
    hoist__struct_out(&K, buf, &src);
    memcpy(&f, buf, sizeof f);
    ck_assert(f.size == sizeof f && f.a == 11);
    for (size_t i = sizeof f; i < sizeof buf; i++) ck_assert_uint_eq(buf[i], 0x5a);
    /* a newer caller: every field the library has; its own fields past them stay */
    newer n = {.size = sizeof n, .d = 77};
    hoist__struct_out(&K, &n, &src);
    ck_assert(n.size == sizeof n && n.a == 11 && n.b == 12 && n.c == 13 && n.d == 77);
    /* zeroing covers the same bytes */
    hoist__struct_zero(&K, &n);
    ck_assert(n.size == sizeof n && n.a == 0 && n.b == 0 && n.c == 0 && n.d == 77);
}
END_TEST

START_TEST(test_in_array_strides_by_element_size)
{
    /* an older caller's array: elements of its size, read at its stride */
    first arr[3] = {{sizeof(first), 10}, {sizeof(first), 20}, {sizeof(first), 30}};
    grown g;
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(hoist__struct_in_at(&K, &g, arr, i, &DEFAULTS, "fn"), HOIST_OK);
        ck_assert(g.a == 10 * (i + 1) && g.b == 2);
    }
    arr[2].size = sizeof(grown);
    ck_assert_int_eq(hoist__struct_in_at(&K, &g, arr, 2, &DEFAULTS, "fn"), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "grown[2].size is 24 but element 0's is 16"));
    arr[0].size = 0;
    ck_assert_int_eq(hoist__struct_in_at(&K, &g, arr, 1, &DEFAULTS, "fn"), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "grown[0].size is 0"));
}
END_TEST

/* ---- every initializer sets its struct's size ---------------------------------------------- */

START_TEST(test_initializers)
{
#define SIZED(type, initializer)                                                                  \
    do {                                                                                          \
        type x = initializer;                                                                     \
        ck_assert_msg(x.size == sizeof(type), #initializer);                                      \
        ck_assert_msg(hoist__sized_##type.ours == sizeof(type), #type);                           \
        ck_assert_msg(hoist__sized_##type.min > sizeof(size_t), #type);                           \
        ck_assert_str_eq(hoist__sized_##type.init, #initializer);                                 \
        ck_assert_str_eq(hoist__sized_##type.name, #type);                                        \
        n++;                                                                                      \
    } while (0)
    int n = 0;
    SIZED(hoist_open_options, HOIST_OPEN_OPTIONS_DEFAULT);
    SIZED(hoist_tensor_info, HOIST_TENSOR_INFO_INIT);
    SIZED(hoist_meta_value, HOIST_META_VALUE_INIT);
    SIZED(hoist_geometry, HOIST_GEOMETRY_INIT);
    SIZED(hoist_device_info, HOIST_DEVICE_INFO_INIT);
    SIZED(hoist_plan_device, HOIST_PLAN_DEVICE_DEFAULT);
    SIZED(hoist_plan_options, HOIST_PLAN_OPTIONS_DEFAULT);
    SIZED(hoist_plan_info, HOIST_PLAN_INFO_INIT);
    SIZED(hoist_plan_usage, HOIST_PLAN_USAGE_INIT);
    SIZED(hoist_fit, HOIST_FIT_INIT);
    SIZED(hoist_load_options, HOIST_LOAD_OPTIONS_DEFAULT);
    SIZED(hoist_load_stats, HOIST_LOAD_STATS_INIT);
    SIZED(hoist_view, HOIST_VIEW_INIT);
    SIZED(hoist_sum_options, HOIST_SUM_OPTIONS_DEFAULT);
    SIZED(hoist_pack_options, HOIST_PACK_OPTIONS_DEFAULT);
    SIZED(hoist_pack_stats, HOIST_PACK_STATS_INIT);
    SIZED(hoist_packed_info, HOIST_PACKED_INFO_INIT);
    SIZED(hoist_tensor_packing, HOIST_TENSOR_PACKING_INIT);
    SIZED(hoist_ceiling_options, HOIST_CEILING_OPTIONS_DEFAULT);
    SIZED(hoist_ceiling, HOIST_CEILING_INIT);
    SIZED(hoist_session_options, HOIST_SESSION_OPTIONS_DEFAULT);
    SIZED(hoist_session_stats, HOIST_SESSION_STATS_INIT);
    SIZED(hoist_allocator, HOIST_ALLOCATOR_INIT);
    SIZED(hoist_tp_options, HOIST_TP_OPTIONS_DEFAULT);
    SIZED(hoist_tp_share, HOIST_TP_SHARE_INIT);
#undef SIZED
    /* one line per row of core/abi.h's table */
    int rows = 0;
#define X(type, last, init) rows++;
    HOIST__SIZED_STRUCTS(X)
#undef X
    ck_assert_int_eq(n, rows);
}
END_TEST

/* ---- the public functions ------------------------------------------------------------------- */

static int count_calls(const hoist_piece *piece, void *user)
{
    (void)piece;
    ++*(int *)user;
    return 0;
}

/* A result struct of size ours + 64 (a caller built against a newer header), the extra bytes
 * 0xc3: the library fills its own fields and leaves the rest. */
#define NEWER(type, name)                                                                         \
    _Alignas(16) unsigned char name##_buf[sizeof(type) + 64];                                     \
    memset(name##_buf, 0xc3, sizeof name##_buf);                                                  \
    type *name = (type *)(void *)name##_buf;                                                      \
    name->size = sizeof name##_buf
#define NEWER_INTACT(name)                                                                        \
    for (size_t k_ = sizeof *name; k_ < sizeof name##_buf; k_++)                                  \
    ck_assert_uint_eq(name##_buf[k_], 0xc3)

START_TEST(test_results_for_a_newer_caller)
{
    hoist_model *m = open_model();
    NEWER(hoist_tensor_info, t);
    ck_assert_int_eq(hoist_model_tensor(m, 0, t), HOIST_OK);
    NEWER_INTACT(t);
    ck_assert(t->size == sizeof t_buf && t->name && t->nbytes > 0);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    NEWER(hoist_load_stats, s);
    ck_assert_int_eq(hoist_weights_stats(w, s), HOIST_OK);
    NEWER_INTACT(s);
    ck_assert_uint_eq(s->bytes, hoist_model_total_bytes(m));
    ck_assert_uint_eq(s->file_bytes, s->bytes);
    NEWER(hoist_view, v);
    ck_assert_int_eq(hoist_weights_view(w, 0, v), HOIST_OK);
    NEWER_INTACT(v);
    ck_assert(v->data && v->nbytes == t->nbytes);
    hoist_weights_free(w);
    NEWER(hoist_geometry, g);
    ck_assert_int_eq(hoist_model_geometry(m, g), HOIST_OK);
    NEWER_INTACT(g);
    ck_assert(g->n_layers == 2 && g->dtype == HOIST_DTYPE_BF16);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_bad_sizes_are_refused_before_any_work)
{
    hoist_model *m = open_model();
    /* options */
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.size = 0;
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &lo, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_load: hoist_load_options.size is 0"));
    ck_assert_uint_eq(hoist_weights_live(NULL), 0);
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    oo.size = sizeof(size_t);
    hoist_model *m2 = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(model_dir, &oo, &m2), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(m2);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_open_options.size is 8"));

    /* a sink's stats: refused before the sink sees a byte */
    int calls = 0;
    hoist_load_stats st = HOIST_LOAD_STATS_INIT;
    st.size = 4;
    ck_assert_int_eq(hoist_load_sink(m, NULL, count_calls, &calls, &st), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(calls, 0);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_load_stats.size is 4"));

    /* pack: no file is written */
    char *out = tu_path(dir, "x.hoist");
    hoist_pack_stats ps = {.size = 0};
    ck_assert_int_eq(hoist_pack(m, out, NULL, &ps), HOIST_E_INVALID_ARG);
    struct stat sb;
    ck_assert_int_ne(stat(out, &sb), 0);
    free(out);

    /* results: untouched */
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    t.size = 0;
    t.nbytes = 4242;
    ck_assert_int_eq(hoist_model_tensor(m, 0, &t), HOIST_E_INVALID_ARG);
    ck_assert_uint_eq(t.nbytes, 4242);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    g.size = 16;
    g.n_layers = 77;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_E_INVALID_ARG);
    ck_assert_uint_eq(g.n_layers, 77);
    ck_assert_int_eq(hoist_geometry_check(&g), HOIST_E_INVALID_ARG);

    /* plan options, their device array and their geometry */
    hoist_coordinator *c = NULL;
    ck_assert_int_eq(hoist_coordinator_create(&c), HOIST_OK);
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 1ull << 30, 0),
                                 TU_PLAN_DEVICE(0, 1ull << 30, 0)};
    devs[1].size = sizeof(hoist_plan_device) + 8;
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    po.devices = devs;
    po.ndevices = 2;
    po.coordinator = c;
    hoist_plan *p = (hoist_plan *)1;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_plan_create: hoist_plan_device[1]"));
    po.ndevices = 1;
    g.size = 0;
    po.geometry = &g;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_geometry.size is 0"));
    po.geometry = NULL;
    hoist_fit fit = HOIST_FIT_INIT;
    fit.size = offsetof(hoist_fit, max_seq_len) + 8; /* short of the array */
    ck_assert_int_eq(hoist_plan_fit(m, &po, &fit), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_fit.size"));
    ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 0);

    /* a good plan; results with bad sizes */
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK);
    hoist_plan_info in = {.size = 0};
    ck_assert_int_eq(hoist_plan_info_get(p, &in), HOIST_E_INVALID_ARG);
    hoist_plan_usage u = {.size = 1};
    ck_assert_int_eq(hoist_plan_usage_get(p, 0, &u), HOIST_E_INVALID_ARG);
    hoist_geometry pg = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_plan_geometry(p, &pg), HOIST_OK);
    ck_assert_uint_eq(pg.n_layers, 2);
    ck_assert_int_eq(hoist_plan_geometry(NULL, &pg), HOIST_E_INVALID_ARG);
    hoist_plan_free(p);
    hoist_coordinator_free(c);

    /* device info, ceilings */
    hoist_device_info di = {.size = 0};
    ck_assert_int_eq(hoist_device_info_get(HOIST_DEVICE_HOST, &di), HOIST_E_INVALID_ARG);
    hoist_ceiling ce = {.size = 0};
    ck_assert_int_eq(hoist_read_ceiling(m, NULL, &ce), HOIST_E_INVALID_ARG);
    hoist_ceiling_options co = HOIST_CEILING_OPTIONS_DEFAULT;
    co.size = 3;
    ce = (hoist_ceiling)HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_staging_ceiling(m, &co, &ce), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_ceiling_options.size is 3"));
    hoist_sum_options so = HOIST_SUM_OPTIONS_DEFAULT;
    so.size = 0;
    ck_assert_int_eq(hoist_model_sum(m, &so), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_model_verify(m, &so), HOIST_E_INVALID_ARG);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_device_name)
{
    char buf[HOIST_DEVICE_NAME_MAX];
    ck_assert_str_eq(hoist_device_name(HOIST_DEVICE_HOST, buf, sizeof buf), "host");
    ck_assert_str_eq(hoist_device_name(3, buf, sizeof buf), "cuda:3");
    ck_assert_ptr_eq(hoist_device_name(0, buf, sizeof buf), buf);
    ck_assert_str_eq(hoist_device_name(-7, buf, sizeof buf), "device(-7)");
    ck_assert_str_eq(hoist_device_name(2147483647, buf, sizeof buf), "cuda:2147483647");
    ck_assert_str_eq(hoist_device_name(-2147483647 - 1, buf, sizeof buf), "device(-2147483648)");
    /* cut to fit; nothing written without room */
    ck_assert_str_eq(hoist_device_name(12, buf, 5), "cuda");
    memset(buf, 'z', sizeof buf);
    ck_assert_str_eq(hoist_device_name(1, buf, 0), "");
    ck_assert_int_eq(buf[0], 'z');
    ck_assert_str_eq(hoist_device_name(1, NULL, 8), "");
    /* what it writes, hoist_device_parse reads back */
    for (int d = -1; d < 20; d++) {
        int back = -99;
        ck_assert_int_eq(hoist_device_parse(hoist_device_name(d, buf, sizeof buf), &back),
                         HOIST_OK);
        ck_assert_int_eq(back, d);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("helpers");
    tcase_add_test(tc, test_in_older_caller_gets_defaults);
    tcase_add_test(tc, test_in_newer_caller_is_cut);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_out_writes_only_the_callers_bytes);
    tcase_add_test(tc, test_in_array_strides_by_element_size);
    tcase_add_test(tc, test_initializers);
    tcase_add_test(tc, test_device_name);
    suite_add_tcase(s, tc);
    TCase *api = tcase_create("api");
    tcase_add_checked_fixture(api, setup, teardown);
    tcase_add_test(api, test_results_for_a_newer_caller);
    tcase_add_test(api, test_bad_sizes_are_refused_before_any_work);
    suite_add_tcase(s, api);
    return tu_run_suite(s);
}
