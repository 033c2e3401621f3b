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
/* Drops the page cache behind a buffered load: a cursor trails the lowest window not yet read,
 * and everything below it (in whole HOIST_IO_DROP_ALIGN folios) is dropped as it advances.
 * Dropping each window on its own is not enough: a folio shared with a window still being read
 * cannot go, and kernel readahead issued from a slower window re-reads pages a faster worker
 * has already dropped; behind the cursor no reader is left. Thread-safe. */
typedef struct hoist__io_dropper {
    pthread_mutex_t lock;
    int ready;
    const hoist__plan *plan;
    const int *fds; /* per file of the model */
    hoist__budget *budget;
    uint64_t *done; /* one bit per window */
    size_t cursor;  /* every window below has been read */
    uint32_t file;  /* the file the cursor is in */
    uint64_t from;  /* bytes of that file below this are dropped */
    uint64_t bytes; /* counted against the budget */
} hoist__io_dropper;

/* For the windows of plan, its map counted in budget; plan, budget and fds must outlive the
 * dropper. HOIST_E_NOMEM, HOIST_E_BUDGET. */
int hoist__io_dropper_init(hoist__io_dropper *d, const hoist__plan *plan, hoist__budget *budget,
                           const int *fds);
/* Records window w (of the plan) as read. No-op on a dropper that was never initialised. */
void hoist__io_dropper_done(hoist__io_dropper *d, const hoist__window *w);
void hoist__io_dropper_free(hoist__io_dropper *d);

#endif
