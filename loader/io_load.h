/* I/O helpers of the sources that know the model's files and the plan, built on the seam of
 * core/io.h. */
#ifndef HOIST_IO_LOAD_H
#define HOIST_IO_LOAD_H

#include "core/io.h"
#include "loader/source.h"

#include <pthread.h>

/* Windows of `window` bytes that cover every one of the files, as the plan cuts them (at most). */
uint64_t hoist__io_window_count(const hoist__file *files, uint32_t nfiles, uint64_t window);
/* Fraction of the files in the page cache, by bytes, from evenly spaced runs of pages (mincore
 * over a mapping: nothing is read). A file that cannot be opened or mapped counts as not cached;
 * no files (or no bytes) as cached. */
double hoist__io_cached_fraction(const hoist__file *files, uint32_t nfiles);
/* A path's answer to h: the workers and window the caller asked for, else `threads` and `window`
 * scaled down for small models, so that they take no more staging than they have windows to
 * read. */
void hoist__io_default_needs(const hoist__source_hints *h, unsigned threads, uint64_t window,
                             hoist__source_needs *n);
/* Which pages of one file were in the page cache when a load started, so that dropping the cache
 * behind the load gives back only what the load brought in (another process, a second rank or a
 * restart, finds the rest where it was).
 *
 * The rule that makes an exact drop possible: the page cache holds a file in folios, each in the
 * cache or not as a whole, and the kernel drops only folios lying wholly inside the range it is
 * asked to drop. A folio the load brings in is created where no page was resident, so it lies
 * wholly inside one run of pages that were not resident at the probe. Dropping exactly those runs
 * (each cut at most at HOIST_IO_DROP_ALIGN boundaries, which no folio straddles) therefore drops
 * every folio the load brought in and never one that was there before. What can break it: a page
 * resident at the probe and evicted during the load, then read back into a larger folio that
 * reaches into a run, stays (bounded by what memory pressure evicted); a page another process
 * reads into a run during the load goes (it cannot be told from the load's own). */
typedef struct hoist__residency {
    uint64_t page;     /* bytes per page */
    uint64_t pages;    /* of the file */
    uint64_t resident; /* how many were resident: 0 (or the probe failed), pages, or between */
    uint64_t *bits;    /* a bit per page, only between none and all; else NULL */
    uint64_t bytes;    /* bits' size, counted against the budget */
} hoist__residency;

/* The most host memory a probe of the files takes (a bit per page of each): a load's budget
 * reserves it before the probe runs. */
uint64_t hoist__residency_bound(const hoist__file *files, uint32_t nfiles);
/* Probes which pages of the `size`-byte file open as fd (named path) are resident: cachestat
 * over the file and then over runs of pages, mincore over a read-only mapping of the runs it
 * finds mixed (or of every run where cachestat is missing); no page is faulted in or read, and
 * a bitmap is kept only for a file partly resident. A probe that cannot be made (no mapping,
 * mincore refused, a file whose owner does not let this process see its cache, the budget)
 * leaves r saying none were resident, so the load drops everything it read, as the budget
 * requires, and says why at DEBUG. Fails only with HOIST_E_NOMEM, naming the file, when the
 * bitmap cannot be allocated (every host allocation that fails fails the load); r then holds
 * nothing. */
int hoist__residency_probe(int fd, const char *path, uint64_t size, hoist__budget *budget,
                           hoist__residency *r);
void hoist__residency_free(hoist__residency *r, hoist__budget *budget);
/* Whether the page holding byte `off` was resident at the probe (*resident), and the end of the
 * run of pages from there that were alike, at most `end`: a probe that failed says none were. */
uint64_t hoist__residency_run(const hoist__residency *r, uint64_t off, uint64_t end,
                              bool *resident);
/* Drops the cached pages of [lo, hi) of fd (hi UINT64_MAX: to the end of the file), widened to
 * HOIST_IO_DROP_ALIGN, except the pages r says were resident; r NULL: all of them. */
void hoist__residency_drop(const hoist__residency *r, int fd, uint64_t lo, uint64_t hi);

/* Drops the page cache behind a buffered load: a cursor trails the lowest window not yet read,
 * and everything below it (in whole HOIST_IO_DROP_ALIGN folios) that was not resident before the
 * load is dropped as it advances.
 * Dropping each window on its own is not enough: a folio shared with a window still being read
 * cannot go, and kernel readahead issued from a slower window re-reads pages a faster worker
 * has already dropped; behind the cursor no reader is left. Thread-safe. */
typedef struct hoist__io_dropper {
    pthread_mutex_t lock;
    int ready;
    const hoist__plan *plan;
    const int *fds; /* per file of the model */
    const hoist__residency *res; /* per file of the model; NULL: drop every page */
    hoist__budget *budget;
    uint64_t *done; /* one bit per window */
    size_t cursor;  /* every window below has been read */
    uint32_t file;  /* the file the cursor is in */
    uint64_t from;  /* bytes of that file below this are dropped */
    uint64_t bytes; /* counted against the budget */
} hoist__io_dropper;

/* For the windows of plan, its map counted in budget; plan, budget, fds and res must outlive the
 * dropper. HOIST_E_NOMEM, HOIST_E_BUDGET. */
int hoist__io_dropper_init(hoist__io_dropper *d, const hoist__plan *plan, hoist__budget *budget,
                           const int *fds, const hoist__residency *res);
/* Records window w (of the plan) as read. No-op on a dropper that was never initialised. */
void hoist__io_dropper_done(hoist__io_dropper *d, const hoist__window *w);
void hoist__io_dropper_free(hoist__io_dropper *d);

#endif
