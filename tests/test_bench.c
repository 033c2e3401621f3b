/* tools/cmd_bench.c and tools/bench_report.c through the CLI: `hoist bench --device host` on a
 * generated sharded model produces the table, a CSV with the expected rows and columns and sane
 * values, and a plot; the CSV plots again without measuring; gnuplot's absence is said. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    unsetenv("HOIST_GNUPLOT");
    tu_rmtree(dir);
    dir = NULL;
}

/* ---- a small CSV reader (quotes as RFC 4180) ---------------------------------------------- */

#define MAXF 64
#define MAXR 64

typedef struct csv {
    int ncols, nrows;
    char *head[MAXF];
    char *cell[MAXR][MAXF];
} csv;

static int split(char *line, char **f)
{
    int n = 0;
    char *p = line, *o = line;
    for (;;) {
        f[n++] = o;
        if (*p == '"') {
            for (p++; *p; p++) {
                if (p[0] == '"' && p[1] == '"') {
                    *o++ = '"';
                    p++;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *o++ = *p;
                }
            }
        } else {
            while (*p && *p != ',' && *p != '\n') *o++ = *p++;
        }
        int more = *p == ',';
        *o++ = 0;
        if (!more || n == MAXF) return n;
        p++;
    }
}

static csv *csv_load(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no CSV at %s", path);
    csv *c = calloc(1, sizeof *c);
    char line[8192];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    char *h = strdup(line);
    c->ncols = split(h, c->head);
    while (fgets(line, sizeof line, f)) {
        ck_assert_int_lt(c->nrows, MAXR);
        char *l = strdup(line);
        int n = split(l, c->cell[c->nrows]);
        ck_assert_int_eq(n, c->ncols);
        c->nrows++;
    }
    fclose(f);
    return c;
}

static const char *get(const csv *c, int row, const char *col)
{
    for (int i = 0; i < c->ncols; i++)
        if (strcmp(c->head[i], col) == 0) return c->cell[row][i];
    ck_abort_msg("no column %s", col);
    return NULL;
}

static double num(const csv *c, int row, const char *col) { return strtod(get(c, row, col), NULL); }

static int find_row(const csv *c, const char *kind, const char *mode, const char *path,
                    const char *budget)
{
    for (int r = 0; r < c->nrows; r++)
        if (!strcmp(get(c, r, "kind"), kind) && !strcmp(get(c, r, "mode"), mode) &&
            !strcmp(get(c, r, "path"), path) &&
            (!budget || !strcmp(get(c, r, "budget_bytes"), budget)))
            return r;
    return -1;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void gen(const char *name)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/%s' --size 24M --shard-size 10M --quiet", dir, name);
    ck_assert_int_eq(tu_run_cli(args), 0);
}

static uint64_t model_total(const char *name, uint64_t *files)
{
    char *p = tu_path(dir, name);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    uint64_t t = hoist_model_total_bytes(m);
    *files = 0;
    for (size_t i = 0; i < hoist_model_file_count(m); i++) *files += hoist_model_file_size(m, i);
    hoist_model_free(m);
    free(p);
    return t;
}

static char *slurp(const char *path)
{
    size_t n;
    char *s = tu_read(path, &n);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    s = realloc(s, n + 1);
    s[n] = 0;
    return s;
}

static const char *const columns[] = {
    "model", "device", "kind", "mode", "path", "ran", "budget_bytes", "runs", "bytes",
    "seconds_median", "seconds_min", "seconds_max", "gbps_median", "gbps_min", "gbps_max",
    "ceiling", "ceiling_gbps", "pct_of_ceiling", "peak_rss_bytes", "rss_before_bytes",
    "cache_growth_bytes", "resident_bytes", "cpu_seconds", "read_seconds", "copy_seconds",
    "verify_seconds", "loader_peak_bytes", "threads", "cold_method", "repeat", "model_bytes",
    "file_bytes", "file_gbps_median", "decode_seconds", "note"};

/* ---- tests -------------------------------------------------------------------------------- */

