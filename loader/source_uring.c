/* The uring path: O_DIRECT reads through io_uring straight into the pipeline's staging slots.
 *
 * No page cache is involved, so host memory is the staging pool and nothing else. Each worker
 * owns one ring (workers are distinct threads: no lock), created in attach() with that worker's
 * slots registered as fixed buffers and every file descriptor registered. A window [lo, hi) is
 * widened to the O_DIRECT unit, [align_down(lo), align_up(hi)); windows are cut at multiples of
 * the window size (a multiple of 4096) so the widened range still fits the slot, and the source
 * hands back buf + (lo - align_down(lo)). The range is split into a few reads submitted
 * together so each ring keeps several in flight; the pipeline's async copies (3 slots per worker
 * on a device) overlap the read of window k+1 with the copy of window k.
 *
 * Fallbacks, each logged once per load at WARN (later occurrences at DEBUG), same bytes:
 *  - O_DIRECT refused by a file (the filesystem reports no support, EINVAL at open, EINVAL on a
 *    read) -> buffered reads of that file, still through io_uring, dropped from the page cache
 *    behind the read as the stream path does.
 *  - io_uring unavailable (kernel.io_uring_disabled, seccomp, ENOSYS, memlock) -> threaded
 *    pread into the same slots, O_DIRECT where the file allows it.
 *  - fixed-buffer registration refused (the memlock limit of a container, typically) -> the
 *    same io_uring reads on unregistered buffers: they lose a little per-read pinning cost, not
 *    O_DIRECT or the queue depth, so this is not a reason to fall back to pread. */
#include "loader/io_load.h"
#include "loader/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
#define URING_ENTRIES 8u
/* The O_DIRECT unit where the kernel does not report one (STATX_DIOALIGN): it is a multiple of
 * every logical block size up to 4 KiB, and windows are multiples of it. */
#define URING_DEFAULT_ALIGN 4096u
#define URING_MAX_SLOTS 8u

typedef struct ufile {
    const char *path;
    uint64_t size;
    int buffered_fd;
    int direct_fd;      /* -1 when O_DIRECT was refused at open */
    _Atomic int direct; /* reads still go through direct_fd */
    _Atomic int cached; /* some read went through the page cache */
    uint32_t align;     /* O_DIRECT unit for offsets, lengths and memory */
    int in_memory;      /* tmpfs or ramfs: read with pread on the worker, see open_files */
} ufile;

typedef struct uworker {
    struct io_uring ring;
    int has_ring;
    int fixed_bufs, fixed_files;
    void *bufs[URING_MAX_SLOTS];
    unsigned nbufs;
    uint64_t buf_bytes;
} uworker;

typedef struct uring_state {
    hoist__load *ld;
    uint32_t nfiles;
    ufile *files;
    unsigned nworkers;
    uworker *workers;
    _Atomic int no_uring; /* a ring could not be created: later workers do not try */
    _Atomic int warned_direct, warned_uring, warned_bufs, told_memory;
} uring_state;

/* One read of a window: [off, end) into dst, of which bytes below need must arrive. */
typedef struct upiece {
    uint64_t off, end, need;
    uint8_t *dst;
    unsigned len; /* length of the read in flight */
    int direct;
} upiece;

enum { PIECE_DONE = 0, PIECE_AGAIN = 1, PIECE_REFUSED = 2 };

/* ---- logging once per load ---------------------------------------------------------------- */

static void warn_once(_Atomic int *flag, const char *fmt, const char *path, const char *why)
{
    hoist_log_level lvl = atomic_exchange(flag, 1) ? HOIST_LOG_DEBUG : HOIST_LOG_WARN;
    hoist__log(lvl, fmt, path, why);
}

static void log_direct_refused(uring_state *s, const ufile *f, const char *why)
{
    warn_once(&s->warned_direct,
              "uring: %s: O_DIRECT refused (%s); reading this file buffered, dropping the page "
              "cache behind the reads",
              f->path, why);
}

