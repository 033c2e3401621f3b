/* The uring path: O_DIRECT reads through io_uring straight into the pipeline's staging slots.
 *
 * No page cache is involved, so host memory is the staging pool and nothing else. Each worker
 * owns one read engine (core/uring.h; workers are distinct threads: no lock), set up in attach()
 * with that worker's slots registered as fixed buffers and every file descriptor registered. A
 * window [lo, hi) is widened to the O_DIRECT unit, [align_down(lo), align_up(hi)); windows are
 * cut at multiples of the window size (a multiple of 4096) so the widened range still fits the
 * slot, and the source hands back buf + (lo - align_down(lo)). The range is split into a few
 * reads the engine keeps in flight together, waiting for all of them in one system call; the
 * pipeline's async copies (3 slots per worker on a device) overlap the read of window k+1 with
 * the copy of window k. A sparse plan (tensor-parallel slices) reads only the ranges of each
 * window's pieces, each widened to the O_DIRECT unit, up to URING_DEPTH of them in flight.
 *
 * Fallbacks, each logged once per load at WARN (later occurrences at DEBUG), same bytes:
 *  - O_DIRECT refused by a file (the filesystem reports no support, EINVAL at open, EINVAL on a
 *    read) -> buffered reads of that file, still through io_uring, dropped from the page cache
 *    behind the read as the stream path does: only the pages the load brought in, where the
 *    refusal came at open (the residency probe at start; a refusal on a read drops all).
 *  - io_uring unavailable (kernel.io_uring_disabled, seccomp, ENOSYS, memlock) -> threaded
 *    pread into the same slots, O_DIRECT where the file allows it.
 *  - fixed-buffer registration refused (the memlock limit of a container, typically) -> the
 *    same io_uring reads on unregistered buffers: they lose a little per-read pinning cost, not
 *    O_DIRECT or the queue depth, so this is not a reason to fall back to pread. */
#include "core/uring.h"
#include "loader/io_load.h"
#include "loader/source.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* Defaults, used only where the options leave them 0; change them here. Measured on an H100 host
 * (8.6 GB model to cuda:0, docs/BENCHMARKS.md): from a cold virtio ext4 disk every setting of
 * 2-16 threads and 1-64 MiB windows reads at the disk's 1.4-2.2 GB/s; from /dev/shm, where the
 * I/O path itself is the limit, 16 threads x 2 MiB gave 43.4-43.5 GB/s against 42.2-42.6 at
 * 12 x 2 MiB, 32 at 8 x 2 MiB and 35-36 at 12 x 4 MiB (against a host staging ceiling of about
 * 48-49 GB/s measured by hoist bench). 2 MiB windows split in 4 keep 512 KiB reads, 4 in flight
 * per ring; the staging is 16 x 3 x 2 MiB = 96 MiB. */
#define URING_THREADS 16u
#define URING_WINDOW (2u << 20)
/* Reads one window is split into, all in flight at once on the worker's ring, unless that would
 * make them smaller than URING_MIN_READ (small windows: one read each). */
#define URING_READS_PER_WINDOW 4u
#define URING_MIN_READ (128u << 10)
/* Reads start at multiples of this from the widened window's start: a multiple of every O_DIRECT
 * unit the engine accepts. */
#define URING_READ_ALIGN 4096u
#define URING_MAX_SLOTS 8u
/* Reads a ring keeps in flight: a window's reads, or a sparse window's ranges (a tensor-parallel
 * slice's rows), which may be many and small. */
#define URING_DEPTH 16u

/* What the source knows of a file beside what the engine does. */
typedef struct ufile {
    _Atomic int cached; /* some read went through the page cache */
    int in_memory;      /* tmpfs or ramfs: read with pread on the worker, see open_files */
} ufile;

typedef struct uworker {
    hoist__uring eng;
    void *bufs[URING_MAX_SLOTS];
    unsigned nbufs;
    uint64_t buf_bytes;
} uworker;

typedef struct uring_state {
    uint32_t nfiles;
    hoist__uring_file *files; /* the engines' view, shared by every worker */
    ufile *more;
    unsigned nworkers;
    uworker *workers;
    _Atomic int no_uring; /* a ring could not be had: later workers do not try */
    _Atomic int warned_direct, warned_uring, warned_bufs, told_memory;
    _Atomic uint64_t *read_bytes; /* the hints' counter, or NULL */
    const hoist__plan *plan;      /* from start on */
    /* per file, from start on, where some file is read buffered: the pages it had in the page
     * cache before the load, which the drops leave (hoist__residency); a file found to refuse
     * O_DIRECT only later has none recorded and is dropped whole */
    hoist__residency *res;
    hoist__budget *budget;
    const hoist__file *hints_files; /* the model's files (they outlive the source) */
} uring_state;

