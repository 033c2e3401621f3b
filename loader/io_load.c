/* The I/O helpers that know a load's plan: defaults scaled to the table, the page-cache residency
 * probe, and dropping the page cache behind a buffered load (see io_load.h). */
#include "loader/io_load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dropping behind the cursor ----------------------------------------------------------- */

int hoist__io_dropper_init(hoist__io_dropper *d, const hoist__plan *plan, hoist__budget *budget,
                           const int *fds)
{
    memset(d, 0, sizeof *d);
    size_t words = (plan->nwindows + 63) / 64;
    uint64_t bytes = (words ? words : 1) * sizeof *d->done;
    RETURN_IF_ERR(hoist__budget_take(budget, bytes, "the page-cache drop map"));
    d->done = hoist__calloc(words ? words : 1, sizeof *d->done);
    if (!d->done) {
        hoist__budget_give(budget, bytes);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %zu windows", plan->nwindows);
    }
    pthread_mutex_init(&d->lock, NULL);
    d->bytes = bytes;
    d->budget = budget;
    d->plan = plan;
    d->fds = fds;
    d->file = plan->nwindows ? plan->windows[0].file : 0;
    d->ready = 1;
    return HOIST_OK;
}

void hoist__io_dropper_free(hoist__io_dropper *d)
{
    if (!d->ready) return;
    pthread_mutex_destroy(&d->lock);
    hoist__free(d->done);
    hoist__budget_give(d->budget, d->bytes);
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

uint64_t hoist__io_window_count(const hoist__file *files, uint32_t nfiles, uint64_t window)
{
    uint64_t windows = 0;
    for (uint32_t i = 0; i < nfiles; i++) windows += (files[i].size + window - 1) / window;
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

double hoist__io_cached_fraction(const hoist__file *files, uint32_t nfiles)
{
    double cached = 0, total = 0;
    for (uint32_t i = 0; i < nfiles; i++) {
        const hoist__file *f = &files[i];
        int fd = hoist__io_open(f->path, O_RDONLY | O_CLOEXEC);
        double frac = fd >= 0 ? file_cached_fraction(fd, f->size) : 0.0;
        if (fd >= 0) close(fd);
        cached += frac * (double)f->size;
        total += (double)f->size;
    }
    return total > 0 ? cached / total : 1.0;
}

void hoist__io_default_needs(const hoist__source_hints *h, unsigned threads, uint64_t window,
                             hoist__source_needs *n)
{
    uint64_t largest = 0;
    for (uint32_t i = 0; i < h->nfiles; i++)
        if (h->files[i].size > largest) largest = h->files[i].size;
    uint64_t fit = hoist__align_up(largest ? largest : 1, 4096);
    n->window = h->window ? h->window : fit < window ? fit : window;
    uint64_t windows = hoist__io_window_count(h->files, h->nfiles, n->window);
    if (h->threads)
        n->threads = h->threads;
    else
        n->threads = windows < threads ? (windows ? (unsigned)windows : 1) : threads;
}