/* Switches a file to buffered reads; of the workers that see the refusal, one logs it. */
static void direct_refused(uring_state *s, ufile *f, const char *why)
{
    if (atomic_exchange(&f->direct, 0)) log_direct_refused(s, f, why);
}

/* ---- open / close ------------------------------------------------------------------------- */

static void uring_close(void *vs)
{
    uring_state *s = vs;
    if (!s) return;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].has_ring) io_uring_queue_exit(&s->workers[i].ring);
    for (uint32_t i = 0; i < s->nfiles; i++) {
        /* per-window drops miss pages that readahead brought back after them */
        if (atomic_load(&s->files[i].cached))
            (void)posix_fadvise(s->files[i].buffered_fd, 0, 0, POSIX_FADV_DONTNEED);
        if (s->files[i].buffered_fd >= 0) close(s->files[i].buffered_fd);
        if (s->files[i].direct_fd >= 0) close(s->files[i].direct_fd);
    }
    hoist__free(s->workers);
    hoist__free(s->files);
    hoist__free(s);
}

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Opens the O_DIRECT descriptor beside the buffered one, or records why it cannot be had. */
static int open_direct(uring_state *s, ufile *f)
{
    char why[160];
    f->align = hoist__io_dio_align(f->buffered_fd);
    if (!f->align) {
        snprintf(why, sizeof why, "the filesystem reports no O_DIRECT support");
    } else if (f->align > URING_DEFAULT_ALIGN || URING_DEFAULT_ALIGN % f->align) {
        snprintf(why, sizeof why, "its %u-byte alignment does not divide 4096", f->align);
    } else {
        int fd = hoist__io_open(f->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (fd >= 0 && same_file(fd, f->buffered_fd)) {
            f->direct_fd = fd;
            atomic_store(&f->direct, 1);
            return HOIST_OK;
        }
        if (fd >= 0) {
            close(fd);
            return hoist__err(HOIST_E_FILE_CHANGED, "%s: replaced while being opened", f->path);
        }
        snprintf(why, sizeof why, "open: %s", strerror(errno));
    }
    log_direct_refused(s, f, why);
    return HOIST_OK;
}

static int open_files(uring_state *s)
{
    for (uint32_t i = 0; i < s->nfiles; i++) {
        const hoist__file *tf = &s->ld->table->files[i];
        ufile *f = &s->files[i];
        f->path = tf->path;
        f->size = tf->size;
        int os_errno;
        RETURN_IF_ERR(hoist__file_open(tf, O_RDONLY | O_CLOEXEC, &f->buffered_fd, &os_errno));
        RETURN_IF_ERR(open_direct(s, f));
        /* From memory each read is a copy out of the file's pages, which a buffered pread on the
         * worker does itself, where a ring adds a submission and a completion, and O_DIRECT pins
         * the destination pages for every read (/dev/shm through rings: 78% of the host staging
         * ceiling, docs/BENCHMARKS.md). */
        f->in_memory = hoist__io_memory_backed(f->buffered_fd);
        if (f->in_memory && !atomic_exchange(&s->told_memory, 1))
            hoist__log(HOIST_LOG_INFO,
                       "uring: %s is in memory (tmpfs or ramfs): reading it with pread on the "
                       "workers, not through their rings",
                       f->path);
    }
    return HOIST_OK;
}

static int uring_open(hoist__load *ld, void **out)
{
    uring_state *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->ld = ld;
    hoist_load_options *o = &ld->opts;
    hoist__io_apply_defaults(o, ld->table, URING_THREADS, URING_WINDOW);
    uint32_t nf = ld->table->nfiles;
    s->files = hoist__calloc(nf ? nf : 1, sizeof *s->files);
    s->workers = hoist__calloc(o->threads, sizeof *s->workers);
    if (!s->files || !s->workers) {
        uring_close(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u files and %u workers", nf,
                          o->threads);
    }
    s->nfiles = nf;
    s->nworkers = o->threads; /* the budget fit may lower threads, never raise them */
    for (uint32_t i = 0; i < nf; i++) s->files[i].buffered_fd = s->files[i].direct_fd = -1;
    int rc = open_files(s);
    if (rc < 0) {
        uring_close(s);
        return rc;
    }
    *out = s;
    return HOIST_OK;
}

/* ---- rings -------------------------------------------------------------------------------- */

/* Fixed files: slot 2i is file i's O_DIRECT descriptor (-1, a sparse slot, when refused), slot
 * 2i+1 its buffered one. Without them every read looks the descriptor up; not worth a log. */
static void register_files(uring_state *s, uworker *uw)
{
    if (!s->nfiles) return;
    int *fds = hoist__malloc(2 * (size_t)s->nfiles * sizeof *fds);
    if (!fds) return;
    for (uint32_t i = 0; i < s->nfiles; i++) {
        fds[2 * i] = s->files[i].direct_fd;
        fds[2 * i + 1] = s->files[i].buffered_fd;
    }
    uw->fixed_files = io_uring_register_files(&uw->ring, fds, 2 * s->nfiles) == 0;
    hoist__free(fds);
}

static void register_buffers(uring_state *s, uworker *uw)
{
    struct iovec iov[URING_MAX_SLOTS];
    for (unsigned i = 0; i < uw->nbufs; i++)
        iov[i] = (struct iovec){.iov_base = uw->bufs[i], .iov_len = uw->buf_bytes};
    int rc = hoist__io_uring_register_buffers(&uw->ring, iov, uw->nbufs);
    if (rc == 0) {
        uw->fixed_bufs = 1;
        return;
    }
    warn_once(&s->warned_bufs,
              "uring: %s: io_uring cannot register the staging buffers (%s; RLIMIT_MEMLOCK?); "
              "reading into unregistered buffers",
              s->nfiles ? s->files[0].path : "model", strerror(-rc));
}

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
    int rc = hoist__io_uring_init(URING_ENTRIES, &uw->ring, 0);
    if (rc < 0) {
        atomic_store(&s->no_uring, 1);
        warn_once(&s->warned_uring,
                  "uring: %s: io_uring unavailable (io_uring_queue_init: %s); reading with "
                  "threaded pread instead",
                  s->nfiles ? s->files[0].path : "model", strerror(-rc));
        return HOIST_OK;
    }
    uw->has_ring = 1;
    register_buffers(s, uw);
    register_files(s, uw);
    return HOIST_OK;
}

