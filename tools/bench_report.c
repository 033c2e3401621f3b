/* hoist bench's output: the table, the CSV (written and read back, so that a run on a machine
 * without gnuplot can be plotted elsewhere), and the gnuplot plot. */
#include "bench.h"

#include "cli_util.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bench_stat bench_stats(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return (bench_stat){med, v[0], v[n - 1]};
}

bench_row *bench_add_row(bench_report *r)
{
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        bench_row *rows = realloc(r->rows, cap * sizeof *rows);
        if (!rows) return NULL;
        r->rows = rows;
        r->cap = cap;
    }
    bench_row *row = &r->rows[r->nrows++];
    memset(row, 0, sizeof *row);
    return row;
}

void bench_report_free(bench_report *r)
{
    free(r->rows);
    r->rows = NULL;
    r->nrows = r->cap = 0;
}

const bench_row *bench_find_ceiling(const bench_report *r, const char *name)
{
    for (size_t i = 0; i < r->nrows; i++)
        if (strcmp(r->rows[i].kind, "ceiling") == 0 && strcmp(r->rows[i].path, name) == 0)
            return &r->rows[i];
    return NULL;
}

/* ---- table -------------------------------------------------------------------------------- */

static const char *fmt_size(double bytes, char *buf, int len)
{
    if (bytes < 0) {
        char tmp[32];
        snprintf(buf, (size_t)len, "-%s", cli_fmt_bytes((uint64_t)(-bytes), tmp, sizeof tmp));
        return buf;
    }
    return cli_fmt_bytes((uint64_t)bytes, buf, len);
}

static const char *fmt_budget(uint64_t b, char *buf, int len)
{
    if (!b) return "-";
    static const char units[] = "KMGT";
    for (int u = 3; u >= 0; u--) {
        uint64_t unit = 1ull << (10 * (u + 1));
        if (b % unit == 0) {
            snprintf(buf, (size_t)len, "%llu%c", (unsigned long long)(b / unit), units[u]);
            return buf;
        }
    }
    snprintf(buf, (size_t)len, "%llu", (unsigned long long)b);
    return buf;
}

static const char *ceiling_label(const char *name)
{
    if (strcmp(name, "read") == 0) return "raw read (O_DIRECT)";
    if (strcmp(name, "staging") == 0) return "host staging";
    if (strcmp(name, "pinned_copy") == 0) return "pinned copy";
    return name;
}

static void print_ceilings(FILE *f, const bench_report *r)
{
    fprintf(f, "\n%-20s %-6s %22s  %s\n", "ceiling", "mode", "GB/s median [min-max]", "how");
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *c = &r->rows[i];
        if (strcmp(c->kind, "ceiling") != 0) continue;
        if (!c->runs) {
            fprintf(f, "%-20s %-6s %22s  failed: %s\n", ceiling_label(c->path), c->mode, "-",
                    c->note);
            continue;
        }
        char g[48];
        snprintf(g, sizeof g, "%.2f [%.2f-%.2f]", c->gbps.med, c->gbps.min, c->gbps.max);
        fprintf(f, "%-20s %-6s %22s  %s\n", ceiling_label(c->path), c->mode, g, c->note);
    }
}

