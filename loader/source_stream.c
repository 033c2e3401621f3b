/* The stream path: plain buffered pread of each window into the pipeline's buffer, and
 * posix_fadvise(DONTNEED) behind the reads.
 *
 * It needs neither O_DIRECT nor io_uring, so it works on any filesystem, and dropping what has
 * been read keeps the page cache from growing with the model: host memory is the staging the
 * pipeline sized to the budget plus the few windows in flight, whatever the model size. The drop
 * trails the lowest unread window (hoist__io_dropper) rather than each window, so kernel
 * readahead stays on and still leaves nothing behind. On a host load the pipeline hands the
 * destination itself as buf when a window is one piece, so those bytes are read in place. */
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
    hoist__load *ld;
    const hoist__table *table;
    uint32_t nfiles;
    int *fds;
    hoist__io_dropper dropper;
    size_t ahead;           /* windows past the one being read that are advised WILLNEED */
    _Atomic size_t advised; /* windows below this index have been advised */
} stream_state;

static void stream_close(void *vs)
{
    stream_state *s = vs;
    if (!s) return;
    hoist__io_dropper_free(&s->dropper, &s->ld->budget);
    for (uint32_t i = 0; i < s->nfiles; i++) {
        if (s->fds[i] < 0) continue;
        /* whatever a failed load read, or a straggling readahead brought in */
        (void)posix_fadvise(s->fds[i], 0, 0, POSIX_FADV_DONTNEED);
        close(s->fds[i]);
    }
    hoist__free(s->fds);
    hoist__free(s);
}

static int stream_open_files(stream_state *s)
{
    for (uint32_t i = 0; i < s->nfiles; i++) {
        const hoist__file *f = &s->table->files[i];
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
    const hoist__load *ld = s->ld;
    int64_t want = ld->opts.readahead_bytes < 0 ? HOIST_STREAM_READAHEAD
                                                : ld->opts.readahead_bytes;
    uint64_t bytes = (uint64_t)want;
    if (ld->budget.limit && bytes > ld->budget.limit / 4) bytes = ld->budget.limit / 4;
    uint64_t total = hoist__io_window_count(s->table, window);
    uint64_t windows = bytes / window;
    if (windows >= total) windows = total ? total - 1 : 0;
    return (size_t)windows;
}

/* The read-ahead pages are host memory the load makes the kernel take: counted like the
 * windows a mapping source holds, so a budget covers them (the staging gets the rest). */
static uint64_t stream_host_bytes(void *vs, unsigned threads, uint64_t window)
{
    (void)threads;
    return window ? (uint64_t)ahead_windows(vs, window) * window : 0;
}

static int stream_open(hoist__load *ld, void **out)
{
    stream_state *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->ld = ld;
    s->table = ld->table;
    s->fds = hoist__malloc((ld->table->nfiles ? ld->table->nfiles : 1) * sizeof *s->fds);
    if (!s->fds) {
        hoist__free(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u file descriptors",
                          ld->table->nfiles);
    }
    s->nfiles = ld->table->nfiles;
    for (uint32_t i = 0; i < s->nfiles; i++) s->fds[i] = -1;
    int rc = stream_open_files(s);
    if (rc < 0) {
        stream_close(s);
        return rc;
    }
    int cold = !ld->opts.threads && hoist__io_cached_fraction(ld->table) < 0.5;
    if (cold)
        hoist__log(HOIST_LOG_DEBUG, "stream: %s is not in the page cache: %u worker",
                   s->nfiles ? s->table->files[0].path : "model", STREAM_COLD_THREADS);
    unsigned threads = cold ? STREAM_COLD_THREADS : STREAM_THREADS;
    hoist__io_apply_defaults(&ld->opts, ld->table, threads, STREAM_WINDOW);
    *out = s;
    return HOIST_OK;
}

/* The kernel reads at most max(read_ahead_kb, max_sectors_kb) per WILLNEED call
 * (force_page_cache_ra), 128 KiB by default and on the device machine's virtio disk, and a
 * buffered pread of a 2 MiB window likewise keeps only that much in flight at a time: windows
 * are advised in pieces of this size, each piece queued at once. */
#define STREAM_ADVICE_PIECE (128u << 10)

static void advise(int fd, uint64_t lo, uint64_t hi)
{
    for (uint64_t a = lo; a < hi; a += STREAM_ADVICE_PIECE) {
        uint64_t n = hi - a < STREAM_ADVICE_PIECE ? hi - a : STREAM_ADVICE_PIECE;
        (void)posix_fadvise(fd, (off_t)a, (off_t)n, POSIX_FADV_WILLNEED);
    }
}

/* Workers take windows in order, so while window i is read the ones below are taken: windows up
 * to i + ahead are advised once each, by whichever worker gets there first. WILLNEED only queues
 * the reads, so each worker's pread waits on one window while the disk works on many. */
static void read_ahead(stream_state *s, const hoist__window *w)
{
    const hoist__plan *p = &s->ld->plan;
    size_t want = (size_t)(w - p->windows) + 1 + s->ahead;
    if (want > p->nwindows) want = p->nwindows;
    size_t j = atomic_load(&s->advised);
    while (j < want) {
        if (!atomic_compare_exchange_weak(&s->advised, &j, j + 1)) continue;
        const hoist__window *a = &p->windows[j];
        advise(s->fds[a->file], a->lo, a->hi);
        j++;
    }
}

static int stream_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                       int *dma)
{
    stream_state *s = vs;
    if (s->ahead) read_ahead(s, w);
    RETURN_IF(!buf, HOIST_E_INTERNAL, "stream: no buffer for bytes %llu..%llu",
              (unsigned long long)w->lo, (unsigned long long)w->hi);
    int fd = s->fds[w->file];
    RETURN_IF_ERR(hoist__io_read_full(fd, s->table->files[w->file].path, buf, w->lo, w->hi));
    if (s->dropper.ready)
        hoist__io_dropper_done(&s->dropper, w);
    else
        hoist__io_drop_cache(fd, w->lo, w->hi);
    *src = buf;
    *dma = 0;
    return HOIST_OK;
}

/* The plan exists once the pipeline hands out buffers: the drop cursor is set up on the first
 * call (the loading thread, before any worker runs). */
static int stream_attach(void *vs, int worker, void *const *bufs, unsigned nbufs, uint64_t bytes)
{
    stream_state *s = vs;
    if (s->dropper.ready) return HOIST_OK;
    s->ahead = ahead_windows(s, s->ld->plan.window_bytes);
    return hoist__io_dropper_init(&s->dropper, s->ld, s->fds);
}

const hoist__source_ops hoist__source_stream = {
    .version = HOIST_SOURCE_OPS_VERSION,
    .name = "stream",
    .flags = 0,
    .open = stream_open,
    .close = stream_close,
    .read = stream_read,
    .attach = stream_attach,
    .host_bytes = stream_host_bytes,
};