/* ---- one read's completion, shared by the io_uring and pread engines ---------------------- */

static int piece_complete(const ufile *f, upiece *p, int res)
{
    if (res == -EINTR || res == -EAGAIN) return PIECE_AGAIN;
    if (res == -EINVAL && p->direct) return PIECE_REFUSED;
    RETURN_IF(res < 0, HOIST_E_IO, "%s: read of %u bytes at byte %llu: %s", f->path, p->len,
              (unsigned long long)p->off, strerror(-res));
    RETURN_IF(res == 0 && p->off < p->need, HOIST_E_FILE_CHANGED,
              "%s: file ends at byte %llu, inside tensor data that runs to byte %llu (truncated "
              "during the load?)",
              f->path, (unsigned long long)p->off, (unsigned long long)p->need);
    if (res == 0) return PIECE_DONE; /* end of file inside the alignment padding */
    p->off += (unsigned)res;
    p->dst += (unsigned)res;
    if (p->off >= p->need) return PIECE_DONE;
    /* O_DIRECT cannot resume at an unaligned offset; such short reads do not happen on real
     * kernels short of end of file, so finishing the piece buffered costs nothing in practice */
    if (p->direct && p->off % f->align) p->direct = 0;
    return PIECE_AGAIN;
}

/* ---- the io_uring engine ------------------------------------------------------------------ */

static int slot_index(const uworker *uw, const uint8_t *p, unsigned len)
{
    for (unsigned i = 0; i < uw->nbufs; i++) {
        const uint8_t *b = uw->bufs[i];
        if (p >= b && p + len <= b + uw->buf_bytes) return (int)i;
    }
    return -1;
}

