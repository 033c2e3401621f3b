/* Helpers shared by the hoist subcommands. Only tools/ may print and exit. */
#ifndef HOIST_CLI_UTIL_H
#define HOIST_CLI_UTIL_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
