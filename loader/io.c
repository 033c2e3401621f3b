/* The I/O seam (see io.h). A copy of the hooks lives here; the real calls stand behind NULLs. */
#include "loader/io.h"
#include "loader/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static hoist__io_hooks hooks;

void hoist__io_set_hooks(const hoist__io_hooks *h)
{
    if (h)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

int hoist__io_open(const char *path, int flags)
{
    /* A path that became a FIFO must not block the load waiting for a writer (it is refused
     * after fstat); reads of regular files ignore O_NONBLOCK. */
    flags |= O_NONBLOCK | O_NOCTTY;
    return hooks.open ? hooks.open(path, flags) : open(path, flags);
}

ssize_t hoist__io_pread(int fd, void *buf, size_t n, off_t off)
{
    return hooks.pread ? hooks.pread(fd, buf, n, off) : pread(fd, buf, n, off);
}

int hoist__io_uring_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
    return hooks.uring_init ? hooks.uring_init(entries, ring, flags)
                            : io_uring_queue_init(entries, ring, flags);
}

int hoist__io_uring_register_buffers(struct io_uring *ring, const struct iovec *iovecs,
                                     unsigned nr)
{
    return hooks.uring_register_buffers ? hooks.uring_register_buffers(ring, iovecs, nr)
                                        : io_uring_register_buffers(ring, iovecs, nr);
}

int hoist__io_uring_result(int direct, uint64_t off, unsigned len, int res)
{
    return hooks.uring_result ? hooks.uring_result(direct, off, len, res) : res;
}

void hoist__io_mapped_window(const char *path, uint64_t lo, uint64_t hi)
{
    if (hooks.mapped_window) hooks.mapped_window(path, lo, hi);
}

/* ---- helpers ---------------------------------------------------------------------------- */

uint32_t hoist__io_dio_align(int fd)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 ||
        !(stx.stx_mask & STATX_DIOALIGN))
        return HOIST_IO_DEFAULT_DIO_ALIGN;
    if (!stx.stx_dio_offset_align) return 0;
    return stx.stx_dio_offset_align > stx.stx_dio_mem_align ? stx.stx_dio_offset_align
                                                            : stx.stx_dio_mem_align;
}

int hoist__io_fstat_regular(int fd, const char *path, struct stat *st)
{
    RETURN_IF(fstat(fd, st) != 0, HOIST_E_IO, "%s: fstat failed: %s", path, strerror(errno));
    mode_t m = st->st_mode;
    RETURN_IF(!S_ISREG(m), HOIST_E_NOT_REGULAR, "%s: not a regular file (%s)", path,
              S_ISDIR(m)    ? "a directory"
              : S_ISFIFO(m) ? "a FIFO"
              : S_ISCHR(m)  ? "a character device"
              : S_ISBLK(m)  ? "a block device"
              : S_ISSOCK(m) ? "a socket"
                            : "not a plain file");
    return HOIST_OK;
}

