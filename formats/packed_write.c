/* hoist_pack: writes a model as a packed container (layout in packed.h).
 *
 * Chunks are compressed in batches: worker threads read, filter and compress the chunks of one
 * batch in any order, then the calling thread writes them in order and feeds each tensor's
 * running hash. A batch is a few chunks per worker, so memory stays a few MiB per worker
 * whatever the model size. The file is written under a temporary name and renamed at the end;
 * the header, whose hashes cover the index, is written last. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: zstd allocates through hoist's seam */
#define XXH_STATIC_LINKING_ONLY  /* XXH3_state_t on the stack: no allocation outside the seam */
#include "formats/exphuff.h"
#include "formats/filter.h"
#include "formats/packed.h"
#include "core/abi.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#define PACK_DEFAULT_LEVEL 1
#define PACK_MAX_THREADS 64u
#define PACK_CHUNKS_PER_WORKER 8u
/* A chunk is stored compressed only if that saves at least 1/32 of it: decoding a frame that
 * saves less costs more load time than reading the difference. */
#define PACK_MIN_SAVING 32u

typedef struct job {
    uint32_t tensor;
    uint64_t off; /* its offset in the tensor */
    uint32_t len;
    uint8_t *in;     /* the tensor bytes */
    uint8_t *stored; /* what goes into the file */
    uint32_t stored_len;
    uint8_t codec;
    uint64_t xxh3;
} job;

typedef struct packer {
    const hoist__table *t;
    hoist_pack_options o;
    int *fds;
    hoist_filter *filters; /* per table index */
    uint8_t *exphuff;      /* per table index: 1 when its chunks take codec 2 */
    job *jobs;             /* one batch */
    size_t njobs;
    _Atomic size_t next;
    _Atomic int failed;
    pthread_mutex_t err_lock;
    int err_status;
    char err_msg[1024];
} packer;

typedef struct pworker {
    packer *pk;
    pthread_t thread;
    int started;
    ZSTD_CCtx *cctx;
    uint8_t *filtered;
} pworker;

static void *zalloc(void *opaque, size_t n)
{
    (void)opaque;
    return hoist__malloc(n);
}

static void zfree(void *opaque, void *p)
{
    (void)opaque;
    hoist__free(p);
}

static int fail(packer *pk, int status)
{
    pthread_mutex_lock(&pk->err_lock);
    if (!pk->err_status) {
        pk->err_status = status;
        snprintf(pk->err_msg, sizeof pk->err_msg, "%s", hoist_last_error());
    }
    pthread_mutex_unlock(&pk->err_lock);
    atomic_store(&pk->failed, 1);
    return status;
}

/* ---- workers ------------------------------------------------------------------------------ */

/* One frame of n bytes in `planes` equal planes, each plane ending its own zstd blocks: an entropy
 * table fitted to the exponent plane alone instead of averaged with a near-random mantissa plane
 * (measured on hoist gen: f32 in 256 KiB chunks 0.884 of the size -> 0.838; bf16 in 64 KiB
 * chunks 0.771 -> 0.674). Returns the frame's size, 0 when it would not fit cap (not worth
 * storing compressed), or a zstd error code. */
static size_t compress_planes(ZSTD_CCtx *cctx, uint8_t *dst, size_t cap, const uint8_t *src,
                              size_t n, unsigned planes)
{
    size_t r = ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setPledgedSrcSize(cctx, n);
    ZSTD_outBuffer out = {dst, cap, 0};
    size_t plane = n / planes;
    for (unsigned b = 0; b < planes && !ZSTD_isError(r); b++) {
        ZSTD_inBuffer in = {src + b * plane, plane, 0};
        ZSTD_EndDirective end = b + 1 == planes ? ZSTD_e_end : ZSTD_e_flush;
        do r = ZSTD_compressStream2(cctx, &out, &in, end);
        while (!ZSTD_isError(r) && r != 0 && out.pos < out.size);
        if (!ZSTD_isError(r) && r != 0) return 0; /* out of room */
    }
    return ZSTD_isError(r) ? r : out.pos;
}

