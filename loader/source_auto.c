/* auto: probes the model's files and the system, and picks the path that will be fastest.
 *
 *  - stream when every file is on a memory filesystem (tmpfs, ramfs): reading them with pread
 *    beats copying out of a mapping of them, by 2× on the device machine (46.6 against 22.9
 *    GB/s from /dev/shm into an H100, docs/BENCHMARKS.md);
 *  - mmap when at least 90% of the model is already in the page cache: the bytes are in RAM,
 *    and copying them from the mapping beats reading them again;
 *  - else uring when the first file opens and reads with O_DIRECT and io_uring works: no page
 *    cache, deep queues;
 *  - else stream, which works everywhere and keeps the page cache flat.
 *
 * The probes are cheap (a few hundred mincore calls, one 4 KiB read, one tiny ring) and go
 * through the I/O seam, so tests can steer the choice. The choice and its reason are logged once
 * per load. */
#include "loader/io_load.h"
#include "loader/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTO_CACHED_ENOUGH 0.90
/* Opens path with O_DIRECT and reads its first block, as the uring path would. */
static int direct_works(const char *path, char *why, size_t whylen)
{
    int fd = hoist__io_open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) {
        snprintf(why, whylen, "O_DIRECT open refused on %s: %s", path, strerror(errno));
        return 0;
    }
    void *buf = hoist__memalign(4096, 4096);
    int ok = buf != NULL;
    if (ok && hoist__io_pread(fd, buf, 4096, 0) < 0) {
        snprintf(why, whylen, "O_DIRECT read refused on %s: %s", path, strerror(errno));
        ok = 0;
    } else if (!ok) {
        snprintf(why, whylen, "no memory for an O_DIRECT probe");
    }
    hoist__free(buf);
    close(fd);
    return ok;
}

static int uring_works(char *why, size_t whylen)
{
    struct io_uring ring;
    int rc = hoist__io_uring_init(2, &ring, 0);
    if (rc < 0) {
        snprintf(why, whylen, "io_uring is unavailable: %s", strerror(-rc));
        return 0;
    }
    io_uring_queue_exit(&ring);
    return 1;
}

/* Whether every file of the model is on a memory filesystem. */
static int all_in_memory(const hoist__table *t)
{
    for (uint32_t i = 0; i < t->nfiles; i++) {
        int fd = hoist__io_open(t->files[i].path, O_RDONLY | O_CLOEXEC);
        int yes = fd >= 0 && hoist__io_memory_backed(fd);
        if (fd >= 0) close(fd);
        if (!yes) return 0;
    }
    return 1;
}

const hoist__source_ops *hoist__source_auto(const hoist__table *t)
{
    if (!t->nfiles || !t->total_bytes) {
        hoist__log(HOIST_LOG_INFO, "auto: picked mmap because the model has no tensor data");
        return &hoist__source_mmap;
    }
    if (all_in_memory(t)) {
        hoist__log(HOIST_LOG_INFO,
                   "auto: picked stream because the model's files are on a memory filesystem "
                   "(tmpfs or ramfs), which pread reads faster than a mapping copies");
        return &hoist__source_stream;
    }
    double frac = hoist__io_cached_fraction(t->files, t->nfiles);
    int pct = (int)(frac * 100.0 + 0.5);
    if (frac >= AUTO_CACHED_ENOUGH) {
        hoist__log(HOIST_LOG_INFO,
                   "auto: picked mmap because %d%% of the model is already in the page cache", pct);
        return &hoist__source_mmap;
    }
    char why[512];
    const char *first = t->files[0].path;
    if (direct_works(first, why, sizeof why) && uring_works(why, sizeof why)) {
        hoist__log(HOIST_LOG_INFO,
                   "auto: picked uring because %d%% of the model is in the page cache (below "
                   "90%%) and O_DIRECT and io_uring work on %s",
                   pct, first);
        return &hoist__source_uring;
    }
    hoist__log(HOIST_LOG_INFO,
               "auto: picked stream because %d%% of the model is in the page cache (below 90%%) "
               "and %s",
               pct, why);
    return &hoist__source_stream;
}
