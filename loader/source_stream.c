/* The stream path: reads of each window into the pipeline's buffer that leave the page cache as
 * they found it: O_DIRECT for what was not cached where the files take it, else buffered reads
 * and posix_fadvise(DONTNEED) behind them of only the pages the load brought in.
 *
 * It needs neither O_DIRECT nor io_uring (it uses them where they are to be had), so it works on
 * any filesystem, and dropping what has been read keeps the page cache from growing with the
 * model: host memory is the staging the pipeline sized to the budget plus the few windows in
 * flight, whatever the model size. The drop trails the lowest unread window (hoist__io_dropper)
 * rather than each window, so kernel readahead stays on and still leaves nothing behind. On a
 * host load the pipeline hands the destination itself as buf when a window is one piece, so
 * buffered reads land in place (O_DIRECT ones in the worker's staging buffer, copied out). A
 * sparse plan (tensor-parallel slices) reads only its pieces' ranges.
 *
 * The page cache is shared: a second rank or a restarted engine loading the same model should
 * find what was cached before still cached. So start probes, before anything is read, which
 * pages of each file are resident (hoist__residency_probe: cachestat, and mincore over a
 * mapping for runs that are partly resident), and every drop skips them. The rule that makes
 * this exact despite the kernel dropping only whole folios (up to 2 MiB) lying inside the range
 * asked for: a folio the load brings in is created where nothing was resident, so it lies
 * inside one run of pages that were not, and dropping exactly those runs, cut only at 2 MiB
 * boundaries, frees every folio the load brought in and none that was there before
 * (loader/io_load.h has the cases that can break it). A probe that cannot be made drops
 * everything the load read, as before: the budget comes first.
 *
 * How the windows are read depends on what is cached (sampled at open): a cached model with
 * STREAM_THREADS workers calling pread (a copy out of memory); a cold one through an io_uring
 * per worker, or by one pread worker where no ring is to be had. Through the rings, the pages
 * the probe found not resident are read with O_DIRECT into the worker's staging buffer, so the
 * load adds nothing to the page cache at all: no page to charge to a small cgroup, to reclaim or
 * to drop (buffered, the same load ran at 79% of the uring path's speed in a 1 GiB cgroup); the
 * pages that were resident are read buffered, out of the cache. A file whose filesystem refuses
 * O_DIRECT (at open, or with EINVAL on a read) is read buffered through the same rings, each
 * window cut into STREAM_RING_READ reads all in flight at once (a deep queue within the windows
 * the budget already counts), and dropped behind the cursor as above. */
#include "core/uring.h"
#include "loader/io_load.h"
#include "loader/source.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defaults, used only where the options leave them 0; change them here. Measured on an H100 host
 * (8.6 GB model to cuda:0, docs/BENCHMARKS.md): from a cold virtio ext4 disk 2-16 threads and
 * 1-4 MiB windows all read at about the disk's 1.4-2.2 GB/s; from /dev/shm 12 threads x 2 MiB
 * gave 43.6-43.9 GB/s against 33-37 at 8 x 1 MiB (the old default), 32-33 at 12 x 1 MiB and
 * 35 at 12 x 4 MiB. Small windows also keep the staging (and a budget) small. */
#define STREAM_THREADS 12u
#define STREAM_WINDOW (2u << 20)
/* Workers for files that are not in the page cache, where there is no io_uring (below). Buffered
 * reads of one file by several
 * threads look random to the kernel's readahead, which then keeps little in flight for each;
 * one reader is one sequential stream. Cold on the device machine's virtio disk, 8.6 GB (2
 * rounds each, docs/BENCHMARKS.md): 1 worker 1.90 GB/s, as fast as O_DIRECT io_uring (1.89);
 * 2 workers 1.56, 4 workers 1.64, 12 workers 1.33. */
