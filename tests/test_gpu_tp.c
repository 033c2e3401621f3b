/* Tensor-parallel slices and cooperative loads on GPUs (loader/load_tp.c, gpu/nccl.c). Needs a
 * CUDA device: exits 77 (skipped) without one. NCCL is found at run time (HOIST_NCCL_LIBRARY,
 * the nvidia-nccl wheel); without it the NCCL checks say so and pass, unless HOIST_REQUIRE_NCCL
 * is set (tools/device-tp.sh sets it).
 *  - a world of one over hoist's own communicator (ncclCommInitAll on cuda:0) equals a normal
 *    load, whole and sliced; with two GPUs, two ranks over NCCL;
 *  - two processes each load their rank's slice onto the one GPU, bytes checked;
 *  - slices through every path into GPU memory, padding zero-filled on the device. */
#include "gpu/gpu.h"
#include "tp_test_common.h"

#include <sys/wait.h>

static char *dir;
static const char *self_exe;
static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(dir); }

static bool nccl_ready(void)
{
    int v = 0;
    if (hoist_nccl_version(&v) == HOIST_OK) return true;
    ck_assert_msg(!getenv("HOIST_REQUIRE_NCCL"), "NCCL: %s", hoist_last_error());
    printf("NCCL not found, its checks skipped: %s\n", hoist_last_error());
    return false;
}

static char *gen_llama(const char *sub, const char *extra)
{
    char args[512];
    snprintf(args, sizeof args, "--layers 2 --hidden 128 --intermediate 256 --heads 4 --kv-heads "
                                "2 --vocab 256 --dtype bf16 %s",
             extra);
    return tp_gen(dir, sub, args);
}

/* Every tensor of w against rank's cut by the default rules (or the whole tensor). */
static void assert_rank(hoist_model *m, hoist_weights *w, const hoist_tp_options *t)
{
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        hoist_tp_split s = {.dim = HOIST_TP_REPLICATE, .parts = 1};
        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
        if (t->rules_default) ck_assert_int_eq(hoist_tp_default_rule(m, i, t, &s), HOIST_OK);
        tp_ref c;
        ck_assert(tp_ref_cut(&ti, s.dim, s.parts, s.index, s.pad, &c));
        tp_assert_slice(m, w, i, &c, "gpu");
    }
}

static hoist_tp_options options(int rank, int world, int rules, int cooperative)
{
    hoist_tp_options t = HOIST_TP_OPTIONS_DEFAULT;
    t.rank = rank;
    t.world = world;
    t.rules_default = rules;
    t.cooperative = cooperative;
    return t;
}

/* hoist_load_group on GPUs, cooperative: NCCL moves the shared parts. */
static void group_on_gpus(hoist_model *m, const int *devices, size_t n, int rules, hoist_path p)
{
    hoist_tp_options t = options(0, (int)n, rules, 1);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = p;
    o.tp = &t;
    hoist_weights *w[2] = {0};
    int rc = hoist_load_group(m, &o, devices, n, w);
    ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
    for (size_t r = 0; r < n; r++) {
        hoist_tp_options rt = options((int)r, (int)n, rules, 1);
        assert_rank(m, w[r], &rt);
        hoist_load_stats s = tp_stats(w[r]);
        hoist_tp_share sh = HOIST_TP_SHARE_INIT;
        ck_assert_int_eq(hoist_weights_tp_share(w[r], &sh), HOIST_OK);
        ck_assert_int_eq(sh.pending, 0);
        ck_assert_int_eq(sh.device, devices[r]);
        ck_assert_double_gt(s.exchange_seconds, 0);
        ck_assert_uint_eq(s.exchange_bytes, sh.bytes - sh.part_bytes);
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(w[r], 0, &v), HOIST_OK);
        ck_assert_int_eq(v.device, devices[r]);
        hoist_weights_free(w[r]);
    }
}

/* Fails on the group's last rank (user: the rank count). */
static int fail_last_rank(const hoist_tensor_info *ti, int rank, int world, hoist_tp_split *s,
                          void *user)
{
    (void)ti, (void)world, (void)s;
    return (size_t)rank + 1 == *(size_t *)user ? HOIST_E_NOT_FOUND : HOIST_TP_RULE_DEFAULT;
}

