/* The bounded-RAM proof on a GPU machine: a checkpoint at least four times a cgroup v2
 * memory.max loads into the GPU from inside that cgroup through the stream path, and its bytes
 * verify. The mmap path runs in an identical cgroup for comparison; what happens to it (time,
 * memory peak, killed or not) is reported, not asserted.
 *
 * Needs root, cgroup v2 with the memory controller, and a GPU; skips (77) otherwise. Each run is
 * the CLI (`hoist load`) started in a fresh child cgroup, cold (page cache dropped first).
 * Environment: HOIST_CGROUP_MAX (bytes of memory.max, default 2 GiB), HOIST_CGROUP_MODEL (a model
 * at least 4x that; generated into $TMPDIR when unset). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

static uint64_t cg_max = 2ull << 30;
static char *model_path;
static char *tmp;

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The text of a small kernel file (sysfs reports a size its reads do not match). */
static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return 0;
}

static uint64_t read_key(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return UINT64_MAX;
    char line[256];
    unsigned long long v = UINT64_MAX;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!kl) {
            v = strtoull(line, NULL, 10);
            break;
        }
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            v = strtoull(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

typedef struct cg_run {
    int exit_code;     /* -1: killed by a signal */
    int signal;
    double seconds;
    uint64_t peak;     /* memory.peak of the cgroup (UINT64_MAX where the kernel lacks it) */
    uint64_t oom_kills;
    char output[4096]; /* the CLI's stdout and stderr */
} cg_run;

/* Runs `hoist ARGS` inside a new cgroup limited to cg_max, after dropping the page cache. */
static void run_in_cgroup(const char *args, cg_run *r)
{
    memset(r, 0, sizeof *r);
    char cg[256], f[320], out[512], cmd[2048];
    snprintf(cg, sizeof cg, CG_ROOT "/hoist-test-%d-%ld", (int)getpid(), (long)time(NULL));
    ck_assert_msg(mkdir(cg, 0755) == 0, "mkdir %s: %s", cg, strerror(errno));
    char max[32];
    snprintf(max, sizeof max, "%llu", (unsigned long long)cg_max);
    snprintf(f, sizeof f, "%s/memory.max", cg);
    ck_assert_msg(write_file(f, max) == 0, "cannot set %s", f);
    snprintf(f, sizeof f, "%s/memory.swap.max", cg);
    (void)write_file(f, "0"); /* absent without swap accounting */

    sync();
    ck_assert_int_eq(write_file("/proc/sys/vm/drop_caches", "3"), 0);
    snprintf(out, sizeof out, "%s/out.txt", tmp);
    snprintf(cmd, sizeof cmd, "exec %s %s > '%s' 2>&1", HOIST_CLI, args, out);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char procs[320];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", cg);
        if (write_file(procs, "0") != 0) _exit(125);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(126);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    snprintf(f, sizeof f, "%s/memory.peak", cg);
    r->peak = read_key(f, "");
    snprintf(f, sizeof f, "%s/memory.events", cg);
    r->oom_kills = read_key(f, "oom_kill");
    (void)read_text(out, r->output, sizeof r->output);
    ck_assert_msg(rmdir(cg) == 0, "rmdir %s: %s", cg, strerror(errno));
}

static void report(const char *what, const cg_run *r)
{
    fprintf(stderr,
            "cgroup %s: memory.max %.2f GiB, model %s: exit %d signal %d, %.2f s, memory.peak "
            "%.2f GiB, oom kills %llu\n%s\n",
            what, (double)cg_max / (1 << 30), model_path, r->exit_code, r->signal, r->seconds,
            r->peak == UINT64_MAX ? -1.0 : (double)r->peak / (1 << 30),
            (unsigned long long)r->oom_kills, r->output);
}

/* The model: HOIST_CGROUP_MODEL, or one generated 4.5x memory.max. (Check's asserts only work
 * inside a test, hence here rather than in main.) */
static void model_setup(void)
{
    tmp = tu_mkdtemp();
    const char *given = getenv("HOIST_CGROUP_MODEL");
    if (given) {
        model_path = strdup(given);
        return;
    }
    model_path = tu_path(tmp, "model");
    char args[1024];
    snprintf(args, sizeof args, "gen '%s' --size %lluM --quiet", model_path,
             (unsigned long long)((cg_max * 9 / 2) >> 20));
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
}

static void model_teardown(void)
{
    free(model_path);
    tu_rmtree(tmp);
}

START_TEST(test_stream_loads_4x_model_in_cgroup)
{
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(model_path, NULL, &m), HOIST_OK);
    uint64_t total = hoist_model_total_bytes(m);
    hoist_model_free(m);
    ck_assert_msg(total >= 4 * cg_max, "model of %llu bytes is not 4x memory.max %llu",
                  (unsigned long long)total, (unsigned long long)cg_max);

    char args[1024];
    snprintf(args, sizeof args,
             "load '%s' --device cuda:0 --path stream --ram-budget 256M --verify-readback",
             model_path);
    cg_run r;
    run_in_cgroup(args, &r);
    report("stream", &r);
    ck_assert_msg(r.exit_code == 0, "stream load failed inside the cgroup");
    ck_assert_uint_eq(r.oom_kills, 0);
    if (r.peak != UINT64_MAX) ck_assert_uint_le(r.peak, cg_max);

    /* the comparison: mmap at its defaults in the same limit */
    snprintf(args, sizeof args, "load '%s' --device cuda:0 --path mmap", model_path);
    run_in_cgroup(args, &r);
    report("mmap", &r);
}
END_TEST

/* NULL when a child cgroup can get a memory limit, else why not. */
static const char *cgroup_unusable(void)
{
    if (geteuid() != 0) return "not root";
    char text[512];
    if (read_text(CG_ROOT "/cgroup.controllers", text, sizeof text) != 0 || !strstr(text, "memory"))
        return "no cgroup v2 memory controller at " CG_ROOT;
    /* children get the memory controller only if the root hands it down; a cgroup that holds
     * processes cannot (tools/device-run.sh's cgroup stage moves them to a leaf first) */
    (void)write_file(CG_ROOT "/cgroup.subtree_control", "+memory");
    int ok = read_text(CG_ROOT "/cgroup.subtree_control", text, sizeof text) == 0 &&
             strstr(text, "memory");
    return ok ? NULL : "cannot enable +memory in " CG_ROOT "/cgroup.subtree_control";
}

int main(void)
{
    const char *why = hoist_device_count() == 0 ? "no CUDA device" : cgroup_unusable();
    if (why) {
        fprintf(stderr, "skipped: %s\n", why);
        return TU_SKIP;
    }
    const char *max = getenv("HOIST_CGROUP_MAX");
    if (max) cg_max = strtoull(max, NULL, 10);
    Suite *s = suite_create("gpu_cgroup");
    TCase *tc = tcase_create("cgroup");
    tcase_set_timeout(tc, 1200);
    tcase_add_checked_fixture(tc, model_setup, model_teardown);
    tcase_add_test(tc, test_stream_loads_4x_model_in_cgroup);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