#define STREAM_COLD_THREADS 1u
/* Files not in the page cache, where io_uring is to be had: each worker reads its window as
 * buffered reads of STREAM_RING_READ bytes, all in flight at once on its own ring. A buffered
 * read keeps at most max(read_ahead_kb, max_sectors_kb) of itself in flight (128 KiB on the
 * device machines' virtio disks), and one reader waiting on each such piece in turn left a
 * disk that wants a deeper queue idle (0.72 GB/s against O_DIRECT io_uring's 1.96 in a 1 GiB
 * cgroup, H200): here 4 workers x 16 reads keep up to 8 MiB queued. Kernel readahead is turned
 * off (POSIX_FADV_RANDOM) so that the cache holds exactly the windows in hand, the queue being
 * the reads themselves; the kernel then also reads them into single pages, which the drop
 * frees exactly. Reads through a ring are not one stream to the kernel's readahead, so the
 * workers no longer get in each other's way as pread workers did. */
#define STREAM_RING_THREADS 4u
#define STREAM_RING_READ (128u << 10)
#define STREAM_RING_DEPTH 16u
/* Cold files read with O_DIRECT (where the filesystem takes it): nothing passes through the page
 * cache, so nothing argues for few workers, and the reads take the uring path's shape, which
 * reads at the disk's speed (source_uring.c): 16 workers, each window in reads of a quarter of
 * it, at least STREAM_RING_READ. Reads start and end at multiples of STREAM_DIRECT_ALIGN from
 * the window's aligned start, a multiple of every O_DIRECT unit the engine accepts. */
#define STREAM_DIRECT_THREADS 16u
#define STREAM_DIRECT_SPLIT 4u
#define STREAM_DIRECT_ALIGN HOIST_IO_DEFAULT_DIO_ALIGN
/* Staging buffers a worker registers with its ring (the pipeline's slots per worker). */
#define STREAM_RING_BUFS 8u

/* A worker's ring; not live where the worker reads with pread. */
typedef struct stream_worker {
    hoist__uring eng;
    void *bufs[STREAM_RING_BUFS];
    unsigned nbufs;
    uint64_t buf_bytes; /* of each buffer */
} stream_worker;

typedef struct stream_state {
    hoist__source_hints hints;
    uint32_t nfiles;
    int *fds;
    const hoist__plan *plan; /* from start on */
    hoist__budget *budget;   /* from start on */
    hoist__residency *res;   /* per file, from start on: the pages not to drop */
    hoist__io_dropper dropper;
    size_t ahead;           /* windows past the one being read that are advised WILLNEED */
    _Atomic size_t advised; /* windows below this index have been advised */
    bool ring;              /* cold files read through the workers' rings (see STREAM_RING_*) */
    bool direct;            /* some file was opened O_DIRECT for the rings (STREAM_DIRECT_*) */
    /* the rings' view of the files: fds as the buffered descriptors, and O_DIRECT ones of
     * their own where the filesystem takes them */
    hoist__uring_file *ufiles;
    stream_worker *workers;
    unsigned nworkers;
    _Atomic int told_ring, told_direct;
} stream_state;

static void free_residency(stream_state *s)
{
    for (uint32_t i = 0; s->res && i < s->nfiles; i++) hoist__residency_free(&s->res[i], s->budget);
    if (s->res) hoist__budget_give(s->budget, s->nfiles * sizeof *s->res);
    hoist__free(s->res);
    s->res = NULL;
}

static void stream_close(void *vs)
{
    stream_state *s = vs;
    if (!s) return;
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) hoist__uring_exit(&s->workers[i].eng);
    hoist__free(s->workers);
    for (uint32_t i = 0; s->ufiles && i < s->nfiles; i++)
        if (s->ufiles[i].direct_fd >= 0) close(s->ufiles[i].direct_fd);
    hoist__free(s->ufiles); /* the buffered descriptors are fds' */
    hoist__io_dropper_free(&s->dropper);
    for (uint32_t i = 0; i < s->nfiles; i++) {
        if (s->fds[i] < 0) continue;
        /* whatever a failed load read, or a straggling readahead brought in; before start
         * nothing was read, and the cache is someone else's */
        if (s->res) hoist__residency_drop(&s->res[i], s->fds[i], 0, UINT64_MAX);
        close(s->fds[i]);
    }
    free_residency(s);
    hoist__free(s->fds);
    hoist__free(s);
}