/* ---- logging once per load ---------------------------------------------------------------- */

static void warn_once(_Atomic int *flag, const char *fmt, const char *path, const char *why)
{
    hoist_log_level lvl = atomic_exchange(flag, 1) ? HOIST_LOG_DEBUG : HOIST_LOG_WARN;
    hoist__log(lvl, fmt, path, why);
}

static void log_direct_refused(uring_state *s, const hoist__uring_file *f, const char *why)
{
    warn_once(&s->warned_direct,
              "uring: %s: O_DIRECT refused (%s); reading this file buffered, dropping the page "
              "cache behind the reads",
              f->path, why);
}

/* ---- open / close ------------------------------------------------------------------------- */

static void uring_close(void *vs)
{
    uring_state *s = vs;
    if (!s) return;
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) hoist__uring_exit(&s->workers[i].eng);
    for (uint32_t i = 0; s->files && i < s->nfiles; i++) {
        /* per-window drops miss pages that readahead brought back after them */
        if (atomic_load(&s->more[i].cached))
            hoist__residency_drop(s->res ? &s->res[i] : NULL, s->files[i].buffered_fd, 0,
                                  UINT64_MAX);
        hoist__uring_file_close(&s->files[i]);
    }
    for (uint32_t i = 0; s->res && i < s->nfiles; i++) hoist__residency_free(&s->res[i], s->budget);
    if (s->res) hoist__budget_give(s->budget, s->nfiles * sizeof *s->res);
    hoist__free(s->res);
    hoist__free(s->workers);
    hoist__free(s->files);
    hoist__free(s->more);
    hoist__free(s);
}

static int open_files(uring_state *s, const hoist__source_hints *h)
{
    s->hints_files = h->files;
    for (uint32_t i = 0; i < s->nfiles; i++) {
        hoist__uring_file *f = &s->files[i];
        char why[160];
        const hoist__file *tf = &h->files[i];
        RETURN_IF_ERR(hoist__uring_file_open(f, tf->path, tf->size, tf->dev, tf->ino, why,
                                             sizeof why));
        if (!atomic_load(&f->direct)) log_direct_refused(s, f, why);
        /* From memory each read is a copy out of the file's pages, which a buffered pread on the
         * worker does itself, where a ring adds a submission and a completion, and O_DIRECT pins
         * the destination pages for every read (/dev/shm through rings: 78% of the host staging
         * ceiling, docs/BENCHMARKS.md). */
        s->more[i].in_memory = hoist__io_memory_backed(f->buffered_fd);
        if (s->more[i].in_memory && !atomic_exchange(&s->told_memory, 1))
            hoist__log(HOIST_LOG_INFO,
                       "uring: %s is in memory (tmpfs or ramfs): reading it with pread on the "
                       "workers, not through their rings",
                       f->path);
    }
    return HOIST_OK;
}

static int uring_open(const hoist__source_hints *h, void **out, hoist__source_needs *needs)
{
    hoist__io_default_needs(h, URING_THREADS, URING_WINDOW, needs);
    needs->staging = true;
    uring_state *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    uint32_t nf = h->nfiles;
    s->files = hoist__calloc(nf ? nf : 1, sizeof *s->files);
    s->more = hoist__calloc(nf ? nf : 1, sizeof *s->more);
    /* the budget fit may lower threads, never raise them */
    s->workers = hoist__calloc(needs->threads, sizeof *s->workers);
    if (!s->files || !s->more || !s->workers) {
        uring_close(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u files and %u workers", nf,
                          needs->threads);
    }
    s->nfiles = nf;
    s->nworkers = needs->threads;
    s->read_bytes = h->read_bytes;
    for (uint32_t i = 0; i < nf; i++) s->files[i].buffered_fd = s->files[i].direct_fd = -1;
    int rc = open_files(s, h);
    if (rc < 0) {
        uring_close(s);
        return rc;
    }
    *out = s;
    return HOIST_OK;
}

/* ---- engines ------------------------------------------------------------------------------ */

