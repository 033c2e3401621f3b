/* Helpers shared by the hoist subcommands. Only tools/ may print and exit. */
#ifndef HOIST_CLI_UTIL_H
#define HOIST_CLI_UTIL_H

#include "hoist.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The exit statuses of every subcommand (README.md, "The CLI"). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };
/* What the argument helpers return when parsing goes on; anything else is the exit status to
 * return at once (0 after --help, CLI_EXIT_USAGE after a usage error). */
#define CLI_CONTINUE (-1)

/* Parses "123", "64K", "256M", "8G", "1.5G", "2T" (powers of 1024; a trailing "B"/"iB" is
 * accepted). false on anything else. */
bool cli_parse_size(const char *text, uint64_t *out);
/* Parses a non-negative decimal integer that fits in uint64_t. */
bool cli_parse_u64(const char *text, uint64_t *out);
/* Formats bytes as "1.50 GiB" into buf. */
const char *cli_fmt_bytes(uint64_t bytes, char *buf, int len);
/* Prints "hoist <cmd>: <message>" to stderr (printf-style). */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a failed library call: status name, hoist_strerror and hoist_last_error(). Returns 1,
 * the exit code for a failure. */
int cli_fail(const char *cmd, int status);
/* Process peak resident set size in bytes (getrusage). */
uint64_t cli_peak_rss(void);
/* Monotonic seconds. */
double cli_now(void);

/* ---- arguments ----------------------------------------------------------------------------
 *
 * Every subcommand parses with getopt_long through a cli_parser: long options as --name VALUE or
 * --name=VALUE (or any unambiguous prefix), operands anywhere, "--" ending the options. A usage
 * error is one line on stderr, "hoist CMD: WHAT. Try 'hoist CMD --help'.", and exit status 2. */

#define CLI_MAX_OPERANDS 4

typedef struct cli_parser {
    const char *cmd;
    int argc;
    char **argv;
    const struct option *options;
    char optstring[16];
    const char *opt;   /* the option just returned, "--level" or "-q" */
    const char *value; /* its value, or NULL */
    const char *operand[CLI_MAX_OPERANDS];
    int noperands;
    const char *extra; /* the first operand past CLI_MAX_OPERANDS */
    char optbuf[64];
} cli_parser;

/* Parses argv (argv[0] being the subcommand's name) against options, a {0}-terminated table,
 * and the short options in shortopts (all taking no value, "h" for -h). */
void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv,
                     const struct option *options, const char *shortopts);
/* The next option: its table value (the char for a short option), '?' or ':' for an unknown
 * option, a missing value or a value given to a flag (hand it to cli_bad_option), or -1 when
 * the arguments are done. Operands are collected on the way. */
int cli_next_option(cli_parser *p);
/* The usage error for what cli_next_option returned as '?' or ':'. Returns CLI_EXIT_USAGE. */
int cli_bad_option(const cli_parser *p, int c);
/* After the options: CLI_CONTINUE when there are min..max operands; else the usage error naming
 * the first missing one (names[i] is operand i's name, such as "MODEL") or the first extra one. */
int cli_operands(cli_parser *p, int min, int max, const char *const *names);

/* Prints the usage error "hoist CMD: MESSAGE. Try 'hoist CMD --help'." Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for the current option's value: "hoist CMD: --OPT VALUE: MESSAGE. Try ...". */
int cli_bad_value(const cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current option's value as an integer in lo..hi, or as a size (cli_parse_size) in lo..hi.
 * CLI_CONTINUE, or the usage error. */
int cli_value_u64(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out);
int cli_value_unsigned(const cli_parser *p, unsigned lo, unsigned hi, unsigned *out);
int cli_value_size(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out);
/* A size that is a power of two in lo..hi (chunk sizes). */
int cli_value_pow2_size(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out);
/* A device (host, cuda, cuda:N) or a load path (auto, mmap, uring, stream), through the public
 * parsers. CLI_CONTINUE, or the usage error with the library's reason. */
int cli_value_device(const cli_parser *p, int *device);
int cli_value_path(const cli_parser *p, hoist_path *path);
/* Calls item(p, text, i, user) on each item i of the comma-separated value, at most max of them;
 * an empty item or more than max is a usage error. Stops at item's first result other than
 * CLI_CONTINUE, and returns it. *n receives the number of items. */
int cli_value_list(const cli_parser *p, size_t max, size_t *n,
                   int (*item)(const cli_parser *p, const char *text, size_t i, void *user),
                   void *user);
/* Comma-separated sizes, such as 1G,512M. */
int cli_value_size_list(const cli_parser *p, uint64_t *sizes, size_t max, size_t *n);
/* Comma-separated devices, each DEVICE or DEVICE=FREE (a size). */
int cli_value_device_list(const cli_parser *p, hoist_plan_device *devices, size_t max, size_t *n);

/* Subcommands: int cmd_NAME(int argc, char **argv), argv[0] being the subcommand's name. Each
 * returns the process exit code (0 ok, 1 failure, 2 usage error). */
int cmd_gen(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_sum(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