/* A world of one through hoist's own communicator equals a normal load; two GPUs, two ranks. */
START_TEST(test_nccl_group)
{
    if (!nccl_ready()) return;
    char *model = gen_llama("st", "");
    hoist_model *m = st_open(model);
    int one[1] = {0}, two[2] = {0, 1};
    for (int p = 0; p < 3; p++) {
        group_on_gpus(m, one, 1, 0, paths[p]); /* the whole model: a normal load's bytes */
        group_on_gpus(m, one, 1, 1, paths[p]);
    }
    if (hoist_device_count() >= 2) {
        group_on_gpus(m, two, 2, 0, HOIST_PATH_URING);
        group_on_gpus(m, two, 2, 1, HOIST_PATH_MMAP);
    } else {
        printf("one GPU: the two-GPU group was not run\n");
    }
    /* a rank that fails fails the group, and every device gets its memory back */
    hoist_device_info before = HOIST_DEVICE_INFO_INIT, after = HOIST_DEVICE_INFO_INIT;
    ck_assert_int_eq(hoist_device_info_get(0, &before), HOIST_OK);
    int64_t live = hoist__gpu_live(HOIST_GPU_RES_DEVICE);
    size_t n = hoist_device_count() >= 2 ? 2 : 1;
    hoist_tp_options t = options(0, (int)n, 1, 1);
    t.rule = fail_last_rank;
    t.rule_user = &n;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.tp = &t;
    hoist_weights *w[2] = {(void *)1, (void *)1};
    ck_assert_int_eq(hoist_load_group(m, &o, two, n, w), HOIST_E_NOT_FOUND);
    ck_assert_ptr_null(w[0]);
    ck_assert_int_eq(hoist_device_info_get(0, &after), HOIST_OK);
    ck_assert_uint_le(before.free_bytes, after.free_bytes + (2u << 20));
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), live);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* The child of test_two_processes: loads rank `rank` of 2 onto cuda:0 and checks it without
 * Check (which is not running in this process). 0 when every byte is right. */
static int child_rank(const char *model, int rank, hoist_path path)
{
    hoist_model *m = NULL;
    if (hoist_model_open(model, NULL, &m) < 0) return 2;
    hoist_tp_options t = options(rank, 2, 1, 0);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 0;
    o.path = path;
    o.tp = &t;
    hoist_weights *w = NULL;
    if (hoist_load(m, &o, &w) < 0) {
        fprintf(stderr, "rank %d: %s\n", rank, hoist_last_error());
        return 3;
    }
    int bad = 0;
    for (size_t i = 0; i < hoist_model_tensor_count(m) && !bad; i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        hoist_tp_split s;
        tp_ref c;
        hoist_model_tensor(m, i, &ti);
        if (hoist_tp_default_rule(m, i, &t, &s) < 0 ||
            !tp_ref_cut(&ti, s.dim, s.parts, s.index, false, &c))
            return 4;
        uint8_t *full = malloc(ti.nbytes + 1), *got = malloc(c.nbytes + 1);
        int fd = open(hoist_model_file_path(m, ti.file), O_RDONLY);
        bad = fd < 0 || pread(fd, full, ti.nbytes, (off_t)ti.offset) != (ssize_t)ti.nbytes;
        if (fd >= 0) close(fd);
        uint8_t *want = bad ? NULL : tp_ref_bytes(&c, full);
        bad = bad || hoist_weights_read(w, i, 0, got, c.nbytes) < 0 ||
              memcmp(got, want, c.nbytes) != 0;
        if (bad) fprintf(stderr, "rank %d: tensor %s differs\n", rank, ti.name);
        free(full);
        free(got);
        free(want);
    }
    hoist_weights_free(w);
    hoist_model_free(m);
    return bad;
}

/* Two processes, each its rank's slice onto the one GPU, at the same time. */
START_TEST(test_two_processes)
{
    char *model = gen_llama("st", "");
    for (int p = 0; p < 3; p++) {
        pid_t pid[2];
        for (int r = 0; r < 2; r++) {
            char rank[8], path[8];
            snprintf(rank, sizeof rank, "%d", r);
            snprintf(path, sizeof path, "%d", (int)paths[p]);
            pid[r] = fork();
            ck_assert_int_ge(pid[r], 0);
            if (pid[r] == 0) { /* exec: a CUDA context does not survive fork */
                execl(self_exe, self_exe, "--rank", model, rank, path, (char *)NULL);
                _exit(127);
            }
        }
        for (int r = 0; r < 2; r++) {
            int st = 0;
            ck_assert_int_eq(waitpid(pid[r], &st, 0), pid[r]);
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %d through %s: status %d",
                          r, hoist_path_name(paths[p]), st);
        }
    }
    free(model);
}
END_TEST

/* Slices into GPU memory through every path (mmap asked to register: it stages instead), with a
 * padded vocabulary zero-filled on the device. */
START_TEST(test_slices_on_device)
{
    char *model = tp_gen(dir, "odd", "--layers 1 --hidden 128 --intermediate 256 --heads 4 "
                                     "--kv-heads 2 --vocab 257 --dtype bf16");
    hoist_model *m = st_open(model);
    for (int p = 0; p < 3; p++)
        for (int rank = 0; rank < 2; rank++) {
            hoist_tp_options t = options(rank, 2, 1, 0);
            t.pad = 1;
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.device = 0;
            o.path = paths[p];
            o.mmap_register = 1;
            o.tp = &t;
            o.verify = HOIST_VERIFY_READBACK;
            hoist_weights *w = NULL;
            ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
            assert_rank(m, w, &t);
            hoist_weights_free(w);
        }
    hoist_model_free(m);
    free(model);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--rank") == 0)
        return child_rank(argv[2], atoi(argv[3]), (hoist_path)atoi(argv[4]));
    self_exe = argv[0];
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_tp");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_two_processes);
    tcase_add_test(tc, test_nccl_group);
    tcase_add_test(tc, test_slices_on_device);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
