/* hoist bench: every path and budget, cold and warm, with the ceilings measured in the same run.
 *
 * Each measurement runs in a child process forked for it, and the parent never initialises CUDA
 * (a CUDA context does not survive fork: the children could not use one made in the parent).
 * Why a child per load rather than one process that resets its RSS high-water mark through
 * /proc/self/clear_refs between loads: the mark would reset, but the process would not. A second
 * load in the same process reuses the pinned staging slots the first one left in hoist's cache
 * (so it skips the pinning a real first load pays), and malloc keeps freed heap pages resident, so
 * a later load can peak without raising the RSS at all and its peak would read low. A fresh
 * process per load measures what `hoist load` or an engine loading once sees, with every run
 * starting from the same state, and a load that the kernel kills for memory costs one row, not
 * the bench. The child still writes "5" to /proc/self/clear_refs after bringing the device up, so
 * that the CUDA context's own start-up transient is not counted as the load's peak (the context's
 * resident memory stays in, as in any process that loads). */
#include "bench.h"
#include "bench_devices.h"
#include "cli_util.h"
#include "progress_bar.h"

#include "hoist.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PATHS 8
#define MAX_BUDGETS 16
#define MAX_REPEAT 100
/* A model page still cached after a drop beyond this fraction is worth a warning. */
#define DROP_SLACK 0.02
/* The pinned copy ceiling copies the model's size, within these bounds. */
#define PINNED_MIN (64ull << 20)
#define PINNED_MAX (1ull << 30)

typedef enum drop_method { DROP_AUTO, DROP_GLOBAL, DROP_FILES } drop_method;

typedef struct bench_opts {
    const char *model_path, *csv, *plot, *from_csv;
    int device, device_set;
    hoist_path paths[MAX_PATHS];
    int npaths;
    uint64_t budgets[MAX_BUDGETS];
    int nbudgets;
    int repeat;
    int cold, warm;
    drop_method drop;
    unsigned threads;
    uint64_t chunk;
    int verify, quiet, lenient;
    hoist_ceiling_options read;
    cli_progress_mode progress;
    /* --devices: every device at once (tools/bench_devices.c) */
    hoist_plan_device devices[HOIST_PLAN_MAX_DEVICES];
    size_t ndevices;
    int tp, cooperative;
} bench_opts;

typedef enum job_kind { JOB_PROBE, JOB_LOAD, JOB_READ, JOB_STAGING, JOB_PINNED } job_kind;

/* What a child sends back through its pipe (the same binary on both ends). */
typedef struct job_out {
    int status;
    char error[512];
    int device_count;
    hoist_ceiling ceiling; /* JOB_READ, JOB_STAGING; JOB_PINNED fills bytes, seconds, gbps */
    /* JOB_LOAD */
    char ran[16];
    unsigned threads;
    double seconds, cpu, read_s, copy_s, verify_s, decode_s;
    uint64_t bytes, file_bytes, loader_peak, rss_before, peak_rss, mapped_growth;
    int hwm_reset;
    /* filled by the parent */
    int64_t cache_growth;
    double resident;
} job_out;

typedef struct job {
    job_kind kind;
    int mode; /* 0 cold, 1 warm */
    hoist_path path;
    uint64_t budget;
    char label[96];
} job;

typedef struct bench {
    bench_opts o;
    hoist_model *m;
    size_t nfiles;
    uint64_t file_bytes;
    int global_drop;
    int step, steps;
    int failures;
    int warned_drop, warned_warm, warned_hwm;
    job_out *loads; /* [mode][path][budget][rep] */
    job_out *ceil[3]; /* read, staging, pinned: [rep] */
} bench;

static const char *const mode_names[] = {"cold", "warm"};
static const char *const ceiling_names[] = {"read", "staging", "pinned_copy"};

/* ---- /proc readings ----------------------------------------------------------------------- */

/* Resident and file-backed (plus shmem) pages of this process, in bytes. */
static void statm(uint64_t *rss, uint64_t *shared)
{
    unsigned long long size = 0, res = 0, sh = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu %llu", &size, &res, &sh) != 3) res = sh = 0;
        fclose(f);
    }
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    *rss = res * page;
    *shared = sh * page;
}

static uint64_t vm_hwm(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu", &kb) == 1) break;
    if (f) fclose(f);
    return (uint64_t)kb * 1024;
}

/* Resets VmHWM to the current RSS (Linux 4.0+); 0 when /proc does not allow it. */
static int reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- page cache --------------------------------------------------------------------------- */

/* Bytes of the model's files in the page cache (mincore on a mapping, which faults nothing in). */
static uint64_t cached_bytes(const bench *b)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), total = 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        uint64_t size = hoist_model_file_size(b->m, i);
        if (!size) continue;
        int fd = open(hoist_model_file_path(b->m, i), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) continue;
        size_t pages = (size_t)((size + page - 1) / page);
        unsigned char *vec = malloc(pages);
        if (vec && mincore(p, size, vec) == 0) {
            uint64_t n = 0;
            for (size_t k = 0; k < pages; k++) n += vec[k] & 1;
            total += n * page < size ? n * page : size;
        }
        free(vec);
        munmap(p, size);
    }
    return total;
}