/* The whole bench on the host: every path, two budgets, cold and warm, twice. */
START_TEST(test_bench_host)
{
    gen("m");
    uint64_t files, total = model_total("m", &files);
    char args[2048];
    /* --drop files: dropping the whole machine's page cache would slow every other process */
    snprintf(args, sizeof args,
             "bench '%s/m' --device host --paths mmap,uring,stream --budgets default,16M "
             "--repeat 2 --drop files --csv '%s/b.csv' --plot '%s/b.svg' > '%s/table' "
             "2> '%s/err'",
             dir, dir, dir, dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);

    char *p = tu_path(dir, "b.csv");
    csv *c = csv_load(p);
    free(p);
    ck_assert_int_eq(c->ncols, (int)(sizeof columns / sizeof *columns));
    for (int i = 0; i < c->ncols; i++) ck_assert_str_eq(c->head[i], columns[i]);
    ck_assert_int_eq(c->nrows, 3 + 2 * 3 * 2);

    /* the ceilings, both runs: staging copies every byte of every file, the read sweep reports
     * its fastest shape's share of them */
    const char *ceilings[] = {"read", "staging", "pinned_copy"};
    double ceil_med[3], ceil_min[3], ceil_max[3];
    for (int i = 0; i < 3; i++) {
        int r = find_row(c, "ceiling", i ? "warm" : "cold", ceilings[i], NULL);
        ck_assert_int_ge(r, 0);
        ck_assert_int_eq((int)num(c, r, "runs"), 2);
        if (i == 0) ck_assert(num(c, r, "bytes") > 0 && num(c, r, "bytes") <= (double)files);
        if (i == 1) ck_assert_uint_eq((uint64_t)num(c, r, "bytes"), files);
        ceil_med[i] = num(c, r, "gbps_median");
        ceil_max[i] = num(c, r, "gbps_max");
        ceil_min[i] = num(c, r, "gbps_min");
        ck_assert(ceil_med[i] > 0 && ceil_max[i] >= ceil_med[i]);
        ck_assert(ceil_min[i] > 0 && ceil_min[i] <= ceil_med[i]);
    }

    const char *modes[] = {"cold", "warm"}, *paths[] = {"mmap", "uring", "stream"};
    const char *budgets[] = {"0", "16777216"};
    for (int mo = 0; mo < 2; mo++)
        for (int pa = 0; pa < 3; pa++)
            for (int bu = 0; bu < 2; bu++) {
                int r = find_row(c, "load", modes[mo], paths[pa], budgets[bu]);
                ck_assert_msg(r >= 0, "no %s %s %s row", modes[mo], paths[pa], budgets[bu]);
                ck_assert_str_eq(get(c, r, "device"), "host");
                ck_assert_str_eq(get(c, r, "ran"), paths[pa]);
                ck_assert_str_eq(get(c, r, "cold_method"), "fadvise");
                ck_assert_int_eq((int)num(c, r, "runs"), 2);
                ck_assert_uint_eq((uint64_t)num(c, r, "bytes"), total);
                ck_assert_uint_eq((uint64_t)num(c, r, "model_bytes"), total);
                double smin = num(c, r, "seconds_min"), smed = num(c, r, "seconds_median"),
                       smax = num(c, r, "seconds_max");
                ck_assert(smin > 0 && smin <= smed && smed <= smax);
                ck_assert_double_eq_tol(num(c, r, "gbps_max"), (double)total / smin / 1e9,
                                        1e-3 * num(c, r, "gbps_max") + 1e-4);
                /* the binding ceiling: storage for cold rows and uring, staging for the rest */
                const char *ceil = get(c, r, "ceiling");
                int storage = mo == 0 || pa == 1;
                if (storage)
                    ck_assert(!strcmp(ceil, "read") || !strcmp(ceil, "staging") ||
                              !strcmp(ceil, "pinned_copy"));
                else
                    ck_assert(!strcmp(ceil, "staging") || !strcmp(ceil, "pinned_copy"));
                int ci = !strcmp(ceil, "read") ? 0 : !strcmp(ceil, "staging") ? 1 : 2;
                /* the binding ceiling is the lowest of those on the row's way */
                for (int k = storage ? 0 : 1; k < 3; k++) ck_assert(ceil_med[ci] <= ceil_med[k]);
                ck_assert_double_eq_tol(num(c, r, "ceiling_gbps"), ceil_med[ci], 1e-3);
                /* the CSV holds rates to 4 decimals: at the rates of a slow run (a sanitizer
                 * build, a loaded machine) that rounding alone moves the ratio by more than 0.1% */
                double pct = num(c, r, "pct_of_ceiling"), med = num(c, r, "gbps_median");
                double rounding = pct * 5e-5 * (1 / med + 1 / ceil_med[ci]);
                ck_assert_double_eq_tol(pct, 100 * med / ceil_med[ci],
                                        0.01 + 1e-3 * pct + rounding);
                /* Above 100% only by noise. ctest runs tests side by side on shared cores, so a
                 * ceiling measured while another test runs can come out slow: the bound is the
                 * ceiling's and the row's own spread and a factor of 2, enough to catch a
                 * wrong unit or byte count, not a slow ceiling. */
                double spread = (ceil_max[ci] / ceil_min[ci]) *
                                (num(c, r, "gbps_max") / num(c, r, "gbps_min"));
                ck_assert_msg(pct > 0 && pct <= 200 * spread, "%s %s: %.1f%% of %s",
                              modes[mo], paths[pa], pct, ceil);
                /* a host load holds the model in its arena: the peak RSS cannot be less */
                double rss = num(c, r, "peak_rss_bytes"), grow = num(c, r, "cache_growth_bytes"),
                       res = num(c, r, "resident_bytes");
                ck_assert_msg(rss >= (double)total, "peak RSS %.0f < model %llu", rss,
                              (unsigned long long)total);
                ck_assert(num(c, r, "rss_before_bytes") < rss);
                ck_assert(res >= rss && res <= rss + (grow > 0 ? grow : 0));
                ck_assert(num(c, r, "cpu_seconds") > 0);
                ck_assert(num(c, r, "read_seconds") >= 0 && num(c, r, "copy_seconds") >= 0);
                ck_assert(num(c, r, "threads") >= 1);
                /* what each path does to the page cache */
                if (mo == 0 && pa == 0) /* cold mmap reads it all into the cache */
                    ck_assert_msg(grow >= 0.9 * (double)total, "cold mmap grew %.0f", grow);
                if (mo == 0 && pa == 0 && bu == 0) /* but, budget or not, unmaps each window
                                                      behind the copy: the model's pages are not
                                                      in the peak RSS, so the growth counts */
                    ck_assert_msg(res > rss + grow / 2, "cold mmap: resident %.0f, RSS %.0f, "
                                  "cache growth %.0f", res, rss, grow);
                if (pa == 1) /* O_DIRECT leaves it alone */
                    ck_assert_msg(fabs(grow) < 0.1 * (double)total, "uring: cache %+.0f", grow);
                if (mo == 1) /* warm: stream drops only what it read in, so none of it */
                    ck_assert_msg(fabs(grow) < 0.1 * (double)total, "warm %s: cache %+.0f",
                                  paths[pa], grow);
            }
    /* the 16M budget holds: the loader's own peak stays inside it */
    for (int pa = 0; pa < 3; pa++) {
        int r = find_row(c, "load", "cold", paths[pa], "16777216");
        ck_assert_double_le(num(c, r, "loader_peak_bytes"), 16777216.0);
    }

    /* the table has a line per row */
    p = tu_path(dir, "table");
    char *t = slurp(p);
    free(p);
    ck_assert_ptr_nonnull(strstr(t, "raw read (O_DIRECT)"));
    ck_assert_ptr_nonnull(strstr(t, "host staging"));
    ck_assert_ptr_nonnull(strstr(t, "pinned copy"));
    ck_assert_ptr_nonnull(strstr(t, "posix_fadvise"));
    int lines = 0;
    for (char *l = t; (l = strstr(l, "\n")); l++)
        if (!strncmp(l + 1, "cold ", 5) || !strncmp(l + 1, "warm ", 5)) lines++;
    ck_assert_int_eq(lines, 12);
    free(t);

    /* stderr is a file here: a line per measurement, no progress bar */
    p = tu_path(dir, "err");
    char *e = slurp(p);
    free(p);
    ck_assert_ptr_null(strchr(e, '\r'));
    ck_assert_ptr_null(strstr(e, "ETA"));
    ck_assert_ptr_nonnull(strstr(e, "[30/30] warm stream"));
    free(e);

    /* the plot, where gnuplot is installed (tools/install-deps.sh installs it) */
    if (system("command -v gnuplot > /dev/null 2>&1") == 0) {
        p = tu_path(dir, "b.svg");
        char *svg = slurp(p);
        free(p);
        ck_assert_ptr_nonnull(strstr(svg, "<svg"));
        ck_assert_ptr_nonnull(strstr(svg, "mmap 16M"));
        ck_assert_ptr_nonnull(strstr(svg, "resident host RAM"));
        free(svg);
        p = tu_path(dir, "b.svg.gp");
        ck_assert_int_ne(access(p, F_OK), 0); /* the script is not left behind */
        free(p);
    }
    for (int r = 0; r < c->nrows; r++) free(c->cell[r][0]);
    free(c->head[0]);
    free(c);
}
END_TEST

