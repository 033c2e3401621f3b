/* The I/O helpers that know a load's plan: defaults scaled to the table, the page-cache residency
 * probes, and dropping the page cache behind a buffered load (see io_load.h). */
#include "loader/io_load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- which pages were resident before the load -------------------------------------------- */

/* The probe maps this much of a file at a time (address space, not memory: nothing is faulted
 * in), and asks about runs of this many pages: what cachestat counts as all or none of a run is
 * settled without mincore, which costs about 100 ns a page (30 ms per cached GB) where cachestat
 * walks the cache 4-5 times faster. */
#define PROBE_MAP_BYTES (1ull << 30)
#define PROBE_RUN_PAGES 512u

static uint64_t page_bytes(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

static uint64_t bitmap_bytes(uint64_t pages) { return (pages + 63) / 64 * sizeof(uint64_t); }

uint64_t hoist__residency_bound(const hoist__file *files, uint32_t nfiles)
{
    uint64_t page = page_bytes(), bytes = 0;
    for (uint32_t i = 0; i < nfiles; i++) bytes += bitmap_bytes((files[i].size + page - 1) / page);
    return bytes;
}

/* Since Linux 5.2 mincore reports every page of a file as resident unless this process owns the
 * file, may write it, or has CAP_FOWNER (which root stands for here): the kernel hides other
 * files' caches. Believing that answer would keep the whole model cached, so such a file is
 * treated as not resident at all. NULL when mincore tells the truth, else why not. */
static const char *mincore_hidden(int fd, const char *path)
{
    struct stat st;
    if (geteuid() == 0 || (fstat(fd, &st) == 0 && st.st_uid == geteuid())) return NULL;
    if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0) return NULL;
    return "the kernel hides the page cache of a file this process neither owns nor may write";
}

static void set_bits(hoist__residency *r, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n; i++) r->bits[i / 64] |= 1ull << (i % 64);
    r->resident += n;
}

/* Pages [first, first + n) of the file, mapped at map from page `base`: cachestat settles a run
 * that is all or nothing, mincore a mixed one (or any, without cachestat). -1 when mincore
 * fails. */
static int probe_run(hoist__residency *r, int fd, int cs, const uint8_t *map, uint64_t base,
                     uint64_t first, uint64_t n)
{
    uint64_t cached;
    if (cs && hoist__io_cachestat(fd, first * r->page, n * r->page, &cached) == 0) {
        if (cached == 0) return 0;
        if (cached >= n) {
            set_bits(r, first, n);
            return 0;
        }
    }
    unsigned char vec[PROBE_RUN_PAGES];
    if (hoist__io_mincore((void *)(map + (first - base) * r->page), n * r->page, vec) != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (vec[i] & 1) set_bits(r, first + i, 1);
    return 0;
}

/* Fills r->bits map by map and run by run; NULL, or what failed. */
static const char *probe_pages(int fd, uint64_t size, int cs, hoist__residency *r)
{
    uint64_t per_map = PROBE_MAP_BYTES / r->page;
    for (uint64_t base = 0; base < r->pages; base += per_map) {
        uint64_t n = r->pages - base < per_map ? r->pages - base : per_map;
        uint64_t len = base * r->page + n * r->page > size ? size - base * r->page : n * r->page;
        uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)(base * r->page));
        if (map == MAP_FAILED) return "mmap failed";
        int rc = 0;
        for (uint64_t p = base; rc == 0 && p < base + n; p += PROBE_RUN_PAGES)
            rc = probe_run(r, fd, cs, map, base, p,
                           base + n - p < PROBE_RUN_PAGES ? base + n - p : PROBE_RUN_PAGES);
        munmap(map, len);
        if (rc != 0) return "mincore failed";
    }
    return NULL;
}

static void residency_forget(hoist__residency *r, hoist__budget *budget)
{
    hoist__free(r->bits);
    if (r->bytes) hoist__budget_give(budget, r->bytes);
    r->bits = NULL;
    r->bytes = 0;
}

/* The bitmap of a file that is partly resident, or whose cachestat cannot say; *why says what
 * kept it from being made. Only an allocation that fails is an error. */
static int probe_map(int fd, const char *path, uint64_t size, int cs, hoist__budget *budget,
                     hoist__residency *r, const char **why)
{
    *why = mincore_hidden(fd, path);
    if (*why) return HOIST_OK;
    uint64_t bytes = bitmap_bytes(r->pages);
    if (hoist__budget_take(budget, bytes, "the page-cache residency map") < 0) {
        *why = "the budget has no room for its map";
        return HOIST_OK;
    }
    r->bytes = bytes;
    r->bits = hoist__calloc(1, (size_t)bytes);
    RETURN_IF(!r->bits, HOIST_E_NOMEM,
              "%s: out of memory for a %llu-byte map of the pages the page cache holds", path,
              (unsigned long long)bytes);
    *why = probe_pages(fd, size, cs, r);
    return HOIST_OK;
}

