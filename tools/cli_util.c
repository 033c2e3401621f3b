/* Helpers shared by the hoist subcommands. */
#include "cli_util.h"

#include "hoist.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

/* ---- arguments ------------------------------------------------------------------------------- */

static void vusage_error(const char *cmd, const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char line[1536];
    snprintf(line, sizeof line, "hoist %s: %s%s. Try 'hoist %s --help'.", cmd, prefix, msg, cmd);
    /* one line whatever the value held: a script reads the first line as the whole error */
    for (char *s = line; *s; s++)
        if ((unsigned char)*s < 0x20) *s = '?';
    fprintf(stderr, "%s\n", line);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vusage_error(cmd, "", fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_bad_value(const cli_parser *p, const char *fmt, ...)
{
    char prefix[256];
    const char *v = p->value ? p->value : "";
    snprintf(prefix, sizeof prefix, "%s %s: ", p->opt, *v ? v : "''");
    va_list ap;
    va_start(ap, fmt);
    vusage_error(p->cmd, prefix, fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv,
                     const struct option *options, const char *shortopts)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    p->options = options;
    /* '-': operands come back in order as 1, whatever POSIXLY_CORRECT says; ':': a missing
     * value comes back as ':', and getopt prints nothing (cli_bad_option does) */
    snprintf(p->optstring, sizeof p->optstring, "-:%s", shortopts);
    optind = 0; /* GNU: start over, this argv is new */
    opterr = 0;
}

static void add_operand(cli_parser *p, const char *arg)
{
    if (p->noperands < CLI_MAX_OPERANDS)
        p->operand[p->noperands++] = arg;
    else if (!p->extra)
        p->extra = arg;
}

int cli_next_option(cli_parser *p)
{
    for (;;) {
        int index = -1;
        int c = getopt_long(p->argc, p->argv, p->optstring, p->options, &index);
        p->value = optarg;
        if (c == 1) {
            add_operand(p, optarg);
            continue;
        }
        if (c == -1) {
            while (optind < p->argc) add_operand(p, p->argv[optind++]); /* after "--" */
            return -1;
        }
        if (index >= 0)
            snprintf(p->optbuf, sizeof p->optbuf, "--%s", p->options[index].name);
        else
            snprintf(p->optbuf, sizeof p->optbuf, "-%c", c);
        p->opt = p->optbuf;
        return c;
    }
}

/* How the user wrote the option getopt stopped at: "--name" without "=value", or "-c". */
static const char *offending(const cli_parser *p, char *buf, size_t len)
{
    const char *arg = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
    if (strncmp(arg, "--", 2) == 0) {
        size_t n = strcspn(arg, "=");
        snprintf(buf, len, "%.*s", (int)n, arg);
    } else {
        snprintf(buf, len, "-%c", optopt ? optopt : '?');
    }
    return buf;
}

/* How many long options start with name (without its dashes); exact is set on an exact match. */
static int prefix_matches(const struct option *options, const char *name, bool *exact)
{
    int n = 0;
    *exact = false;
    for (const struct option *o = options; o->name; o++) {
        if (strncmp(o->name, name, strlen(name)) != 0) continue;
        n++;
        if (strcmp(o->name, name) == 0) *exact = true;
    }
    return n;
}

int cli_bad_option(const cli_parser *p, int c)
{
    char opt[64];
    offending(p, opt, sizeof opt);
    if (c == ':') return cli_usage_error(p->cmd, "%s needs a value", opt);
    bool exact = false;
    int matches = opt[1] == '-' ? prefix_matches(p->options, opt + 2, &exact) : 0;
    if (matches == 1 || exact) return cli_usage_error(p->cmd, "%s takes no value", opt);
    if (matches > 1) return cli_usage_error(p->cmd, "%s is ambiguous", opt);
    return cli_usage_error(p->cmd, "unknown option '%s'", opt);
}

int cli_operands(cli_parser *p, int min, int max, const char *const *names)
{
    if (p->noperands < min) return cli_usage_error(p->cmd, "missing %s", names[p->noperands]);
    if (p->noperands > max || p->extra) {
        const char *arg = p->noperands > max ? p->operand[max] : p->extra;
        return cli_usage_error(p->cmd, "unexpected argument '%s'", arg);
    }
    return CLI_CONTINUE;
}

int cli_value_u64(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    if (cli_parse_u64(p->value, &v) && v >= lo && v <= hi) {
        *out = v;
        return CLI_CONTINUE;
    }
    if (hi == UINT64_MAX)
        return cli_bad_value(p, "expected an integer from %llu", (unsigned long long)lo);
    return cli_bad_value(p, "expected %llu..%llu", (unsigned long long)lo, (unsigned long long)hi);
}

int cli_value_unsigned(const cli_parser *p, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t v = 0;
    int rc = cli_value_u64(p, lo, hi, &v);
    if (rc == CLI_CONTINUE) *out = (unsigned)v;
    return rc;
}

int cli_value_size(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    if (!cli_parse_size(p->value, &v))
        return cli_bad_value(p, "expected a size such as 512M or 8G");
    if (v >= lo && v <= hi) {
        *out = v;
        return CLI_CONTINUE;
    }
    char a[32], b[32];
    cli_fmt_bytes(lo, a, sizeof a);
    cli_fmt_bytes(hi, b, sizeof b);
    if (hi == UINT64_MAX) return cli_bad_value(p, "expected at least %s", a);
    if (lo <= 1) return cli_bad_value(p, "expected %s at most", b);
    return cli_bad_value(p, "expected %s to %s", a, b);
}

int cli_value_pow2_size(const cli_parser *p, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    if (cli_parse_size(p->value, &v) && v >= lo && v <= hi && (v & (v - 1)) == 0) {
        *out = v;
        return CLI_CONTINUE;
    }
    char a[32], b[32];
    return cli_bad_value(p, "expected a power of two from %s to %s", cli_fmt_bytes(lo, a, sizeof a),
                         cli_fmt_bytes(hi, b, sizeof b));
}

int cli_value_device(const cli_parser *p, int *device)
{
    if (hoist_device_parse(p->value, device) == HOIST_OK) return CLI_CONTINUE;
    return cli_bad_value(p, "%s", hoist_last_error());
}

int cli_value_path(const cli_parser *p, hoist_path *path)
{
    if (hoist_path_parse(p->value, path) == HOIST_OK) return CLI_CONTINUE;
    return cli_bad_value(p, "%s", hoist_last_error());
}

int cli_value_list(const cli_parser *p, size_t max, size_t *n,
                   int (*item)(const cli_parser *p, const char *text, size_t i, void *user),
                   void *user)
{
    const char *s = p->value;
    *n = 0;
    for (;;) {
        size_t len = strcspn(s, ",");
        char text[256];
        if (len == 0) return cli_bad_value(p, "an empty item in the list");
        if (*n == max) return cli_bad_value(p, "more than %zu items", max);
        if (len >= sizeof text) return cli_bad_value(p, "an item of %zu characters", len);
        memcpy(text, s, len);
        text[len] = '\0';
        int rc = item(p, text, (*n)++, user);
        if (rc != CLI_CONTINUE) return rc;
        if (s[len] == '\0') return CLI_CONTINUE;
        s += len + 1;
    }
}

static int size_item(const cli_parser *p, const char *text, size_t i, void *user)
{
    if (cli_parse_size(text, (uint64_t *)user + i)) return CLI_CONTINUE;
    return cli_bad_value(p, "'%s' is not a size such as 512M or 8G", text);
}

int cli_value_size_list(const cli_parser *p, uint64_t *sizes, size_t max, size_t *n)
{
    return cli_value_list(p, max, n, size_item, sizes);
}

/* DEVICE or DEVICE=FREE */
static int device_item(const cli_parser *p, const char *text, size_t i, void *user)
{
    hoist_plan_device *d = (hoist_plan_device *)user + i;
    char name[256];
    snprintf(name, sizeof name, "%s", text);
    char *eq = strchr(name, '=');
    if (eq) *eq = '\0';
    *d = (hoist_plan_device)HOIST_PLAN_DEVICE_DEFAULT;
    if (hoist_device_parse(name, &d->device) != HOIST_OK)
        return cli_bad_value(p, "%s", hoist_last_error());
    if (eq && (!cli_parse_size(eq + 1, &d->free_bytes) || d->free_bytes == 0))
        return cli_bad_value(p, "'%s' for %s is not a size above zero", eq + 1, name);
    return CLI_CONTINUE;
}

int cli_value_device_list(const cli_parser *p, hoist_plan_device *devices, size_t max, size_t *n)
{
    return cli_value_list(p, max, n, device_item, devices);
}

/* ---- numbers --------------------------------------------------------------------------------- */

bool cli_parse_u64(const char *text, uint64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool cli_parse_size(const char *text, uint64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+') return false;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !(v >= 0)) return false;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0) end += strlen(end);
    if (*end) return false;
    double bytes = v * mult;
    if (bytes >= 18446744073709551616.0) return false;
    *out = (uint64_t)llround(bytes);
    return true;
}

const char *cli_fmt_bytes(uint64_t bytes, char *buf, int len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, (size_t)len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, (size_t)len, "%.2f %s", v, units[u]);
    return buf;
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hoist %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_fail(const char *cmd, int status)
{
    const char *msg = hoist_last_error();
    fprintf(stderr, "hoist %s: %s (%s)%s%s\n", cmd, hoist_strerror(status),
            hoist_status_name(status), *msg ? ": " : "", msg);
    return 1;
}

uint64_t cli_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