static int uring_attach(void *vs, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes)
{
    uring_state *s = vs;
    RETURN_IF(worker < 0 || (unsigned)worker >= s->nworkers || nbufs > URING_MAX_SLOTS,
              HOIST_E_INTERNAL, "uring: worker %d with %u buffers (have %u workers)", worker,
              nbufs, s->nworkers);
    uworker *uw = &s->workers[worker];
    memcpy(uw->bufs, bufs, nbufs * sizeof *bufs);
    uw->nbufs = nbufs;
    uw->buf_bytes = bytes;
    if (atomic_load(&s->no_uring)) return HOIST_OK;
    struct iovec iov[URING_MAX_SLOTS];
    for (unsigned i = 0; i < nbufs; i++)
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = bytes};
    RETURN_IF_ERR(hoist__uring_init(&uw->eng, URING_DEPTH, s->files, s->nfiles, iov, nbufs));
    const char *first = s->nfiles ? s->files[0].path : "model";
    if (!uw->eng.live) {
        atomic_store(&s->no_uring, 1);
        warn_once(&s->warned_uring,
                  "uring: %s: io_uring unavailable (io_uring_queue_init: %s); reading with "
                  "threaded pread instead",
                  first, strerror(uw->eng.init_errno));
    } else if (uw->eng.bufs_errno) {
        warn_once(&s->warned_bufs,
                  "uring: %s: io_uring cannot register the staging buffers (%s; "
                  "RLIMIT_MEMLOCK?); reading into unregistered buffers",
                  first, strerror(uw->eng.bufs_errno));
    }
    return HOIST_OK;
}

/* ---- windows ------------------------------------------------------------------------------ */

/* The reads of one window, handed to the worker's engine: a few splitting the whole window, or
 * in a sparse plan one or more per range of its pieces, made as the engine asks for them. */
typedef struct wfeed {
    uring_state *s;
    hoist__uring_read pc[URING_READS_PER_WINDOW];
    unsigned n, next;
    int buffered; /* some read went through the page cache */
    bool sparse;
    hoist__range_iter it;
    hoist__range cur; /* the range being cut into reads; empty when cur.lo == cur.hi */
    hoist__uring_read proto; /* file, buffer, direct of every read */
    uint8_t *buf;
    uint64_t base, part; /* buf holds file byte base; reads of at most part bytes */
    uint64_t bytes;      /* asked of storage */
} wfeed;

static bool range_next(wfeed *wf, hoist__uring_read *r)
{
    if (wf->cur.lo == wf->cur.hi && !hoist__range_next(&wf->it, &wf->cur)) return false;
    uint64_t a = wf->cur.lo, b = wf->cur.hi - a > wf->part ? a + wf->part : wf->cur.hi;
    *r = wf->proto;
    r->off = a;
    r->end = b;
    r->need = b < wf->cur.need ? b : wf->cur.need;
    r->dst = wf->buf + (a - wf->base);
    wf->cur.lo = b;
    return true;
}

static bool window_next(void *ctx, unsigned slot, hoist__uring_read *r)
{
    wfeed *wf = ctx;
    (void)slot; /* the window's buffer, not the slot, says where each read goes */
    bool more = wf->sparse ? range_next(wf, r)
                : wf->next < wf->n ? (*r = wf->pc[wf->next++], true) : false;
    if (more) wf->bytes += r->end - r->off;
    return more;
}

static int window_done(void *ctx, const hoist__uring_read *r)
{
    wfeed *wf = ctx;
    wf->buffered |= !r->direct;
    return HOIST_OK;
}

static void window_refused(void *ctx, const hoist__uring_file *f, const char *why)
{
    wfeed *wf = ctx;
    log_direct_refused(wf->s, f, why);
}

/* Splits [alo, ahi) of `file`, which lands at buf, into reads of whole units; returns how many. */
static unsigned split(hoist__uring_read *pc, uint8_t *buf, int bi, uint32_t file, uint64_t alo,
                      uint64_t ahi, uint64_t need, int direct)
{
    uint64_t part = hoist__align_up((ahi - alo + URING_READS_PER_WINDOW - 1) /
                                        URING_READS_PER_WINDOW, URING_READ_ALIGN);
    if (part < URING_MIN_READ) part = URING_MIN_READ;
    unsigned n = 0;
    for (uint64_t a = alo; a < ahi && a < need; a += part, n++) {
        uint64_t b = a + part < ahi ? a + part : ahi;
        pc[n] = (hoist__uring_read){.file = file, .buf = bi, .direct = direct, .off = a, .end = b,
                                    .need = b < need ? b : need, .dst = buf + (a - alo)};
    }
    return n;
}

static int buffer_index(const uworker *uw, const void *buf)
{
    for (unsigned i = 0; i < uw->nbufs; i++)
        if (uw->bufs[i] == buf) return (int)i;
    return -1;
}

