/* I/O helpers that work on a load's table and plan, built on the seam of core/io.h. */
#ifndef HOIST_IO_LOAD_H
#define HOIST_IO_LOAD_H

#include "core/io.h"
#include "loader/load.h"

/* Windows of `window` bytes that cover every file of t, as the plan cuts them (at most). */
uint64_t hoist__io_window_count(const hoist__table *t, uint64_t window);
/* Fraction of the files of t in the page cache, by bytes, from evenly spaced runs of pages
 * (mincore over a mapping: nothing is read). A file that cannot be opened or mapped counts as
 * not cached; an empty table as cached. */
double hoist__io_cached_fraction(const hoist__table *t);
/* Fills the options a path leaves to its defaults (0): `threads` workers and `window`-byte
 * windows, scaled down for small models so that they take no more staging than they have
 * windows to read. Options the caller set are kept. */
void hoist__io_apply_defaults(hoist_load_options *o, const hoist__table *t, unsigned threads,
                              uint64_t window);
/* Drops the page cache behind a buffered load: a cursor trails the lowest window not yet read,
 * and everything below it (in whole HOIST_IO_DROP_ALIGN folios) is dropped as it advances.
 * Dropping each window on its own is not enough: a folio shared with a window still being read
 * cannot go, and kernel readahead issued from a slower window re-reads pages a faster worker
 * has already dropped; behind the cursor no reader is left. Thread-safe. */
typedef struct hoist__io_dropper {
    pthread_mutex_t lock;
    int ready;
    const hoist__plan *plan;
    const int *fds; /* per file of the table */
    uint64_t *done; /* one bit per window */
    size_t cursor;  /* every window below has been read */
    uint32_t file;  /* the file the cursor is in */
    uint64_t from;  /* bytes of that file below this are dropped */
    uint64_t bytes; /* counted against the budget */
} hoist__io_dropper;

/* For the windows of ld's plan; fds must outlive the dropper. HOIST_E_NOMEM, HOIST_E_BUDGET. */
int hoist__io_dropper_init(hoist__io_dropper *d, hoist__load *ld, const int *fds);
/* Records window w (of the plan) as read. No-op on a dropper that was never initialised. */
void hoist__io_dropper_done(hoist__io_dropper *d, const hoist__window *w);
void hoist__io_dropper_free(hoist__io_dropper *d, hoist__budget *b);

#endif
