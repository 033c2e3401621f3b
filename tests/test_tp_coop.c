/* Cooperative loads on the host (loader/load_tp.c, loader/group.c): each rank reads 1/world of
 * the bytes every rank holds alike, and after the exchange (the caller's, through
 * hoist_weights_tp_share, or hoist_load_group's own) every rank holds what a whole load gives;
 * a rank that fails makes every rank fail, naming it, with nothing left behind; fault sweeps over
 * sliced and cooperative loads. The NCCL exchange is test_gpu_tp.c's. */
#include "fault_sweep.h"
#include "tp_test_common.h"

static char *dir;
static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};

static void setup(void)
{
    fs_init();
    dir = tu_mkdtemp();
}
static void teardown(void) { tu_rmtree(dir); }

static hoist_tp_options coop(int rank, int world, int rules_default)
{
    hoist_tp_options t = HOIST_TP_OPTIONS_DEFAULT;
    t.rank = rank;
    t.world = world;
    t.rules_default = rules_default;
    t.cooperative = 1;
    return t;
}

static hoist_tp_share share_of(const hoist_weights *w)
{
    hoist_tp_share s = HOIST_TP_SHARE_INIT;
    ck_assert_int_eq(hoist_weights_tp_share(w, &s), HOIST_OK);
    return s;
}

/* What an all-gather over the caller's group does: every rank's part into every other arena. */
static void exchange_by_hand(hoist_weights **w, int world)
{
    for (int r = 0; r < world; r++) {
        hoist_tp_share s = share_of(w[r]);
        ck_assert_int_eq(s.pending, 1);
        for (int q = 0; q < world; q++) {
            if (q == r) continue;
            hoist_tp_share o = share_of(w[q]);
            ck_assert_uint_eq(o.bytes, s.bytes);
            memcpy((uint8_t *)s.base + (uint64_t)q * s.part_bytes,
                   (uint8_t *)o.base + (uint64_t)q * o.part_bytes, s.part_bytes);
        }
    }
}

/* Every tensor of w is rank's slice by the default rules (or whole, without them). */
static void assert_rank(hoist_model *m, hoist_weights *w, const hoist_tp_options *t)
{
    if (!t->rules_default) {
        tu_assert_weights_match_files(m, w);
        return;
    }
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        hoist_tp_split s;
        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
        ck_assert_int_eq(hoist_tp_default_rule(m, i, t, &s), HOIST_OK);
        tp_ref c;
        ck_assert(tp_ref_cut(&ti, s.dim, s.parts, s.index, s.pad, &c));
        tp_assert_slice(m, w, i, &c, "cooperative");
    }
}

/* Whole tensors, three ranks: each reads a third (exactly, through stream), the parts of the
 * others arrive by the caller's exchange, and then every rank holds the whole model. */
START_TEST(test_share_whole_model)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    uint64_t total = hoist_model_total_bytes(m), read = 0;
    for (int p = 0; p < 3; p++) {
        hoist_weights *w[3];
        hoist_tp_options t[3];
        read = 0;
        for (int r = 0; r < 3; r++) {
            t[r] = coop(r, 3, 0);
            tp_count_start(true);
            w[r] = tp_load_ok(m, paths[p], &t[r]);
            tp_count_stop();
            hoist_load_stats s = tp_stats(w[r]);
            read += s.bytes;
            ck_assert_uint_le(s.bytes, total / 3 + 256);
            if (paths[p] == HOIST_PATH_STREAM)
                ck_assert_uint_eq(atomic_load(&tp_read_count), s.bytes);
            hoist_tp_share sh = share_of(w[r]);
            ck_assert_uint_eq(sh.world, 3);
            ck_assert_uint_eq(sh.rank, (unsigned)r);
            ck_assert_uint_eq(sh.bytes, 3 * sh.part_bytes);
            ck_assert_uint_ge(sh.bytes, total);
            ck_assert_int_eq(sh.device, HOIST_DEVICE_HOST);
        }
        ck_assert_uint_eq(read, total); /* every byte read once, by one rank */
        exchange_by_hand(w, 3);
        for (int r = 0; r < 3; r++) {
            assert_rank(m, w[r], &t[r]);
            hoist_weights_free(w[r]);
        }
    }
    hoist_model_free(m);
    free(model);
}
END_TEST