void bench_print_table(FILE *f, const bench_report *r)
{
    fprintf(f, "hoist bench: %s (%.3f GB) -> %s; median [min-max] of %d run%s; cold = %s\n",
            r->model, (double)r->model_bytes / 1e9, r->device, r->repeat, r->repeat == 1 ? "" : "s",
            strcmp(r->cold_method, "drop_caches") == 0
                ? "page cache dropped (/proc/sys/vm/drop_caches)"
                : "the model's pages dropped (posix_fadvise DONTNEED)");
    print_ceilings(f, r);
    /* a packed model reads fewer bytes than it places: its file rate and decoding time too */
    int packed = 0;
    for (size_t i = 0; i < r->nrows; i++)
        packed |= !strcmp(r->rows[i].kind, "load") && r->rows[i].file_bytes &&
                  r->rows[i].file_bytes != r->rows[i].bytes;
    fprintf(f, "\n%-4s %-6s %-6s %-26s %7s %-17s %10s %10s %10s %7s %7s %7s %7s", "mode",
            "path", "budget", "load s median [min-max]", "GB/s", "% of ceiling", "peak RSS",
            "cache +/-", "resident", "CPU s", "read s", "copy s", "vfy s");
    fprintf(f, packed ? " %9s %7s\n" : "\n", "file GB/s", "dec s");
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *w = &r->rows[i];
        if (strcmp(w->kind, "load") != 0) continue;
        char b[24], path[40];
        if (*w->ran && strcmp(w->ran, w->path)) /* auto: the path it chose */
            snprintf(path, sizeof path, "%s(%s)", w->path, w->ran);
        else
            snprintf(path, sizeof path, "%s", w->path);
        if (!w->runs) {
            fprintf(f, "%-4s %-6s %-6s failed: %s\n", w->mode, path,
                    fmt_budget(w->budget, b, sizeof b), w->note);
            continue;
        }
        char secs[48], pct[32], pk[24], cg[24], rs[24];
        snprintf(secs, sizeof secs, "%.3f [%.3f-%.3f]", w->seconds.med, w->seconds.min,
                 w->seconds.max);
        if (w->ceiling_gbps > 0)
            snprintf(pct, sizeof pct, "%5.1f%% %s", w->pct, w->ceiling);
        else
            snprintf(pct, sizeof pct, "-");
        fprintf(f, "%-4s %-6s %-6s %-26s %7.2f %-17s %10s %10s %10s %7.2f %7.2f %7.2f %7.2f",
                w->mode, path, fmt_budget(w->budget, b, sizeof b), secs, w->gbps.med, pct,
                fmt_size(w->peak_rss, pk, sizeof pk), fmt_size(w->cache_growth, cg, sizeof cg),
                fmt_size(w->resident, rs, sizeof rs), w->cpu, w->read_s, w->copy_s, w->verify_s);
        if (packed)
            fprintf(f, " %9.2f %7.2f\n", w->file_gbps, w->decode_s);
        else
            fprintf(f, "\n");
    }
    fprintf(f, "\nresident = peak RSS + page-cache growth of the model's files, mapped pages "
               "counted once; read/copy s are summed over the loader's workers\n");
    if (packed)
        fprintf(f, "packed model: GB/s = model bytes placed per second, file GB/s = container "
                   "bytes read per second; dec s summed over workers\n");
}

/* ---- CSV ---------------------------------------------------------------------------------- */

#define COLUMNS(X)                                                                                \
    X(model) X(device) X(kind) X(mode) X(path) X(ran) X(budget_bytes) X(runs) X(bytes)           \
    X(seconds_median) X(seconds_min) X(seconds_max) X(gbps_median) X(gbps_min) X(gbps_max)       \
    X(ceiling) X(ceiling_gbps) X(pct_of_ceiling) X(peak_rss_bytes) X(rss_before_bytes)           \
    X(cache_growth_bytes) X(resident_bytes) X(cpu_seconds) X(read_seconds) X(copy_seconds)       \
    X(verify_seconds) X(loader_peak_bytes) X(threads) X(cold_method) X(repeat) X(model_bytes)    \
    X(file_bytes) X(file_gbps_median) X(decode_seconds) X(note)

enum {
#define X(name) COL_##name,
    COLUMNS(X)
#undef X
    NCOLS
};

static const char *const col_names[] = {
#define X(name) #name,
    COLUMNS(X)
#undef X
};

static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_row(FILE *f, const bench_report *r, const bench_row *w)
{
    char v[NCOLS][64];
    const char *s[NCOLS];
    for (int i = 0; i < NCOLS; i++) s[i] = v[i];
#define F(col, ...) snprintf(v[COL_##col], sizeof v[0], __VA_ARGS__)
    s[COL_model] = r->model;
    s[COL_device] = r->device;
    s[COL_kind] = w->kind;
    s[COL_mode] = w->mode;
    s[COL_path] = w->path;
    s[COL_ran] = w->ran;
    F(budget_bytes, "%llu", (unsigned long long)w->budget);
    F(runs, "%d", w->runs);
    F(bytes, "%llu", (unsigned long long)w->bytes);
    F(seconds_median, "%.6f", w->seconds.med);
    F(seconds_min, "%.6f", w->seconds.min);
    F(seconds_max, "%.6f", w->seconds.max);
    F(gbps_median, "%.4f", w->gbps.med);
    F(gbps_min, "%.4f", w->gbps.min);
    F(gbps_max, "%.4f", w->gbps.max);
    s[COL_ceiling] = w->ceiling;
    F(ceiling_gbps, "%.4f", w->ceiling_gbps);
    F(pct_of_ceiling, "%.2f", w->pct);
    F(peak_rss_bytes, "%.0f", w->peak_rss);
    F(rss_before_bytes, "%.0f", w->rss_before);
    F(cache_growth_bytes, "%.0f", w->cache_growth);
    F(resident_bytes, "%.0f", w->resident);
    F(cpu_seconds, "%.4f", w->cpu);
    F(read_seconds, "%.4f", w->read_s);
    F(copy_seconds, "%.4f", w->copy_s);
    F(verify_seconds, "%.4f", w->verify_s);
    F(loader_peak_bytes, "%.0f", w->loader_peak);
    F(threads, "%u", w->threads);
    s[COL_cold_method] = r->cold_method;
    F(repeat, "%d", r->repeat);
    F(model_bytes, "%llu", (unsigned long long)r->model_bytes);
    F(file_bytes, "%llu", (unsigned long long)w->file_bytes);
    F(file_gbps_median, "%.4f", w->file_gbps);
    F(decode_seconds, "%.4f", w->decode_s);
    s[COL_note] = w->note;
#undef F
    for (int i = 0; i < NCOLS; i++) csv_field(f, s[i], i == NCOLS - 1);
}