int hoist__residency_probe(int fd, const char *path, uint64_t size, hoist__budget *budget,
                           hoist__residency *r)
{
    memset(r, 0, sizeof *r);
    r->page = page_bytes();
    r->pages = (size + r->page - 1) / r->page;
    if (!r->pages) return HOIST_OK;
    /* a whole model cached, or none of it, is one call */
    uint64_t cached = 0;
    int cs = hoist__io_cachestat(fd, 0, 0, &cached) == 0;
    if (cs && (cached == 0 || cached >= r->pages)) {
        r->resident = cached ? r->pages : 0;
        return HOIST_OK;
    }
    const char *why = NULL;
    int rc = probe_map(fd, path, size, cs, budget, r, &why);
    if (rc < 0 || why) {
        residency_forget(r, budget);
        r->resident = 0;
        if (rc < 0) return rc;
        hoist__log(HOIST_LOG_DEBUG,
                   "%s: cannot tell which pages were cached before the load (%s): dropping every "
                   "page it reads",
                   path, why);
        return HOIST_OK;
    }
    if (r->resident == 0 || r->resident == r->pages) residency_forget(r, budget);
    return HOIST_OK;
}

void hoist__residency_free(hoist__residency *r, hoist__budget *budget)
{
    residency_forget(r, budget);
    memset(r, 0, sizeof *r);
}

/* The first page in [i, end) whose bit is `want`, or end. */
static uint64_t next_bit(const uint64_t *bits, uint64_t i, uint64_t end, int want)
{
    while (i < end) {
        uint64_t w = (want ? bits[i / 64] : ~bits[i / 64]) >> (i % 64);
        if (w) {
            i += (uint64_t)__builtin_ctzll(w);
            return i < end ? i : end;
        }
        i = (i / 64 + 1) * 64;
    }
    return end;
}

uint64_t hoist__residency_run(const hoist__residency *r, uint64_t off, uint64_t end,
                              bool *resident)
{
    if (!r->bits) { /* none, all, or a probe that failed */
        *resident = r->pages && r->resident == r->pages;
        return end;
    }
    uint64_t first = off / r->page, last = (end + r->page - 1) / r->page;
    if (last > r->pages) last = r->pages;
    if (first >= last) {
        *resident = false;
        return end;
    }
    *resident = (r->bits[first / 64] >> (first % 64)) & 1;
    uint64_t p = next_bit(r->bits, first, last, !*resident);
    return p < last ? p * r->page : end;
}

/* hi UINT64_MAX: to the end of the file, partial last page included. */
static void drop_bytes(int fd, uint64_t lo, uint64_t hi)
{
    (void)posix_fadvise(fd, (off_t)lo, hi == UINT64_MAX ? 0 : (off_t)(hi - lo),
                        POSIX_FADV_DONTNEED);
}

void hoist__residency_drop(const hoist__residency *r, int fd, uint64_t lo, uint64_t hi)
{
    uint64_t a = hoist__align_down(lo, HOIST_IO_DROP_ALIGN);
    uint64_t b = hi == UINT64_MAX ? hi : hoist__align_up(hi, HOIST_IO_DROP_ALIGN);
    if (!r || !r->resident) {
        drop_bytes(fd, a, b);
        return;
    }
    if (r->resident == r->pages) return;
    uint64_t end = b == UINT64_MAX || b / r->page > r->pages ? r->pages : b / r->page;
    for (uint64_t p = next_bit(r->bits, a / r->page, end, 0); p < end;) {
        uint64_t q = next_bit(r->bits, p, end, 1);
        drop_bytes(fd, p * r->page, q == r->pages ? UINT64_MAX : q * r->page);
        p = next_bit(r->bits, q, end, 0);
    }
}

/* ---- dropping behind the cursor ----------------------------------------------------------- */

int hoist__io_dropper_init(hoist__io_dropper *d, const hoist__plan *plan, hoist__budget *budget,
                           const int *fds, const hoist__residency *res)
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
    d->res = res;
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
static void dropper_drop(hoist__io_dropper *d, uint32_t file, uint64_t lo, uint64_t hi)
{
    hoist__residency_drop(d->res ? &d->res[file] : NULL, d->fds[file], lo, hi);
}

static void dropper_pass(hoist__io_dropper *d, const hoist__window *w)
{
    if (w->file != d->file) {
        dropper_drop(d, d->file, d->from, UINT64_MAX);
        d->file = w->file;
        d->from = 0;
    }
    if (w == &d->plan->windows[d->plan->nwindows - 1]) {
        dropper_drop(d, w->file, d->from, UINT64_MAX);
        return;
    }
    uint64_t end = hoist__align_down(w->hi, HOIST_IO_DROP_ALIGN);
    if (end <= d->from) return;
    dropper_drop(d, w->file, d->from, end);
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
        if (hoist__io_mincore(map + start * page, n * page, vec) != 0) continue;
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