static int compress_job(pworker *w, job *j)
{
    packer *pk = w->pk;
    const hoist__tensor *ti = &pk->t->tensors[j->tensor];
    const hoist__file *f = &pk->t->files[ti->file];
    RETURN_IF_ERR(hoist__io_read_full(pk->fds[ti->file], f->path, j->in, ti->offset + j->off,
                                      ti->offset + j->off + j->len));
    j->xxh3 = XXH3_64bits(j->in, j->len);
    /* compressed only if that saves at least 1/PACK_MIN_SAVING of the chunk */
    size_t keep = j->len - j->len / PACK_MIN_SAVING - (j->len < PACK_MIN_SAVING);
    if (pk->exphuff[j->tensor]) {
        size_t n = hoist__exphuff_encode(j->in, j->len, j->stored, keep);
        j->codec = n ? HOIST_CODEC_EXPHUFF : HOIST_CODEC_STORED;
        j->stored_len = n ? (uint32_t)n : j->len;
        if (!n) memcpy(j->stored, j->in, j->len);
        return HOIST_OK;
    }
    hoist_filter flt = pk->filters[j->tensor];
    unsigned width = hoist__filter_width(ti->dtype), planes = 1;
    const uint8_t *src = j->in;
    if (flt != HOIST_FILTER_NONE) {
        hoist__filter_apply(flt, width, j->in, w->filtered, j->len);
        src = w->filtered;
        planes = width;
    }
    size_t n = compress_planes(w->cctx, j->stored, keep, src, j->len, planes);
    if (!ZSTD_isError(n) && n > 0) {
        j->codec = HOIST_CODEC_ZSTD;
        j->stored_len = (uint32_t)n;
    } else {
        RETURN_IF(ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation,
                  HOIST_E_NOMEM, "%s: tensor '%s': zstd ran out of memory", f->path, ti->name);
        memcpy(j->stored, src, j->len);
        j->codec = HOIST_CODEC_STORED;
        j->stored_len = j->len;
    }
    return HOIST_OK;
}

static void *worker_main(void *arg)
{
    pworker *w = arg;
    packer *pk = w->pk;
    while (!atomic_load(&pk->failed)) {
        size_t i = atomic_fetch_add(&pk->next, 1);
        if (i >= pk->njobs) break;
        int rc = compress_job(w, &pk->jobs[i]);
        if (rc < 0) fail(pk, rc);
    }
    return NULL;
}

static int worker_init(pworker *w, packer *pk)
{
    w->pk = pk;
    ZSTD_customMem mem = {zalloc, zfree, NULL};
    w->cctx = ZSTD_createCCtx_advanced(mem);
    w->filtered = hoist__malloc(pk->o.chunk_bytes);
    RETURN_IF(!w->cctx || !w->filtered, HOIST_E_NOMEM, "out of memory for a compressor");
    size_t r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, pk->o.level);
    /* Weights hold almost no repeated byte strings: short matches found among random mantissa
     * bytes cost more than they save (7: 0.678 of the size against 0.690 at the default 4). */
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_minMatch, 7);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0);
    RETURN_IF(ZSTD_isError(r), HOIST_E_INVALID_ARG, "zstd refuses level %d: %s", pk->o.level,
              ZSTD_getErrorName(r));
    return HOIST_OK;
}

static void worker_free(pworker *w)
{
    ZSTD_freeCCtx(w->cctx);
    hoist__free(w->filtered);
}

