/* The stream path: plain buffered pread of each window into the pipeline's buffer, and
 * posix_fadvise(DONTNEED) behind the reads.
 *
 * It needs neither O_DIRECT nor io_uring, so it works on any filesystem, and dropping what has
 * been read keeps the page cache from growing with the model: host memory is the staging the
 * pipeline sized to the budget plus the few windows in flight, whatever the model size. The drop
 * trails the lowest unread window (hoist__io_dropper) rather than each window, so kernel
 * readahead stays on and still leaves nothing behind. On a host load the pipeline hands the
 * destination itself as buf when a window is one piece, so those bytes are read in place. A
 * sparse plan (tensor-parallel slices) reads only its pieces' ranges, one pread each. */
#include "loader/io_load.h"
#include "loader/source.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Defaults, used only where the options leave them 0; change them here. Measured on an H100 host
 * (8.6 GB model to cuda:0, docs/BENCHMARKS.md): from a cold virtio ext4 disk 2-16 threads and
 * 1-4 MiB windows all read at about the disk's 1.4-2.2 GB/s; from /dev/shm 12 threads x 2 MiB
 * gave 43.6-43.9 GB/s against 33-37 at 8 x 1 MiB (the old default), 32-33 at 12 x 1 MiB and
 * 35 at 12 x 4 MiB. Small windows also keep the staging (and a budget) small. */
#define STREAM_THREADS 12u
#define STREAM_WINDOW (2u << 20)
/* Workers for files that are not in the page cache. Buffered reads of one file by several
 * threads look random to the kernel's readahead, which then keeps little in flight for each;
 * one reader is one sequential stream. Cold on the device machine's virtio disk, 8.6 GB (2
 * rounds each, docs/BENCHMARKS.md): 1 worker 1.90 GB/s, as fast as O_DIRECT io_uring (1.89);
 * 2 workers 1.56, 4 workers 1.64, 12 workers 1.33. */
#define STREAM_COLD_THREADS 1u

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
} stream_state;

static void stream_close(void *vs)
{
    stream_state *s = vs;
    if (!s) return;
    hoist__io_dropper_free(&s->dropper);
    for (uint32_t i = 0; i < s->nfiles; i++) {
        if (s->fds[i] < 0) continue;
        /* whatever a failed load read, or a straggling readahead brought in; before start
         * nothing was read, and the cache is someone else's */
        if (s->res) hoist__residency_drop(&s->res[i], s->fds[i], 0, UINT64_MAX);
        close(s->fds[i]);
    }
    for (uint32_t i = 0; s->res && i < s->nfiles; i++) hoist__residency_free(&s->res[i], s->budget);
    if (s->res) hoist__budget_give(s->budget, s->nfiles * sizeof *s->res);
    hoist__free(s->res);
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
    int cold = !h->threads && hoist__io_cached_fraction(h->files, h->nfiles) < 0.5;
    if (cold)
        hoist__log(HOIST_LOG_DEBUG, "stream: %s is not in the page cache: %u worker",
                   s->nfiles ? h->files[0].path : "model", STREAM_COLD_THREADS);
    unsigned threads = cold ? STREAM_COLD_THREADS : STREAM_THREADS;
    hoist__io_default_needs(h, threads, STREAM_WINDOW, needs);
    needs->staging = true;
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

/* A window's bytes, or only its pieces' in a sparse plan: gaps are not asked for. */
static void advise(const stream_state *s, const hoist__window *w)
{
    int fd = s->fds[w->file];
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

static int stream_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                       int *dma)
{
    stream_state *s = vs;
    if (s->ahead) read_ahead(s, w);
    RETURN_IF(!buf, HOIST_E_INTERNAL, "stream: no buffer for bytes %llu..%llu",
              (unsigned long long)w->lo, (unsigned long long)w->hi);
    int fd = s->fds[w->file];
    RETURN_IF_ERR(read_window(s, w, buf));
    if (s->dropper.ready)
        hoist__io_dropper_done(&s->dropper, w);
    else
        hoist__residency_drop(s->res ? &s->res[w->file] : NULL, fd, w->lo, w->hi);
    *src = buf;
    *dma = 0;
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
    for (uint32_t i = 0; i < s->nfiles; i++)
        hoist__residency_probe(s->fds[i], s->hints.files[i].path, s->hints.files[i].size,
                               budget, &s->res[i]);
    return HOIST_OK;
}

/* The read-ahead distance and the drop cursor follow the plan's windows. */
static int stream_start(void *vs, const hoist__plan *plan, hoist__budget *budget)
{
    stream_state *s = vs;
    s->plan = plan;
    s->ahead = ahead_windows(s, plan->window_bytes);
    RETURN_IF_ERR(probe_files(s, budget));
    /* the kernel's readahead would read the gaps between a sparse plan's pieces */
    for (uint32_t i = 0; hoist__source_ranges(plan) && i < s->nfiles; i++)
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
    .host_bytes = stream_host_bytes,
};