int bench_write_csv(const char *path, const bench_report *r)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int i = 0; i < NCOLS; i++) fprintf(f, "%s%c", col_names[i], i == NCOLS - 1 ? '\n' : ',');
    for (size_t i = 0; i < r->nrows; i++) csv_row(f, r, &r->rows[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}

/* Splits one CSV record (quotes as csv_field writes them) in place; returns the field count. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line, *out = line;
    while (n < max) {
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (; *p; p++) {
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p++;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p;
                }
            }
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') *out++ = *p++;
        }
        int more = *p == ',';
        *out++ = '\0';
        if (!more) break;
        p++;
    }
    return n;
}

static void copy_str(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

static void fill_row(bench_report *r, bench_row *w, char **fv, const int *col)
{
#define S(c) (col[COL_##c] >= 0 ? fv[col[COL_##c]] : "")
#define D(c) strtod(S(c), NULL)
#define U(c) strtoull(S(c), NULL, 10)
    copy_str(r->model, sizeof r->model, S(model));
    copy_str(r->device, sizeof r->device, S(device));
    copy_str(r->cold_method, sizeof r->cold_method, S(cold_method));
    r->repeat = (int)U(repeat);
    r->model_bytes = U(model_bytes);
    copy_str(w->kind, sizeof w->kind, S(kind));
    copy_str(w->mode, sizeof w->mode, S(mode));
    copy_str(w->path, sizeof w->path, S(path));
    copy_str(w->ran, sizeof w->ran, S(ran));
    w->budget = U(budget_bytes);
    w->runs = (int)U(runs);
    w->bytes = U(bytes);
    w->seconds = (bench_stat){D(seconds_median), D(seconds_min), D(seconds_max)};
    w->gbps = (bench_stat){D(gbps_median), D(gbps_min), D(gbps_max)};
    copy_str(w->ceiling, sizeof w->ceiling, S(ceiling));
    w->ceiling_gbps = D(ceiling_gbps);
    w->pct = D(pct_of_ceiling);
    w->peak_rss = D(peak_rss_bytes);
    w->rss_before = D(rss_before_bytes);
    w->cache_growth = D(cache_growth_bytes);
    w->resident = D(resident_bytes);
    w->cpu = D(cpu_seconds);
    w->read_s = D(read_seconds);
    w->copy_s = D(copy_seconds);
    w->verify_s = D(verify_seconds);
    w->loader_peak = D(loader_peak_bytes);
    w->threads = (unsigned)U(threads);
    w->file_bytes = U(file_bytes);
    w->file_gbps = D(file_gbps_median);
    w->decode_s = D(decode_seconds);
    copy_str(w->note, sizeof w->note, S(note));
#undef S
#undef D
#undef U
}

static int csv_fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

int bench_read_csv(const char *path, bench_report *r, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) return csv_fail(err, errlen, "%s: %s", path, strerror(errno));
    char line[8192];
    char *fv[NCOLS + 8];
    int col[NCOLS];
    for (int i = 0; i < NCOLS; i++) col[i] = -1;
    int rc = 0;
    if (!fgets(line, sizeof line, f)) {
        rc = csv_fail(err, errlen, "%s: empty file", path);
    } else {
        int n = csv_split(line, fv, NCOLS + 8);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < NCOLS; c++)
                if (strcmp(fv[i], col_names[c]) == 0) col[c] = i;
        if (col[COL_kind] < 0 || col[COL_seconds_median] < 0 || col[COL_resident_bytes] < 0)
            rc = csv_fail(err, errlen, "%s: not a hoist bench CSV (no kind, seconds_median or "
                                       "resident_bytes column)", path);
    }
    int lineno = 1;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\0') continue;
        int n = csv_split(line, fv, NCOLS + 8);
        for (int c = 0; c < NCOLS; c++)
            if (col[c] >= n)
                rc = csv_fail(err, errlen, "%s:%d: %d fields, expected more", path, lineno, n);
        if (rc) break;
        bench_row *w = bench_add_row(r);
        if (!w) rc = csv_fail(err, errlen, "out of memory");
        else fill_row(r, w, fv, col);
    }
    fclose(f);
    if (rc == 0 && !r->nrows) rc = csv_fail(err, errlen, "%s: no rows", path);
    return rc;
}

/* ---- plot --------------------------------------------------------------------------------- */

/* One datablock of the load rows of a mode: x = resident, y = median seconds, min, max, label. */
static int datablock(FILE *g, const bench_report *r, const char *mode, double unit)
{
    int n = 0;
    fprintf(g, "$%s << EOD\n", mode);
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *w = &r->rows[i];
        if (strcmp(w->kind, "load") || strcmp(w->mode, mode) || !w->runs) continue;
        char b[32] = "", lbl[96];
        if (w->budget) {
            char tmp[24];
            snprintf(b, sizeof b, " %s", fmt_budget(w->budget, tmp, sizeof tmp));
        }
        snprintf(lbl, sizeof lbl, "%s%s", w->path, b);
        double x = w->resident / unit;
        fprintf(g, "%.6g %.6g %.6g %.6g \"%s\"\n", x > 0 ? x : 1e-6, w->seconds.med,
                w->seconds.min, w->seconds.max, lbl);
        n++;
    }
    fprintf(g, "EOD\n");
    return n;
}

