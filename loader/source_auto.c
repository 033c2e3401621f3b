/* auto: probes the model's files and the system, and picks the path that will be fastest.
 *
 *  - mmap when at least 90% of the model is already in the page cache: the bytes are in RAM,
 *    and copying them from the mapping beats reading them again;
 *  - else uring when the first file opens and reads with O_DIRECT and io_uring works: no page
 *    cache, deep queues;
 *  - else stream, which works everywhere and keeps the page cache flat.
 *
 * The probes are cheap (a few hundred mincore calls, one 4 KiB read, one tiny ring) and go
 * through the I/O seam, so tests can steer the choice. The choice and its reason are logged once
 * per load. */
#include "loader/io.h"
#include "loader/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AUTO_CACHED_ENOUGH 0.90
/* Residency is sampled in this many runs of pages per file (all of a file this small or less). */
#define AUTO_SAMPLE_RUNS 64u
#define AUTO_RUN_PAGES 64u

/* Fraction of fd's pages in the page cache, from evenly spaced runs of pages. */
static double cached_fraction(int fd, uint64_t size)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t pages = (size + page - 1) / page;
    if (!pages) return 1.0;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 0.0;
    uint64_t stride = pages / AUTO_SAMPLE_RUNS > AUTO_RUN_PAGES ? pages / AUTO_SAMPLE_RUNS
                                                                : AUTO_RUN_PAGES;
    uint64_t seen = 0, cached = 0;
    unsigned char vec[AUTO_RUN_PAGES];
    for (uint64_t start = 0; start < pages; start += stride) {
        uint64_t n = pages - start < AUTO_RUN_PAGES ? pages - start : AUTO_RUN_PAGES;
        if (mincore(map + start * page, n * page, vec) != 0) continue;
        for (uint64_t i = 0; i < n; i++) cached += vec[i] & 1;
        seen += n;
    }
    munmap(map, size);
    return seen ? (double)cached / (double)seen : 0.0;
}

static double model_cached_fraction(const hoist__table *t)
{
    double cached = 0, total = 0;
    for (uint32_t i = 0; i < t->nfiles; i++) {
        const hoist__file *f = &t->files[i];
        int fd = hoist__io_open(f->path, O_RDONLY | O_CLOEXEC);
        double frac = fd >= 0 ? cached_fraction(fd, f->size) : 0.0;
        if (fd >= 0) close(fd);
        cached += frac * (double)f->size;
        total += (double)f->size;
    }
    return total > 0 ? cached / total : 1.0;
}

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

const hoist__source_ops *hoist__source_auto(const hoist__table *t)
{
    if (!t->nfiles || !t->total_bytes) {
        hoist__log(HOIST_LOG_INFO, "auto: picked mmap because the model has no tensor data");
        return &hoist__source_mmap;
    }
    double frac = model_cached_fraction(t);
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