static void queue_piece(uworker *uw, const ufile *f, uint32_t file, upiece *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uw->ring); /* entries > pieces: never NULL */
    p->len = (unsigned)(p->end - p->off);
    int fd = uw->fixed_files ? (int)(2 * file + !p->direct) : p->direct ? f->direct_fd
                                                                           : f->buffered_fd;
    int bi = uw->fixed_bufs ? slot_index(uw, p->dst, p->len) : -1;
    if (bi >= 0)
        io_uring_prep_read_fixed(sqe, fd, p->dst, p->len, p->off, bi);
    else
        io_uring_prep_read(sqe, fd, p->dst, p->len, p->off);
    if (uw->fixed_files) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, p);
}

static int transient(int rc) { return rc == -EINTR || rc == -EAGAIN || rc == -EBUSY; }

/* Submits everything queued, retrying transient refusals a bounded number of times. */
static int submit_all(uworker *uw, const ufile *f, unsigned *queued, unsigned *inflight)
{
    for (int tries = 0; *queued;) {
        int r = io_uring_submit(&uw->ring);
        if (r > 0) {
            unsigned n = (unsigned)r < *queued ? (unsigned)r : *queued;
            *queued -= n;
            *inflight += n;
        } else if (!(r == 0 || transient(r)) || ++tries > 1000) {
            return hoist__err(HOIST_E_IO, "%s: io_uring_submit: %s", f->path,
                              strerror(r < 0 ? -r : EIO));
        }
    }
    return HOIST_OK;
}

/* Waits for one completion and hands it to its piece. *err keeps the first failure; after it,
 * completions are only collected: the kernel may still be writing into the slot. */
static int reap_one(uworker *uw, const ufile *f, uint32_t file, unsigned *queued,
                    unsigned *inflight, int *err)
{
    struct io_uring_cqe *cqe;
    int r;
    do r = io_uring_wait_cqe(&uw->ring, &cqe);
    while (transient(r));
    if (r < 0) return hoist__err(HOIST_E_IO, "%s: io_uring_wait_cqe: %s", f->path, strerror(-r));
    upiece *p = io_uring_cqe_get_data(cqe);
    int res = hoist__io_uring_result(p->direct, p->off, p->len, cqe->res);
    io_uring_cqe_seen(&uw->ring, cqe);
    (*inflight)--;
    if (*err) return HOIST_OK;
    int rc = piece_complete(f, p, res);
    if (rc == PIECE_AGAIN) {
        queue_piece(uw, f, file, p);
        (*queued)++;
    } else if (rc != PIECE_DONE) {
        *err = rc;
    }
    return HOIST_OK;
}

/* A ring that failed to wait is unusable and may still own reads into the slot: tearing it
 * down makes the kernel cancel them before the slot can be reused. */
static void ring_lost(uworker *uw)
{
    io_uring_queue_exit(&uw->ring);
    uw->has_ring = 0;
    uw->fixed_bufs = uw->fixed_files = 0;
}

static int ring_read(uworker *uw, const ufile *f, uint32_t file, upiece *pc, unsigned n)
{
    unsigned queued = 0, inflight = 0;
    int err = 0;
    for (unsigned i = 0; i < n; i++, queued++) queue_piece(uw, f, file, &pc[i]);
    while (queued || inflight) {
        int rc = submit_all(uw, f, &queued, &inflight);
        if (rc < 0 && !err) err = rc;
        if (!inflight) break;
        rc = reap_one(uw, f, file, &queued, &inflight, &err);
        if (rc < 0) {
            ring_lost(uw);
            return rc;
        }
    }
    if (queued) ring_lost(uw); /* unsubmittable entries must not leak into the next window */
    return err;
}

/* ---- the pread engine (no ring) ----------------------------------------------------------- */

static int pread_piece(const ufile *f, upiece *p)
{
    for (;;) {
        p->len = (unsigned)(p->end - p->off);
        ssize_t r = hoist__io_pread(p->direct ? f->direct_fd : f->buffered_fd, p->dst, p->len,
                                    (off_t)p->off);
        int rc = piece_complete(f, p, r < 0 ? -errno : (int)r);
        if (rc != PIECE_AGAIN) return rc;
    }
}

