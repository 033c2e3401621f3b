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

/* The plot area sits at fixed screen fractions, so that a data point's place in it (graph
 * coordinates, 0..1 on both axes) is known here, before gnuplot draws: labels are then placed
 * where they cover neither another label nor a point, and the key goes in the right margin,
 * outside the data. The sizes below are of the smaller terminal (SVG 1100x720, labels at 10 pt;
 * the PNG is larger), with some slack: a char is about 6 px of the 616 px plot width, a line
 * about 14 px of its 576 px height. */
#define PLOT_LEFT 0.08
#define PLOT_RIGHT 0.64
#define PLOT_TOP 0.91
#define PLOT_BOTTOM 0.11
#define LABEL_CHAR_W 0.0105  /* graph width of one label character */
#define LABEL_LINE_H 0.0300  /* graph height of one label line */
#define POINT_HALF_W 0.0110  /* half the graph width of a point (pointsize 1.4) */
#define POINT_HALF_H 0.0150
#define PLOT_MAX_DROPPED 6   /* labels listed under the plot when there was no room beside them */

typedef struct plot_axis {
    int log;
    double lo, hi;           /* the range set, in plotted units */
} plot_axis;

typedef struct plot_point {
    const bench_row *row;
    double x, y;             /* plotted units */
    double gx, gy, gmin, gmax; /* graph coordinates of the point and its bar */
    char text[48];
} plot_point;

typedef struct plot_box {
    double x0, y0, x1, y1;
} plot_box;

static double axis_graph(const plot_axis *a, double v)
{
    if (a->log) return (log(v) - log(a->lo)) / (log(a->hi) - log(a->lo));
    return (v - a->lo) / (a->hi - a->lo);
}

/* The range of an axis over values in [lo, hi]: logarithmic when they span a factor of 10 (RAM
 * from a few MiB for stream to the model's size for mmap; times from warm to cold), else linear
 * from 0; padded by the given fractions of the span on each side (the right side of the x axis
 * leaves room for the labels of the rightmost points). */
static plot_axis axis_for(double lo, double hi, double pad_lo, double pad_hi)
{
    plot_axis a = {0, 0, hi > 0 ? hi : 1};
    if (lo > 0 && hi / lo >= 10) {
        double span = log(hi / lo);
        a.log = 1;
        a.lo = lo * exp(-pad_lo * span);
        a.hi = hi * exp(pad_hi * span);
    } else {
        a.hi = (hi > 0 ? hi : 1) * (1 + pad_hi);
    }
    return a;
}

static int boxes_overlap(plot_box a, plot_box b)
{
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

static plot_box point_box(const plot_point *p)
{
    /* the marker and its min-max bar */
    double lo = p->gmin < p->gy - POINT_HALF_H ? p->gmin : p->gy - POINT_HALF_H;
    double hi = p->gmax > p->gy + POINT_HALF_H ? p->gmax : p->gy + POINT_HALF_H;
    return (plot_box){p->gx - POINT_HALF_W, lo, p->gx + POINT_HALF_W, hi};
}

/* Places the label of points[i] (left-aligned text centred vertically on its y) at the first of
 * a few spots around its point that stays inside the plot and covers no label placed before it,
 * no point and no ceiling line (at graph heights lines[0..nlines)). 1 with *lx, *ly set; 0 when
 * every spot is taken. */
static int place_label(const plot_point *points, size_t n, size_t i, const plot_box *placed,
                       size_t nplaced, const double *lines, int nlines, double *lx, double *ly)
{
    const plot_point *p = &points[i];
    double w = (double)strlen(p->text) * LABEL_CHAR_W, h = LABEL_LINE_H, d = POINT_HALF_W * 1.3;
    /* right, left, above, below, then farther up and down on either side */
    const double spots[][2] = {
        {p->gx + d, p->gy},         {p->gx + d, p->gy + h},     {p->gx + d, p->gy - h},
        {p->gx - d - w, p->gy},     {p->gx - d - w, p->gy + h}, {p->gx - d - w, p->gy - h},
        {p->gx - w / 2, p->gy + 1.5 * h}, {p->gx - w / 2, p->gy - 1.5 * h},
        {p->gx + d, p->gy + 2 * h}, {p->gx + d, p->gy - 2 * h}, {p->gx - d - w, p->gy + 2 * h},
        {p->gx - d - w, p->gy - 2 * h}, {p->gx - w / 2, p->gy + 2.5 * h},
        {p->gx - w / 2, p->gy - 2.5 * h},
    };
    for (size_t s = 0; s < sizeof spots / sizeof *spots; s++) {
        plot_box b = {spots[s][0], spots[s][1] - h / 2, spots[s][0] + w, spots[s][1] + h / 2};
        if (b.x0 < 0.01 || b.x1 > 0.99 || b.y0 < 0.01 || b.y1 > 0.99) continue; /* off the frame */
        int free_spot = 1;
        for (size_t k = 0; k < nplaced && free_spot; k++)
            free_spot = !boxes_overlap(b, placed[k]);
        for (size_t k = 0; k < n && free_spot; k++)
            free_spot = !boxes_overlap(b, point_box(&points[k]));
        for (int k = 0; k < nlines && free_spot; k++)
            free_spot = !(b.y0 < lines[k] + 0.004 && lines[k] - 0.004 < b.y1);
        if (free_spot) {
            *lx = spots[s][0];
            *ly = spots[s][1];
            return 1;
        }
    }
    return 0;
}

/* Text safe inside a gnuplot double-quoted string: a CSV read back may hold anything. */
static void plot_text(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (; *src && k + 1 < cap; src++)
        dst[k++] = (*src == '"' || *src == '\\' || (unsigned char)*src < 0x20) ? '_' : *src;
    dst[k] = '\0';
}

/* One datablock of the load points of a mode: x, median seconds, min, max. */
static int datablock(FILE *g, const plot_point *points, size_t n, const char *mode)
{
    int count = 0;
    fprintf(g, "$%s << EOD\n", mode);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(points[i].row->mode, mode)) continue;
        fprintf(g, "%.6g %.6g %.6g %.6g\n", points[i].x, points[i].y, points[i].row->seconds.min,
                points[i].row->seconds.max);
        count++;
    }
    fprintf(g, "EOD\n");
    return count;
}

