/* hoist_model_sum and hoist_model_verify: one pass over a model's files on worker threads.
 *
 * The work units are the manifest's chunks (a packed model: the container's chunks), handed out
 * in file order. A worker reads its unit, hashes it, and feeds each tensor piece in it to that
 * tensor's running hash. A tensor's pieces must reach its hash in order, so a worker waits until
 * the tensor has been fed up to where its piece starts; it only ever waits for units handed out
 * before its own, which never wait for it, so the pass cannot deadlock. A tensor that lies within
 * one unit is hashed in one call and needs no state; only tensors that cross a unit boundary get
 * a running state (models have a few thousand at most). */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t by value: no allocation outside the seam */
#include "formats/manifest.h"
#include "formats/packed.h"
#include "core/abi.h"
#include "core/core.h"
#include "core/io.h"
#include "loader/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define NM "%.200s"
#define ENGINE_MAX_THREADS 16u
#define NO_STATE UINT32_MAX

enum { UNIT_OK = 0, UNIT_MISMATCH = 1 };

typedef struct engine {
    const hoist__table *t;
    uint64_t cb;         /* manifest chunk bytes (0 for a packed model) */
    uint64_t nunits;
    uint64_t *ufirst;    /* per file: its first chunk (manifest chunk number) */
    uint64_t *ustart;    /* per file + 1: index of its first unit */
    uint64_t *lo, *hi;   /* per file: the span of its tensor bytes */
    int *fds;
    _Atomic uint64_t next;

    /* results */
    uint64_t *unit_hash;  /* per unit (safetensors) */
    uint8_t *unit_bad;    /* per unit (packed: the chunk failed to decode or check) */
    uint64_t *tensor_hash;
    uint8_t *tensor_bad;  /* a chunk of it failed: its hash could not be computed */

    /* ordered tensor hashing */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t *done;       /* per tensor: bytes fed so far */
    uint32_t *state_of;   /* per tensor: its running state, or NO_STATE */
    XXH3_state_t *states;

    /* the first failure: I/O errors stop the pass; a packed chunk that fails is recorded */
    _Atomic int failed;
    int err_status;
    char err_msg[1024];
    uint64_t first_bad_unit;
    int bad_status;
    char bad_msg[1024];
    hoist__progress prog;     /* tensor bytes hashed */
} engine;

typedef struct eworker {
    engine *e;
    pthread_t thread;
    int started;
    uint8_t *buf, *out;
    hoist__decoder dec;
    XXH3_state_t hs;
} eworker;

/* ---- ordered tensor hashing --------------------------------------------------------------- */

