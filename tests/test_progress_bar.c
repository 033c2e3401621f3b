/* tools/progress_bar.c through `hoist load` and `hoist bench`: a bar on a terminal, none on a
 * file or pipe unless forced, and the forced bar ends at 100%. */
#include "testutil.h"

#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = tu_mkdtemp();
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --size 8M --shard-size 3M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
}

static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

static char *run_stderr(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s > /dev/null 2> '%s/err'", args, dir);
    ck_assert_msg(tu_run_cli(cmd) == 0, "hoist %s", args);
    char *p = tu_path(dir, "err");
    size_t n;
    char *s = tu_read(p, &n);
    free(p);
    ck_assert_ptr_nonnull(s);
    s = realloc(s, n + 1);
    s[n] = 0;
    return s;
}

START_TEST(test_no_bar_when_not_a_terminal)
{
    char args[1024];
    snprintf(args, sizeof args, "load '%s/m' --device host --repeat 2", dir);
    char *e = run_stderr(args);
    ck_assert_ptr_null(strchr(e, '\r'));
    ck_assert_ptr_null(strstr(e, "ETA"));
    free(e);
    snprintf(args, sizeof args,
             "bench '%s/m' --device host --paths stream --repeat 1 --drop files", dir);
    e = run_stderr(args);
    ck_assert_ptr_null(strchr(e, '\r'));
    ck_assert_ptr_null(strstr(e, "ETA"));
    ck_assert_ptr_nonnull(strstr(e, "warm stream")); /* the plain line per measurement */
    free(e);
}
END_TEST

/* --progress draws it anyway, ending at the whole model, on its own line. */
START_TEST(test_forced_bar)
{
    char args[1024];
    snprintf(args, sizeof args, "load '%s/m' --device host --path stream --progress", dir);
    char *e = run_stderr(args);
    ck_assert_ptr_nonnull(strstr(e, "\rload host ["));
    ck_assert_ptr_nonnull(strstr(e, "GB/s"));
    ck_assert_ptr_nonnull(strstr(e, "ETA"));
    ck_assert_ptr_nonnull(strstr(e, "[########################] 100.0%"));
    ck_assert_ptr_nonnull(strstr(e, "  0.0%")); /* the first report, before any byte */
    ck_assert_ptr_null(strstr(e, "\033[K"));   /* terminal codes only on a terminal */
    free(e);
    snprintf(args, sizeof args,
             "bench '%s/m' --device host --paths mmap --repeat 1 --cold --drop files --progress",
             dir);
    e = run_stderr(args);
    ck_assert_ptr_nonnull(strstr(e, "\r[1/4] read ceiling run 1/1 ["));
    ck_assert_ptr_nonnull(strstr(e, "\r[2/4] cold mmap budget default run 1/1 ["));
    ck_assert_ptr_nonnull(strstr(e, "100.0%"));
    free(e);
}
END_TEST

/* On a terminal (a pty) the bar comes by itself, and is erased when the load is done. */
START_TEST(test_bar_on_a_terminal)
{
    int master, slave;
    ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    const char *cli = getenv("HOIST_CLI") ? getenv("HOIST_CLI") : HOIST_CLI;
    char *model = tu_path(dir, "m");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(slave, 2);
        close(master);
        setenv("TERM", "xterm", 1);
        execl(cli, cli, "load", model, "--device", "host", (char *)NULL);
        _exit(127);
    }
    close(slave);
    char buf[1 << 16];
    size_t n = 0;
    for (;;) { /* EIO once the child has closed its side */
        ssize_t r = read(master, buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(master);
    free(model);
    ck_assert_ptr_nonnull(strstr(buf, "load host ["));
    ck_assert_ptr_nonnull(strstr(buf, "100.0%"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\033[K")); /* erased at the end */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("progress_bar");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_bar_when_not_a_terminal);
    tcase_add_test(tc, test_forced_bar);
    tcase_add_test(tc, test_bar_on_a_terminal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