static int uring_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                      int *dma)
{
    uring_state *s = vs;
    RETURN_IF(!buf || worker < 0 || (unsigned)worker >= s->nworkers, HOIST_E_INTERNAL,
              "uring: worker %d has no staging slot", worker);
    uworker *uw = &s->workers[worker];
    hoist__uring_file *f = &s->files[w->file];
    ufile *m = &s->more[w->file];
    int direct = !m->in_memory && atomic_load(&f->direct); /* from memory it only pins */
    uint64_t unit = direct ? f->align : 1;
    uint64_t lo = hoist__align_down(w->lo, unit), hi = hoist__align_up(w->hi, unit);
    RETURN_IF(hi - lo > uw->buf_bytes, HOIST_E_INTERNAL,
              "%s: aligned window %llu..%llu does not fit a %llu-byte slot", f->path,
              (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)uw->buf_bytes);
    wfeed wf = {.s = s, .sparse = hoist__source_ranges(s->plan)};
    if (wf.sparse) {
        hoist__range_iter_init(&wf.it, s->plan, w, unit);
        wf.proto = (hoist__uring_read){.file = w->file, .buf = buffer_index(uw, buf),
                                       .direct = direct};
        wf.buf = buf;
        wf.base = lo;
        wf.part = hoist__align_up((hi - lo + URING_READS_PER_WINDOW - 1) / URING_READS_PER_WINDOW,
                                  URING_READ_ALIGN);
        if (wf.part < URING_MIN_READ) wf.part = URING_MIN_READ;
    } else {
        wf.n = split(wf.pc, buf, buffer_index(uw, buf), w->file, lo, hi, w->hi, direct);
    }
    hoist__uring_feed feed = {window_next, window_done, window_refused, &wf};
    int rc = uw->eng.live && !m->in_memory ? hoist__uring_run(&uw->eng, &feed)
                                           : hoist__uring_pread(s->files, s->nfiles, &feed);
    /* a memory filesystem's pages are the file: none to drop */
    if ((rc < 0 || !direct || wf.buffered) && !m->in_memory) {
        atomic_store(&m->cached, 1);
        hoist__residency_drop(s->res ? &s->res[w->file] : NULL, f->buffered_fd, w->lo, w->hi);
    }
    if (s->read_bytes) atomic_fetch_add(s->read_bytes, wf.bytes);
    RETURN_IF_ERR(rc);
    *src = (uint8_t *)buf + (w->lo - lo);
    *dma = 1; /* the bytes sit in the pinned slot, possibly at an offset */
    return HOIST_OK;
}

/* Whether file i is read through the page cache from the start (O_DIRECT refused at open). */
static bool buffered(const uring_state *s, uint32_t i)
{
    return !atomic_load(&s->files[i].direct) && !s->more[i].in_memory;
}

/* What start may take for the residency maps of the buffered files (a bit per page of each). */
static uint64_t uring_host_bytes(void *vs, unsigned threads, uint64_t window)
{
    (void)threads, (void)window;
    const uring_state *s = vs;
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->nfiles; i++)
        if (buffered(s, i)) n += hoist__residency_bound(&s->hints_files[i], 1);
    return n ? n + s->nfiles * sizeof *s->res : 0;
}

/* Which pages the buffered files have in the page cache before anything is read, so that the
 * drops behind the reads give back only what the load brought in (hoist__residency says why
 * that is exact); another process loading the same model finds the rest still cached. */
static int probe_buffered(uring_state *s, hoist__budget *budget)
{
    bool any = false;
    for (uint32_t i = 0; i < s->nfiles; i++) any |= buffered(s, i);
    if (!any) return HOIST_OK;
    RETURN_IF_ERR(hoist__budget_take(budget, s->nfiles * sizeof *s->res, "the residency maps"));
    s->budget = budget;
    s->res = hoist__calloc(s->nfiles, sizeof *s->res);
    if (!s->res) {
        hoist__budget_give(budget, s->nfiles * sizeof *s->res);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u residency maps", s->nfiles);
    }
    for (uint32_t i = 0; i < s->nfiles; i++)
        if (buffered(s, i))
            RETURN_IF_ERR(hoist__residency_probe(s->files[i].buffered_fd, s->files[i].path,
                                                 s->hints_files[i].size, budget, &s->res[i]));
    return HOIST_OK;
}

static int uring_start(void *vs, const hoist__plan *plan, hoist__budget *budget)
{
    uring_state *s = vs;
    s->plan = plan;
    /* buffered reads (a file refusing O_DIRECT) would otherwise read ahead into the gaps */
    for (uint32_t i = 0; hoist__source_ranges(plan) && i < s->nfiles; i++)
        (void)posix_fadvise(s->files[i].buffered_fd, 0, 0, POSIX_FADV_RANDOM);
    return probe_buffered(s, budget);
}

const hoist__source_ops hoist__source_uring = {
    .version = HOIST_SOURCE_OPS_VERSION,
    .name = "uring",
    .flags = HOIST_SOURCE_SLOT_BUFFERS,
    .open = uring_open,
    .close = uring_close,
    .read = uring_read,
    .attach = uring_attach,
    .start = uring_start,
    .host_bytes = uring_host_bytes,
};
