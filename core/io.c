/* The I/O seam (see io.h). A copy of the hooks lives here; the real calls stand behind NULLs. */
#include "core/io.h"
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

int hoist__io_mincore(void *addr, size_t len, unsigned char *vec)
{
    return hooks.mincore ? hooks.mincore(addr, len, vec) : mincore(addr, len, vec);
}

/* cachestat(2) (Linux 6.5); libc has no wrapper, and older headers no number. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

int hoist__io_cachestat(int fd, uint64_t off, uint64_t len, uint64_t *cached)
{
    if (hooks.cachestat) return hooks.cachestat(fd, off, len, cached);
    struct {
        uint64_t off, len;
    } range = {off, len};
    struct {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } cs;
    if (syscall(__NR_cachestat, fd, &range, &cs, 0u) != 0) return -1;
    *cached = cs.nr_cache;
    return 0;
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

int hoist__io_open_parent(const char *path, int flags, int *dirfd, const char **leaf)
{
    *dirfd = -1;
    const char *slash = strrchr(path, '/');
    *leaf = slash ? slash + 1 : path;
    char *dir = NULL;
    if (slash) {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        dir = hoist__malloc(dl + 1);
        RETURN_IF(!dir, HOIST_E_NOMEM, "%s: out of memory", path);
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    }
    *dirfd = open(dir ? dir : ".", flags);
    int e = errno;
    hoist__free(dir);
    RETURN_IF(*dirfd < 0, HOIST_E_OPEN, "%s: cannot open its directory: %s", path, strerror(e));
    return HOIST_OK;
}

int hoist__io_open_checked(const char *path, uint64_t size, int flags, int *fd, int *os_errno)
{
    return hoist__io_open_same(path, size, 0, 0, flags, fd, os_errno);
}

int hoist__io_open_same(const char *path, uint64_t size, uint64_t dev, uint64_t ino, int flags,
                        int *fd, int *os_errno)
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
    else if (ino && ((uint64_t)st.st_ino != ino || (uint64_t)st.st_dev != dev))
        rc = hoist__err(HOIST_E_FILE_CHANGED,
                        "%s: no longer the file the model was opened from (device %llu inode "
                        "%llu, was device %llu inode %llu): replaced since",
                        path, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                        (unsigned long long)dev, (unsigned long long)ino);
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