static int pread_read(const ufile *f, upiece *pc, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int rc = pread_piece(f, &pc[i]);
        if (rc != PIECE_DONE) return rc;
    }
    return HOIST_OK;
}

/* ---- windows ------------------------------------------------------------------------------ */

/* Splits [alo, ahi) into reads of whole units; returns how many. */
static unsigned split(upiece *pc, uint8_t *buf, uint64_t alo, uint64_t ahi, uint64_t need,
                      uint64_t unit, int direct)
{
    uint64_t part = hoist__align_up((ahi - alo + URING_READS_PER_WINDOW - 1) /
                                        URING_READS_PER_WINDOW, unit);
    if (part < URING_MIN_READ) part = URING_MIN_READ; /* a multiple of every unit */
    unsigned n = 0;
    for (uint64_t a = alo; a < ahi && a < need; a += part, n++) {
        uint64_t b = a + part < ahi ? a + part : ahi;
        pc[n] = (upiece){.off = a, .end = b, .need = b < need ? b : need, .dst = buf + (a - alo),
                         .direct = direct};
    }
    return n;
}

/* Reads window w in one mode; *alo receives where buf starts in the file. */
static int read_window(uring_state *s, uworker *uw, const hoist__window *w, uint8_t *buf,
                       int direct, uint64_t *alo)
{
    ufile *f = &s->files[w->file];
    uint64_t unit = direct ? f->align : 1;
    uint64_t lo = hoist__align_down(w->lo, unit), hi = hoist__align_up(w->hi, unit);
    uint64_t cap = s->ld->plan.window_bytes;
    RETURN_IF(hi - lo > cap, HOIST_E_INTERNAL,
              "%s: aligned window %llu..%llu does not fit a %llu-byte slot", f->path,
              (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)cap);
    upiece pc[URING_READS_PER_WINDOW];
    unsigned n = split(pc, buf, lo, hi, w->hi, direct ? unit : 4096, direct);
    int rc = uw->has_ring && !f->in_memory ? ring_read(uw, f, w->file, pc, n)
                                           : pread_read(f, pc, n);
    int buffered = !direct;
    for (unsigned i = 0; i < n; i++) buffered |= !pc[i].direct;
    if (buffered && !f->in_memory) { /* a memory filesystem's pages are the file: none to drop */
        atomic_store(&f->cached, 1);
        hoist__io_drop_cache(f->buffered_fd, w->lo, w->hi);
    }
    *alo = lo;
    return rc;
}

static int uring_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                      int *dma)
{
    uring_state *s = vs;
    RETURN_IF(!buf || worker < 0 || (unsigned)worker >= s->nworkers, HOIST_E_INTERNAL,
              "uring: worker %d has no staging slot", worker);
    uworker *uw = &s->workers[worker];
    ufile *f = &s->files[w->file];
    uint64_t alo = w->lo;
    for (;;) {
        int direct = !f->in_memory && atomic_load(&f->direct); /* from memory it only pins */
        int rc = read_window(s, uw, w, buf, direct, &alo);
        if (rc != PIECE_REFUSED) {
            RETURN_IF_ERR(rc);
            break;
        }
        char why[96];
        snprintf(why, sizeof why, "EINVAL reading bytes %llu..%llu",
                 (unsigned long long)w->lo, (unsigned long long)w->hi);
        direct_refused(s, f, why); /* the file is buffered from now on: the loop ends */
    }
    *src = (uint8_t *)buf + (w->lo - alo);
    *dma = 1; /* the bytes sit in the pinned slot, possibly at an offset */
    return HOIST_OK;
}

const hoist__source_ops hoist__source_uring = {
    .version = HOIST_SOURCE_OPS_VERSION,
    .name = "uring",
    .flags = HOIST_SOURCE_SLOT_BUFFERS,
    .open = uring_open,
    .close = uring_close,
    .read = uring_read,
    .attach = uring_attach,
};
