/* The mmap path: map each file read-only and let the workers copy from the mapping.
 *
 * To a device it has two modes. Staging (default): workers memcpy a window from the mapping into
 * a pinned slot and copy the slot to the device asynchronously. Register: each window of the
 * mapping is page-locked with cudaHostRegister(read-only) and DMAed directly, then unregistered
 * once its copy completes; several workers register ahead while earlier windows are in flight.
 * To the host, workers memcpy straight from the mapping into the arena.
 *
 * Mapped pages count in the process's RSS, and each mapped page is a page-table entry that the
 * final munmap must tear down alone: 4 million entries for a 16 GB model, a serial tail after
 * the parallel copy. So each worker unmaps its previous window's pages when it starts the next
 * (MADV_DONTNEED: the page cache keeps them, the process no longer does): RSS stays at the
 * windows in hand, the teardown is spread over the workers, and the munmap at close finds
 * nothing left to tear down. The page cache itself still grows with the model, which is what
 * this path trades for speed (stream and uring do not). A sparse plan
 * (tensor-parallel slices) populates only its pieces' pages, with readahead off, and never
 * registers (that would pin, so read, whole windows). */
#include "loader/io_load.h"
#include "loader/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* Defaults from measurement (docs/BENCHMARKS.md, H100 host, warm 8.6 GB model): 12 workers with
 * 2-4 MiB windows reached 43-44 GB/s; larger windows were slower (8 MiB: 40, 32 MiB: 12 with 8
 * workers), and registering 64-128 MiB windows topped out near 20 GB/s. */
#define MMAP_STAGING_WINDOW (2u << 20)
#define MMAP_REGISTER_WINDOW (128u << 20)
#define MMAP_DEVICE_THREADS 12u
#define MMAP_HOST_THREADS 8u

typedef struct mmap_state {
    const hoist__file *files;
    const hoist__gpu_ops *gpu; /* registers windows of the mapping */
    uint32_t nfiles;
    uint8_t **maps;
    uint64_t *sizes;
    int registering;
    long page;
    /* each worker's window still mapped in (dropped when it starts the next) */
    unsigned nworkers;
    uint8_t **held_lo;
    size_t *held_len;
    _Atomic uint64_t *read_bytes; /* the hints' counter, or NULL */
    const hoist__plan *plan;      /* from start on */
} mmap_state;

static void mmap_close(void *vs)
{
    mmap_state *s = vs;
    if (!s) return;
    for (uint32_t i = 0; s->maps && i < s->nfiles; i++)
        if (s->maps[i]) munmap(s->maps[i], s->sizes[i]);
    hoist__free(s->maps);
    hoist__free(s->sizes);
    hoist__free(s->held_lo);
    hoist__free(s->held_len);
    hoist__free(s);
}

/* Maps one file after checking it is still the file the table describes. */
static int map_file(mmap_state *s, uint32_t i)
{
    const hoist__file *f = &s->files[i];
    int fd, os_errno;
    RETURN_IF_ERR(hoist__file_open(f, O_RDONLY | O_CLOEXEC, &fd, &os_errno));
    int rc = HOIST_OK;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            rc = hoist__err(HOIST_E_IO, "%s: mmap of %llu bytes: %s", f->path,
                            (unsigned long long)f->size, strerror(errno));
        else {
            s->maps[i] = p;
            s->sizes[i] = f->size;
            madvise(p, f->size, MADV_SEQUENTIAL);
        }
    }
    close(fd); /* the mapping keeps the file */
    return rc;
}

/* Register mode, where asked for and where it can help: a transform copies each window out of the
 * mapping (decoding a packed model, checking a manifest) before the device sees it, so nothing
 * is left to register. */
static int pick_mode(mmap_state *s, const hoist__source_hints *h)
{
    if (h->host) return HOIST_OK;
    RETURN_IF(h->mmap_register == 1 && !h->gpu->host_register, HOIST_E_UNSUPPORTED,
              "the %s backend cannot register host memory", h->gpu->name);
    s->registering = h->mmap_register == 1 && !h->transform && !h->sparse;
    if (h->mmap_register == 1 && h->transform)
        hoist__log(HOIST_LOG_INFO,
                   "mmap: %s: through staging slots instead of registering the mapping: the %s "
                   "reads every window first",
                   h->origin, h->transform);
    else if (h->mmap_register == 1 && h->sparse) /* registering pins (so reads) whole windows */
        hoist__log(HOIST_LOG_INFO,
                   "mmap: %s: through staging slots instead of registering the mapping: only "
                   "this rank's slices are read",
                   h->origin);
    return HOIST_OK;
}