static void fail(engine *e, int status)
{
    pthread_mutex_lock(&e->lock);
    if (!e->err_status) {
        e->err_status = status;
        snprintf(e->err_msg, sizeof e->err_msg, "%s", hoist_last_error());
    }
    atomic_store(&e->failed, 1);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Feeds bytes [off, off + len) of tensor ti (data NULL: they could not be produced). */
static int feed(engine *e, size_t ti, uint64_t off, const uint8_t *data, uint64_t len)
{
    const hoist__tensor *x = &e->t->tensors[ti];
    if (off == 0 && len == x->nbytes) { /* the whole tensor: no one else touches it */
        if (data) e->tensor_hash[ti] = XXH3_64bits(data, len);
        else e->tensor_bad[ti] = 1;
        return HOIST_OK;
    }
    pthread_mutex_lock(&e->lock);
    while (e->done[ti] != off && !atomic_load(&e->failed)) pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
    if (atomic_load(&e->failed)) return HOIST_E_INTERNAL; /* the error is already recorded */
    XXH3_state_t *st = &e->states[e->state_of[ti]];
    if (off == 0) XXH3_64bits_reset(st);
    if (data)
        XXH3_64bits_update(st, data, len);
    else
        e->tensor_bad[ti] = 1;
    if (off + len == x->nbytes) e->tensor_hash[ti] = XXH3_64bits_digest(st);
    pthread_mutex_lock(&e->lock);
    e->done[ti] = off + len;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return HOIST_OK;
}

/* ---- units -------------------------------------------------------------------------------- */

/* The first tensor (table order) with bytes at or after offset `at` of file f. */
static size_t first_tensor(const hoist__table *t, uint32_t f, uint64_t at)
{
    size_t lo = 0, hi = t->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const hoist__tensor *m = &t->tensors[mid];
        if (m->file < f || (m->file == f && m->offset + m->nbytes <= at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A manifest chunk: its tensor bytes, hashed in file order. */
static int file_unit(eworker *w, uint64_t u)
{
    engine *e = w->e;
    const hoist__table *t = e->t;
    uint32_t f = 0;
    while (u >= e->ustart[f + 1]) f++;
    uint64_t k = e->ufirst[f] + (u - e->ustart[f]);
    uint64_t a = k * e->cb > e->lo[f] ? k * e->cb : e->lo[f];
    uint64_t b = (k + 1) * e->cb < e->hi[f] ? (k + 1) * e->cb : e->hi[f];
    const hoist__file *file = &t->files[f];
    RETURN_IF_ERR(hoist__io_read_full(e->fds[f], file->path, w->buf, a, b));
    XXH3_64bits_reset(&w->hs);
    for (size_t i = first_tensor(t, f, a); i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        if (x->file != f || x->offset >= b) break;
        if (!x->nbytes) continue;
        uint64_t pa = x->offset > a ? x->offset : a;
        uint64_t pb = x->offset + x->nbytes < b ? x->offset + x->nbytes : b;
        XXH3_64bits_update(&w->hs, w->buf + (pa - a), pb - pa);
        RETURN_IF_ERR(feed(e, i, pa - x->offset, w->buf + (pa - a), pb - pa));
    }
    e->unit_hash[u] = XXH3_64bits_digest(&w->hs);
    hoist__progress_add(&e->prog, b > a ? b - a : 0);
    return HOIST_OK;
}

/* Records a packed chunk that failed to decode or check; the lowest one's message is kept. */
static void record_bad_chunk(engine *e, uint64_t c, int status)
{
    pthread_mutex_lock(&e->lock);
    e->unit_bad[c] = UNIT_MISMATCH;
    if (c < e->first_bad_unit) {
        e->first_bad_unit = c;
        e->bad_status = status;
        snprintf(e->bad_msg, sizeof e->bad_msg, "%s", hoist_last_error());
    }
    pthread_mutex_unlock(&e->lock);
}

/* A packed chunk: decoded (which checks its hash), then fed to its tensor. */
static int packed_unit(eworker *w, uint64_t c)
{
    engine *e = w->e;
    const hoist__table *t = e->t;
    const hoist__chunk *ch = &t->packed->chunks[c];
    RETURN_IF_ERR(hoist__io_read_full(e->fds[0], t->files[0].path, w->buf, ch->file_off,
                                         ch->file_off + ch->stored));
    int rc = hoist__packed_decode(t, &w->dec, c, w->buf, w->out, NULL, NULL);
    if (rc == HOIST_E_INTEGRITY || rc == HOIST_E_DECODE)
        record_bad_chunk(e, c, rc);
    else if (rc < 0)
        return rc;
    const hoist__tensor *x = &t->tensors[ch->tensor];
    hoist__progress_add(&e->prog, ch->len);
    return feed(e, ch->tensor, ch->vofs - x->offset, rc == HOIST_OK ? w->out : NULL, ch->len);
}

static void *worker_main(void *arg)
{
    eworker *w = arg;
    engine *e = w->e;
    while (!atomic_load(&e->failed)) {
        uint64_t u = atomic_fetch_add(&e->next, 1);
        if (u >= e->nunits) break;
        int rc = e->t->packed ? packed_unit(w, u) : file_unit(w, u);
        if (rc < 0) {
            if (!atomic_load(&e->failed)) fail(e, rc);
            break;
        }
    }
    return NULL;
}

/* ---- setup and teardown ------------------------------------------------------------------- */

static int plan_units(engine *e)
{
    const hoist__table *t = e->t;
    uint32_t nf = t->nfiles;
    e->ufirst = hoist__calloc(nf + 1, sizeof *e->ufirst);
    e->ustart = hoist__calloc(nf + 2, sizeof *e->ustart);
    e->lo = hoist__calloc(nf + 1, sizeof *e->lo);
    e->hi = hoist__calloc(nf + 1, sizeof *e->hi);
    RETURN_IF(!e->ufirst || !e->ustart || !e->lo || !e->hi, HOIST_E_NOMEM, "out of memory");
    for (uint32_t f = 0; f < nf; f++) {
        uint64_t n = 0;
        if (t->packed) {
            n = t->packed->nchunks;
        } else {
            hoist__manifest_chunk_range(t, f, e->cb, &e->ufirst[f], &n);
            e->lo[f] = UINT64_MAX;
            for (size_t i = 0; i < t->ntensors; i++) {
                const hoist__tensor *x = &t->tensors[i];
                if (x->file != f || !x->nbytes) continue;
                if (x->offset < e->lo[f]) e->lo[f] = x->offset;
                if (x->offset + x->nbytes > e->hi[f]) e->hi[f] = x->offset + x->nbytes;
            }
        }
        e->ustart[f + 1] = e->ustart[f] + n;
    }
    e->nunits = e->ustart[nf];
    return HOIST_OK;
}

/* Running states for the tensors that cross a unit boundary. */
static int plan_states(engine *e)
{
    const hoist__table *t = e->t;
    size_t n = t->ntensors ? t->ntensors : 1;
    e->done = hoist__calloc(n, sizeof *e->done);
    e->state_of = hoist__malloc(n * sizeof *e->state_of);
    e->tensor_hash = hoist__calloc(n, sizeof *e->tensor_hash);
    e->tensor_bad = hoist__calloc(n, 1);
    RETURN_IF(!e->done || !e->state_of || !e->tensor_hash || !e->tensor_bad, HOIST_E_NOMEM,
              "out of memory for %zu tensors", n);
    uint32_t ns = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        uint64_t unit = t->packed ? t->packed->chunk_bytes : e->cb;
        bool crosses = t->packed ? x->nbytes > unit
                                 : x->nbytes && x->offset / unit != (x->offset + x->nbytes - 1) / unit;
        e->state_of[i] = crosses ? ns++ : NO_STATE;
        if (!x->nbytes) e->tensor_hash[i] = XXH3_64bits(NULL, 0);
    }
    e->states = hoist__memalign(64, (ns ? ns : 1) * sizeof *e->states);
    RETURN_IF(!e->states, HOIST_E_NOMEM, "out of memory for %u running hashes", ns);
    return HOIST_OK;
}

static int open_files(engine *e)
{
    const hoist__table *t = e->t;
    e->fds = hoist__malloc((t->nfiles ? t->nfiles : 1) * sizeof *e->fds);
    RETURN_IF(!e->fds, HOIST_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < t->nfiles; i++) e->fds[i] = -1;
    for (uint32_t i = 0; i < t->nfiles; i++) {
        int os_errno;
        RETURN_IF_ERR(hoist__file_open(&t->files[i], O_RDONLY | O_CLOEXEC, &e->fds[i], &os_errno));
        (void)posix_fadvise(e->fds[i], 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    return HOIST_OK;
}

static void engine_free(engine *e)
{
    for (uint32_t i = 0; e->fds && i < e->t->nfiles; i++)
        if (e->fds[i] >= 0) close(e->fds[i]);
    hoist__free(e->fds);
    hoist__free(e->ufirst);
    hoist__free(e->ustart);
    hoist__free(e->lo);
    hoist__free(e->hi);
    hoist__free(e->unit_hash);
    hoist__free(e->unit_bad);
    hoist__free(e->tensor_hash);
    hoist__free(e->tensor_bad);
    hoist__free(e->done);
    hoist__free(e->state_of);
    hoist__free(e->states);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
}

static unsigned thread_count(unsigned asked, uint64_t units)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = asked ? asked : cpus > 0 ? (unsigned)cpus : 1;
    if (n > ENGINE_MAX_THREADS) n = ENGINE_MAX_THREADS;
    if (n > units) n = units ? (unsigned)units : 1;
    return n;
}

static int run_workers(engine *e, unsigned n)
{
    eworker *ws = hoist__calloc(n, sizeof *ws);
    RETURN_IF(!ws, HOIST_E_NOMEM, "out of memory for %u workers", n);
    uint64_t bytes = e->t->packed ? e->t->packed->chunk_bytes : e->cb;
    int rc = HOIST_OK;
    for (unsigned i = 0; rc == HOIST_OK && i < n; i++) {
        ws[i].e = e;
        ws[i].buf = hoist__malloc(bytes);
        if (!ws[i].buf) rc = hoist__err(HOIST_E_NOMEM, "out of memory for read buffers");
        if (rc == HOIST_OK && e->t->packed) {
            ws[i].out = hoist__malloc(bytes);
            rc = ws[i].out ? hoist__decoder_init(&ws[i].dec, bytes)
                           : hoist__err(HOIST_E_NOMEM, "out of memory for decode buffers");
        }
    }
    for (unsigned i = 0; rc == HOIST_OK && i < n; i++) {
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            rc = hoist__err(HOIST_E_NOMEM, "cannot start worker %u", i);
            fail(e, rc);
            break;
        }
        ws[i].started = 1;
    }
    for (unsigned i = 0; i < n; i++) {
        if (ws[i].started) hoist__progress_join(&e->prog, ws[i].thread);
        hoist__free(ws[i].buf);
        hoist__free(ws[i].out);
        hoist__decoder_free(&ws[i].dec);
    }
    hoist__free(ws);
    if (e->err_status) return hoist__err(e->err_status, "%s", e->err_msg);
    if (rc == HOIST_OK) hoist__progress_finish(&e->prog);
    return rc;
}

/* Tensor bytes the units cover: what progress counts to. */
static uint64_t engine_total(const engine *e)
{
    const hoist__table *t = e->t;
    uint64_t total = 0;
    if (t->packed) {
        for (uint64_t c = 0; c < t->packed->nchunks; c++) total += t->packed->chunks[c].len;
    } else {
        for (uint32_t f = 0; f < t->nfiles; f++)
            if (e->hi[f] > e->lo[f]) total += e->hi[f] - e->lo[f];
    }
    return total;
}

/* Hashes every unit and tensor of t (cb: the manifest chunk size; ignored for a packed model),
 * reporting progress to o's callback. */
static int engine_run(engine *e, const hoist__table *t, uint64_t cb, const hoist_sum_options *o)
{
    unsigned threads = o->threads;
    memset(e, 0, sizeof *e);
    e->t = t;
    e->cb = cb;
    e->first_bad_unit = UINT64_MAX;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    RETURN_IF_ERR(plan_units(e));
    RETURN_IF_ERR(plan_states(e));
    e->unit_hash = hoist__calloc(e->nunits ? e->nunits : 1, sizeof *e->unit_hash);
    e->unit_bad = hoist__calloc(e->nunits ? e->nunits : 1, 1);
    RETURN_IF(!e->unit_hash || !e->unit_bad, HOIST_E_NOMEM, "out of memory for %llu chunks",
              (unsigned long long)e->nunits);
    RETURN_IF_ERR(open_files(e));
    hoist__progress_start(&e->prog, o->progress, o->progress_user, engine_total(e));
    return run_workers(e, thread_count(threads, e->nunits));
}

/* Hashes bytes [0, n) of table file f. */
static int hash_prefix(const hoist__file *f, uint64_t n, uint64_t *out)
{
    const char *path = f->path;
    int fd, os_errno;
    RETURN_IF_ERR(hoist__file_open(f, O_RDONLY | O_CLOEXEC, &fd, &os_errno));
    uint8_t *buf = hoist__malloc(1u << 20);
    XXH3_state_t hs;
    XXH3_64bits_reset(&hs);
    int rc = buf ? HOIST_OK : hoist__err(HOIST_E_NOMEM, "out of memory");
    for (uint64_t off = 0; rc == HOIST_OK && off < n; off += 1u << 20) {
        uint64_t len = n - off < (1u << 20) ? n - off : (1u << 20);
        rc = hoist__io_read_full(fd, path, buf, off, off + len);
        if (rc == HOIST_OK) XXH3_64bits_update(&hs, buf, len);
    }
    *out = XXH3_64bits_digest(&hs);
    hoist__free(buf);
    close(fd);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------- */

static const hoist_sum_options default_options = HOIST_SUM_OPTIONS_DEFAULT;

const char *hoist_model_manifest_path(const hoist_model *m) { return m ? m->table.manifest : NULL; }

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Moves the engine's results into a manifest of t. */
static int build_manifest(const hoist__table *t, engine *e, uint64_t cb, hoist__manifest *m)
{
    memset(m, 0, sizeof *m);
    m->chunk_bytes = cb;
    m->files = hoist__calloc(t->nfiles + 1, sizeof *m->files);
    m->tensors = hoist__calloc(t->ntensors + 1, sizeof *m->tensors);
    RETURN_IF(!m->files || !m->tensors, HOIST_E_NOMEM, "out of memory");
    for (uint32_t f = 0; f < t->nfiles; f++) {
        hoist__manifest_file *mf = &m->files[f];
        m->nfiles = f + 1;
        mf->name = hoist__strdup(base_name(t->files[f].path));
        mf->size = t->files[f].size;
        mf->header_bytes = t->files[f].data_start;
        mf->first_chunk = e->ufirst[f];
        mf->nchunks = e->ustart[f + 1] - e->ustart[f];
        mf->chunks = hoist__malloc((mf->nchunks ? mf->nchunks : 1) * sizeof *mf->chunks);
        RETURN_IF(!mf->name || !mf->chunks, HOIST_E_NOMEM, "out of memory");
        memcpy(mf->chunks, e->unit_hash + e->ustart[f], mf->nchunks * sizeof *mf->chunks);
        RETURN_IF_ERR(hash_prefix(&t->files[f], mf->header_bytes, &mf->header_xxh3));
    }
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        m->ntensors = i + 1;
        m->tensors[i] = (hoist__manifest_tensor){.name = hoist__strdup(x->name), .file = x->file,
                                                 .offset = x->offset, .nbytes = x->nbytes,
                                                 .xxh3 = e->tensor_hash[i]};
        RETURN_IF(!m->tensors[i].name, HOIST_E_NOMEM, "out of memory");
    }
    return HOIST_OK;
}

int hoist_model_sum(const hoist_model *model, const hoist_sum_options *opts)
{
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_model_sum: model is NULL");
    const hoist__table *t = &model->table;
    RETURN_IF(t->packed, HOIST_E_UNSUPPORTED,
              "%s: a packed model carries its own hashes (check it with hoist verify)", t->origin);
    hoist_sum_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_sum_options, &o, opts, &default_options));
    uint64_t cb = o.chunk_bytes ? o.chunk_bytes : HOIST_MANIFEST_DEFAULT_CHUNK;
    RETURN_IF(cb < HOIST_MANIFEST_MIN_CHUNK || cb > HOIST_MANIFEST_MAX_CHUNK || (cb & (cb - 1)),
              HOIST_E_INVALID_ARG, "chunk size %llu is not a power of two from %u to %u",
              (unsigned long long)cb, HOIST_MANIFEST_MIN_CHUNK, HOIST_MANIFEST_MAX_CHUNK);
    engine e;
    hoist__manifest m = {0};
    int rc = engine_run(&e, t, cb, &o);
    if (rc == HOIST_OK) rc = build_manifest(t, &e, cb, &m);
    if (rc == HOIST_OK) rc = hoist__manifest_write(o.manifest ? o.manifest : t->manifest, &m);
    hoist__manifest_free(&m);
    engine_free(&e);
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}

/* Compares the engine's results with the manifest; names the first difference, counts all. A
 * chunk that differs is named with the tensor in it whose own hash differs too (the bytes that
 * changed are that tensor's); a tensor whose hash differs while every chunk matches is named with
 * its file. */
static int compare(const hoist__table *t, const engine *e, const hoist__manifest *m,
                   const char *path)
{
    uint64_t bad_chunks = 0, bad_tensors = 0;
    char first[1024] = "";
    /* the manifest's hash of each table tensor (hoist__manifest_match paired them one to one) */
    uint64_t *want = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *want);
    RETURN_IF(!want, HOIST_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->ntensors; i++) {
        long ti = hoist__table_find(t, m->tensors[i].name);
        if (ti >= 0) want[ti] = m->tensors[i].xxh3;
    }
    size_t first_tensor_bad = SIZE_MAX;
    for (size_t i = 0; i < t->ntensors; i++) {
        if (e->tensor_hash[i] == want[i]) continue;
        if (!bad_tensors++) first_tensor_bad = i;
    }
    for (uint32_t f = 0; f < t->nfiles; f++) {
        const hoist__manifest_file *mf = &m->files[f];
        for (uint64_t k = 0; k < mf->nchunks; k++) {
            uint64_t got = e->unit_hash[e->ustart[f] + k];
            if (got == mf->chunks[k]) continue;
            if (bad_chunks++) continue; /* the first one is named, the others counted */
            uint64_t lo = (mf->first_chunk + k) * m->chunk_bytes, hi = lo + m->chunk_bytes;
            size_t ti = first_tensor(t, f, lo), bad = SIZE_MAX, last = ti;
            for (size_t i = ti; i < t->ntensors && t->tensors[i].file == f &&
                                t->tensors[i].offset < hi;
                 i++) {
                if (!t->tensors[i].nbytes) continue;
                last = i;
                if (bad == SIZE_MAX && e->tensor_hash[i] != want[i]) bad = i;
            }
            if (bad != SIZE_MAX)
                snprintf(first, sizeof first,
                         "%s: tensor '" NM "' differs from the manifest %s in chunk %llu (bytes "
                         "%llu..%llu of the file): the chunk hashes to %016llx, the manifest "
                         "recorded %016llx; the tensor hashes to %016llx, the manifest recorded "
                         "%016llx",
                         t->files[f].path, t->tensors[bad].name, path,
                         (unsigned long long)(mf->first_chunk + k), (unsigned long long)lo,
                         (unsigned long long)hi, (unsigned long long)got,
                         (unsigned long long)mf->chunks[k],
                         (unsigned long long)e->tensor_hash[bad], (unsigned long long)want[bad]);
            else /* every tensor in it as recorded: the manifest's chunk hash is what is wrong */
                snprintf(first, sizeof first,
                         "%s: chunk %llu (bytes %llu..%llu of the file, tensors '" NM "' to '" NM
                         "') hashes to %016llx, the manifest %s recorded %016llx, though each of "
                         "its tensors hashes as recorded",
                         t->files[f].path, (unsigned long long)(mf->first_chunk + k),
                         (unsigned long long)lo, (unsigned long long)hi,
                         ti < t->ntensors ? t->tensors[ti].name : "?",
                         last < t->ntensors ? t->tensors[last].name : "?",
                         (unsigned long long)got, path, (unsigned long long)mf->chunks[k]);
        }
    }
    if (!bad_chunks && bad_tensors) {
        const hoist__tensor *x = &t->tensors[first_tensor_bad];
        snprintf(first, sizeof first,
                 "%s: tensor '" NM "' (bytes %llu..%llu of the file) hashes to %016llx, the "
                 "manifest %s recorded %016llx, though every chunk of it matches",
                 t->files[x->file].path, x->name, (unsigned long long)x->offset,
                 (unsigned long long)(x->offset + x->nbytes),
                 (unsigned long long)e->tensor_hash[first_tensor_bad], path,
                 (unsigned long long)want[first_tensor_bad]);
    }
    hoist__free(want);
    if (!bad_chunks && !bad_tensors) return HOIST_OK;
    return hoist__err(HOIST_E_INTEGRITY, "%s; %llu chunks and %llu tensors differ in all", first,
                      (unsigned long long)bad_chunks, (unsigned long long)bad_tensors);
}

