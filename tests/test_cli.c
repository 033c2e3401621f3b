/* The CLI's contract (tools/cli_util.c and every tools/cmd_*.c): a usage error is one line on
 * stderr naming what is wrong, with the --help hint, and exit status 2; a runtime failure exits 1;
 * --help prints the usage to stdout and exits 0. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bad_case {
    const char *args; /* after "hoist" */
    const char *cmd;  /* whose --help the hint names */
    const char *name; /* what the line must name */
} bad_case;

/* One bad value per subcommand; operands are there when the subcommand needs them, so that
 * only the value is wrong. */
static const bad_case bad_values[] = {
    {"gen out --dtype q9", "gen", "--dtype q9"},
    {"inspect model --json=yes", "inspect", "--json"},
    {"load model --repeat 0", "load", "--repeat 0"},
    {"plan model --kv-dtype q5", "plan", "--kv-dtype q5"},
    {"sum model --chunk 3K", "sum", "--chunk 3K"},
    {"verify model --threads many", "verify", "--threads many"},
    {"pack model out --level 25", "pack", "--level 25"},
    {"pack model out --codec lz4", "pack", "--codec lz4"},
    {"bench model --drop some", "bench", "--drop some"},
    {"devices --bandwidth=yes", "devices", "--bandwidth"},
    {"run model --n -1", "run", "--n -1"},
    {"version --help=1", "version", "--help"},
};

/* Other kinds of usage error, the same everywhere. */
static const bad_case bad_usage[] = {
    {"pack model out --level", "pack", "--level needs a value"},
    {"pack model out --level=23", "pack", "--level 23"},
    {"load model --frobnicate", "load", "'--frobnicate'"},
    {"load model --dev cuda", "load", "--dev is ambiguous"},
    {"load model --force", "load", "'--force'"},
    {"load model --device gpu", "load", "--device gpu"},
    {"plan model --devices cuda:0,,cuda:1", "plan", "--devices"},
    {"plan model --devices cuda:0,cuda:1 --reserve 1G,2G,3G", "plan", "--reserve"},
    {"bench model --paths mmap,nope", "bench", "--paths"},
    {"bench model --plot out.jpg", "bench", "--plot out.jpg"},
    {"bench model --from-csv rows.csv", "bench", "--from-csv"},
    {"run model --tokens 1,,2", "run", "--tokens 1,,2"},
    {"run model --device host --devices host", "run", "--devices"},
    {"gen out --size 3T", "gen", "--size 3T"},
    {"gen out --size 1G --layers 3", "gen", "--layers"},
    {"gen out --threads 0", "gen", "--threads 0"},
    {"gen", "gen", "missing OUT_DIR"},
    {"pack model", "pack", "missing OUT"},
    {"inspect a b", "inspect", "unexpected argument 'b'"},
    {"devices extra", "devices", "unexpected argument 'extra'"},
};

static const char *const commands[] = {"gen", "inspect", "load",  "plan", "sum",    "verify",
                                       "pack", "bench",  "devices", "run", "version"};

static void assert_usage_error(const bad_case *c)
{
    char *err;
    int rc = tu_run_cli_capture(c->args, NULL, &err);
    ck_assert_msg(rc == 2, "hoist %s: exit %d, not 2 (stderr: %s)", c->args, rc, err);
    char hint[64];
    snprintf(hint, sizeof hint, "Try 'hoist %s --help'.", c->cmd);
    size_t len = strlen(err);
    ck_assert_msg(len > 0 && err[len - 1] == '\n' && strchr(err, '\n') == err + len - 1,
                  "hoist %s: stderr is not one line: '%s'", c->args, err);
    ck_assert_msg(strstr(err, c->name), "hoist %s: '%s' not in '%s'", c->args, c->name, err);
    ck_assert_msg(strstr(err, hint), "hoist %s: no hint '%s' in '%s'", c->args, hint, err);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "hoist %s: ", c->cmd);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "hoist %s: '%s'", c->args, err);
    free(err);
}

START_TEST(test_bad_value)
{
    assert_usage_error(&bad_values[_i]);
}
END_TEST

START_TEST(test_bad_usage)
{
    assert_usage_error(&bad_usage[_i]);
}
END_TEST