/* Compresses jobs [0, n) of pk->jobs on the workers. */
static int run_batch(packer *pk, pworker *ws, unsigned nw, size_t n)
{
    pk->njobs = n;
    atomic_store(&pk->next, 0);
    unsigned started = 0;
    for (unsigned i = 0; i < nw; i++) {
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fail(pk, hoist__err(HOIST_E_NOMEM, "cannot start packing thread %u", i));
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) pthread_join(ws[i].thread, NULL);
    if (pk->err_status) return hoist__err(pk->err_status, "%s", pk->err_msg);
    return HOIST_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

static int write_all(int fd, const char *path, const void *buf, uint64_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        RETURN_IF(w <= 0, HOIST_E_IO, "%s: write of %llu bytes at byte %llu: %s", path,
                  (unsigned long long)n, (unsigned long long)off,
                  w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (uint64_t)w;
        off += (uint64_t)w;
    }
    return HOIST_OK;
}

static void put32(uint8_t **p, uint32_t v)
{
    for (int i = 0; i < 4; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t **p, uint64_t v)
{
    for (int i = 0; i < 8; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put_str(uint8_t **p, const char *s)
{
    size_t n = strlen(s);
    put32(p, (uint32_t)n);
    memcpy(*p, s, n);
    *p += n;
}

/* The index's tensor and metadata part; the chunk entries follow at *chunks_at. */
static int index_alloc(const packer *pk, uint64_t nchunks, uint8_t **buf, uint64_t *len)
{
    const hoist__table *t = pk->t;
    uint64_t n = 16 + nchunks * 16;
    for (size_t i = 0; i < t->ntensors; i++)
        n += 4 + strlen(t->tensors[i].name) + 12 + 8 * (uint64_t)t->tensors[i].ndim + 16;
    for (size_t i = 0; i < t->nmeta; i++)
        n += 8 + strlen(t->meta[i].key) + strlen(t->meta[i].value);
    RETURN_IF(n > HOIST_PACKED_MAX_INDEX, HOIST_E_TOO_MANY,
              "the index of this model would take %llu bytes (at most %llu): use larger chunks",
              (unsigned long long)n, (unsigned long long)HOIST_PACKED_MAX_INDEX);
    *buf = hoist__malloc(n);
    RETURN_IF(!*buf, HOIST_E_NOMEM, "out of memory for a %llu-byte index", (unsigned long long)n);
    *len = n;
    return HOIST_OK;
}

static uint64_t tensor_chunks(const packer *pk, const hoist__tensor *ti)
{
    return ti->nbytes / pk->o.chunk_bytes + (ti->nbytes % pk->o.chunk_bytes != 0);
}

typedef struct writer {
    int fd;
    const char *path;
    uint64_t off;     /* next frame's offset */
    uint8_t *chunk_p; /* next chunk entry in the index */
    uint64_t *tensor_hash;
    XXH3_state_t hs; /* the running hash of the tensor being written */
    hoist_pack_stats st;
    uint64_t done;   /* model bytes written, for progress */
    bool exphuff_used; /* the container needs version 2 */
    double reported; /* hoist__now() of the last progress call */
} writer;

/* Progress on the calling thread, between batches: at most one call per
 * HOIST_PROGRESS_INTERVAL_MS but the first and the last (hoist.h's contract). */
static void report(const packer *pk, writer *wr, int force)
{
    if (!pk->o.progress) return;
    double now = hoist__now();
    if (!force && now - wr->reported < HOIST_PROGRESS_INTERVAL_MS / 1000.0) return;
    wr->reported = now;
    pk->o.progress(wr->done, pk->t->total_bytes, pk->o.progress_user);
}

/* Writes one compressed batch in order and folds its bytes into the tensors' hashes. */
static int write_batch(packer *pk, writer *wr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        job *j = &pk->jobs[i];
        if (j->off == 0) XXH3_64bits_reset(&wr->hs);
        XXH3_64bits_update(&wr->hs, j->in, j->len);
        if (j->off + j->len == pk->t->tensors[j->tensor].nbytes)
            wr->tensor_hash[j->tensor] = XXH3_64bits_digest(&wr->hs);
        RETURN_IF_ERR(write_all(wr->fd, wr->path, j->stored, j->stored_len, wr->off));
        wr->off += j->stored_len;
        put32(&wr->chunk_p, j->stored_len);
        put32(&wr->chunk_p, j->codec);
        put64(&wr->chunk_p, j->xxh3);
        wr->st.raw_chunks += j->codec == HOIST_CODEC_STORED;
        wr->exphuff_used |= j->codec == HOIST_CODEC_EXPHUFF;
        wr->done += j->len;
    }
    report(pk, wr, 0);
    return HOIST_OK;
}

/* Every chunk, batch by batch. */
static int pack_chunks(packer *pk, pworker *ws, unsigned nw, size_t batch, writer *wr)
{
    const hoist__table *t = pk->t;
    size_t n = 0;
    report(pk, wr, 1); /* done = 0 */
    for (size_t ti = 0; ti < t->ntensors; ti++) {
        const hoist__tensor *x = &t->tensors[ti];
        if (x->nbytes == 0) wr->tensor_hash[ti] = XXH3_64bits(NULL, 0);
        for (uint64_t off = 0; off < x->nbytes; off += pk->o.chunk_bytes) {
            job *j = &pk->jobs[n++];
            uint64_t len = x->nbytes - off < pk->o.chunk_bytes ? x->nbytes - off : pk->o.chunk_bytes;
            j->tensor = (uint32_t)ti;
            wr->st.chunks++;
            j->off = off;
            j->len = (uint32_t)len;
            if (n < batch) continue;
            RETURN_IF_ERR(run_batch(pk, ws, nw, n));
            RETURN_IF_ERR(write_batch(pk, wr, n));
            n = 0;
        }
    }
    if (n) {
        RETURN_IF_ERR(run_batch(pk, ws, nw, n));
        RETURN_IF_ERR(write_batch(pk, wr, n));
    }
    if (wr->done != t->total_bytes)
        return hoist__err(HOIST_E_INTERNAL, "packed %llu of the model's %llu bytes",
                          (unsigned long long)wr->done, (unsigned long long)t->total_bytes);
    report(pk, wr, 1); /* done == total */
    return HOIST_OK;
}

static int write_index(packer *pk, writer *wr, uint8_t *index, uint64_t ilen)
{
    const hoist__table *t = pk->t;
    uint8_t *p = index;
    put32(&p, (uint32_t)t->ntensors);
    put32(&p, (uint32_t)t->nmeta);
    put64(&p, wr->st.chunks);
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        put_str(&p, x->name);
        put32(&p, (uint32_t)x->dtype);
        put32(&p, (uint32_t)pk->filters[i]);
        put32(&p, x->ndim);
        for (uint32_t d = 0; d < x->ndim; d++) put64(&p, (uint64_t)x->shape[d]);
        put64(&p, x->nbytes);
        put64(&p, wr->tensor_hash[i]);
    }
    for (size_t i = 0; i < t->nmeta; i++) {
        put_str(&p, t->meta[i].key);
        put_str(&p, t->meta[i].value);
    }
    RETURN_IF(p + wr->st.chunks * 16 != index + ilen, HOIST_E_INTERNAL,
              "index layout: %llu bytes planned, %llu written",
              (unsigned long long)ilen, (unsigned long long)(p - index + wr->st.chunks * 16));
    RETURN_IF_ERR(write_all(wr->fd, wr->path, index, ilen, wr->off));
    uint8_t h[HOIST_PACKED_HEADER] = {0}, *q = h;
    memcpy(q, HOIST_PACKED_MAGIC, 8);
    q += 8;
    put32(&q, wr->exphuff_used ? HOIST_PACKED_VERSION_GPU : HOIST_PACKED_VERSION);
    put32(&q, HOIST_PACKED_HEADER);
    put64(&q, pk->o.chunk_bytes);
    put64(&q, wr->off);
    put64(&q, ilen);
    put64(&q, XXH3_64bits(index, ilen));
    put64(&q, 0);
    put64(&q, XXH3_64bits(h, 56));
    RETURN_IF_ERR(write_all(wr->fd, wr->path, h, sizeof h, 0));
    wr->st.file_bytes = wr->off + ilen;
    return HOIST_OK;
}

/* ---- setup -------------------------------------------------------------------------------- */

static int check_options(hoist_pack_options *o)
{
    if (!o->level) o->level = PACK_DEFAULT_LEVEL;
    if (!o->chunk_bytes) o->chunk_bytes = HOIST_PACKED_DEFAULT_CHUNK;
    if (!o->threads) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (o->threads > PACK_MAX_THREADS) o->threads = PACK_MAX_THREADS;
    RETURN_IF(o->level < 1 || o->level > ZSTD_maxCLevel(), HOIST_E_INVALID_ARG,
              "zstd level %d (expected 1 to %d)", o->level, ZSTD_maxCLevel());
    RETURN_IF(o->chunk_bytes < HOIST_PACKED_MIN_CHUNK || o->chunk_bytes > HOIST_PACKED_MAX_CHUNK ||
                  (o->chunk_bytes & (o->chunk_bytes - 1)),
              HOIST_E_INVALID_ARG, "chunk size %llu is not a power of two from %u to %u",
              (unsigned long long)o->chunk_bytes, HOIST_PACKED_MIN_CHUNK, HOIST_PACKED_MAX_CHUNK);
    RETURN_IF(o->filter < HOIST_FILTER_AUTO || o->filter > HOIST_FILTER_EXPONENT,
              HOIST_E_INVALID_ARG, "unknown filter %d", o->filter);
    RETURN_IF(o->codec != HOIST_PACK_CODEC_ZSTD && o->codec != HOIST_PACK_CODEC_GPU,
              HOIST_E_INVALID_ARG, "unknown codec %d (expected HOIST_PACK_CODEC_ZSTD or _GPU)",
              o->codec);
    return HOIST_OK;
}

/* The output must not be one of the inputs, and must not exist unless overwriting. */
static int check_output(const hoist__table *t, const char *out, int overwrite)
{
    struct stat so;
    if (stat(out, &so) != 0) return HOIST_OK;
    for (uint32_t i = 0; i < t->nfiles; i++) {
        struct stat si;
        RETURN_IF(stat(t->files[i].path, &si) == 0 && si.st_dev == so.st_dev &&
                      si.st_ino == so.st_ino,
                  HOIST_E_INVALID_ARG, "%s: is one of the model's own files", out);
    }
    RETURN_IF(S_ISDIR(so.st_mode), HOIST_E_INVALID_ARG, "%s: is a directory", out);
    RETURN_IF(!overwrite, HOIST_E_INVALID_ARG, "%s: exists (overwrite it with --force)", out);
    return HOIST_OK;
}

static int open_inputs(packer *pk)
{
    const hoist__table *t = pk->t;
    pk->fds = hoist__malloc((t->nfiles ? t->nfiles : 1) * sizeof *pk->fds);
    RETURN_IF(!pk->fds, HOIST_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < t->nfiles; i++) pk->fds[i] = -1;
    for (uint32_t i = 0; i < t->nfiles; i++) {
        int os_errno;
        RETURN_IF_ERR(hoist__file_open(&t->files[i], O_RDONLY | O_CLOEXEC, &pk->fds[i], &os_errno));
    }
    return HOIST_OK;
}

/* The inputs are what the table describes, to the end: a file rewritten while being packed
 * would make a container of neither version. */
static int check_inputs(const hoist__table *t)
{
    for (uint32_t i = 0; i < t->nfiles; i++) {
        struct stat st;
        const hoist__file *f = &t->files[i];
        RETURN_IF(stat(f->path, &st) != 0, HOIST_E_FILE_CHANGED, "%s: gone while packing: %s",
                  f->path, strerror(errno));
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        RETURN_IF((uint64_t)st.st_size != f->size || mtime != f->mtime_ns, HOIST_E_FILE_CHANGED,
                  "%s: changed while being packed", f->path);
    }
    return HOIST_OK;
}

static int alloc_batch(packer *pk, size_t batch)
{
    pk->jobs = hoist__calloc(batch, sizeof *pk->jobs);
    RETURN_IF(!pk->jobs, HOIST_E_NOMEM, "out of memory");
    for (size_t i = 0; i < batch; i++) {
        pk->jobs[i].in = hoist__malloc(pk->o.chunk_bytes);
        pk->jobs[i].stored = hoist__malloc(pk->o.chunk_bytes); /* never more than the chunk */
        RETURN_IF(!pk->jobs[i].in || !pk->jobs[i].stored, HOIST_E_NOMEM,
                  "out of memory for %zu chunks in flight", batch);
    }
    return HOIST_OK;
}

static int pack_into(packer *pk, int fd, const char *tmp, hoist_pack_stats *st)
{
    const hoist__table *t = pk->t;
    unsigned nw = pk->o.threads;
    size_t batch = (size_t)nw * PACK_CHUNKS_PER_WORKER;
    uint64_t nchunks = 0, ilen = 0;
    for (size_t i = 0; i < t->ntensors; i++) nchunks += tensor_chunks(pk, &t->tensors[i]);
    uint8_t *index = NULL;
    pworker *ws = hoist__calloc(nw, sizeof *ws);
    writer wr = {.fd = fd, .path = tmp, .off = HOIST_PACKED_HEADER};
    wr.tensor_hash = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *wr.tensor_hash);
    pk->filters = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *pk->filters);
    pk->exphuff = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *pk->exphuff);
    int rc = ws && wr.tensor_hash && pk->filters && pk->exphuff
                 ? HOIST_OK
                 : hoist__err(HOIST_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == HOIST_OK && i < t->ntensors; i++) {
        hoist_dtype dt = t->tensors[i].dtype;
        /* codec 2 splits the planes itself, from the unfiltered bytes */
        pk->exphuff[i] = pk->o.codec == HOIST_PACK_CODEC_GPU &&
                         (dt == HOIST_DTYPE_BF16 || dt == HOIST_DTYPE_F16);
        pk->filters[i] = !hoist__filter_width(dt) || pk->exphuff[i] ? HOIST_FILTER_NONE
                         : pk->o.filter == HOIST_FILTER_AUTO        ? hoist__filter_default(dt)
                                                                    : (hoist_filter)pk->o.filter;
    }
    if (rc == HOIST_OK) rc = index_alloc(pk, nchunks, &index, &ilen);
    if (rc == HOIST_OK) {
        uint8_t *p = index + ilen - nchunks * 16;
        wr.chunk_p = p;
        rc = alloc_batch(pk, batch);
    }
    for (unsigned i = 0; rc == HOIST_OK && i < nw; i++) rc = worker_init(&ws[i], pk);
    if (rc == HOIST_OK) rc = open_inputs(pk);
    if (rc == HOIST_OK) rc = pack_chunks(pk, ws, nw, batch, &wr);
    if (rc == HOIST_OK) rc = write_index(pk, &wr, index, ilen);
    if (rc == HOIST_OK) rc = check_inputs(t);
    for (unsigned i = 0; ws && i < nw; i++) worker_free(&ws[i]);
    for (size_t i = 0; pk->jobs && i < batch; i++) {
        hoist__free(pk->jobs[i].in);
        hoist__free(pk->jobs[i].stored);
    }
    for (uint32_t i = 0; pk->fds && i < t->nfiles; i++)
        if (pk->fds[i] >= 0) close(pk->fds[i]);
    hoist__free(pk->fds);
    hoist__free(pk->jobs);
    hoist__free(pk->filters);
    hoist__free(pk->exphuff);
    hoist__free(wr.tensor_hash);
    hoist__free(index);
    hoist__free(ws);
    *st = wr.st;
    return rc;
}

