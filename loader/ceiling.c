/* Ceilings: the raw O_DIRECT read bandwidth of a model's files and the host staging bandwidth
 * (cached file -> pinned slots -> device), measured on the model's own files so that a load can be
 * reported as a fraction of what this machine allows.
 *
 * The read ceiling is built to be hard to beat: several rings on their own threads (the engine of
 * core/uring.h, which the uring path reads with too), each keeping a queue of O_DIRECT reads into
 * registered buffers, taking blocks from one shared cursor so that no ring idles while another
 * still has work; nothing is copied. One ring cannot saturate fast
 * storage (from tmpfs one ring measured about 3.6 GB/s against 14.9 with eight), a slow disk
 * needs the queue depth, and which shape a device likes best is not known in advance: on the H100
 * host's virtio disk 16 rings of 4 x 512 KiB (the uring path's pattern) read 22-26% faster than
 * 8 rings of 16 x 1 MiB. So by default the ceiling sweeps a few shapes, each over its own slice
 * of every file (no byte is read twice, so no shape profits from a cache another one filled, and
 * the sweep costs one pass over the model), and reports the fastest. Every open, read and ring
 * setup goes through the I/O seam (core/io.h), so tests force each fallback as they do for the
 * uring path. */
#include "formats/table.h"
#include "gpu/gpu.h"
#include "core/abi.h"
#include "core/io.h"
#include "core/uring.h"
#include "loader/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* One shape, where the options set any of threads, queue depth or block size. */
#define READ_THREADS 8u
#define READ_DEPTH 16u
#define READ_BLOCK (1u << 20)
/* The shapes the default sweep tries, each on its own slice of every file. */
static const struct {
    unsigned threads, depth;
    uint32_t block;
} read_shapes[] = {
    {8, 16, 1u << 20},   /* deep queues of large reads (NVMe) */
    {16, 4, 512u << 10}, /* the uring path's reads: 16 workers, 2 MiB windows in 4 reads */
    {4, 32, 1u << 20},   /* few rings, deeper */
    {16, 8, 2u << 20},   /* many rings, deep, large */
};
#define NSHAPES (sizeof read_shapes / sizeof *read_shapes)
/* Slices start at multiples of this (a multiple of every shape's block, so O_DIRECT offsets stay
 * aligned). */
#define SLICE_ALIGN (4u << 20)
/* Without io_uring each pread thread has one read in flight: this many threads stand in for the
 * rings' queues. */
#define PREAD_MAX_THREADS 64u
#define STAGING_MAX_THREADS 16u
#define STAGING_SLOTS 3u
#define STAGING_BLOCK (2u << 20)
#define STAGING_DST_MAX (1ull << 30)
#define MAX_THREADS 256u
#define MAX_DEPTH 1024u
#define MAX_INFLIGHT_BYTES (16ull << 30)

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int check_args(const hoist_model *m, const hoist_ceiling_options *o, hoist_ceiling *out,
                      const char *fn)
{
    RETURN_IF(!m || !out, HOIST_E_INVALID_ARG, "%s: NULL argument", fn);
    RETURN_IF(o->threads > MAX_THREADS, HOIST_E_INVALID_ARG, "%s: %u threads (at most %u)", fn,
              o->threads, MAX_THREADS);
    RETURN_IF(o->queue_depth > MAX_DEPTH, HOIST_E_INVALID_ARG,
              "%s: queue depth %u (at most %u)", fn, o->queue_depth, MAX_DEPTH);
    RETURN_IF(o->block_bytes % 4096 || o->block_bytes > (1ull << 30), HOIST_E_INVALID_ARG,
              "%s: block size %llu must be a multiple of 4096 up to 1 GiB", fn,
              (unsigned long long)o->block_bytes);
    return HOIST_OK;
}