static int stream_open_files(stream_state *s)
{
    for (uint32_t i = 0; i < s->nfiles; i++) {
        const hoist__file *f = &s->hints.files[i];
        int os_errno;
        RETURN_IF_ERR(
            hoist__file_open(f, O_RDONLY | O_CLOEXEC, &s->fds[i], &os_errno));
        /* Default readahead, not SEQUENTIAL: the workers already keep several windows in
         * flight, and SEQUENTIAL doubled the pages cached ahead of the drop cursor (32 against
         * 16 MiB with 8 MiB read_ahead_kb) for no speed. */
        (void)posix_fadvise(s->fds[i], 0, 0, POSIX_FADV_NORMAL);
    }
    return HOIST_OK;
}

/* The read-ahead distance in whole windows of `window` bytes: the option (or the default), at
 * most a quarter of a budget, and never past the model's last window. */
static size_t ahead_windows(const stream_state *s, uint64_t window)
{
    const hoist__source_hints *h = &s->hints;
    int64_t want = h->readahead_bytes < 0 ? HOIST_STREAM_READAHEAD : h->readahead_bytes;
    uint64_t bytes = (uint64_t)want;
    if (h->ram_budget && bytes > h->ram_budget / 4) bytes = h->ram_budget / 4;
    uint64_t total = hoist__io_window_count(h->files, h->nfiles, window);
    uint64_t windows = bytes / window;
    if (windows >= total) windows = total ? total - 1 : 0;
    return (size_t)windows;
}

/* The read-ahead pages are host memory the load makes the kernel take: counted like the
 * windows a mapping source holds, so a budget covers them (the staging gets the rest). So is
 * the most the residency probe can take, a bit per page, which start takes from the budget
 * before the staging is. */
static uint64_t stream_host_bytes(void *vs, unsigned threads, uint64_t window)
{
    (void)threads;
    const stream_state *s = vs;
    uint64_t probe = s->nfiles * sizeof *s->res + hoist__residency_bound(s->hints.files, s->nfiles);
    return probe + (window ? (uint64_t)ahead_windows(s, window) * window : 0);
}

/* Whether this process may have an io_uring at all (kernel.io_uring_disabled, seccomp, ENOSYS,
 * the memlock limit say no: *live false): asked once, through the seam, with a one-entry ring.
 * Only the ring's own memory failing is an error (HOIST_E_NOMEM), not a kernel that refuses. */
static int ring_available(bool *live)
{
    hoist__uring u;
    RETURN_IF_ERR(hoist__uring_init(&u, 1, NULL, 0, NULL, 0));
    *live = u.live;
    hoist__uring_exit(&u);
    return HOIST_OK;
}

/* The rings' view of the files: their buffered descriptors (fds', which the rings never
 * close), and an O_DIRECT descriptor of each file whose filesystem takes it; a memory
 * filesystem's pages are the file, with no cache to keep clean and no disk to queue on, so its
 * files get none. Sets s->direct; *why says what refused the first file that got none. */
static int ring_files(stream_state *s, char *why, size_t whylen)
{
    s->ufiles = hoist__calloc(s->nfiles ? s->nfiles : 1, sizeof *s->ufiles);
    RETURN_IF(!s->ufiles, HOIST_E_NOMEM, "out of memory for %u files", s->nfiles);
    for (uint32_t i = 0; i < s->nfiles; i++) s->ufiles[i].direct_fd = -1;
    for (uint32_t i = 0; i < s->nfiles; i++) {
        const hoist__file *f = &s->hints.files[i];
        hoist__uring_file *u = &s->ufiles[i];
        u->path = f->path;
        u->buffered_fd = s->fds[i];
        u->align = HOIST_IO_DEFAULT_DIO_ALIGN;
        char no[160] = "";
        if (hoist__io_memory_backed(s->fds[i]))
            snprintf(no, sizeof no, "a memory filesystem");
        else
            RETURN_IF_ERR(hoist__uring_file_direct(u, f->size, f->dev, f->ino, no, sizeof no));
        s->direct |= atomic_load(&u->direct) != 0;
        if (*no && !*why) snprintf(why, whylen, "%s: %s", f->path, no);
    }
    return HOIST_OK;
}