int hoist_pack(const hoist_model *model, const char *out_path, const hoist_pack_options *opts,
               hoist_pack_stats *stats)
{
    RETURN_IF(!model || !out_path || !*out_path, HOIST_E_INVALID_ARG, "hoist_pack: NULL argument");
    double t0 = hoist__now();
    const hoist__table *t = &model->table;
    RETURN_IF(t->packed, HOIST_E_UNSUPPORTED, "%s: already packed", t->origin);
    static const hoist_pack_options def = HOIST_PACK_OPTIONS_DEFAULT;
    packer pk = {.t = t};
    RETURN_IF_ERR(HOIST__IN(hoist_pack_options, &pk.o, opts, &def));
    if (stats) RETURN_IF_ERR(HOIST__CHECK(hoist_pack_stats, stats));
    RETURN_IF_ERR(check_options(&pk.o));
    RETURN_IF_ERR(check_output(t, out_path, pk.o.overwrite));
    size_t n = strlen(out_path) + 16;
    char *tmp = hoist__malloc(n);
    RETURN_IF(!tmp, HOIST_E_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp-XXXXXX", out_path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        hoist__free(tmp);
        return hoist__err(HOIST_E_OPEN, "%s: cannot create a file beside it: %s", out_path,
                          strerror(e));
    }
    pthread_mutex_init(&pk.err_lock, NULL);
    hoist_pack_stats st = HOIST_PACK_STATS_INIT;
    int rc = fchmod(fd, 0644) == 0 ? HOIST_OK
                                   : hoist__err(HOIST_E_IO, "%s: chmod: %s", tmp, strerror(errno));
    if (rc == HOIST_OK) rc = pack_into(&pk, fd, tmp, &st);
    if (close(fd) != 0 && rc == HOIST_OK)
        rc = hoist__err(HOIST_E_IO, "%s: close: %s", tmp, strerror(errno));
    if (rc == HOIST_OK && rename(tmp, out_path) != 0)
        rc = hoist__err(HOIST_E_IO, "%s: cannot rename to %s: %s", tmp, out_path, strerror(errno));
    if (rc < 0) unlink(tmp);
    hoist__free(tmp);
    pthread_mutex_destroy(&pk.err_lock);
    RETURN_IF_ERR(rc);
    st.model_bytes = t->total_bytes;
    st.seconds = hoist__now() - t0;
    if (stats) HOIST__OUT(hoist_pack_stats, stats, &st);
    hoist__err_clear();
    return HOIST_OK;
}