/* Slices and a share at once: the replicated norms are shared, the rest each rank's own. */
START_TEST(test_share_with_slices)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    hoist_weights *w[2];
    hoist_tp_options t[2];
    for (int r = 0; r < 2; r++) {
        t[r] = coop(r, 2, 1);
        w[r] = tp_load_ok(m, paths[r], &t[r]);
        hoist_tp_share s = share_of(w[r]);
        ck_assert_uint_gt(s.bytes, 0);
        ck_assert_uint_lt(s.bytes, 8192); /* norms: 5 x 128 bf16 */
    }
    exchange_by_hand(w, 2);
    for (int r = 0; r < 2; r++) {
        assert_rank(m, w[r], &t[r]);
        hoist_weights_free(w[r]);
    }
    /* not cooperative: nothing is shared */
    hoist_tp_options plain = coop(0, 2, 1);
    plain.cooperative = 0;
    hoist_weights *one = tp_load_ok(m, HOIST_PATH_STREAM, &plain);
    hoist_tp_share s = share_of(one);
    ck_assert_uint_eq(s.bytes, 0);
    ck_assert_int_eq(s.pending, 0);
    hoist_weights_free(one);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* hoist_load_group on the host: one thread per rank, the exchange done by hoist; every rank ends
 * with the whole model (or its slices), having read its part. */
START_TEST(test_group_host)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    int devices[4] = {HOIST_DEVICE_HOST, HOIST_DEVICE_HOST, HOIST_DEVICE_HOST, HOIST_DEVICE_HOST};
    for (int rules = 0; rules < 2; rules++)
        for (int cooperative = 0; cooperative < 2; cooperative++)
            for (int p = 0; p < 3; p++) {
                hoist_tp_options t = coop(0, 1, rules);
                t.cooperative = cooperative;
                hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
                o.path = paths[p];
                o.threads = 2;
                o.tp = &t;
                int n = 2 + p % 2 * 2; /* 2 or 4 ranks */
                hoist_weights *w[4] = {0};
                int rc = hoist_load_group(m, &o, devices, (size_t)n, w);
                ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
                uint64_t read = 0;
                for (int r = 0; r < n; r++) {
                    hoist_tp_options rt = coop(r, n, rules);
                    assert_rank(m, w[r], &rt);
                    hoist_load_stats s = tp_stats(w[r]);
                    hoist_tp_share sh = share_of(w[r]);
                    read += s.bytes;
                    ck_assert_int_eq(sh.pending, 0);
                    if (cooperative) {
                        ck_assert_uint_eq(s.exchange_bytes, sh.bytes - sh.part_bytes);
                    } else {
                        ck_assert_uint_eq(sh.bytes, 0);
                        ck_assert_uint_eq(s.exchange_bytes, 0);
                    }
                }
                if (cooperative && !rules) ck_assert_uint_eq(read, hoist_model_total_bytes(m));
                for (int r = 0; r < n; r++) hoist_weights_free(w[r]);
            }
    hoist_model_free(m);
    free(model);
}
END_TEST

/* A rule that fails on one rank only. */
static int fail_on_rank(const hoist_tensor_info *t, int rank, int world, hoist_tp_split *s,
                        void *user)
{
    (void)t, (void)world, (void)s;
    return rank == *(int *)user ? HOIST_E_NOT_FOUND : HOIST_TP_RULE_DEFAULT;
}

/* One rank fails: every rank fails, the group reports that rank's own failure (not the others'
 * HOIST_E_ABORTED), and nothing is left behind. */