/* Workers and window for what the page cache holds: a cached model is a copy out of memory
 * (STREAM_THREADS preads); a cold one is read through rings where there are any, with O_DIRECT
 * where the files take it (STREAM_DIRECT_*) or buffered (STREAM_RING_*), else by one pread
 * worker whose kernel readahead stays on. */
static int stream_plan_workers(stream_state *s, const hoist__source_hints *h,
                               hoist__source_needs *needs)
{
    const char *first = s->nfiles ? h->files[0].path : "model";
    bool cold = hoist__io_cached_fraction(h->files, h->nfiles) < 0.5;
    s->ring = false;
    if (cold) RETURN_IF_ERR(ring_available(&s->ring));
    char why[256] = "";
    if (s->ring) RETURN_IF_ERR(ring_files(s, why, sizeof why));
    unsigned threads = !cold     ? STREAM_THREADS
                       : s->direct ? STREAM_DIRECT_THREADS
                       : s->ring   ? STREAM_RING_THREADS
                                   : STREAM_COLD_THREADS;
    hoist__io_default_needs(h, threads, STREAM_WINDOW, needs);
    needs->staging = true;
    if (cold)
        hoist__log(HOIST_LOG_DEBUG, "stream: %s is not in the page cache: %u worker%s%s%s%s%s",
                   first, needs->threads, needs->threads == 1 ? "" : "s",
                   s->direct ? ", each with an io_uring reading what is not cached with O_DIRECT"
                   : s->ring ? ", each with an io_uring of buffered reads"
                             : "",
                   *why ? " (not O_DIRECT: " : "", why, *why ? ")" : "");
    if (!s->ring) return HOIST_OK;
    s->workers = hoist__calloc(needs->threads, sizeof *s->workers);
    RETURN_IF(!s->workers, HOIST_E_NOMEM, "out of memory for %u workers", needs->threads);
    s->nworkers = needs->threads;
    return HOIST_OK;
}