/* A CSV prints and plots again without measuring; without gnuplot the script is kept and the
 * message says how to draw it. */
START_TEST(test_from_csv_and_no_gnuplot)
{
    gen("m");
    char args[2048];
    snprintf(args, sizeof args,
             "bench '%s/m' --device host --paths stream --repeat 1 --cold --drop files --quiet "
             "--csv '%s/b.csv' > /dev/null",
             dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "bench --from-csv '%s/b.csv' > '%s/table'", dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "table");
    char *t = slurp(p);
    free(p);
    ck_assert_ptr_nonnull(strstr(t, "\ncold stream"));
    free(t);

    setenv("HOIST_GNUPLOT", "/nonexistent/gnuplot", 1);
    snprintf(args, sizeof args,
             "bench --from-csv '%s/b.csv' --plot '%s/p.png' > /dev/null 2> '%s/err'", dir, dir,
             dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    p = tu_path(dir, "err");
    char *e = slurp(p);
    free(p);
    ck_assert_ptr_nonnull(strstr(e, "not installed"));
    ck_assert_ptr_nonnull(strstr(e, "p.png.gp"));
    free(e);
    p = tu_path(dir, "p.png.gp");
    char *gp = slurp(p);
    free(p);
    ck_assert_ptr_nonnull(strstr(gp, "set terminal pngcairo"));
    ck_assert_ptr_nonnull(strstr(gp, "$cold << EOD"));
    free(gp);
    p = tu_path(dir, "p.png");
    ck_assert_int_ne(access(p, F_OK), 0);
    free(p);
}
END_TEST

/* ---- the plot's layout ------------------------------------------------------------------- */

/* What the script must keep apart, in graph coordinates (0..1 over the plot area): a label's
 * text box (about a character's width per character, a line high) and a point's marker. The
 * same sizes as tools/bench_report.c assumes for its smallest terminal. */
#define CHAR_W 0.0105
#define LINE_H 0.0300
#define PT_W 0.0110
#define PT_H 0.0150

typedef struct gp_label {
    char text[64];
    double x, y;
} gp_label;

static double to_graph(double v, double lo, double hi, int lg)
{
    return lg ? (log(v) - log(lo)) / (log(hi) - log(lo)) : (v - lo) / (hi - lo);
}

/* A crowded bench: sixteen loads whose points nearly coincide (four budgets of two paths, cold
 * and warm, within a percent of one another), as a CSV that `bench --from-csv` plots. */
static void write_crowded_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "model,device,kind,mode,path,ran,budget_bytes,runs,bytes,seconds_median,"
               "seconds_min,seconds_max,gbps_median,resident_bytes,repeat,model_bytes,"
               "cold_method\n");
    const char *paths[] = {"stream", "uring"};
    for (int mode = 0; mode < 2; mode++)
        for (int p = 0; p < 2; p++)
            for (int b = 0; b < 4; b++) {
                double secs = 1.0 + 0.002 * b + 0.001 * p + 0.0005 * mode;
                double resident = (64.0 + 0.3 * b + 0.2 * p) * 1048576;
                fprintf(f, "/m/crowd,host,load,%s,%s,%s,%llu,2,1000000000,%.4f,%.4f,%.4f,1.0,"
                           "%.0f,2,1000000000,fadvise\n",
                        mode ? "warm" : "cold", paths[p], paths[p], (16ull << 20) << b, secs,
                        secs * 0.99, secs * 1.01, resident);
            }
    /* and one far away, so that the x axis is logarithmic */
    fprintf(f, "/m/crowd,host,load,warm,mmap,mmap,0,2,1000000000,0.5,0.49,0.51,2.0,%.0f,2,"
               "1000000000,fadvise\n", 1000.0 * 1048576);
    fclose(f);
}