static void range(const bench_report *r, double *xlo, double *xhi, double *ylo, double *yhi)
{
    *xlo = *ylo = INFINITY;
    *xhi = *yhi = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *w = &r->rows[i];
        if (strcmp(w->kind, "load") || !w->runs) continue;
        if (w->resident < *xlo) *xlo = w->resident;
        if (w->resident > *xhi) *xhi = w->resident;
        if (w->seconds.min < *ylo) *ylo = w->seconds.min;
        if (w->seconds.max > *yhi) *yhi = w->seconds.max;
    }
}

static int write_script(FILE *g, const char *out, const bench_report *r)
{
    size_t n = strlen(out);
    int png = n >= 4 && strcmp(out + n - 4, ".png") == 0;
    double xlo, xhi, ylo, yhi;
    range(r, &xlo, &xhi, &ylo, &yhi);
    if (!(xhi > 0)) return -1;
    double unit = xhi >= (1ull << 30) ? (double)(1ull << 30) : (double)(1u << 20);
    const char *uname = unit > (double)(1u << 20) ? "GiB" : "MiB";
    if (png)
        fprintf(g, "set terminal pngcairo size 1280,860 enhanced font 'sans,12' "
                   "background rgb 'white'\n");
    else
        fprintf(g, "set terminal svg size 1100,720 dynamic enhanced font 'sans,12' "
                   "background rgb 'white'\n");
    fprintf(g, "set output '%s'\n", out);
    const char *base = strrchr(r->model, '/');
    base = base && base[1] ? base + 1 : r->model;
    fprintf(g, "set title \"hoist bench: %s (%.2f GB) -> %s, median of %d run%s (bars: min to "
               "max)\" noenhanced\n",
            base, (double)r->model_bytes / 1e9, r->device, r->repeat, r->repeat == 1 ? "" : "s");
    fprintf(g, "set xlabel \"resident host RAM: peak RSS + page-cache growth (%s)\"\n", uname);
    fprintf(g, "set ylabel \"load time (s)\"\n");
    fprintf(g, "set grid\nset key top right box opaque noenhanced\nset pointsize 1.4\n");
    /* RAM from a few MiB (stream) to the model's size (mmap) and times from warm to cold span
     * decades on a real model: log axes then, linear from 0 otherwise */
    if (xlo > 0 && xhi / xlo >= 10)
        fprintf(g, "set logscale x 2\nset offsets graph 0.05, graph 0.25, 0, 0\n");
    else
        fprintf(g, "set xrange [0:*]\nset offsets 0, graph 0.25, 0, 0\n");
    if (ylo > 0 && yhi / ylo >= 10)
        fprintf(g, "set logscale y 10\n");
    else
        fprintf(g, "set yrange [0:*]\n");
    int cold = datablock(g, r, "cold", unit);
    int warm = datablock(g, r, "warm", unit);
    fprintf(g, "plot ");
    const char *sep = "";
    if (cold) {
        fprintf(g, "$cold using 1:2:3:4 with yerrorbars pt 7 lc rgb '#1f5fa8' title 'cold (page "
                   "cache dropped)', $cold using 1:2:5 with labels left offset char 1,0.7 font "
                   "',10' noenhanced notitle");
        sep = ", ";
    }
    if (warm) {
        fprintf(g, "%s$warm using 1:2:3:4 with yerrorbars pt 5 lc rgb '#c0392b' title 'warm "
                   "(files in page cache)', $warm using 1:2:5 with labels left offset char "
                   "1,-0.9 font ',10' noenhanced notitle", sep);
        sep = ", ";
    }
    /* the fastest a load of the model could be at each ceiling */
    static const char *const names[] = {"read", "staging", "pinned_copy"};
    static const char *const colors[] = {"#1f5fa8", "#c0392b", "#555555"};
    for (int i = 0; i < 3; i++) {
        const bench_row *c = bench_find_ceiling(r, names[i]);
        if (!c || !c->runs || !(c->gbps.med > 0)) continue;
        double t = (double)r->model_bytes / (c->gbps.med * 1e9);
        fprintf(g, "%s%.6g with lines dt 2 lw 1.5 lc rgb '%s' title '%s ceiling %.2f GB/s: %.3f s'",
                sep, t, colors[i], ceiling_label(names[i]), c->gbps.med, t);
        sep = ", ";
    }
    fprintf(g, "\n");
    return 0;
}