static int stream_open(const hoist__source_hints *h, void **out, hoist__source_needs *needs)
{
    stream_state *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->hints = *h;
    s->fds = hoist__malloc((h->nfiles ? h->nfiles : 1) * sizeof *s->fds);
    if (!s->fds) {
        hoist__free(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u file descriptors", h->nfiles);
    }
    s->nfiles = h->nfiles;
    for (uint32_t i = 0; i < s->nfiles; i++) s->fds[i] = -1;
    int rc = stream_open_files(s);
    if (rc < 0) {
        stream_close(s);
        return rc;
    }
    rc = stream_plan_workers(s, h, needs);
    if (rc < 0) {
        stream_close(s);
        return rc;
    }
    *out = s;
    return HOIST_OK;
}

/* The kernel reads at most max(read_ahead_kb, max_sectors_kb) per WILLNEED call
 * (force_page_cache_ra), 128 KiB by default and on the device machine's virtio disk, and a
 * buffered pread of a 2 MiB window likewise keeps only that much in flight at a time: windows
 * are advised in pieces of this size, each piece queued at once. */
#define STREAM_ADVICE_PIECE (128u << 10)

static void advise_range(int fd, uint64_t lo, uint64_t hi)
{
    for (uint64_t a = lo; a < hi; a += STREAM_ADVICE_PIECE) {
        uint64_t n = hi - a < STREAM_ADVICE_PIECE ? hi - a : STREAM_ADVICE_PIECE;
        (void)posix_fadvise(fd, (off_t)a, (off_t)n, POSIX_FADV_WILLNEED);
    }
}

/* A window's bytes, or only its pieces' in a sparse plan: gaps are not asked for. Not of a file
 * read with O_DIRECT, which would read them twice and leave them cached. */
static void advise(const stream_state *s, const hoist__window *w)
{
    int fd = s->fds[w->file];
    if (s->ufiles && atomic_load(&s->ufiles[w->file].direct)) return;
    if (!hoist__source_ranges(s->plan)) {
        advise_range(fd, w->lo, w->hi);
        return;
    }
    hoist__range_iter it;
    hoist__range r;
    hoist__range_iter_init(&it, s->plan, w, 1);
    while (hoist__range_next(&it, &r)) advise_range(fd, r.lo, r.hi);
}

/* Workers take windows in order, so while window i is read the ones below are taken: windows up
 * to i + ahead are advised once each, by whichever worker gets there first. WILLNEED only queues
 * the reads, so each worker's pread waits on one window while the disk works on many. */
static void read_ahead(stream_state *s, const hoist__window *w)
{
    const hoist__plan *p = s->plan;
    size_t want = (size_t)(w - p->windows) + 1 + s->ahead;
    if (want > p->nwindows) want = p->nwindows;
    size_t j = atomic_load(&s->advised);
    while (j < want) {
        if (!atomic_compare_exchange_weak(&s->advised, &j, j + 1)) continue;
        advise(s, &p->windows[j]);
        j++;
    }
}

static void count(const stream_state *s, uint64_t n)
{
    if (s->hints.read_bytes) atomic_fetch_add(s->hints.read_bytes, n);
}

/* The window's bytes into buf (at their offset from w->lo): all of them, or in a sparse plan only
 * its pieces', range by range. */
static int read_window(const stream_state *s, const hoist__window *w, uint8_t *buf)
{
    int fd = s->fds[w->file];
    const char *path = s->hints.files[w->file].path;
    if (!hoist__source_ranges(s->plan)) {
        RETURN_IF_ERR(hoist__io_read_full(fd, path, buf, w->lo, w->hi));
        count(s, w->hi - w->lo);
        return HOIST_OK;
    }
    hoist__range_iter it;
    hoist__range r;
    hoist__range_iter_init(&it, s->plan, w, 1);
    while (hoist__range_next(&it, &r)) {
        RETURN_IF_ERR(hoist__io_read_full(fd, path, buf + (r.lo - w->lo), r.lo, r.hi));
        count(s, r.hi - r.lo);
    }
    return HOIST_OK;
}

/* ---- reads through a worker's ring ------------------------------------------------------ */

/* The reads of one window, made as the engine asks: of the whole window, or in a sparse plan of
 * each of its pieces' ranges. Reading direct, the ranges are widened to STREAM_DIRECT_ALIGN and
 * each is cut where the pages resident at the probe start or stop: those are read buffered (out
 * of the cache, STREAM_RING_READ bytes at most), the others with O_DIRECT (`part` at most). */
typedef struct ring_feed {
    stream_state *s;
    const hoist__window *w;
    uint8_t *buf;    /* where file byte `base` lands */
    uint64_t base;
    int bi;          /* buf's registered index, -1 */
    bool sparse;
    const hoist__residency *res; /* the window's file's pages resident at the probe; NULL:
                                  * everything is read buffered */
    uint64_t part;   /* the largest O_DIRECT read */
    hoist__range_iter it;
    hoist__range cur; /* what is left of the range being cut */
    uint64_t bytes;   /* asked of storage */
} ring_feed;

static bool ring_next(void *ctx, unsigned slot, hoist__uring_read *r)
{
    ring_feed *f = ctx;
    (void)slot; /* the window's buffer says where each read goes */
    if (f->cur.lo == f->cur.hi && (!f->sparse || !hoist__range_next(&f->it, &f->cur)))
        return false;
    uint64_t a = f->cur.lo, b = f->cur.hi;
    bool resident = true;
    if (f->res) b = hoist__residency_run(f->res, a, b, &resident);
    uint64_t most = resident ? STREAM_RING_READ : f->part;
    if (b - a > most) b = a + most;
    *r = (hoist__uring_read){.file = f->w->file, .buf = f->bi, .direct = !resident, .off = a,
                             .end = b, .need = b < f->cur.need ? b : f->cur.need,
                             .dst = f->buf + (a - f->base)};
    f->cur.lo = b;
    f->bytes += b - a;
    return true;
}

static void ring_refused(void *ctx, const hoist__uring_file *f, const char *why)
{
    stream_state *s = ((ring_feed *)ctx)->s;
    if (atomic_exchange(&s->told_direct, 1)) return;
    hoist__log(HOIST_LOG_INFO, "stream: %s: O_DIRECT refused (%s); reading it buffered", f->path,
               why);
}

static int buffer_index(const stream_worker *sw, const void *buf)
{
    for (unsigned i = 0; i < sw->nbufs; i++)
        if (sw->bufs[i] == buf) return (int)i;
    return -1;
}

/* Where window w can be read with O_DIRECT, or NULL where it is read buffered into buf: the
 * file takes O_DIRECT, some page of the window was not resident at the probe, and a staging
 * buffer holds the window widened to STREAM_DIRECT_ALIGN (windows never straddle a multiple of
 * the window size, itself a multiple of 4096, so it does). That is buf, or on a host load, where
 * the pipeline hands the destination itself (which O_DIRECT cannot widen into), the worker's one
 * buffer, which a host load leaves idle. */
static uint8_t *direct_target(const stream_state *s, const stream_worker *sw,
                              const hoist__window *w, uint8_t *buf)
{
    if (!atomic_load(&s->ufiles[w->file].direct)) return NULL;
    uint64_t lo = hoist__align_down(w->lo, STREAM_DIRECT_ALIGN);
    uint64_t hi = hoist__align_up(w->hi, STREAM_DIRECT_ALIGN);
    bool resident;
    if (hoist__residency_run(&s->res[w->file], lo, hi, &resident) == hi && resident) return NULL;
    uint8_t *to = buffer_index(sw, buf) >= 0 ? buf : sw->nbufs == 1 ? sw->bufs[0] : NULL;
    return to && hi - lo <= sw->buf_bytes ? to : NULL;
}

/* Reads window w through the worker's ring: with O_DIRECT into a staging buffer where
 * direct_target finds one (*src then points into it, past the widening), else buffered into
 * buf. */
static int ring_read(stream_state *s, stream_worker *sw, const hoist__window *w, uint8_t *buf,
                     const void **src, int *dma)
{
    uint8_t *to = direct_target(s, sw, w, buf), *into = to ? to : buf;
    uint64_t unit = to ? STREAM_DIRECT_ALIGN : 1;
    uint64_t lo = hoist__align_down(w->lo, unit), hi = hoist__align_up(w->hi, unit);
    uint64_t part = hoist__align_up((hi - lo + STREAM_DIRECT_SPLIT - 1) / STREAM_DIRECT_SPLIT,
                                    STREAM_DIRECT_ALIGN);
    ring_feed f = {.s = s, .w = w, .buf = into, .base = lo, .bi = buffer_index(sw, into),
                   .sparse = hoist__source_ranges(s->plan), .res = to ? &s->res[w->file] : NULL,
                   .part = part > STREAM_RING_READ ? part : STREAM_RING_READ};
    if (f.sparse)
        hoist__range_iter_init(&f.it, s->plan, w, unit);
    else
        f.cur = (hoist__range){.lo = lo, .hi = hi, .need = w->hi};
    hoist__uring_feed feed = {.next = ring_next, .refused = ring_refused, .ctx = &f};
    int rc = hoist__uring_run(&sw->eng, &feed);
    count(s, f.bytes);
    *src = into + (w->lo - lo);
    *dma = to != NULL; /* a staging slot, at an offset */
    return rc;
}

/* The worker's ring, its staging slots registered; a worker that gets none reads with pread. */
static int stream_attach(void *vs, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes)
{
    stream_state *s = vs;
    if (!s->ring) return HOIST_OK;
    RETURN_IF(worker < 0 || (unsigned)worker >= s->nworkers || nbufs > STREAM_RING_BUFS,
              HOIST_E_INTERNAL, "stream: worker %d with %u buffers (have %u workers)", worker,
              nbufs, s->nworkers);
    stream_worker *sw = &s->workers[worker];
    memcpy(sw->bufs, bufs, nbufs * sizeof *bufs);
    sw->nbufs = nbufs;
    sw->buf_bytes = bytes;
    struct iovec iov[STREAM_RING_BUFS];
    for (unsigned i = 0; i < nbufs; i++) iov[i] = (struct iovec){bufs[i], bytes};
    RETURN_IF_ERR(hoist__uring_init(&sw->eng, STREAM_RING_DEPTH, s->ufiles, s->nfiles, iov, nbufs));
    if (sw->eng.live || atomic_exchange(&s->told_ring, 1)) return HOIST_OK;
    hoist__log(HOIST_LOG_INFO, "stream: %s: no io_uring for worker %d (%s); reading with pread",
               s->nfiles ? s->hints.files[0].path : "model", worker, strerror(sw->eng.init_errno));
    /* a pread worker needs the kernel's readahead back (start turned it off for the rings) */
    for (uint32_t i = 0; !hoist__source_ranges(s->plan) && i < s->nfiles; i++)
        (void)posix_fadvise(s->fds[i], 0, 0, POSIX_FADV_NORMAL);
    return HOIST_OK;
}

static int stream_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                       int *dma)
{
    stream_state *s = vs;
    if (s->ahead) read_ahead(s, w);
    RETURN_IF(!buf, HOIST_E_INTERNAL, "stream: no buffer for bytes %llu..%llu",
              (unsigned long long)w->lo, (unsigned long long)w->hi);
    int fd = s->fds[w->file];
    stream_worker *sw = s->ring && worker >= 0 && (unsigned)worker < s->nworkers
                            ? &s->workers[worker]
                            : NULL;
    *src = buf;
    *dma = 0;
    RETURN_IF_ERR(sw && sw->eng.live ? ring_read(s, sw, w, buf, src, dma)
                                     : read_window(s, w, buf));
    /* O_DIRECT reads brought nothing in, but a buffered one (a file refusing O_DIRECT, pages
     * evicted since the probe) may have: the drop covers every window alike */
    if (s->dropper.ready)
        hoist__io_dropper_done(&s->dropper, w);
    else
        hoist__residency_drop(s->res ? &s->res[w->file] : NULL, fd, w->lo, w->hi);
    return HOIST_OK;
}