static void note_add(hoist_ceiling *c, const char *fmt, ...) HOIST_PRINTF(2, 3);
static void note_add(hoist_ceiling *c, const char *fmt, ...)
{
    size_t n = strlen(c->note);
    if (n && n + 2 < sizeof c->note) {
        memcpy(c->note + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->note + n, sizeof c->note - n, fmt, ap);
    va_end(ap);
}

/* The first worker failure wins; the others stop at their next block. */
typedef struct failure {
    _Atomic int failed;
    pthread_mutex_t lock;
    int status;
    char msg[1024];
} failure;

static void fail(failure *f, int status)
{
    pthread_mutex_lock(&f->lock);
    if (!f->status) {
        f->status = status;
        snprintf(f->msg, sizeof f->msg, "%s", hoist_last_error());
    }
    pthread_mutex_unlock(&f->lock);
    atomic_store(&f->failed, 1);
}

/* Blocks of `block` bytes over a byte range of each file ([lo[i], hi[i]) of file i; lo NULL = 0,
 * hi = the sizes), handed out by one atomic cursor. */
typedef struct blocks {
    uint64_t block;
    uint32_t nfiles;
    const uint64_t *lo, *hi;
    uint64_t *first; /* per file: global index of its first block; [nfiles] = the count */
    _Atomic uint64_t next;
} blocks;

static int blocks_init(blocks *b, const uint64_t *lo, const uint64_t *hi, uint32_t nfiles,
                       uint64_t block)
{
    b->block = block;
    b->nfiles = nfiles;
    b->lo = lo;
    b->hi = hi;
    b->first = hoist__malloc(((size_t)nfiles + 1) * sizeof *b->first);
    RETURN_IF(!b->first, HOIST_E_NOMEM, "out of memory for %u files", nfiles);
    b->first[0] = 0;
    for (uint32_t i = 0; i < nfiles; i++) {
        uint64_t start = lo ? lo[i] : 0;
        uint64_t n = hi[i] > start ? (hi[i] - start + block - 1) / block : 0;
        b->first[i + 1] = b->first[i] + n;
    }
    atomic_store(&b->next, 0);
    return HOIST_OK;
}

static void blocks_free(blocks *b)
{
    hoist__free(b->first);
    b->first = NULL;
}

/* Takes the next block: its file and byte range. false when none is left. */
static bool blocks_take(blocks *b, uint32_t *file, uint64_t *off, uint64_t *end)
{
    uint64_t g = atomic_fetch_add(&b->next, 1);
    if (g >= b->first[b->nfiles]) return false;
    uint32_t lo = 0, hi = b->nfiles; /* the last file f with first[f] <= g (skips empty ones) */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (b->first[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    *file = lo;
    *off = (b->lo ? b->lo[lo] : 0) + (g - b->first[lo]) * b->block;
    *end = *off + b->block < b->hi[lo] ? *off + b->block : b->hi[lo];
    return true;
}

/* ---- the read ceiling --------------------------------------------------------------------- */

typedef struct rstate rstate;

/* One ring (or, without io_uring, one pread thread) and its blocks of buffer. */
typedef struct rthread {
    rstate *s;
    hoist__uring eng;
    uint8_t *mem;  /* depth blocks, owned; NULL for a pread thread that borrows one */
    uint8_t *base; /* queue slot k reads into base + k * block */
} rthread;

struct rstate {
    const hoist__table *t;
    hoist__uring_file *files;
    uint64_t *sizes, *lo, *hi; /* per file; lo and hi: the slice the pass reads */
    hoist__progress progress;
    failure err;
    _Atomic int any_buffered;
    pthread_mutex_t note_lock;
    hoist_ceiling *out;
    int no_uring;   /* a ring could not be had: later threads and passes use pread */
    int noted_bufs; /* the refused buffer registration is in the note */
    /* the pass running */
    blocks blk;
    unsigned nthreads, depth;
    rthread *threads;
};

/* A file that refuses O_DIRECT is read buffered, from storage: its cached pages go first. */
static void note_buffered(rstate *s, const hoist__uring_file *f, const char *why)
{
    atomic_store(&s->any_buffered, 1);
    (void)posix_fadvise(f->buffered_fd, 0, 0, POSIX_FADV_DONTNEED);
    hoist__log(HOIST_LOG_WARN,
               "read ceiling: %s: O_DIRECT refused (%s); reading it buffered, its page cache "
               "dropped first",
               f->path, why);
    pthread_mutex_lock(&s->note_lock);
    note_add(s->out, "%s: O_DIRECT refused (%s), read buffered", f->path, why);
    pthread_mutex_unlock(&s->note_lock);
}

/* Releases the rings, buffers and blocks of the last pass. */
static void pass_free(rstate *s)
{
    for (unsigned i = 0; s->threads && i < s->nthreads; i++) {
        hoist__uring_exit(&s->threads[i].eng);
        hoist__free(s->threads[i].mem);
    }
    hoist__free(s->threads);
    s->threads = NULL;
    s->nthreads = 0;
    blocks_free(&s->blk);
}

static void rstate_close(rstate *s)
{
    pass_free(s);
    for (uint32_t i = 0; s->files && i < s->t->nfiles; i++) hoist__uring_file_close(&s->files[i]);
    hoist__free(s->files);
    hoist__free(s->sizes);
    hoist__free(s->lo);
    hoist__free(s->hi);
    pthread_mutex_destroy(&s->err.lock);
    pthread_mutex_destroy(&s->note_lock);
}

static int open_rfile(rstate *s, uint32_t i)
{
    const hoist__file *tf = &s->t->files[i];
    hoist__uring_file *f = &s->files[i];
    s->sizes[i] = tf->size;
    char why[128];
    RETURN_IF_ERR(hoist__uring_file_open(f, tf->path, tf->size, tf->dev, tf->ino, why,
                                         sizeof why));
    if (!atomic_load(&f->direct)) note_buffered(s, f, why);
    return HOIST_OK;
}

static int rstate_open(rstate *s)
{
    uint32_t nf = s->t->nfiles;
    size_t n = nf ? nf : 1;
    pthread_mutex_init(&s->err.lock, NULL);
    pthread_mutex_init(&s->note_lock, NULL);
    s->files = hoist__calloc(n, sizeof *s->files);
    /* before anything can fail: rstate_close closes what is not -1 */
    for (uint32_t i = 0; s->files && i < nf; i++)
        s->files[i].buffered_fd = s->files[i].direct_fd = -1;
    s->sizes = hoist__calloc(n, sizeof *s->sizes);
    s->lo = hoist__calloc(n, sizeof *s->lo);
    s->hi = hoist__calloc(n, sizeof *s->hi);
    RETURN_IF(!s->files || !s->sizes || !s->lo || !s->hi, HOIST_E_NOMEM,
              "out of memory for %u files", nf);
    for (uint32_t i = 0; i < nf; i++) RETURN_IF_ERR(open_rfile(s, i));
    return HOIST_OK;
}

/* The thread's engine, its blocks registered; a ring that cannot be had makes this and every
 * later thread use pread, a refused registration only costs the per-read pinning. */
static int setup_ring(rstate *s, rthread *th)
{
    if (s->no_uring) return HOIST_OK;
    struct iovec *iov = hoist__calloc(s->depth, sizeof *iov);
    RETURN_IF(!iov, HOIST_E_NOMEM, "out of memory for %u buffers", s->depth);
    for (unsigned i = 0; i < s->depth; i++)
        iov[i] = (struct iovec){th->mem + (uint64_t)i * s->blk.block, s->blk.block};
    int rc = hoist__uring_init(&th->eng, s->depth, s->files, s->t->nfiles, iov, s->depth);
    hoist__free(iov);
    RETURN_IF_ERR(rc);
    if (!th->eng.live) {
        s->no_uring = 1;
        const char *why = strerror(th->eng.init_errno);
        hoist__log(HOIST_LOG_WARN, "read ceiling: io_uring unavailable (%s); using pread threads",
                   why);
        note_add(s->out, "io_uring unavailable (%s), pread threads", why);
    } else if (th->eng.bufs_errno && !s->noted_bufs) {
        s->noted_bufs = 1;
        note_add(s->out, "io_uring refused to register buffers (%s)",
                 strerror(th->eng.bufs_errno));
    }
    return HOIST_OK;
}

/* Buffers (touched now, so that no page fault is timed) and rings, before the clock starts. */
static int rstate_setup_threads(rstate *s)
{
    s->threads = hoist__calloc(s->nthreads, sizeof *s->threads);
    RETURN_IF(!s->threads, HOIST_E_NOMEM, "out of memory for %u threads", s->nthreads);
    for (unsigned i = 0; i < s->nthreads; i++) {
        rthread *th = &s->threads[i];
        th->s = s;
        uint64_t bytes = (uint64_t)s->depth * s->blk.block;
        th->mem = th->base = hoist__memalign(4096, bytes);
        RETURN_IF(!th->mem, HOIST_E_NOMEM,
                  "read ceiling: cannot allocate %llu bytes of read buffers",
                  (unsigned long long)bytes);
        memset(th->mem, 0, bytes);
        RETURN_IF_ERR(setup_ring(s, th));
    }
    return HOIST_OK;
}

/* ---- the reads, from the shared cursor ---------------------------------------------------- */

/* The next block for queue slot `slot` of a thread; none once any thread has failed. */
static bool ceiling_next(void *ctx, unsigned slot, hoist__uring_read *r)
{
    rthread *th = ctx;
    rstate *s = th->s;
    uint32_t file;
    uint64_t off, end;
    if (atomic_load(&s->err.failed) || !blocks_take(&s->blk, &file, &off, &end)) return false;
    /* blocks start at multiples of 4096: an O_DIRECT length runs to the next one, which the
     * end of the file cuts short where the block is its last */
    *r = (hoist__uring_read){.file = file,
                             .buf = (int)slot,
                             .direct = atomic_load(&s->files[file].direct),
                             .off = off,
                             .end = hoist__align_up(end, HOIST_IO_DEFAULT_DIO_ALIGN),
                             .need = end,
                             .dst = th->base + (uint64_t)slot * s->blk.block};
    return true;
}

static int ceiling_done(void *ctx, const hoist__uring_read *r)
{
    rthread *th = ctx;
    hoist__progress_add(&th->s->progress, r->need - r->start);
    return HOIST_OK;
}

static void ceiling_refused(void *ctx, const hoist__uring_file *f, const char *why)
{
    rthread *th = ctx;
    note_buffered(th->s, f, why);
}

static void *read_thread(void *arg)
{
    rthread *th = arg;
    rstate *s = th->s;
    hoist__uring_feed feed = {ceiling_next, ceiling_done, ceiling_refused, th};
    int rc = th->eng.live ? hoist__uring_run(&th->eng, &feed)
                          : hoist__uring_pread(s->files, s->t->nfiles, &feed);
    if (rc < 0) fail(&s->err, rc);
    return NULL;
}

/* Without rings the pread threads stand in for the queues: more of them, each on its own slot. */
static int widen_for_pread(rstate *s)
{
    if (s->threads[0].eng.live) return HOIST_OK;
    unsigned want = s->nthreads * s->depth;
    if (want > PREAD_MAX_THREADS) want = PREAD_MAX_THREADS;
    if (want <= s->nthreads) return HOIST_OK;
    rthread *more = hoist__realloc(s->threads, want * sizeof *more);
    RETURN_IF(!more, HOIST_E_NOMEM, "out of memory for %u threads", want);
    s->threads = more;
    /* thread i > nthreads borrows slot (i / nthreads) of thread (i % nthreads) */
    for (unsigned i = s->nthreads; i < want; i++) {
        rthread *th = &s->threads[i];
        memset(th, 0, sizeof *th);
        th->s = s;
        const rthread *owner = &s->threads[i % s->nthreads];
        th->base = owner->mem + (uint64_t)((i / s->nthreads) % s->depth) * s->blk.block;
    }
    s->nthreads = want;
    return HOIST_OK;
}

/* Runs fn on n threads, thread i on the element i of an array (base, stride), and waits for
 * them all, reporting progress; the first failure of any thread is returned. */
static int run_threads(unsigned n, void *(*fn)(void *), void *base, size_t stride,
                       hoist__progress *p, failure *err)
{
    pthread_t *tids = hoist__calloc(n, sizeof *tids);
    RETURN_IF(!tids, HOIST_E_NOMEM, "out of memory for %u threads", n);
    int rc = HOIST_OK;
    unsigned started = 0;
    for (; started < n; started++) {
        if (pthread_create(&tids[started], NULL, fn, (char *)base + stride * started) != 0) {
            rc = hoist__err(HOIST_E_NOMEM, "cannot start ceiling thread %u", started);
            atomic_store(&err->failed, 1);
            break;
        }
    }
    for (unsigned i = 0; i < started; i++) hoist__progress_join(p, tids[i]);
    hoist__free(tids);
    if (err->status) return hoist__err(err->status, "%s", err->msg);
    return rc;
}

/* One shape over slice j of k of every file (whole files when k = 1). */
typedef struct pass {
    unsigned threads, depth;
    uint64_t block, bytes;
    double seconds;
    int uring, fixed_buffers;
} pass;

static int read_pass(rstate *s, pass *p, unsigned j, unsigned k)
{
    uint64_t inflight;
    RETURN_IF(!hoist__mul_u64((uint64_t)p->threads * p->depth, p->block, &inflight) ||
                  inflight > MAX_INFLIGHT_BYTES,
              HOIST_E_INVALID_ARG,
              "read ceiling: %u threads x %u reads x %llu bytes is more than %llu bytes in flight",
              p->threads, p->depth, (unsigned long long)p->block,
              (unsigned long long)MAX_INFLIGHT_BYTES);
    uint32_t nf = s->t->nfiles;
    for (uint32_t i = 0; i < nf; i++) {
        uint64_t size = s->sizes[i];
        s->lo[i] = j ? hoist__align_down(size / k * j, SLICE_ALIGN) : 0;
        s->hi[i] = j + 1 < k ? hoist__align_down(size / k * (j + 1), SLICE_ALIGN) : size;
    }
    s->depth = p->depth;
    s->nthreads = p->threads;
    RETURN_IF_ERR(blocks_init(&s->blk, s->lo, s->hi, nf, p->block));
    if (!s->blk.first[nf]) return HOIST_OK; /* an empty slice (small files): nothing to time */
    unsigned rings = s->nthreads;
    RETURN_IF_ERR(rstate_setup_threads(s));
    RETURN_IF_ERR(widen_for_pread(s));
    uint64_t before = atomic_load(&s->progress.done);
    double t0 = hoist__now();
    RETURN_IF_ERR(run_threads(s->nthreads, read_thread, s->threads, sizeof *s->threads,
                              &s->progress, &s->err));
    p->seconds = hoist__now() - t0;
    p->bytes = atomic_load(&s->progress.done) - before;
    p->threads = s->nthreads;
    p->depth = s->threads[0].eng.live ? s->depth : 1;
    p->uring = p->fixed_buffers = 1;
    for (unsigned i = 0; i < rings; i++) {
        p->uring &= s->threads[i].eng.live;
        p->fixed_buffers &= s->threads[i].eng.fixed_bufs;
    }
    p->fixed_buffers &= p->uring;
    return HOIST_OK;
}

static double gbps(uint64_t bytes, double seconds)
{
    return seconds > 0 ? (double)bytes / seconds / 1e9 : 0;
}

/* Every shape of the sweep on its own slice, or the one shape the options ask for on all of
 * the files; the fastest pass is the result. */
static int read_passes(rstate *s, const hoist_ceiling_options *o, hoist_ceiling *out)
{
    int sweep = !o->threads && !o->queue_depth && !o->block_bytes;
    unsigned k = sweep ? NSHAPES : 1;
    int uring = 1, fixed = 1;
    char shapes[192] = "";
    size_t used = 0;
    for (unsigned j = 0; j < k; j++) {
        pass p = {.threads = o->threads ? o->threads : READ_THREADS,
                  .depth = o->queue_depth ? o->queue_depth : READ_DEPTH,
                  .block = o->block_bytes ? o->block_bytes : READ_BLOCK};
        if (sweep)
            p = (pass){.threads = read_shapes[j].threads, .depth = read_shapes[j].depth,
                       .block = read_shapes[j].block};
        int rc = read_pass(s, &p, j, k);
        pass_free(s);
        RETURN_IF_ERR(rc);
        if (!p.bytes) continue;
        uring &= p.uring;
        fixed &= p.fixed_buffers;
        if (sweep && used < sizeof shapes)
            used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%ux%ux%lluK %.2f",
                                     used ? ", " : "", p.threads, p.depth,
                                     (unsigned long long)(p.block >> 10), gbps(p.bytes, p.seconds));
        if (out->bytes && gbps(p.bytes, p.seconds) <= out->gbps) continue;
        out->bytes = p.bytes;
        out->seconds = p.seconds;
        out->gbps = gbps(p.bytes, p.seconds);
        out->threads = p.threads;
        out->queue_depth = p.depth;
        out->block_bytes = p.block;
    }
    out->uring = uring;
    out->fixed_buffers = fixed && uring;
    if (*shapes) note_add(out, "sweep (rings x depth x block, GB/s): %s", shapes);
    return HOIST_OK;
}

static const hoist_ceiling_options default_options = HOIST_CEILING_OPTIONS_DEFAULT;

/* o and out: the library's full-size copies (out zeroed), o checked by check_args. */
static int read_ceiling(const hoist_model *model, const hoist_ceiling_options *o,
                        hoist_ceiling *out)
{
    rstate s;
    memset(&s, 0, sizeof s);
    s.t = &model->table;
    s.out = out;
    int rc = rstate_open(&s);
    uint64_t total = 0;
    for (uint32_t i = 0; rc == HOIST_OK && i < s.t->nfiles; i++) total += s.sizes[i];
    if (rc == HOIST_OK) {
        hoist__progress_start(&s.progress, o->progress, o->progress_user, total);
        rc = read_passes(&s, o, out);
    }
    if (rc == HOIST_OK) {
        hoist__progress_finish(&s.progress);
        out->direct = !atomic_load(&s.any_buffered);
    }
    rstate_close(&s);
    return rc;
}

typedef int (*ceiling_fn)(const hoist_model *, const hoist_ceiling_options *, hoist_ceiling *);

/* The public entry points' common part: arguments checked, the options taken in at the library's
 * size, and *out zeroed on failure, written whole on success. */
static int measure(const hoist_model *model, const hoist_ceiling_options *opts,
                   hoist_ceiling *out, const char *fn_name, ceiling_fn fn)
{
    RETURN_IF(!model || !out, HOIST_E_INVALID_ARG, "%s: NULL argument", fn_name);
    RETURN_IF_ERR(HOIST__CHECK(hoist_ceiling, out));
    hoist_ceiling_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_ceiling_options, &o, opts, &default_options));
    RETURN_IF_ERR(check_args(model, &o, out, fn_name));
    hoist_ceiling r = HOIST_CEILING_INIT;
    int rc = fn(model, &o, &r);
    if (rc < 0) {
        HOIST__ZERO(hoist_ceiling, out);
        return rc;
    }
    HOIST__OUT(hoist_ceiling, out, &r);
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_read_ceiling(const hoist_model *model, const hoist_ceiling_options *opts,
                       hoist_ceiling *out)
{
    return measure(model, opts, out, "hoist_read_ceiling", read_ceiling);
}

/* ---- the staging ceiling ------------------------------------------------------------------ */

typedef struct sstate sstate;

typedef struct sthread {
    sstate *s;
    hoist__stream *stream;
    void *slot[STAGING_SLOTS];
    hoist__event *ev[STAGING_SLOTS];
    int busy[STAGING_SLOTS];
    unsigned next;
} sthread;

struct sstate {
    const hoist__table *t;
    const hoist__gpu_ops *g;
    int device, host;
    uint8_t **maps;
    uint64_t *sizes;
    blocks blk;
    uint8_t *dst;
    uint64_t dst_blocks; /* the destination holds this many blocks; windows cycle through */
    unsigned maxthreads;
    sthread *threads;
    hoist__progress progress;
    failure err;
};

static int staging_copy(sthread *th, uint32_t file, uint64_t off, uint64_t end, uint64_t g)
{
    sstate *s = th->s;
    const uint8_t *src = s->maps[file] + off;
    uint8_t *dst = s->dst + (g % s->dst_blocks) * s->blk.block;
    uint64_t len = end - off;
    if (s->host) {
        memcpy(dst, src, len);
        return HOIST_OK;
    }
    unsigned k = th->next++ % STAGING_SLOTS;
    if (th->busy[k]) RETURN_IF_ERR(s->g->event_sync(th->ev[k]));
    th->busy[k] = 0;
    memcpy(th->slot[k], src, len);
    RETURN_IF_ERR(s->g->copy_h2d(dst, th->slot[k], len, th->stream));
    RETURN_IF_ERR(s->g->event_record(th->ev[k], th->stream));
    th->busy[k] = 1;
    return HOIST_OK;
}

static void *staging_thread(void *arg)
{
    sthread *th = arg;
    sstate *s = th->s;
    uint32_t file;
    uint64_t off, end;
    int rc = HOIST_OK;
    while (rc == HOIST_OK && !atomic_load(&s->err.failed) &&
           blocks_take(&s->blk, &file, &off, &end)) {
        uint64_t g = s->blk.first[file] + off / s->blk.block;
        rc = staging_copy(th, file, off, end, g);
        if (rc == HOIST_OK) hoist__progress_add(&s->progress, end - off);
    }
    for (unsigned k = 0; k < STAGING_SLOTS; k++) { /* the pass ends when its copies have */
        if (!th->busy[k]) continue;
        int r = s->g->event_sync(th->ev[k]);
        th->busy[k] = 0;
        if (r < 0 && rc == HOIST_OK) rc = r;
    }
    if (rc < 0) fail(&s->err, rc);
    return NULL;
}

static void sstate_close(sstate *s)
{
    for (unsigned i = 0; s->threads && i < s->maxthreads; i++) {
        sthread *th = &s->threads[i];
        for (unsigned k = 0; k < STAGING_SLOTS; k++) {
            if (th->ev[k]) s->g->event_destroy(th->ev[k]);
            if (th->slot[k]) s->g->pinned_free(th->slot[k], s->blk.block);
        }
        if (th->stream) s->g->stream_destroy(th->stream);
    }
    hoist__free(s->threads);
    if (s->dst) s->g->mem_free(s->device, s->dst);
    for (uint32_t i = 0; s->maps && i < s->t->nfiles; i++)
        if (s->maps[i]) munmap(s->maps[i], s->sizes[i]);
    hoist__free(s->maps);
    hoist__free(s->sizes);
    hoist__free(s->blk.first);
    pthread_mutex_destroy(&s->err.lock);
}

/* Maps a file and brings all of it into the page cache and the page tables: the ceiling is the
 * copy from a cached file, so neither storage nor page faults are timed. */
static int map_cached(sstate *s, uint32_t i)
{
    const hoist__file *f = &s->t->files[i];
    int fd, os_errno;
    RETURN_IF_ERR(hoist__file_open(f, O_RDONLY | O_CLOEXEC, &fd, &os_errno));
    s->sizes[i] = f->size;
    if (!f->size) {
        close(fd);
        return HOIST_OK;
    }
    void *p = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    RETURN_IF(p == MAP_FAILED, HOIST_E_IO, "%s: mmap of %llu bytes: %s", f->path,
              (unsigned long long)f->size, strerror(e));
    s->maps[i] = p;
    if (madvise(p, f->size, MADV_POPULATE_READ) == 0) return HOIST_OK;
    RETURN_IF(errno == EFAULT, HOIST_E_FILE_CHANGED,
              "%s: shorter than its %llu bytes (truncated since the model was opened?)", f->path,
              (unsigned long long)f->size);
    volatile uint8_t sink = 0; /* kernels before 5.14: touch every page */
    for (uint64_t off = 0; off < f->size; off += 4096) sink ^= ((volatile uint8_t *)p)[off];
    (void)sink;
    return HOIST_OK;
}

static int sstate_open(sstate *s, const hoist_ceiling_options *o)
{
    uint32_t nf = s->t->nfiles;
    pthread_mutex_init(&s->err.lock, NULL);
    s->device = o->device;
    s->host = o->device == HOIST_DEVICE_HOST && !hoist__gpu_host_as_device();
    RETURN_IF_ERR(hoist__gpu_for_device(o->device, &s->g));
    uint64_t block = o->block_bytes ? o->block_bytes : STAGING_BLOCK;
    s->maxthreads = o->threads ? o->threads
                               : (cores() < STAGING_MAX_THREADS ? cores() : STAGING_MAX_THREADS);
    s->maps = hoist__calloc(nf ? nf : 1, sizeof *s->maps);
    s->sizes = hoist__calloc(nf ? nf : 1, sizeof *s->sizes);
    RETURN_IF(!s->maps || !s->sizes, HOIST_E_NOMEM, "out of memory for %u files", nf);
    for (uint32_t i = 0; i < nf; i++) RETURN_IF_ERR(map_cached(s, i));
    RETURN_IF_ERR(blocks_init(&s->blk, NULL, s->sizes, nf, block));
    uint64_t nblocks = s->blk.first[nf];
    s->dst_blocks = STAGING_DST_MAX / block;
    if (s->dst_blocks > nblocks) s->dst_blocks = nblocks;
    if (!s->dst_blocks) s->dst_blocks = 1;
    uint64_t dst_bytes = s->dst_blocks * block;
    RETURN_IF_ERR(s->g->mem_alloc(s->device, dst_bytes, (void **)&s->dst));
    if (s->host) memset(s->dst, 0, dst_bytes); /* fault it in before the clock starts */
    s->threads = hoist__calloc(s->maxthreads, sizeof *s->threads);
    RETURN_IF(!s->threads, HOIST_E_NOMEM, "out of memory for %u threads", s->maxthreads);
    for (unsigned i = 0; i < s->maxthreads; i++) {
        sthread *th = &s->threads[i];
        th->s = s;
        if (s->host) continue;
        RETURN_IF_ERR(s->g->stream_create(s->device, &th->stream));
        for (unsigned k = 0; k < STAGING_SLOTS; k++) {
            RETURN_IF_ERR(s->g->event_create(s->device, &th->ev[k]));
            RETURN_IF_ERR(s->g->pinned_alloc(block, &th->slot[k]));
            memset(th->slot[k], 0, block);
        }
    }
    return HOIST_OK;
}

/* Thread counts of the sweep: powers of two below the cap, and the cap. */
static unsigned sweep(unsigned cap, unsigned *counts)
{
    unsigned n = 0;
    for (unsigned t = 1; t < cap; t *= 2) counts[n++] = t;
    counts[n++] = cap;
    return n;
}

/* As read_ceiling. */
static int staging_ceiling(const hoist_model *model, const hoist_ceiling_options *o,
                           hoist_ceiling *out)
{
    sstate s;
    memset(&s, 0, sizeof s);
    s.t = &model->table;
    int rc = sstate_open(&s, o);
    unsigned counts[16], npass = 0;
    if (rc == HOIST_OK && o->threads) {
        counts[0] = o->threads;
        npass = 1;
    } else if (rc == HOIST_OK) {
        npass = sweep(s.maxthreads, counts);
    }
    uint64_t total = 0;
    for (uint32_t i = 0; rc == HOIST_OK && i < s.t->nfiles; i++) total += s.sizes[i];
    if (rc == HOIST_OK)
        hoist__progress_start(&s.progress, o->progress, o->progress_user, total * npass);
    for (unsigned p = 0; rc == HOIST_OK && p < npass; p++) {
        atomic_store(&s.blk.next, 0);
        uint64_t before = atomic_load(&s.progress.done);
        double t0 = hoist__now();
        rc = run_threads(counts[p], staging_thread, s.threads, sizeof *s.threads, &s.progress,
                         &s.err);
        double dt = hoist__now() - t0;
        uint64_t bytes = atomic_load(&s.progress.done) - before;
        double gbps = dt > 0 ? (double)bytes / dt / 1e9 : 0;
        if (rc == HOIST_OK)
            note_add(out, "%u thread%s %.2f GB/s", counts[p], counts[p] > 1 ? "s" : "", gbps);
        if (rc == HOIST_OK && (p == 0 || gbps > out->gbps)) {
            out->bytes = bytes;
            out->seconds = dt;
            out->gbps = gbps;
            out->threads = counts[p];
        }
    }
    if (rc == HOIST_OK) {
        hoist__progress_finish(&s.progress);
        out->queue_depth = s.host ? 0 : STAGING_SLOTS;
        out->block_bytes = s.blk.block;
        out->direct = 0;
        if (s.host) note_add(out, "copies straight into host memory");
    }
    sstate_close(&s);
    return rc;
}

int hoist_staging_ceiling(const hoist_model *model, const hoist_ceiling_options *opts,
                          hoist_ceiling *out)
{
    return measure(model, opts, out, "hoist_staging_ceiling", staging_ceiling);
}
