/* The I/O seam (see io.h). A copy of the hooks lives here; the real calls stand behind NULLs. */
#include "loader/io.h"
#include "loader/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- helpers ---------------------------------------------------------------------------- */

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
    /* The kernel keeps partial pages at either end; windows are cut at multiples of 4 KiB, so
     * widening drops only pages of this window's block. Advisory: a failure costs memory, not
     * correctness, hence no error. */
    uint64_t a = hoist__align_down(lo, 4096), b = hoist__align_up(hi, 4096);
    (void)posix_fadvise(fd, (off_t)a, (off_t)(b - a), POSIX_FADV_DONTNEED);
}

int hoist__io_read_dropping(int fd, const char *path, void *buf, uint64_t lo, uint64_t hi)
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
    hoist__io_drop_cache(fd, lo, hi);
    return HOIST_OK;
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
        uint64_t windows = 0;
        for (uint32_t i = 0; i < t->nfiles; i++)
            windows += (t->files[i].size + o->chunk_bytes - 1) / o->chunk_bytes;
        o->threads = windows < threads ? (windows ? (unsigned)windows : 1) : threads;
    }
}