/* The gnuplot script drawing r into out: 0, -1 when no load finished, -2 out of memory. */
static int write_script(FILE *g, const char *out, const bench_report *r)
{
    size_t n = strlen(out);
    int png = n >= 4 && strcmp(out + n - 4, ".png") == 0;
    size_t npoints = 0;
    for (size_t i = 0; i < r->nrows; i++)
        npoints += !strcmp(r->rows[i].kind, "load") && r->rows[i].runs;
    if (!npoints) return -1;
    plot_point *points = calloc(npoints, sizeof *points);
    plot_box *placed = calloc(npoints, sizeof *placed);
    size_t *dropped = calloc(npoints, sizeof *dropped);
    if (!points || !placed || !dropped) {
        free(points);
        free(placed);
        free(dropped);
        return -2;
    }
    double xlo = INFINITY, xhi = 0, ylo = INFINITY, yhi = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *w = &r->rows[i];
        if (strcmp(w->kind, "load") || !w->runs) continue;
        if (w->resident < xlo) xlo = w->resident;
        if (w->resident > xhi) xhi = w->resident;
        if (w->seconds.min < ylo) ylo = w->seconds.min;
        if (w->seconds.max > yhi) yhi = w->seconds.max;
    }
    /* the ceilings' lines are drawn too */
    static const char *const ceilings[] = {"read", "staging", "pinned_copy"};
    double ceiling_t[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        const bench_row *c = bench_find_ceiling(r, ceilings[i]);
        if (!c || !c->runs || !(c->gbps.med > 0)) continue;
        ceiling_t[i] = (double)r->model_bytes / (c->gbps.med * 1e9);
        if (ceiling_t[i] > 0 && ceiling_t[i] < ylo) ylo = ceiling_t[i];
        if (ceiling_t[i] > yhi) yhi = ceiling_t[i];
    }
    double unit = xhi >= (1ull << 30) ? (double)(1ull << 30) : (double)(1u << 20);
    const char *uname = unit > (double)(1u << 20) ? "GiB" : "MiB";
    plot_axis ax = axis_for(xlo / unit, xhi / unit, 0.06, 0.30);
    plot_axis ay = axis_for(ylo, yhi, 0.08, 0.12);
    size_t np = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const bench_row *w = &r->rows[i];
        if (strcmp(w->kind, "load") || !w->runs) continue;
        plot_point *p = &points[np++];
        p->row = w;
        p->x = w->resident / unit;
        if (!(p->x > 0)) p->x = ax.log ? ax.lo : 0; /* a log axis cannot show 0 */
        p->y = w->seconds.med;
        p->gx = axis_graph(&ax, p->x);
        p->gy = axis_graph(&ay, p->y);
        p->gmin = axis_graph(&ay, w->seconds.min > 0 || !ay.log ? w->seconds.min : ay.lo);
        p->gmax = axis_graph(&ay, w->seconds.max);
        char b[32] = "", tmp[24], path[16];
        if (w->budget) snprintf(b, sizeof b, " %s", fmt_budget(w->budget, tmp, sizeof tmp));
        plot_text(path, sizeof path, w->path);
        snprintf(p->text, sizeof p->text, "%s%s", path, b);
    }

    if (png)
        fprintf(g, "set terminal pngcairo size 1280,860 enhanced font 'sans,12' "
                   "background rgb 'white'\n");
    else
        fprintf(g, "set terminal svg size 1100,720 dynamic enhanced font 'sans,12' "
                   "background rgb 'white'\n");
    fprintf(g, "set output '%s'\n", out);
    const char *base = strrchr(r->model, '/');
    base = base && base[1] ? base + 1 : r->model;
    char model[256], device[32];
    plot_text(model, sizeof model, base);
    plot_text(device, sizeof device, r->device);
    fprintf(g, "set title \"hoist bench: %s (%.2f GB) -> %s, median of %d run%s (bars: min to "
               "max)\" noenhanced\n",
            model, (double)r->model_bytes / 1e9, device, r->repeat, r->repeat == 1 ? "" : "s");
    fprintf(g, "set xlabel \"resident host RAM: peak RSS + page-cache growth (%s)\"\n", uname);
    fprintf(g, "set ylabel \"load time (s)\"\n");
    /* the key in the right margin: inside the plot it would cover points */
    fprintf(g, "set lmargin at screen %.2f\nset rmargin at screen %.2f\nset tmargin at screen "
               "%.2f\n", PLOT_LEFT, PLOT_RIGHT, PLOT_TOP);
    fprintf(g, "set grid\nset key outside right top vertical Left reverse box opaque noenhanced "
               "font ',10'\nset pointsize 1.4\n");
    if (ax.log) fprintf(g, "set logscale x 2\n");
    if (ay.log) fprintf(g, "set logscale y 10\n");
    fprintf(g, "set xrange [%.9g:%.9g]\nset yrange [%.9g:%.9g]\n", ax.lo, ax.hi, ay.lo, ay.hi);

    /* labels, leftmost points first; a label with no free spot is listed under the plot */
    double hlines[3];
    int nlines = 0;
    for (int i = 0; i < 3; i++)
        if (ceiling_t[i] > 0) hlines[nlines++] = axis_graph(&ay, ceiling_t[i]);
    size_t nplaced = 0, ndropped = 0;
    for (size_t i = 0; i < np; i++) {
        double lx, ly;
        if (!place_label(points, np, i, placed, nplaced, hlines, nlines, &lx, &ly)) {
            dropped[ndropped++] = i;
            continue;
        }
        double w = (double)strlen(points[i].text) * LABEL_CHAR_W;
        placed[nplaced++] = (plot_box){lx, ly - LABEL_LINE_H / 2, lx + w, ly + LABEL_LINE_H / 2};
        fprintf(g, "set label %zu \"%s\" at graph %.4f, %.4f left font ',10' tc rgb '%s' "
                   "noenhanced\n",
                nplaced, points[i].text, lx, ly,
                strcmp(points[i].row->mode, "cold") ? "#c0392b" : "#1f5fa8");
    }
    double bottom = PLOT_BOTTOM;
    if (ndropped) {
        size_t lines = ndropped > PLOT_MAX_DROPPED ? PLOT_MAX_DROPPED + 1 : ndropped;
        bottom += 0.025 * (double)(lines + 1);
        fprintf(g, "set label 1000 \"not labelled above (no room beside the point):\" at screen "
                   "%.2f, %.4f left font ',9' noenhanced\n",
                PLOT_LEFT, bottom - 0.075);
        for (size_t k = 0; k < lines; k++) {
            char line[160];
            if (k == PLOT_MAX_DROPPED) {
                snprintf(line, sizeof line, "... and %zu more: see the table or the CSV",
                         ndropped - PLOT_MAX_DROPPED);
            } else {
                const plot_point *p = &points[dropped[k]];
                snprintf(line, sizeof line, "%s %s: %.3g s at %.3g %s", p->row->mode, p->text,
                         p->y, p->x, uname);
            }
            fprintf(g, "set label %zu \"%s\" at screen %.2f, %.4f left font ',9' noenhanced\n",
                    1001 + k, line, PLOT_LEFT + 0.02, bottom - 0.075 - 0.025 * (double)(k + 1));
        }
    }
    fprintf(g, "set bmargin at screen %.4f\n", bottom);

    int cold = datablock(g, points, np, "cold");
    int warm = datablock(g, points, np, "warm");
    fprintf(g, "plot ");
    const char *sep = "";
    if (cold) {
        fprintf(g, "$cold using 1:2:3:4 with yerrorbars pt 7 lc rgb '#1f5fa8' title 'cold (page "
                   "cache dropped)'");
        sep = ", ";
    }
    if (warm) {
        fprintf(g, "%s$warm using 1:2:3:4 with yerrorbars pt 5 lc rgb '#c0392b' title 'warm "
                   "(files in page cache)'", sep);
        sep = ", ";
    }
    /* the fastest a load of the model could be at each ceiling */
    static const char *const colors[] = {"#1f5fa8", "#c0392b", "#555555"};
    for (int i = 0; i < 3; i++) {
        if (!(ceiling_t[i] > 0)) continue;
        fprintf(g, "%s%.6g with lines dt 2 lw 1.5 lc rgb '%s' title '%s ceiling %.2f GB/s: %.3f s'",
                sep, ceiling_t[i], colors[i], ceiling_label(ceilings[i]),
                bench_find_ceiling(r, ceilings[i])->gbps.med, ceiling_t[i]);
        sep = ", ";
    }
    fprintf(g, "\n");
    free(points);
    free(placed);
    free(dropped);
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
    } else if ((rc = write_script(g, path, r)) < 0) {
        fclose(g);
        unlink(script);
        if (rc == -2) cli_error("bench", "out of memory");
        else cli_error("bench", "nothing to plot: no load finished");
        rc = -1;
    } else if (fclose(g) != 0) {
        cli_error("bench", "%s: %s", script, strerror(errno));
        rc = -1;
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