START_TEST(test_group_failure)
{
    char *model = tp_gen(dir, "st", "--layers 1 --hidden 64 --intermediate 128 --heads 4 "
                                    "--kv-heads 2 --vocab 128 --dtype bf16");
    hoist_model *m = st_open(model);
    int devices[3] = {HOIST_DEVICE_HOST, HOIST_DEVICE_HOST, HOIST_DEVICE_HOST};
    for (int bad = 0; bad < 3; bad++) {
        hoist_tp_options t = coop(0, 3, 0);
        t.rule = fail_on_rank;
        t.rule_user = &bad;
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.tp = &t;
        hoist_weights *w[3] = {(void *)1, (void *)1, (void *)1};
        int64_t live = hoist__alloc_live_bytes();
        ck_assert_int_eq(hoist_load_group(m, &o, devices, 3, w), HOIST_E_NOT_FOUND);
        char want[32];
        snprintf(want, sizeof want, "rank %d (host)", bad);
        ck_assert_msg(strstr(hoist_last_error(), want), "%s", hoist_last_error());
        for (int r = 0; r < 3; r++) ck_assert_ptr_null(w[r]);
        ck_assert_int_eq(hoist__alloc_live_bytes(), live);
        ck_assert_uint_eq(hoist_weights_live(NULL), 0);
    }
    /* what the group refuses */
    hoist_weights *w[2];
    hoist_tp_options t = coop(0, 3, 0);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.tp = &t;
    ck_assert_int_eq(hoist_load_group(m, &o, devices, 2, w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tp->world is 3 for 2 devices"));
    int mixed[2] = {HOIST_DEVICE_HOST, 0};
    t.world = 2;
    ck_assert_int_eq(hoist_load_group(m, &o, mixed, 2, w), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_load_group(m, &o, devices, 0, w), HOIST_E_INVALID_ARG);
    int nccl = 0;
    int rc = hoist_nccl_version(&nccl); /* NCCL is no part of CI: whatever it says, it says why */
    ck_assert(rc == HOIST_OK ? nccl > 0 : strlen(hoist_last_error()) > 10);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* ---- fault sweeps ------------------------------------------------------------------------- */

typedef struct sweep {
    const char *model;
    fs_fault fault;
    hoist__gpu_call call;
    bool as_device;
    bool group;
    hoist_path path;
} sweep;

/* Runs one load (a rank, or a group of two) under fault k; checks what it leaves. */
static bool sweep_run(const sweep *sw, unsigned k, unsigned *failed)
{
    fs_case c = {.model = sw->model, .fault = sw->fault, .call = sw->call};
    fs_snapshot before = fs_take();
    hoist_model *m = st_open(sw->model);
    hoist_tp_options t = coop(1, 2, 1);
    t.pad = 1;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = sw->path;
    o.threads = 2;
    o.chunk_bytes = 8192;
    o.tp = &t;
    hoist_weights *w[2] = {0};
    int devices[2] = {HOIST_DEVICE_HOST, HOIST_DEVICE_HOST};
    fs_arm(&c, k);
    int rc = sw->group ? hoist_load_group(m, &o, devices, 2, w) : hoist_load(m, &o, &w[0]);
    unsigned seen = atomic_load(&fs_calls);
    fs_disarm();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", hoist_last_error());
    if (rc == HOIST_OK) {
        for (int r = 0; r < (sw->group ? 2 : 1); r++) {
            hoist_tp_options rt = coop(r, 2, 1);
            rt.pad = 1;
            if (sw->group) assert_rank(m, w[r], &rt);
        }
    } else {
        ck_assert_msg(rc == fs_expected_status(&c) || rc == HOIST_E_ABORTED,
                      "fault at %u: %s: %s", k, hoist_status_name(rc), msg);
        ck_assert_ptr_null(w[0]);
        ck_assert_ptr_null(w[1]);
        (*failed)++;
    }
    hoist_weights_free(w[0]);
    hoist_weights_free(w[1]);
    hoist_model_free(m);
    fs_snapshot after = fs_take();
    fs_assert_same(&before, &after, &c, k, rc);
    return seen >= k;
}

static void run_sweep(const sweep *sw, unsigned max_k)
{
    hoist__gpu_set_hooks(&(hoist__gpu_hooks){.call = fs_gpu_hook,
                                             .host_as_device = sw->as_device});
    unsigned k = 1, failed = 0;
    while (sweep_run(sw, k, &failed)) ck_assert_uint_lt(++k, max_k);
    hoist__gpu_set_hooks(NULL);
    ck_assert_uint_gt(failed, 0);
}

/* Host allocations and reads failing one at a time, on a rank alone and in a group, through the
 * host and the device pipeline: the status is the fault's (or the group's abandonment of a rank
 * that did not fail itself), nothing is published, and nothing is left behind. */
START_TEST(test_fault_sweeps)
{
    char *model = tp_gen(dir, "st", "--layers 1 --hidden 64 --intermediate 96 --heads 4 "
                                    "--kv-heads 2 --vocab 101 --dtype bf16");
    fs_fault faults[] = {FS_HOST_ALLOC, FS_READ_EIO};
    for (int f = 0; f < 2; f++)
        for (int g = 0; g < 2; g++)
            for (int p = 0; p < 3; p++) {
                sweep sw = {.model = model, .fault = faults[f], .group = g, .path = paths[p],
                            .as_device = p == 1};
                run_sweep(&sw, 4000);
            }
    hoist__gpu_call calls[] = {HOIST_GPU_PINNED_ALLOC, HOIST_GPU_COPY_H2D, HOIST_GPU_EVENT_SYNC,
                               HOIST_GPU_MEM_ALLOC};
    for (int i = 0; i < 4; i++) {
        sweep sw = {.model = model, .fault = FS_GPU_CALL, .call = calls[i], .group = i % 2,
                    .as_device = true, .path = HOIST_PATH_STREAM};
        run_sweep(&sw, 4000);
    }
    free(model);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tp_coop");
    TCase *tc = tcase_create("cooperative");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_share_whole_model);
    tcase_add_test(tc, test_share_with_slices);
    tcase_add_test(tc, test_group_host);
    tcase_add_test(tc, test_group_failure);
    tcase_add_test(tc, test_fault_sweeps);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