static int compare_packed(const hoist__table *t, const engine *e)
{
    uint64_t bad_chunks = 0, bad_tensors = 0;
    size_t first_tensor_bad = SIZE_MAX;
    for (uint64_t c = 0; c < e->nunits; c++) bad_chunks += e->unit_bad[c];
    for (size_t i = 0; i < t->ntensors; i++) {
        if (!e->tensor_bad[i] && e->tensor_hash[i] == t->packed->tensors[i].xxh3) continue;
        if (!bad_tensors++) first_tensor_bad = i;
    }
    if (!bad_chunks && !bad_tensors) return HOIST_OK;
    if (bad_chunks)
        return hoist__err(e->bad_status, "%s; %llu chunks in %llu tensors fail in all",
                          e->bad_msg, (unsigned long long)bad_chunks,
                          (unsigned long long)bad_tensors);
    return hoist__err(HOIST_E_INTEGRITY,
                      "%s: tensor '" NM "' hashes to %016llx, the container recorded %016llx "
                      "(every chunk checked); %llu tensors differ",
                      t->files[0].path, t->tensors[first_tensor_bad].name,
                      (unsigned long long)e->tensor_hash[first_tensor_bad],
                      (unsigned long long)t->packed->tensors[first_tensor_bad].xxh3,
                      (unsigned long long)bad_tensors);
}