int hoist__io_memory_backed(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int hoist__io_read_whole(int fd, const char *path, uint64_t max, int too_big, const char *what,
                         char **out, size_t *len)
{
    struct stat st;
    RETURN_IF_ERR(hoist__io_fstat_regular(fd, path, &st));
    uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    RETURN_IF(size > max || size >= SIZE_MAX, too_big, "%s: %llu bytes (%s has at most %llu)",
              path, (unsigned long long)size, what, (unsigned long long)max);
    char *buf = hoist__malloc((size_t)size + 1);
    RETURN_IF(!buf, HOIST_E_NOMEM, "%s: out of memory for %llu bytes", path,
              (unsigned long long)size);
    int64_t got = hoist__pread_full(fd, buf, size, 0);
    if (got != (int64_t)size) {
        hoist__free(buf);
        if (got < 0)
            return hoist__err(HOIST_E_IO, "%s: read failed: %s", path, strerror((int)-got));
        return hoist__err(HOIST_E_IO, "%s: file shrank while reading (%lld of %llu bytes)", path,
                          (long long)got, (unsigned long long)size);
    }
    buf[size] = '\0';
    *out = buf;
    *len = (size_t)size;
    return HOIST_OK;
}

int hoist__io_open_checked(const char *path, uint64_t size, int flags, int *fd, int *os_errno)
{
    *os_errno = 0;
    *fd = hoist__io_open(path, flags);
    if (*fd < 0) {
        *os_errno = errno;
        return hoist__err(HOIST_E_OPEN, "%s: cannot open%s: %s", path,
                          (flags & O_DIRECT) ? " with O_DIRECT" : "", strerror(errno));
    }
    struct stat st;
    int rc = HOIST_OK;
    if (fstat(*fd, &st) != 0)
        rc = hoist__err(HOIST_E_IO, "%s: fstat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = hoist__err(HOIST_E_FILE_CHANGED, "%s: no longer a regular file", path);
    else if ((uint64_t)st.st_size != size)
        rc = hoist__err(HOIST_E_FILE_CHANGED, "%s: size changed from %llu to %llu bytes since open",
                        path, (unsigned long long)size, (unsigned long long)st.st_size);
    if (rc < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

void hoist__io_drop_cache(int fd, uint64_t lo, uint64_t hi)
{
    /* The kernel drops only folios wholly inside the range, and the page cache uses folios of up
     * to 2 MiB (naturally aligned): dropping just a 1 MiB window would never drop the 2 MiB
     * folio it shares with the next window (1 GiB loads left 98% cached). Widened, the last
     * worker to finish a window inside a folio drops it; earlier drops skip it while it is
     * still being read. Pages of neighbouring windows dropped early cost nothing: they are read
     * into buffers, not from the cache. Advisory, so a failure costs memory, not correctness. */
    uint64_t a = hoist__align_down(lo, HOIST_IO_DROP_ALIGN);
    uint64_t b = hoist__align_up(hi, HOIST_IO_DROP_ALIGN);
    (void)posix_fadvise(fd, (off_t)a, (off_t)(b - a), POSIX_FADV_DONTNEED);
}

int hoist__io_read_full(int fd, const char *path, void *buf, uint64_t lo, uint64_t hi)
{
    uint64_t n = hi - lo;
    int64_t got = hoist__pread_full(fd, buf, n, lo);
    RETURN_IF(got < 0, HOIST_E_IO, "%s: read of %llu bytes at byte %llu: %s", path,
              (unsigned long long)n, (unsigned long long)lo, strerror((int)-got));
    RETURN_IF((uint64_t)got < n, HOIST_E_FILE_CHANGED,
              "%s: file ends at byte %llu, inside bytes %llu..%llu of tensor data (truncated "
              "during the load?)",
              path, (unsigned long long)(lo + (uint64_t)got), (unsigned long long)lo,
              (unsigned long long)hi);
    return HOIST_OK;
}

/* ---- dropping behind the cursor ----------------------------------------------------------- */

int hoist__io_dropper_init(hoist__io_dropper *d, hoist__load *ld, const int *fds)
{
    memset(d, 0, sizeof *d);
    size_t words = (ld->plan.nwindows + 63) / 64;
    uint64_t bytes = (words ? words : 1) * sizeof *d->done;
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, bytes, "the page-cache drop map"));
    d->done = hoist__calloc(words ? words : 1, sizeof *d->done);
    if (!d->done) {
        hoist__budget_give(&ld->budget, bytes);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %zu windows", ld->plan.nwindows);
    }
    pthread_mutex_init(&d->lock, NULL);
    d->bytes = bytes;
    d->plan = &ld->plan;
    d->fds = fds;
    d->file = ld->plan.nwindows ? ld->plan.windows[0].file : 0;
    d->ready = 1;
    return HOIST_OK;
}

void hoist__io_dropper_free(hoist__io_dropper *d, hoist__budget *b)
{
    if (!d->ready) return;
    pthread_mutex_destroy(&d->lock);
    hoist__free(d->done);
    hoist__budget_give(b, d->bytes);
    d->ready = 0;
}

/* Moves the cursor past window w: drops the rest of the file it leaves, and the whole folios of
 * w's file below w's end (to the end of the file after the last window). */
static void dropper_pass(hoist__io_dropper *d, const hoist__window *w)
{
    if (w->file != d->file) {
        (void)posix_fadvise(d->fds[d->file], (off_t)d->from, 0, POSIX_FADV_DONTNEED);
        d->file = w->file;
        d->from = 0;
    }
    int fd = d->fds[w->file];
    if (w == &d->plan->windows[d->plan->nwindows - 1]) {
        (void)posix_fadvise(fd, (off_t)d->from, 0, POSIX_FADV_DONTNEED); /* 0: to the end */
        return;
    }
    uint64_t end = hoist__align_down(w->hi, HOIST_IO_DROP_ALIGN);
    if (end <= d->from) return;
    (void)posix_fadvise(fd, (off_t)d->from, (off_t)(end - d->from), POSIX_FADV_DONTNEED);
    d->from = end;
}

void hoist__io_dropper_done(hoist__io_dropper *d, const hoist__window *w)
{
    if (!d->ready) return;
    size_t i = (size_t)(w - d->plan->windows), n = d->plan->nwindows;
    pthread_mutex_lock(&d->lock);
    d->done[i / 64] |= 1ull << (i % 64);
    while (d->cursor < n && (d->done[d->cursor / 64] >> (d->cursor % 64)) & 1)
        dropper_pass(d, &d->plan->windows[d->cursor++]);
    pthread_mutex_unlock(&d->lock);
}

uint64_t hoist__io_window_count(const hoist__table *t, uint64_t window)
{
    uint64_t windows = 0;
    for (uint32_t i = 0; i < t->nfiles; i++) windows += (t->files[i].size + window - 1) / window;
    return windows;
}

/* Residency is sampled in this many runs of pages per file (all of a file this small or less). */
#define CACHED_SAMPLE_RUNS 64u
#define CACHED_RUN_PAGES 64u

static double file_cached_fraction(int fd, uint64_t size)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t pages = (size + page - 1) / page;
    if (!pages) return 1.0;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 0.0;
    uint64_t stride = pages / CACHED_SAMPLE_RUNS > CACHED_RUN_PAGES ? pages / CACHED_SAMPLE_RUNS
                                                                    : CACHED_RUN_PAGES;
    uint64_t seen = 0, cached = 0;
    unsigned char vec[CACHED_RUN_PAGES];
    for (uint64_t start = 0; start < pages; start += stride) {
        uint64_t n = pages - start < CACHED_RUN_PAGES ? pages - start : CACHED_RUN_PAGES;
        if (mincore(map + start * page, n * page, vec) != 0) continue;
        for (uint64_t i = 0; i < n; i++) cached += vec[i] & 1;
        seen += n;
    }
    munmap(map, size);
    return seen ? (double)cached / (double)seen : 0.0;
}

double hoist__io_cached_fraction(const hoist__table *t)
{
    double cached = 0, total = 0;
    for (uint32_t i = 0; i < t->nfiles; i++) {
        const hoist__file *f = &t->files[i];
        int fd = hoist__io_open(f->path, O_RDONLY | O_CLOEXEC);
        double frac = fd >= 0 ? file_cached_fraction(fd, f->size) : 0.0;
        if (fd >= 0) close(fd);
        cached += frac * (double)f->size;
        total += (double)f->size;
    }
    return total > 0 ? cached / total : 1.0;
}

void hoist__io_apply_defaults(hoist_load_options *o, const hoist__table *t, unsigned threads,
                              uint64_t window)
{
    uint64_t largest = 0;
    for (uint32_t i = 0; i < t->nfiles; i++)
        if (t->files[i].size > largest) largest = t->files[i].size;
    if (!o->chunk_bytes) {
        uint64_t fit = hoist__align_up(largest ? largest : 1, 4096);
        o->chunk_bytes = fit < window ? fit : window;
    }
    if (!o->threads) {
        uint64_t windows = hoist__io_window_count(t, o->chunk_bytes);
        o->threads = windows < threads ? (windows ? (unsigned)windows : 1) : threads;
    }
}