static const char *gnuplot_program(void)
{
    const char *g = getenv("HOIST_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* Runs gnuplot on the script: 0, ENOENT-like 1 (not installed), -1 (it failed). */
static int run_gnuplot(const char *script)
{
    const char *prog = gnuplot_program();
    char *argv[] = {(char *)prog, (char *)script, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, prog, NULL, NULL, argv, environ);
    if (e == ENOENT || e == EACCES) return 1;
    if (e != 0) {
        cli_error("bench", "cannot run %s: %s", prog, strerror(e));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) continue;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return 1; /* a shell wrapper that found none */
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        cli_error("bench", "%s failed on %s (status %d)", prog, script,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}

const char *bench_plot_name_problem(const char *path)
{
    size_t n = strlen(path);
    if (!(n >= 4 && (strcmp(path + n - 4, ".svg") == 0 || strcmp(path + n - 4, ".png") == 0)))
        return "the name must end in .svg or .png";
    /* the name goes into the gnuplot script between single quotes */
    if (strchr(path, '\'')) return "a quote in the name is not supported";
    return NULL;
}

int bench_plot(const char *path, const bench_report *r)
{
    size_t n = strlen(path);
    const char *problem = bench_plot_name_problem(path);
    if (problem) {
        cli_error("bench", "--plot %s: %s", path, problem);
        return -1;
    }
    char *script = malloc(n + 4);
    if (!script) return -1;
    snprintf(script, n + 4, "%s.gp", path);
    FILE *g = fopen(script, "w");
    int rc = -1;
    if (!g) {
        cli_error("bench", "%s: %s", script, strerror(errno));
    } else if (write_script(g, path, r) < 0) {
        fclose(g);
        cli_error("bench", "nothing to plot: no load finished");
    } else if (fclose(g) != 0) {
        cli_error("bench", "%s: %s", script, strerror(errno));
    } else {
        rc = run_gnuplot(script);
        if (rc == 1)
            fprintf(stderr,
                    "hoist bench: gnuplot (%s) is not installed here, so %s was not drawn; its "
                    "script is %s: run `gnuplot %s` where gnuplot is (Debian: apt-get install "
                    "gnuplot-nox), or `hoist bench --from-csv FILE.csv --plot %s` there\n",
                    gnuplot_program(), path, script, script, path);
        else
            unlink(script);
    }
    free(script);
    return rc;
}