static unsigned default_threads(bool host)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = host ? MMAP_HOST_THREADS : MMAP_DEVICE_THREADS;
    return cpus > 0 && (unsigned)cpus < want ? (unsigned)cpus : want;
}

static int mmap_open(const hoist__source_hints *h, void **out, hoist__source_needs *needs)
{
    mmap_state *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->files = h->files;
    s->gpu = h->gpu;
    s->page = sysconf(_SC_PAGESIZE);
    s->nfiles = h->nfiles;
    s->read_bytes = h->read_bytes;
    s->maps = hoist__calloc(s->nfiles ? s->nfiles : 1, sizeof *s->maps);
    s->sizes = hoist__calloc(s->nfiles ? s->nfiles : 1, sizeof *s->sizes);
    if (!s->maps || !s->sizes) {
        mmap_close(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->nfiles; i++) {
        int rc = map_file(s, i);
        if (rc < 0) {
            mmap_close(s);
            return rc;
        }
    }
    int rc = pick_mode(s, h);
    if (rc < 0) {
        mmap_close(s);
        return rc;
    }
    needs->threads = h->threads ? h->threads : default_threads(h->host);
    needs->window = h->window        ? h->window
                    : s->registering ? MMAP_REGISTER_WINDOW
                                     : MMAP_STAGING_WINDOW;
    needs->staging = !h->host && !s->registering;
    /* the budget fit may lower threads, never raise them */
    s->nworkers = needs->threads;
    s->held_lo = hoist__calloc(s->nworkers, sizeof *s->held_lo);
    s->held_len = hoist__calloc(s->nworkers, sizeof *s->held_len);
    if (!s->held_lo || !s->held_len) {
        mmap_close(s);
        return hoist__err(HOIST_E_NOMEM, "out of memory");
    }
    *out = s;
    return HOIST_OK;
}

/* Gives back the worker's previous window (its bytes have been consumed: copied to staging or
 * the arena, handed to a sink, or DMAed and unregistered) and remembers this one. */
static void hold_window(mmap_state *s, int worker, uint8_t *lo, size_t len)
{
    if ((unsigned)worker >= s->nworkers) return;
    if (s->held_lo[worker]) madvise(s->held_lo[worker], s->held_len[worker], MADV_DONTNEED);
    s->held_lo[worker] = lo;
    s->held_len[worker] = len;
}

/* Whether w's file now ends before w does: pinning pages past the end fails rather than
 * faulting, and the failure should say why. */
static bool file_shrank(const mmap_state *s, const hoist__window *w)
{
    struct stat st;
    return stat(s->files[w->file].path, &st) == 0 && (uint64_t)st.st_size < w->hi;
}

static int truncated(const mmap_state *s, const hoist__window *w)
{
    return hoist__err(HOIST_E_FILE_CHANGED,
                      "%s: bytes %llu..%llu are no longer in the file (truncated during the load?)",
                      s->files[w->file].path, (unsigned long long)w->lo, (unsigned long long)w->hi);
}

typedef struct register_call {
    const hoist__gpu_ops *gpu;
    void *lo;
    size_t len;
} register_call;

static int call_register(void *arg)
{
    const register_call *c = arg;
    return c->gpu->host_register(c->lo, c->len, 1);
}

/* Page-locks the window's pages for DMA. The driver may touch them with the CPU while it pins
 * them, so a page truncated away meanwhile is patched by the guard rather than raising SIGBUS
 * in the driver, and the window then fails. */
static int register_window(mmap_state *s, const hoist__window *w, const uint8_t *p)
{
    uint8_t *lo = (uint8_t *)hoist__align_down((uintptr_t)p, (uint64_t)s->page);
    uint64_t len = hoist__align_up((uintptr_t)(s->maps[w->file] + w->hi), (uint64_t)s->page) -
                   (uintptr_t)lo;
    register_call call = {s->gpu, lo, (size_t)len};
    unsigned patched = 0;
    int rc = hoist__call_patched(lo, (size_t)len, call_register, &call, &patched);
    if (rc >= 0 && patched) s->gpu->host_unregister(lo);
    if (patched || (rc < 0 && file_shrank(s, w))) return truncated(s, w);
    if (rc < 0)
        return hoist__err_prefix(rc, "%s: registering bytes %llu..%llu of the mapping",
                                 s->files[w->file].path, (unsigned long long)w->lo,
                                 (unsigned long long)w->hi);
    return HOIST_OK;
}

/* Fills the page tables of [lo, lo + len) in one call rather than one fault per page (the copy
 * then runs at memcpy speed); kernels before 5.14 lack it and get readahead instead. */
static int populate(mmap_state *s, const hoist__window *w, uint8_t *lo, size_t len)
{
    if (s->read_bytes) atomic_fetch_add(s->read_bytes, len);
    if (madvise(lo, len, MADV_POPULATE_READ) == 0) return HOIST_OK;
    /* EFAULT is the kernel saying the copy would take SIGBUS: the file shrank */
    if (errno == EFAULT) return truncated(s, w);
    madvise(lo, len, MADV_WILLNEED);
    return HOIST_OK;
}

/* A sparse plan's window: only the pages of its pieces are populated (and told to the seam). */
static int populate_ranges(mmap_state *s, const hoist__window *w)
{
    hoist__range_iter it;
    hoist__range r;
    hoist__range_iter_init(&it, s->plan, w, (uint64_t)s->page);
    while (hoist__range_next(&it, &r)) {
        uint64_t hi = r.hi < s->sizes[w->file] ? r.hi : s->sizes[w->file];
        RETURN_IF_ERR(populate(s, w, s->maps[w->file] + r.lo, (size_t)(hi - r.lo)));
        hoist__io_mapped_window(s->files[w->file].path, r.lo, hi);
    }
    return HOIST_OK;
}

static int mmap_read(void *vs, int worker, const hoist__window *w, void *buf, const void **src,
                     int *dma)
{
    mmap_state *s = vs;
    uint8_t *p = s->maps[w->file] + w->lo;
    if (!s->registering) {
        uint8_t *lo = (uint8_t *)hoist__align_down((uintptr_t)p, (uint64_t)s->page);
        hold_window(s, worker, lo, (size_t)((s->maps[w->file] + w->hi) - lo));
    }
    *src = p;
    *dma = 0;
    if (s->registering) {
        RETURN_IF_ERR(register_window(s, w, p));
        *dma = 1;
    } else if (s->plan && hoist__source_ranges(s->plan)) {
        return populate_ranges(s, w);
    } else {
        uint8_t *lo = (uint8_t *)hoist__align_down((uintptr_t)p, (uint64_t)s->page);
        RETURN_IF_ERR(populate(s, w, lo, (size_t)((s->maps[w->file] + w->hi) - lo)));
    }
    hoist__io_mapped_window(s->files[w->file].path, w->lo, w->hi);
    return HOIST_OK;
}

/* The copy out of the mapping, guarded: the file may shrink between the populate above and the
 * copy, or populate may be missing (kernels before 5.14). */
static int mmap_copy(void *vs, const hoist__window *w, void *dst, const void *src, uint64_t n)
{
    mmap_state *s = vs;
    if (hoist__copy_guarded(dst, src, n)) return HOIST_OK;
    uint64_t at = (uint64_t)((const uint8_t *)src - s->maps[w->file]);
    return hoist__err(HOIST_E_FILE_CHANGED,
                      "%s: bytes %llu..%llu vanished from the mapping while being copied "
                      "(truncated during the load?)",
                      s->files[w->file].path, (unsigned long long)at,
                      (unsigned long long)(at + n));
}

static void mmap_release(void *vs, const hoist__window *w)
{
    mmap_state *s = vs;
    uint8_t *p = s->maps[w->file] + w->lo;
    uint8_t *lo = (uint8_t *)hoist__align_down((uintptr_t)p, (uint64_t)s->page);
    s->gpu->host_unregister(lo);
    madvise(lo, (size_t)((s->maps[w->file] + w->hi) - lo), MADV_DONTNEED);
}

/* The windows in the workers' hands are resident; in register mode, also locked. */
static uint64_t mmap_host_bytes(void *vs, unsigned threads, uint64_t window)
{
    mmap_state *s = vs;
    /* register mode keeps a window per in-flight copy: up to the pipeline's slots per worker */
    return (uint64_t)threads * window * (s->registering ? HOIST_SLOTS_PER_WORKER : 1);
}

static int mmap_start(void *vs, const hoist__plan *plan, hoist__budget *budget)
{
    (void)budget;
    mmap_state *s = vs;
    s->plan = plan;
    /* faults on a sequential mapping read ahead, into the gaps of a sparse plan */
    for (uint32_t i = 0; hoist__source_ranges(plan) && i < s->nfiles; i++)
        if (s->maps[i]) madvise(s->maps[i], s->sizes[i], MADV_RANDOM);
    return HOIST_OK;
}

const hoist__source_ops hoist__source_mmap = {
    .version = HOIST_SOURCE_OPS_VERSION,
    .name = "mmap",
    .flags = HOIST_SOURCE_MAPPED,
    .open = mmap_open,
    .close = mmap_close,
    .read = mmap_read,
    .start = mmap_start,
    .release = mmap_release,
    .host_bytes = mmap_host_bytes,
    .copy = mmap_copy,
};