/* Which pages each file has in the page cache before anything is read, so that only the
 * others are dropped (hoist__residency: why that is exact). */
static int probe_files(stream_state *s, hoist__budget *budget)
{
    RETURN_IF_ERR(hoist__budget_take(budget, s->nfiles * sizeof *s->res, "the residency maps"));
    s->res = hoist__calloc(s->nfiles ? s->nfiles : 1, sizeof *s->res);
    if (!s->res) {
        hoist__budget_give(budget, s->nfiles * sizeof *s->res);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u residency maps", s->nfiles);
    }
    s->budget = budget;
    for (uint32_t i = 0; i < s->nfiles; i++) {
        int rc = hoist__residency_probe(s->fds[i], s->hints.files[i].path,
                                        s->hints.files[i].size, budget, &s->res[i]);
        if (rc < 0) { /* nothing was read yet: without maps, the close drops nothing */
            free_residency(s);
            return rc;
        }
    }
    return HOIST_OK;
}

/* The read-ahead distance and the drop cursor follow the plan's windows. */
static int stream_start(void *vs, const hoist__plan *plan, hoist__budget *budget)
{
    stream_state *s = vs;
    s->plan = plan;
    s->ahead = ahead_windows(s, plan->window_bytes);
    RETURN_IF_ERR(probe_files(s, budget));
    /* the kernel's readahead would read the gaps between a sparse plan's pieces; through rings
     * the reads in flight are the readahead (STREAM_RING_READ) */
    for (uint32_t i = 0; (s->ring || hoist__source_ranges(plan)) && i < s->nfiles; i++)
        (void)posix_fadvise(s->fds[i], 0, 0, POSIX_FADV_RANDOM);
    return hoist__io_dropper_init(&s->dropper, plan, budget, s->fds, s->res);
}

const hoist__source_ops hoist__source_stream = {
    .version = HOIST_SOURCE_OPS_VERSION,
    .name = "stream",
    .open = stream_open,
    .close = stream_close,
    .read = stream_read,
    .start = stream_start,
    .attach = stream_attach,
    .host_bytes = stream_host_bytes,
};