static int verify_headers(const hoist__table *t, const hoist__manifest *m, const char *path)
{
    for (uint32_t f = 0; f < t->nfiles; f++) {
        uint64_t h;
        RETURN_IF_ERR(hash_prefix(&t->files[f], t->files[f].data_start, &h));
        RETURN_IF(h != m->files[f].header_xxh3, HOIST_E_INTEGRITY,
                  "%s: its header (bytes 0..%llu) differs from the manifest %s", t->files[f].path,
                  (unsigned long long)t->files[f].data_start, path);
    }
    return HOIST_OK;
}

int hoist_model_verify(const hoist_model *model, const hoist_sum_options *opts)
{
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_model_verify: model is NULL");
    const hoist__table *t = &model->table;
    hoist_sum_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_sum_options, &o, opts, &default_options));
    engine e;
    int rc;
    if (t->packed) {
        rc = engine_run(&e, t, 0, &o);
        if (rc == HOIST_OK) rc = compare_packed(t, &e);
    } else {
        const char *path = o.manifest ? o.manifest : t->manifest;
        hoist__manifest m;
        memset(&e, 0, sizeof e);
        pthread_mutex_init(&e.lock, NULL);
        pthread_cond_init(&e.cond, NULL);
        rc = hoist__manifest_read(path, &m);
        if (rc == HOIST_OK) {
            rc = hoist__manifest_match(&m, t, path);
            if (rc == HOIST_OK) rc = verify_headers(t, &m, path);
            if (rc == HOIST_OK) {
                engine_free(&e);
                rc = engine_run(&e, t, m.chunk_bytes, &o);
            }
            if (rc == HOIST_OK) rc = compare(t, &e, &m, path);
            hoist__manifest_free(&m);
        }
    }
    engine_free(&e);
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}