static int drop_global(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int ok = write(fd, "3\n", 2) == 2;
    close(fd);
    return ok ? 0 : -1;
}

static void drop_files(const bench *b)
{
    for (size_t i = 0; i < b->nfiles; i++) {
        int fd = open(hoist_model_file_path(b->m, i), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        (void)fdatasync(fd); /* dirty pages cannot be dropped */
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static void make_cold(bench *b)
{
    if (!b->global_drop || drop_global() != 0) drop_files(b);
    uint64_t left = cached_bytes(b);
    if (!b->warned_drop && (double)left > DROP_SLACK * (double)b->file_bytes) {
        b->warned_drop = 1;
        fprintf(stderr, "hoist bench: warning: %.1f%% of the model is still in the page cache "
                        "after dropping it (mapped or locked by another process?); cold rows are "
                        "partly warm\n", 100.0 * (double)left / (double)b->file_bytes);
    }
}

/* Reads every file once (skipped when all of it is cached already). */
static void make_warm(bench *b)
{
    if (cached_bytes(b) >= b->file_bytes) return;
    size_t cap = 8u << 20;
    char *buf = malloc(cap);
    for (size_t i = 0; buf && i < b->nfiles; i++) {
        int fd = open(hoist_model_file_path(b->m, i), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        while (read(fd, buf, cap) > 0) continue;
        close(fd);
    }
    free(buf);
    uint64_t have = cached_bytes(b);
    if (!b->warned_warm && have < b->file_bytes) {
        b->warned_warm = 1;
        fprintf(stderr, "hoist bench: warning: only %.1f%% of the model stays in the page cache "
                        "(more than the free RAM?); warm rows are partly cold\n",
                100.0 * (double)have / (double)b->file_bytes);
    }
}

/* ---- the children ------------------------------------------------------------------------- */

typedef struct watch {
    cli_progress bar;
    uint64_t shared_peak;
} watch;

/* Progress of a load in the child: the bar, and the peak of file-backed resident pages (an mmap
 * load's mapped page cache, which its RSS counts and the page-cache growth counts again). */
static void watch_cb(uint64_t done, uint64_t total, void *user)
{
    watch *w = user;
    uint64_t rss, shared;
    statm(&rss, &shared);
    if (shared > w->shared_peak) w->shared_peak = shared;
    cli_progress_cb(done, total, &w->bar);
}

static void set_error(job_out *out, int status)
{
    out->status = status;
    snprintf(out->error, sizeof out->error, "%s (%s): %s", hoist_strerror(status),
             hoist_status_name(status), hoist_last_error());
}

static void child_load(const bench *b, const job *j, job_out *out)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = j->path;
    o.device = b->o.device;
    o.ram_budget = j->budget;
    o.threads = b->o.threads;
    o.chunk_bytes = b->o.chunk;
    o.verify = b->o.verify;
    watch w = {0};
    o.progress = watch_cb;
    o.progress_user = &w;
    /* the device comes up outside the timed load */
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    int rc = hoist_device_info_get(b->o.device, &info);
    if (rc < 0) return set_error(out, rc);
    out->hwm_reset = reset_hwm();
    uint64_t shared_before;
    statm(&out->rss_before, &shared_before);
    w.shared_peak = shared_before;
    double cpu0 = cpu_seconds();
    cli_progress_begin(&w.bar, cli_progress_wanted(b->o.progress), j->label);
    hoist_weights *wt = NULL;
    rc = hoist_load(b->m, &o, &wt);
    cli_progress_end(&w.bar);
    out->cpu = cpu_seconds() - cpu0;
    out->peak_rss = vm_hwm();
    if (rc < 0) return set_error(out, rc);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    hoist_weights_stats(wt, &s);
    snprintf(out->ran, sizeof out->ran, "%s", s.path);
    out->threads = s.threads;
    out->seconds = s.seconds;
    out->read_s = s.read_seconds;
    out->copy_s = s.copy_seconds;
    out->verify_s = s.verify_seconds;
    out->decode_s = s.decode_seconds;
    out->bytes = s.bytes;
    out->file_bytes = s.file_bytes;
    out->loader_peak = s.peak_host_bytes;
    out->mapped_growth = w.shared_peak - shared_before;
    hoist_weights_free(wt);
}

static void child_ceiling(const bench *b, const job *j, job_out *out)
{
    int rc = HOIST_OK;
    if (j->kind == JOB_PROBE) {
        out->device_count = hoist_device_count();
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        rc = hoist_device_info_get(b->o.device_set ? b->o.device : HOIST_DEVICE_HOST, &info);
        if (rc < 0) set_error(out, rc);
        return;
    }
    if (j->kind != JOB_READ) {
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        rc = hoist_device_info_get(b->o.device, &info);
        if (rc < 0) return set_error(out, rc);
    }
    cli_progress bar;
    cli_progress_begin(&bar, cli_progress_wanted(b->o.progress) && j->kind != JOB_PINNED,
                       j->label);
    hoist_ceiling_options co = b->o.read;
    if (j->kind == JOB_STAGING) co = (hoist_ceiling_options)HOIST_CEILING_OPTIONS_DEFAULT;
    co.device = b->o.device;
    co.progress = cli_progress_cb;
    co.progress_user = &bar;
    out->ceiling = (hoist_ceiling)HOIST_CEILING_INIT;
    if (j->kind == JOB_READ) {
        rc = hoist_read_ceiling(b->m, &co, &out->ceiling);
    } else if (j->kind == JOB_STAGING) {
        rc = hoist_staging_ceiling(b->m, &co, &out->ceiling);
    } else {
        uint64_t bytes = hoist_model_total_bytes(b->m);
        bytes = bytes < PINNED_MIN ? PINNED_MIN : bytes > PINNED_MAX ? PINNED_MAX : bytes;
        double gbps = 0;
        rc = hoist_device_copy_bandwidth(b->o.device, bytes, 1, 5, &gbps);
        out->ceiling.bytes = bytes;
        out->ceiling.gbps = gbps;
        out->ceiling.seconds = gbps > 0 ? (double)bytes / gbps / 1e9 : 0;
    }
    cli_progress_end(&bar);
    if (rc < 0) set_error(out, rc);
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t read_all(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Runs one job in a fresh child and collects its result; a child that dies is a failed job. */
static void run_job(const bench *b, const job *j, job_out *out)
{
    memset(out, 0, sizeof *out);
    int fds[2];
    if (pipe(fds) != 0) {
        out->status = HOIST_E_INTERNAL;
        snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        job_out r;
        memset(&r, 0, sizeof r);
        if (j->kind == JOB_LOAD)
            child_load(b, j, &r);
        else
            child_ceiling(b, j, &r);
        _exit(write_all(fds[1], &r, sizeof r) == 0 ? 0 : 1);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        out->status = HOIST_E_INTERNAL;
        snprintf(out->error, sizeof out->error, "fork: %s", strerror(errno));
        return;
    }
    size_t got = read_all(fds[0], out, sizeof *out);
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) continue;
    if (got != sizeof *out || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        memset(out, 0, sizeof *out);
        out->status = HOIST_E_INTERNAL;
        if (WIFSIGNALED(st))
            snprintf(out->error, sizeof out->error,
                     "the measuring process died of signal %d (%s)%s", WTERMSIG(st),
                     strsignal(WTERMSIG(st)),
                     WTERMSIG(st) == SIGKILL ? ": killed for memory?" : "");
        else
            snprintf(out->error, sizeof out->error, "the measuring process exited with %d",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

static const char *budget_text(uint64_t v, char *buf, int len)
{
    if (!v) return "default";
    return cli_fmt_bytes(v, buf, len);
}

static void log_step(bench *b, const job *j, const job_out *r)
{
    if (b->o.quiet) return;
    if (r->status < 0) {
        fprintf(stderr, "hoist bench: %s: failed: %s\n", j->label, r->error);
        return;
    }
    char x[32], y[32];
    if (j->kind == JOB_LOAD)
        fprintf(stderr, "hoist bench: %s: %.3f s, %.2f GB/s, peak RSS %s, page cache %s%s\n",
                j->label, r->seconds, r->seconds > 0 ? (double)r->bytes / r->seconds / 1e9 : 0,
                cli_fmt_bytes(r->peak_rss, x, sizeof x), r->cache_growth < 0 ? "-" : "+",
                cli_fmt_bytes((uint64_t)(r->cache_growth < 0 ? -r->cache_growth : r->cache_growth),
                              y, sizeof y));
    else
        fprintf(stderr, "hoist bench: %s: %.2f GB/s\n", j->label, r->ceiling.gbps);
}

static job_out *load_slot(bench *b, int mode, int p, int bu, int rep)
{
    size_t i = (((size_t)mode * (size_t)b->o.npaths + (size_t)p) * (size_t)b->o.nbudgets +
                (size_t)bu) * (size_t)b->o.repeat + (size_t)rep;
    return &b->loads[i];
}

static void measure_load(bench *b, int mode, int p, int bu, int rep)
{
    job j = {.kind = JOB_LOAD, .mode = mode, .path = b->o.paths[p], .budget = b->o.budgets[bu]};
    char bt[32];
    snprintf(j.label, sizeof j.label, "[%d/%d] %s %s budget %s run %d/%d", ++b->step, b->steps,
             mode_names[mode], hoist_path_name(j.path), budget_text(j.budget, bt, sizeof bt),
             rep + 1, b->o.repeat);
    if (mode == 0)
        make_cold(b);
    else
        make_warm(b);
    uint64_t before = cached_bytes(b);
    job_out *r = load_slot(b, mode, p, bu, rep);
    run_job(b, &j, r);
    r->cache_growth = (int64_t)cached_bytes(b) - (int64_t)before;
    /* mapped pages of the model are page cache that the RSS counts too: count them once */
    uint64_t grown = r->cache_growth > 0 ? (uint64_t)r->cache_growth : 0;
    uint64_t both = r->mapped_growth < grown ? r->mapped_growth : grown;
    r->resident = (double)r->peak_rss + (double)grown - (double)both;
    if (r->status == 0 && !r->hwm_reset && !b->warned_hwm) {
        b->warned_hwm = 1;
        fprintf(stderr, "hoist bench: warning: /proc/self/clear_refs is not writable: peak RSS "
                        "includes the device's start-up\n");
    }
    if (r->status < 0 && r->status != HOIST_E_BUDGET) b->failures++;
    log_step(b, &j, r);
}

static void measure_ceiling(bench *b, int which, int rep)
{
    static const job_kind kinds[] = {JOB_READ, JOB_STAGING, JOB_PINNED};
    job j = {.kind = kinds[which], .mode = which == 0 ? 0 : 1};
    snprintf(j.label, sizeof j.label, "[%d/%d] %s ceiling run %d/%d", ++b->step, b->steps,
             ceiling_names[which], rep + 1, b->o.repeat);
    if (which == 0)
        make_cold(b);
    else if (which == 1)
        make_warm(b);
    job_out *r = &b->ceil[which][rep];
    run_job(b, &j, r);
    if (r->status < 0) b->failures++;
    log_step(b, &j, r);
}

static void run_all(bench *b)
{
    int per_rep = 3 + (b->o.cold + b->o.warm) * b->o.npaths * b->o.nbudgets;
    b->steps = per_rep * b->o.repeat;
    /* cold first in each round: the warm rows re-read the files anyway, the cold ones need the
     * cache dropped whatever came before */
    for (int rep = 0; rep < b->o.repeat; rep++) {
        measure_ceiling(b, 0, rep);
        for (int p = 0; b->o.cold && p < b->o.npaths; p++)
            for (int bu = 0; bu < b->o.nbudgets; bu++) measure_load(b, 0, p, bu, rep);
        measure_ceiling(b, 1, rep);
        measure_ceiling(b, 2, rep);
        for (int p = 0; b->o.warm && p < b->o.npaths; p++)
            for (int bu = 0; bu < b->o.nbudgets; bu++) measure_load(b, 1, p, bu, rep);
    }
}

/* ---- results ------------------------------------------------------------------------------ */

static void describe_ceiling(const bench *b, int which, const hoist_ceiling *c, char *buf,
                             size_t len)
{
    char blk[32], dev[HOIST_DEVICE_NAME_MAX];
    hoist_device_name(b->o.device, dev, sizeof dev);
    if (which == 0)
        snprintf(buf, len, "%s, %s, %u %s x %u x %s reads%s%s%s",
                 c->direct ? "O_DIRECT" : "buffered", c->uring ? "io_uring" : "pread", c->threads,
                 c->uring ? "rings" : "threads", c->queue_depth, cli_fmt_bytes(c->block_bytes, blk, sizeof blk),
                 c->fixed_buffers ? ", fixed buffers" : "", *c->note ? "; " : "", c->note);
    else if (which == 1)
        snprintf(buf, len, "best of threads copying %s windows of the cached files %s %s: %s",
                 cli_fmt_bytes(c->block_bytes, blk, sizeof blk),
                 b->o.device < 0 ? "into" : "through 3 pinned slots each to", dev, c->note);
    else
        snprintf(buf, len, "%s of pinned host memory -> %s, median of 5",
                 cli_fmt_bytes(c->bytes, blk, sizeof blk), dev);
}

static void ceiling_row(bench *b, bench_report *rep, int which)
{
    bench_row *w = bench_add_row(rep);
    if (!w) return;
    snprintf(w->kind, sizeof w->kind, "ceiling");
    snprintf(w->mode, sizeof w->mode, "%s", which == 0 ? "cold" : "warm");
    snprintf(w->path, sizeof w->path, "%s", ceiling_names[which]);
    double secs[MAX_REPEAT], gbps[MAX_REPEAT];
    int n = 0;
    const job_out *first_ok = NULL, *first_bad = NULL;
    for (int r = 0; r < b->o.repeat; r++) {
        const job_out *o = &b->ceil[which][r];
        if (o->status < 0) {
            if (!first_bad) first_bad = o;
            continue;
        }
        if (!first_ok) first_ok = o;
        secs[n] = o->ceiling.seconds;
        gbps[n++] = o->ceiling.gbps;
    }
    w->runs = n;
    if (!n) {
        snprintf(w->note, sizeof w->note, "%s", first_bad ? first_bad->error : "not measured");
        return;
    }
    w->bytes = first_ok->ceiling.bytes;
    w->threads = first_ok->ceiling.threads;
    w->seconds = bench_stats(secs, n);
    w->gbps = bench_stats(gbps, n);
    describe_ceiling(b, which, &first_ok->ceiling, w->note, sizeof w->note);
}

/* The lowest ceiling on a row's way: storage for cold rows and for uring's O_DIRECT reads, then
 * the host staging and the pinned copy for every row. */
static void bind_ceiling(const bench_report *rep, bench_row *w)
{
    int storage = strcmp(w->mode, "cold") == 0 || strcmp(w->ran, "uring") == 0;
    for (int i = storage ? 0 : 1; i < 3; i++) {
        const bench_row *c = bench_find_ceiling(rep, ceiling_names[i]);
        if (!c || !c->runs || !(c->gbps.med > 0)) continue;
        if (!(w->ceiling_gbps > 0) || c->gbps.med < w->ceiling_gbps) {
            w->ceiling_gbps = c->gbps.med;
            snprintf(w->ceiling, sizeof w->ceiling, "%s", ceiling_names[i]);
        }
    }
    if (w->ceiling_gbps > 0) w->pct = 100.0 * w->gbps.med / w->ceiling_gbps;
}

typedef enum metric {
    M_PEAK_RSS, M_RSS_BEFORE, M_CACHE_GROWTH, M_RESIDENT, M_CPU, M_READ, M_COPY, M_VERIFY,
    M_LOADER_PEAK, M_DECODE, M_FILE_GBPS
} metric;

static double metric_of(const job_out *o, metric m)
{
    switch (m) {
    case M_PEAK_RSS: return (double)o->peak_rss;
    case M_RSS_BEFORE: return (double)o->rss_before;
    case M_CACHE_GROWTH: return (double)o->cache_growth;
    case M_RESIDENT: return o->resident;
    case M_CPU: return o->cpu;
    case M_READ: return o->read_s;
    case M_COPY: return o->copy_s;
    case M_VERIFY: return o->verify_s;
    case M_LOADER_PEAK: return (double)o->loader_peak;
    case M_DECODE: return o->decode_s;
    case M_FILE_GBPS: return o->seconds > 0 ? (double)o->file_bytes / o->seconds / 1e9 : 0;
    }
    return 0;
}

/* Median of one metric over the successful runs of a row. */
static double median_of(bench *b, int mode, int p, int bu, metric m)
{
    double v[MAX_REPEAT];
    int n = 0;
    for (int r = 0; r < b->o.repeat; r++) {
        const job_out *o = load_slot(b, mode, p, bu, r);
        if (o->status == 0) v[n++] = metric_of(o, m);
    }
    return n ? bench_stats(v, n).med : 0;
}

static void load_row(bench *b, bench_report *rep, int mode, int p, int bu)
{
    bench_row *w = bench_add_row(rep);
    if (!w) return;
    snprintf(w->kind, sizeof w->kind, "load");
    snprintf(w->mode, sizeof w->mode, "%s", mode_names[mode]);
    snprintf(w->path, sizeof w->path, "%s", hoist_path_name(b->o.paths[p]));
    w->budget = b->o.budgets[bu];
    double secs[MAX_REPEAT], gbps[MAX_REPEAT];
    int n = 0;
    const job_out *first_bad = NULL;
    for (int r = 0; r < b->o.repeat; r++) {
        const job_out *o = load_slot(b, mode, p, bu, r);
        if (o->status < 0) {
            if (!first_bad) first_bad = o;
            continue;
        }
        if (!n) {
            snprintf(w->ran, sizeof w->ran, "%s", o->ran);
            w->bytes = o->bytes;
            w->file_bytes = o->file_bytes;
            w->threads = o->threads;
        }
        secs[n] = o->seconds;
        gbps[n++] = o->seconds > 0 ? (double)o->bytes / o->seconds / 1e9 : 0;
    }
    w->runs = n;
    if (first_bad) snprintf(w->note, sizeof w->note, "%s", first_bad->error);
    if (!n) return;
    w->seconds = bench_stats(secs, n);
    w->gbps = bench_stats(gbps, n);
    w->peak_rss = median_of(b, mode, p, bu, M_PEAK_RSS);
    w->rss_before = median_of(b, mode, p, bu, M_RSS_BEFORE);
    w->cache_growth = median_of(b, mode, p, bu, M_CACHE_GROWTH);
    w->resident = median_of(b, mode, p, bu, M_RESIDENT);
    w->cpu = median_of(b, mode, p, bu, M_CPU);
    w->read_s = median_of(b, mode, p, bu, M_READ);
    w->copy_s = median_of(b, mode, p, bu, M_COPY);
    w->verify_s = median_of(b, mode, p, bu, M_VERIFY);
    w->loader_peak = median_of(b, mode, p, bu, M_LOADER_PEAK);
    w->decode_s = median_of(b, mode, p, bu, M_DECODE);
    w->file_gbps = median_of(b, mode, p, bu, M_FILE_GBPS);
    bind_ceiling(rep, w);
}

static void build_report(bench *b, bench_report *rep)
{
    snprintf(rep->model, sizeof rep->model, "%s", b->o.model_path);
    hoist_device_name(b->o.device, rep->device, sizeof rep->device);
    snprintf(rep->cold_method, sizeof rep->cold_method, "%s",
             b->global_drop ? "drop_caches" : "fadvise");
    rep->model_bytes = hoist_model_total_bytes(b->m);
    rep->repeat = b->o.repeat;
    for (int i = 0; i < 3; i++) ceiling_row(b, rep, i);
    for (int mode = 0; mode < 2; mode++) {
        if (!(mode ? b->o.warm : b->o.cold)) continue;
        for (int p = 0; p < b->o.npaths; p++)
            for (int bu = 0; bu < b->o.nbudgets; bu++) load_row(b, rep, mode, p, bu);
    }
}

/* ---- options ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hoist bench MODEL [options]\n"
            "       hoist bench --from-csv FILE [--plot FILE.svg|.png]\n\n"
            "Loads MODEL through each path and budget, cold (page cache dropped) and warm\n"
            "(files cached), --repeat times each, each load in a fresh process, and measures in\n"
            "the same run the ceilings: raw O_DIRECT reads of the files (io_uring), the host\n"
            "staging copy, and the pinned host-to-device copy. Prints a table of medians with\n"
            "min and max; each row shows its share of the ceiling that binds it.\n\n"
            "  --device D          host, cuda or cuda:N (default: cuda:0 if present, else host)\n"
            "  --paths LIST        of mmap, uring, stream, auto (default mmap,uring,stream)\n"
            "  --budgets LIST      host RAM budgets, e.g. 64M,256M,1G; 'default' = none (default)\n"
            "  --repeat N          runs per row (default 3)\n"
            "  --cold | --warm | --both   which rows (default both)\n"
            "  --drop M            cold: auto (drop_caches when root, else fadvise), global\n"
            "                      (/proc/sys/vm/drop_caches) or files (posix_fadvise DONTNEED)\n"
            "  --csv FILE          write the rows as CSV\n"
            "  --plot FILE         draw load time against resident host RAM (.svg or .png;\n"
            "                      with gnuplot)\n"
            "  --from-csv FILE     no measuring: print and plot a CSV written by --csv\n"
            "  --threads N, --chunk SIZE, --verify   passed to every load (--verify: against\n"
            "                      the manifest hoist sum wrote)\n"
            "  --read-threads N, --read-depth N, --read-block SIZE   one shape for the raw read\n"
            "                      ceiling: rings, reads in flight per ring, read size (8, 16,\n"
            "                      1M where one is given; default: the best of a sweep)\n"
            "  --progress, --no-progress   bar on stderr (default: when it is a terminal)\n"
            "  --quiet             no line per measurement on stderr\n"
            "  --lenient           accept trailing bytes after a data section\n"
            "  --help              this text\n\n"
            "Several devices at once (a load per device on one thread each, as hoist load\n"
            "--devices ... --tp/--cooperative; warm, in this process, with --paths' first path):\n"
            "  --devices LIST      cuda:0,cuda:1,...: each device's throughput against its own\n"
            "                      pinned host-to-device link, and the aggregate against the sum\n"
            "  --tp                each device loads its rank's tensor-parallel slices\n"
            "  --cooperative       each device reads 1/N of the shared bytes; NCCL the rest\n");
}

enum {
    OPT_DEVICE = 256,
    OPT_PATHS,
    OPT_BUDGETS,
    OPT_REPEAT,
    OPT_COLD,
    OPT_WARM,
    OPT_BOTH,
    OPT_DROP,
    OPT_CSV,
    OPT_PLOT,
    OPT_FROM_CSV,
    OPT_THREADS,
    OPT_CHUNK,
    OPT_READ_THREADS,
    OPT_READ_DEPTH,
    OPT_READ_BLOCK,
    OPT_VERIFY,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_QUIET,
    OPT_LENIENT,
    OPT_DEVICES,
    OPT_TP,
    OPT_COOPERATIVE,
};

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"paths", required_argument, NULL, OPT_PATHS},
    {"budgets", required_argument, NULL, OPT_BUDGETS},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"cold", no_argument, NULL, OPT_COLD},
    {"warm", no_argument, NULL, OPT_WARM},
    {"both", no_argument, NULL, OPT_BOTH},
    {"drop", required_argument, NULL, OPT_DROP},
    {"csv", required_argument, NULL, OPT_CSV},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"from-csv", required_argument, NULL, OPT_FROM_CSV},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {"read-threads", required_argument, NULL, OPT_READ_THREADS},
    {"read-depth", required_argument, NULL, OPT_READ_DEPTH},
    {"read-block", required_argument, NULL, OPT_READ_BLOCK},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    {"devices", required_argument, NULL, OPT_DEVICES},
    {"tp", no_argument, NULL, OPT_TP},
    {"cooperative", no_argument, NULL, OPT_COOPERATIVE},
    {0},
};

static int path_item(const cli_parser *p, const char *text, size_t i, void *user)
{
    if (hoist_path_parse(text, (hoist_path *)user + i) == HOIST_OK) return CLI_CONTINUE;
    return cli_bad_value(p, "%s", hoist_last_error());
}

/* A size, or "default" / "none": the path's own budget, 0. */
static int budget_item(const cli_parser *p, const char *text, size_t i, void *user)
{
    uint64_t *budget = (uint64_t *)user + i;
    *budget = 0;
    if (strcmp(text, "default") == 0 || strcmp(text, "none") == 0 || cli_parse_size(text, budget))
        return CLI_CONTINUE;
    return cli_bad_value(p, "'%s' is not a size such as 512M or 8G, nor default", text);
}

static int drop_option(const cli_parser *p, drop_method *drop)
{
    static const char *const names[] = {[DROP_AUTO] = "auto", [DROP_GLOBAL] = "global",
                                        [DROP_FILES] = "files"};
    for (int m = 0; m < 3; m++) {
        if (strcmp(p->value, names[m]) != 0) continue;
        *drop = (drop_method)m;
        return CLI_CONTINUE;
    }
    return cli_bad_value(p, "expected auto, global or files");
}

static int plot_option(const cli_parser *p, bench_opts *o)
{
    const char *problem = bench_plot_name_problem(p->value);
    if (problem) return cli_bad_value(p, "%s", problem);
    o->plot = p->value;
    return CLI_CONTINUE;
}

/* Count-taking options: their field and bounds. */
static int count_option(const cli_parser *p, int c, bench_opts *o)
{
    uint64_t v = 0;
    int rc;
    switch (c) {
    case OPT_REPEAT:
        rc = cli_value_u64(p, 1, MAX_REPEAT, &v);
        o->repeat = (int)v;
        return rc;
    case OPT_THREADS: return cli_value_unsigned(p, 0, 256, &o->threads);
    case OPT_READ_THREADS: return cli_value_unsigned(p, 1, 256, &o->read.threads);
    case OPT_READ_DEPTH: return cli_value_unsigned(p, 1, 1024, &o->read.queue_depth);
    default: return cli_bad_option(p, c);
    }
}

static int option(cli_parser *p, int c, bench_opts *o)
{
    size_t n = 0;
    int rc;
    switch (c) {
    case 'h': usage(stdout); return CLI_EXIT_OK;
    case OPT_DEVICE: o->device_set = 1; return cli_value_device(p, &o->device);
    case OPT_PATHS:
        rc = cli_value_list(p, MAX_PATHS, &n, path_item, o->paths);
        o->npaths = (int)n;
        return rc;
    case OPT_BUDGETS:
        rc = cli_value_list(p, MAX_BUDGETS, &n, budget_item, o->budgets);
        o->nbudgets = (int)n;
        return rc;
    case OPT_COLD: case OPT_WARM: case OPT_BOTH:
        o->cold = c != OPT_WARM;
        o->warm = c != OPT_COLD;
        return CLI_CONTINUE;
    case OPT_DROP: return drop_option(p, &o->drop);
    case OPT_CSV: o->csv = p->value; return CLI_CONTINUE;
    case OPT_PLOT: return plot_option(p, o);
    case OPT_FROM_CSV: o->from_csv = p->value; return CLI_CONTINUE;
    case OPT_CHUNK: return cli_value_size(p, 0, UINT64_MAX, &o->chunk);
    case OPT_READ_BLOCK: return cli_value_size(p, 1, UINT64_MAX, &o->read.block_bytes);
    case OPT_VERIFY: o->verify = 1; return CLI_CONTINUE;
    case OPT_PROGRESS: o->progress = CLI_PROGRESS_ALWAYS; return CLI_CONTINUE;
    case OPT_NO_PROGRESS: o->progress = CLI_PROGRESS_NEVER; return CLI_CONTINUE;
    case OPT_QUIET: o->quiet = 1; return CLI_CONTINUE;
    case OPT_LENIENT: o->lenient = 1; return CLI_CONTINUE;
    case OPT_DEVICES:
        return cli_value_device_list(p, o->devices, HOIST_PLAN_MAX_DEVICES, &o->ndevices);
    case OPT_TP: o->tp = 1; return CLI_CONTINUE;
    case OPT_COOPERATIVE: o->cooperative = 1; return CLI_CONTINUE;
    default: return count_option(p, c, o);
    }
}

/* CLI_CONTINUE, or the exit status (0 after --help). */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    cli_parser p;
    cli_parser_init(&p, "bench", argc, argv, options, "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, o);
    if (rc != CLI_CONTINUE) return rc;
    if (o->from_csv && p.noperands)
        return cli_usage_error("bench", "a MODEL and --from-csv do not go together");
    rc = cli_operands(&p, o->from_csv ? 0 : 1, 1, (const char *const[]){"MODEL"});
    o->model_path = p.operand[0];
    return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static int emit(const bench_opts *o, bench_report *rep)
{
    int rc = 0;
    bench_print_table(stdout, rep);
    fflush(stdout);
    if (o->csv) {
        if (bench_write_csv(o->csv, rep) != 0) {
            cli_error("bench", "%s: %s", o->csv, strerror(errno));
            rc = 1;
        } else if (!o->quiet) {
            fprintf(stderr, "hoist bench: wrote %s\n", o->csv);
        }
    }
    if (o->plot) {
        int p = bench_plot(o->plot, rep);
        if (p < 0) rc = 1;
        if (p == 0 && !o->quiet) fprintf(stderr, "hoist bench: wrote %s\n", o->plot);
    }
    return rc;
}

static int from_csv(const bench_opts *o)
{
    bench_report rep;
    memset(&rep, 0, sizeof rep);
    char err[512];
    int rc = bench_read_csv(o->from_csv, &rep, err, sizeof err);
    if (rc < 0) {
        cli_error("bench", "%s", err);
        bench_report_free(&rep);
        return 1;
    }
    rc = emit(o, &rep);
    bench_report_free(&rep);
    return rc;
}

/* The device, when not given, from a child: the parent must stay without a CUDA context. */
static int pick_device(bench *b)
{
    job j = {.kind = JOB_PROBE};
    job_out r;
    run_job(b, &j, &r);
    if (r.status < 0) {
        cli_error("bench", "%s", r.error);
        return -1;
    }
    if (!b->o.device_set) b->o.device = r.device_count > 0 ? 0 : HOIST_DEVICE_HOST;
    return 0;
}

static void pick_drop(bench *b)
{
    b->global_drop = b->o.drop == DROP_GLOBAL || (b->o.drop == DROP_AUTO && geteuid() == 0);
    if (b->global_drop && drop_global() != 0) {
        fprintf(stderr, "hoist bench: cannot write /proc/sys/vm/drop_caches (%s): cold runs drop "
                        "the model's pages with posix_fadvise instead\n", strerror(errno));
        b->global_drop = 0;
    }
}

static int run_devices(const bench_opts *o)
{
    bench_devices_opts d = {.model_path = o->model_path, .ndevices = o->ndevices, .tp = o->tp,
                            .cooperative = o->cooperative, .path = o->paths[0],
                            .repeat = o->repeat, .threads = o->threads, .chunk = o->chunk,
                            .lenient = o->lenient, .csv = o->csv};
    for (size_t i = 0; i < o->ndevices; i++) d.devices[i] = o->devices[i].device;
    return bench_devices_run(&d);
}

int cmd_bench(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    bench_opts *o = &b.o;
    o->repeat = 3;
    o->cold = o->warm = 1;
    o->read = (hoist_ceiling_options)HOIST_CEILING_OPTIONS_DEFAULT;
    o->paths[0] = HOIST_PATH_MMAP;
    o->paths[1] = HOIST_PATH_URING;
    o->paths[2] = HOIST_PATH_STREAM;
    o->npaths = 3;
    o->nbudgets = 1; /* the paths' defaults */
    int rc = parse_args(argc, argv, o);
    if (rc != CLI_CONTINUE) return rc;
    if (o->from_csv) return from_csv(o);
    if (o->ndevices) return run_devices(o);
    if (o->tp || o->cooperative)
        return cli_usage_error("bench", "--tp and --cooperative go with --devices");

    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    oo.strict = !o->lenient;
    rc = hoist_model_open(o->model_path, &oo, &b.m);
    if (rc < 0) return cli_fail("bench", rc);
    b.nfiles = hoist_model_file_count(b.m);
    for (size_t i = 0; i < b.nfiles; i++) b.file_bytes += hoist_model_file_size(b.m, i);
    size_t nloads = 2 * (size_t)o->npaths * (size_t)o->nbudgets * (size_t)o->repeat;
    b.loads = calloc(nloads, sizeof *b.loads);
    for (int i = 0; i < 3; i++) b.ceil[i] = calloc((size_t)o->repeat, sizeof *b.ceil[i]);
    bench_report rep;
    memset(&rep, 0, sizeof rep);
    if (!b.loads || !b.ceil[0] || !b.ceil[1] || !b.ceil[2]) {
        cli_error("bench", "out of memory");
        rc = 1;
    } else if (pick_device(&b) < 0) {
        rc = 1;
    } else {
        pick_drop(&b);
        run_all(&b);
        build_report(&b, &rep);
        rc = emit(o, &rep);
        if (b.failures) {
            cli_error("bench", "%d measurement%s failed (see the table)", b.failures,
                      b.failures == 1 ? "" : "s");
            rc = 1;
        }
    }
    bench_report_free(&rep);
    free(b.loads);
    for (int i = 0; i < 3; i++) free(b.ceil[i]);
    hoist_model_free(b.m);
    return rc;
}
