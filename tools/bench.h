/* hoist bench: the results (rows of medians with min and max), and their table, CSV and plot
 * (tools/bench_report.c). The measuring is tools/cmd_bench.c. */
#ifndef HOIST_BENCH_H
#define HOIST_BENCH_H

#include <stdint.h>
#include <stdio.h>

typedef struct bench_stat {
    double med, min, max;
} bench_stat;

/* Median, min and max of n values (n >= 1; v is reordered). */
bench_stat bench_stats(double *v, int n);

/* One line of the results: a load configuration (kind "load": a mode, path and budget) or a
 * ceiling (kind "ceiling": path "read", "staging" or "pinned_copy"), over `runs` runs. Sizes and
 * times other than seconds/gbps are medians. */
typedef struct bench_row {
    char kind[8];          /* "load" or "ceiling" */
    char mode[8];          /* "cold" or "warm" */
    char path[16];         /* the path asked for, or the ceiling's name */
    char ran[16];          /* the path that ran (auto resolves to one) */
    uint64_t budget;       /* host RAM budget; 0 = the path's default */
    int runs;              /* successful runs */
    uint64_t bytes;        /* bytes moved by one run */
    bench_stat seconds, gbps;
    char ceiling[16];      /* the ceiling that binds this row */
    double ceiling_gbps;
    double pct;            /* gbps.med as a percentage of ceiling_gbps */
    double peak_rss, rss_before, cache_growth, resident, cpu, read_s, copy_s, verify_s,
        loader_peak;
    /* what one run read from the files (a packed model's compressed chunks; else == bytes), its
     * rate, and the decoding time summed over workers: bytes/gbps are model bytes delivered */
    uint64_t file_bytes;
    double file_gbps, decode_s;
    unsigned threads;
    char note[768];        /* how a ceiling was measured; why a load failed */
} bench_row;

typedef struct bench_report {
    char model[1024];
    char device[16];
    char cold_method[24]; /* "drop_caches" or "fadvise" */
    uint64_t model_bytes;
    int repeat;
    bench_row *rows;
    size_t nrows, cap;
} bench_report;

/* A new zeroed row appended to r; NULL when out of memory. */
bench_row *bench_add_row(bench_report *r);
void bench_report_free(bench_report *r);
/* The row of a ceiling, or NULL. */
const bench_row *bench_find_ceiling(const bench_report *r, const char *name);

/* The terminal table. */
void bench_print_table(FILE *f, const bench_report *r);
/* One CSV line per row, with a header (column names in docs/bench.md). 0, or -1 with errno. */
int bench_write_csv(const char *path, const bench_report *r);
/* Reads a CSV written by bench_write_csv. 0, or -1 with a message in err. */
int bench_read_csv(const char *path, bench_report *r, char *err, size_t errlen);
/* Draws load time against resident host RAM with gnuplot into path (.svg or .png). 0 on success;
 * 1 when gnuplot is not installed (the script is left in path + ".gp" and a message printed);
 * -1 on another failure (message printed). */
int bench_plot(const char *path, const bench_report *r);
/* Why bench_plot cannot draw into path (a static string), or NULL when it can. */
const char *bench_plot_name_problem(const char *path);

#endif