START_TEST(test_help)
{
    char args[64], *out, *err;
    snprintf(args, sizeof args, "%s --help", commands[_i]);
    ck_assert_int_eq(tu_run_cli_capture(args, &out, &err), 0);
    char head[64];
    snprintf(head, sizeof head, "usage: hoist %s", commands[_i]);
    ck_assert_msg(strncmp(out, head, strlen(head)) == 0, "hoist %s: stdout '%s'", args, out);
    ck_assert_msg(strstr(out, "--help"), "hoist %s does not list --help", args);
    ck_assert_msg(*err == '\0', "hoist %s: stderr '%s'", args, err);
    free(out);
    free(err);
}
END_TEST

/* The bounds the help states are the ones the parser applies. */
START_TEST(test_help_matches_code)
{
    char *out;
    ck_assert_int_eq(tu_run_cli_capture("pack --help", &out, NULL), 0);
    ck_assert_msg(strstr(out, "zstd level 1-22"), "%s", out);
    free(out);
    /* past the parser, the missing model is a runtime failure: 1, not 2 */
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --level 22 2> /dev/null"), 1);
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --level 1 2> /dev/null"), 1);
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --level 0 2> /dev/null"), 2);
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --level 23 2> /dev/null"), 2);
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --chunk 64M 2> /dev/null"), 1);
    ck_assert_int_eq(tu_run_cli("pack /nonexistent/model out --chunk 128M 2> /dev/null"), 2);
    ck_assert_int_eq(tu_run_cli("sum /nonexistent/model --chunk 1G 2> /dev/null"), 1);
    ck_assert_int_eq(tu_run_cli("sum /nonexistent/model --chunk 2G 2> /dev/null"), 2);
}
END_TEST

/* getopt_long's forms: --name=value, operands after options, "--" ending the options, -h. */
START_TEST(test_option_forms)
{
    char *err;
    ck_assert_int_eq(tu_run_cli("pack --level=22 /nonexistent/model out 2> /dev/null"), 1);
    char *out;
    ck_assert_int_eq(tu_run_cli_capture("devices -h", &out, NULL), 0);
    ck_assert_msg(strncmp(out, "usage: hoist devices", 20) == 0, "%s", out);
    free(out);
    ck_assert_int_eq(tu_run_cli_capture("inspect -- --json", NULL, &err), 1);
    ck_assert_msg(strstr(err, "--json"), "'--json' after -- is a path: %s", err);
    free(err);
}
END_TEST

START_TEST(test_failure_and_top_level)
{
    char *err;
    ck_assert_int_eq(tu_run_cli_capture("inspect /nonexistent/model.safetensors", NULL, &err), 1);
    ck_assert_msg(strstr(err, "hoist inspect: "), "%s", err);
    free(err);
    ck_assert_int_eq(tu_run_cli_capture("frobnicate", NULL, &err), 2);
    ck_assert_msg(strstr(err, "unknown command 'frobnicate'"), "%s", err);
    ck_assert_msg(strstr(err, "Try 'hoist --help'."), "%s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    free(err);
    ck_assert_int_eq(tu_run_cli("> /dev/null 2>&1"), 2);
    char *out;
    ck_assert_int_eq(tu_run_cli_capture("--help", &out, NULL), 0);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        ck_assert_msg(strstr(out, commands[i]), "hoist --help does not list %s", commands[i]);
    ck_assert_ptr_nonnull(strstr(out, "2 usage error"));
    free(out);
    ck_assert_int_eq(tu_run_cli_capture("version", &out, NULL), 0);
    ck_assert_msg(strncmp(out, "hoist ", 6) == 0, "%s", out);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_bad_value, 0, (int)(sizeof bad_values / sizeof *bad_values));
    tcase_add_loop_test(tc, test_bad_usage, 0, (int)(sizeof bad_usage / sizeof *bad_usage));
    tcase_add_loop_test(tc, test_help, 0, (int)(sizeof commands / sizeof *commands));
    tcase_add_test(tc, test_help_matches_code);
    tcase_add_test(tc, test_option_forms);
    tcase_add_test(tc, test_failure_and_top_level);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