/* The key sits outside the plot area, so it covers no point; no two labels overprint and no label
 * covers a point; a label with no room is listed under the plot instead, so every point is named
 * once. */
START_TEST(test_plot_layout)
{
    char *csvp = tu_path(dir, "crowd.csv");
    write_crowded_csv(csvp);
    setenv("HOIST_GNUPLOT", "/nonexistent/gnuplot", 1); /* keep the script: it is what we check */
    char args[2048];
    snprintf(args, sizeof args, "bench --from-csv '%s' --plot '%s/p.svg' > /dev/null 2>&1", csvp,
             dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    free(csvp);
    char *p = tu_path(dir, "p.svg.gp");
    char *gp = slurp(p);
    free(p);

    ck_assert_ptr_nonnull(strstr(gp, "\nset key outside"));
    ck_assert_ptr_null(strstr(gp, "set key inside"));
    ck_assert_ptr_null(strstr(gp, "with labels")); /* labels are placed, not drawn at the points */

    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    const char *xr = strstr(gp, "set xrange ["), *yr = strstr(gp, "set yrange [");
    ck_assert_ptr_nonnull(xr);
    ck_assert_ptr_nonnull(yr);
    ck_assert_int_eq(sscanf(xr, "set xrange [%lf:%lf]", &xlo, &xhi), 2);
    ck_assert_int_eq(sscanf(yr, "set yrange [%lf:%lf]", &ylo, &yhi), 2);
    int xlog = strstr(gp, "set logscale x") != NULL, ylog = strstr(gp, "set logscale y") != NULL;
    ck_assert(xlog); /* 64 MiB to 1000 MiB */

    /* the points, from the datablocks */
    double px[32], py[32];
    int npts = 0;
    for (const char *blk = gp; (blk = strstr(blk, " << EOD\n")) != NULL;) {
        blk += 8;
        while (strncmp(blk, "EOD", 3) != 0) {
            double x, y;
            ck_assert_int_eq(sscanf(blk, "%lf %lf", &x, &y), 2);
            ck_assert_int_lt(npts, 32);
            px[npts] = to_graph(x, xlo, xhi, xlog);
            py[npts] = to_graph(y, ylo, yhi, ylog);
            ck_assert_msg(px[npts] > 0 && px[npts] < 1 && py[npts] > 0 && py[npts] < 1,
                          "point %d outside the ranges", npts);
            npts++;
            blk = strchr(blk, '\n') + 1;
        }
    }
    ck_assert_int_eq(npts, 17);

    /* the labels placed in the plot, and those listed under it */
    gp_label labels[32];
    int nl = 0, listed = 0;
    for (const char *l = gp; (l = strstr(l, "\nset label ")) != NULL; l++) {
        char line[256], text[64];
        const char *end = strchr(l + 1, '\n');
        size_t len = end ? (size_t)(end - l - 1) : strlen(l + 1);
        snprintf(line, sizeof line, "%.*s", (int)len, l + 1);
        int id, more;
        double x, y;
        if (sscanf(line, "set label %d \"%63[^\"]\" at graph %lf, %lf", &id, text, &x, &y) == 4) {
            ck_assert_int_lt(nl, 32);
            snprintf(labels[nl].text, sizeof labels[nl].text, "%s", text);
            labels[nl].x = x;
            labels[nl].y = y;
            nl++;
        } else if (strstr(line, " at screen ") && strstr(line, " s at ")) {
            listed++; /* "cold stream 16M: 1 s at 64 MiB" */
        } else if (strstr(line, " at screen ") &&
                   sscanf(strstr(line, "\""), "\"... and %d more", &more) == 1) {
            listed += more;
        }
    }
    ck_assert_msg(nl >= 4, "only %d labels placed", nl);
    ck_assert_int_eq(nl + listed, npts);
    for (int i = 0; i < nl; i++) {
        double w = CHAR_W * (double)strlen(labels[i].text);
        double x0 = labels[i].x, x1 = x0 + w, y0 = labels[i].y - LINE_H / 2,
               y1 = labels[i].y + LINE_H / 2;
        ck_assert_msg(x0 >= 0 && x1 <= 1 && y0 >= 0 && y1 <= 1, "label %s leaves the plot",
                      labels[i].text);
        for (int j = i + 1; j < nl; j++) {
            double wj = CHAR_W * (double)strlen(labels[j].text);
            int apart = labels[j].x >= x1 || labels[j].x + wj <= x0 ||
                        labels[j].y - LINE_H / 2 >= y1 || labels[j].y + LINE_H / 2 <= y0;
            ck_assert_msg(apart, "labels \"%s\" (%.3f, %.3f) and \"%s\" (%.3f, %.3f) overprint",
                          labels[i].text, labels[i].x, labels[i].y, labels[j].text, labels[j].x,
                          labels[j].y);
        }
        for (int k = 0; k < npts; k++) {
            int apart = px[k] - PT_W >= x1 || px[k] + PT_W <= x0 || py[k] - PT_H >= y1 ||
                        py[k] + PT_H <= y0;
            ck_assert_msg(apart, "label \"%s\" covers point %d", labels[i].text, k);
        }
    }
    free(gp);
}
END_TEST

/* A budget below what a path needs is a result (the row says so), not a failed bench. */
START_TEST(test_budget_too_small_is_a_row)
{
    gen("m");
    char args[2048];
    snprintf(args, sizeof args,
             "bench '%s/m' --device host --paths stream --budgets 4K --repeat 1 --cold --drop "
             "files --quiet --csv '%s/b.csv' > /dev/null",
             dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "b.csv");
    csv *c = csv_load(p);
    free(p);
    int r = find_row(c, "load", "cold", "stream", "4096");
    ck_assert_int_ge(r, 0);
    ck_assert_int_eq((int)num(c, r, "runs"), 0);
    ck_assert_ptr_nonnull(strstr(get(c, r, "note"), "HOIST_E_BUDGET"));
    for (int i = 0; i < c->nrows; i++) free(c->cell[i][0]);
    free(c->head[0]);
    free(c);
}
END_TEST

/* A packed model: the rows report the model bytes placed (GB/s) beside the container bytes read
 * (file GB/s), and the decoding time; the table grows the two columns. */
START_TEST(test_packed_model)
{
    gen("m");
    char args[2048];
    snprintf(args, sizeof args, "pack '%s/m' '%s/m.hoist' > /dev/null", dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args,
             "bench '%s/m.hoist' --device host --paths uring,mmap --repeat 1 --warm --quiet "
             "--csv '%s/b.csv' > '%s/table'",
             dir, dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    uint64_t files, total = model_total("m.hoist", &files);
    ck_assert_uint_lt(files, total);
    char *p = tu_path(dir, "b.csv");
    csv *c = csv_load(p);
    free(p);
    for (int pa = 0; pa < 2; pa++) {
        int r = find_row(c, "load", "warm", pa ? "mmap" : "uring", NULL);
        ck_assert_int_ge(r, 0);
        ck_assert_int_eq((int)num(c, r, "runs"), 1);
        ck_assert_uint_eq((uint64_t)num(c, r, "bytes"), total);
        uint64_t fb = (uint64_t)num(c, r, "file_bytes");
        ck_assert_msg(fb > 0 && fb < total, "file bytes %llu of %llu", (unsigned long long)fb,
                      (unsigned long long)total);
        double g = num(c, r, "gbps_median"), fg = num(c, r, "file_gbps_median");
        ck_assert_double_eq_tol(fg, g * (double)fb / (double)total, 1e-3 * g + 1e-4);
        ck_assert(num(c, r, "decode_seconds") > 0);
    }
    p = tu_path(dir, "table");
    char *table = slurp(p);
    free(p);
    ck_assert_ptr_nonnull(strstr(table, "file GB/s"));
    free(table);
    for (int i = 0; i < c->nrows; i++) free(c->cell[i][0]);
    free(c->head[0]);
    free(c);
}
END_TEST

START_TEST(test_usage_errors)
{
    gen("m");
    char args[1024];
    const char *bad[] = {"", "--paths mmap,nope", "--budgets 12X", "--repeat 0", "--drop some",
                         "--device gpu", "--from-csv x.csv"};
    ck_assert_int_eq(tu_run_cli("bench 2> /dev/null"), 2); /* no model */
    for (size_t i = 1; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "bench '%s/m' %s 2> /dev/null", dir, bad[i]);
        ck_assert_msg(tu_run_cli(args) == 2, "hoist %s", args);
    }
    snprintf(args, sizeof args, "bench --from-csv '%s/none.csv' 2> /dev/null", dir);
    ck_assert_int_eq(tu_run_cli(args), 1);
    ck_assert_int_eq(tu_run_cli("bench --help > /dev/null"), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bench_host);
    tcase_add_test(tc, test_from_csv_and_no_gnuplot);
    tcase_add_test(tc, test_plot_layout);
    tcase_add_test(tc, test_budget_too_small_is_a_row);
    tcase_add_test(tc, test_packed_model);
    tcase_add_test(tc, test_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
