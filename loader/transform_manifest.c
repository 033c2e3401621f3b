/* The manifest check stage (HOIST_VERIFY_MANIFEST): every byte the source produced is hashed on
 * its worker, in place, before it is copied, against the manifest's chunk hashes, and then fed to
 * its tensor's hash, which is compared with the manifest's when the tensor's last byte has passed.
 *
 * The windows are multiples of the manifest's chunk size and the plan cuts them at multiples of
 * the window size, so a window holds every tensor byte of the chunks it touches: each chunk is
 * hashed whole by one worker with no coordination. A tensor may cross windows: its bytes reach its
 * hash in order as loader/tensor_hash.h describes. The headers, which no window reads, are
 * hashed once before the workers start. */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t by value: no allocation outside the seam */
#include "formats/manifest.h"
#include "core/io.h"
#include "loader/tensor_hash.h"
#include "loader/transform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define NM "%.200s"
#define HEADER_BUF (1u << 20)

typedef struct mstate {
    hoist__load *ld;
    char *path;
    hoist__manifest m;
    XXH3_state_t *hs; /* per worker */
    unsigned nworkers;
    uint64_t taken; /* counted against the budget */
    uint64_t *want;   /* per table tensor: the manifest's hash of it */
    char *source;     /* "the manifest PATH", for messages */
    hoist__tensor_hashes th;
} mstate;

static void manifest_close(void *vs)
{
    mstate *s = vs;
    if (!s) return;
    hoist__tensor_hashes_free(&s->th);
    hoist__manifest_free(&s->m);
    hoist__free(s->hs);
    hoist__free(s->want);
    hoist__free(s->source);
    hoist__free(s->path);
    hoist__budget_give(&s->ld->budget, s->taken);
    hoist__free(s);
}

/* Bytes [0, data_start) of file f hash as the manifest recorded, read through buf. */
static int check_header(mstate *s, uint32_t f, uint8_t *buf, uint64_t buf_bytes)
{
    const hoist__file *file = &s->ld->table->files[f];
    int fd, os_errno;
    RETURN_IF_ERR(hoist__file_open(file, O_RDONLY | O_CLOEXEC, &fd, &os_errno));
    XXH3_state_t hs;
    XXH3_64bits_reset(&hs);
    int rc = HOIST_OK;
    for (uint64_t off = 0; rc == HOIST_OK && off < file->data_start; off += buf_bytes) {
        uint64_t n = file->data_start - off < buf_bytes ? file->data_start - off : buf_bytes;
        int64_t got = hoist__pread_full(fd, buf, n, off);
        if (got != (int64_t)n)
            rc = hoist__err(got < 0 ? HOIST_E_IO : HOIST_E_FILE_CHANGED,
                            "%s: reading its header: %s", file->path,
                            got < 0 ? strerror((int)-got) : "the file shrank");
        else
            XXH3_64bits_update(&hs, buf, n);
    }
    close(fd);
    RETURN_IF_ERR(rc);
    uint64_t want = s->m.files[f].header_xxh3, got = XXH3_64bits_digest(&hs);
    RETURN_IF(got != want, HOIST_E_INTEGRITY,
              "%s: its header (bytes 0..%llu) differs from the manifest %s: it hashes to %016llx, "
              "the manifest recorded %016llx",
              file->path, (unsigned long long)file->data_start, s->path,
              (unsigned long long)got, (unsigned long long)want);
    return HOIST_OK;
}

/* The manifest's hash of every table tensor, by table index (hoist__manifest_match has paired
 * them one to one); a tensor without bytes is checked here, since no window holds it. */
static int tensor_records(mstate *s)
{
    const hoist__table *t = s->ld->table;
    s->want = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *s->want);
    size_t n = strlen(s->path) + 32;
    s->source = hoist__malloc(n);
    RETURN_IF(!s->want || !s->source, HOIST_E_NOMEM, "out of memory");
    snprintf(s->source, n, "the manifest %s", s->path);
    for (size_t i = 0; i < s->m.ntensors; i++) {
        long ti = hoist__table_find(t, s->m.tensors[i].name);
        RETURN_IF(ti < 0, HOIST_E_INTERNAL, "%s: tensor '" NM "' vanished", s->path,
                  s->m.tensors[i].name);
        s->want[ti] = s->m.tensors[i].xxh3;
    }
    RETURN_IF_ERR(hoist__tensor_hashes_init(&s->th, s->ld, s->want, s->source, 1));
    uint64_t empty = XXH3_64bits(NULL, 0);
    for (size_t i = 0; i < t->ntensors; i++)
        if (!t->tensors[i].nbytes) RETURN_IF_ERR(hoist__tensor_hashes_check(&s->th, i, empty));
    return HOIST_OK;
}

static int manifest_load(mstate *s)
{
    hoist__load *ld = s->ld;
    RETURN_IF_ERR(hoist__manifest_read(s->path, &s->m));
    RETURN_IF_ERR(hoist__manifest_match(&s->m, ld->table, s->path));
    uint64_t fixed = s->m.ntensors * sizeof *s->m.tensors + s->m.nfiles * sizeof *s->m.files;
    for (uint32_t i = 0; i < s->m.nfiles; i++) fixed += s->m.files[i].nchunks * 8;
    fixed += ld->table->ntensors * sizeof *s->want +
             hoist__tensor_hashes_bytes(ld->table->ntensors);
    /* headers are usually a few KiB: a buffer of the largest, up to HEADER_BUF */
    uint64_t hb = 1;
    for (uint32_t f = 0; f < ld->table->nfiles; f++)
        if (ld->table->files[f].data_start > hb) hb = ld->table->files[f].data_start;
    if (hb > HEADER_BUF) hb = HEADER_BUF;
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, fixed + hb, "the manifest"));
    s->taken = fixed + hb;
    uint8_t *buf = hoist__malloc(hb);
    RETURN_IF(!buf, HOIST_E_NOMEM, "out of memory");
    int rc = tensor_records(s);
    for (uint32_t f = 0; rc == HOIST_OK && f < ld->table->nfiles; f++)
        rc = check_header(s, f, buf, hb);
    hoist__free(buf);
    hoist__budget_give(&ld->budget, hb);
    s->taken = fixed;
    ld->transform_needs.window_quantum = s->m.chunk_bytes;
    ld->transform_needs.worker_bytes = sizeof(XXH3_state_t) + hoist__tensor_hashes_state_bytes();
    ld->transform_needs.fixed_bytes = fixed + hoist__tensor_hashes_state_bytes();
    return rc;
}

static int manifest_prepare(hoist__load *ld, void **out)
{
    mstate *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->ld = ld;
    s->path = hoist__strdup(ld->opts.manifest ? ld->opts.manifest : ld->table->manifest);
    int rc = s->path ? manifest_load(s) : hoist__err(HOIST_E_NOMEM, "out of memory");
    if (rc < 0) {
        manifest_close(s);
        return rc;
    }
    *out = s;
    return HOIST_OK;
}

static int manifest_start(void *vs, unsigned workers)
{
    mstate *s = vs;
    s->hs = hoist__memalign(64, (workers ? workers : 1) * sizeof *s->hs);
    RETURN_IF(!s->hs, HOIST_E_NOMEM, "out of memory for %u hash states", workers);
    s->nworkers = workers;
    return hoist__tensor_hashes_start(&s->th, workers);
}

/* ---- one window --------------------------------------------------------------------------- */

typedef struct wctx {
    mstate *s;
    XXH3_state_t *hs;
    const hoist__window *w;
    const uint8_t *in;
    uint64_t chunk; /* the chunk being hashed; UINT64_MAX before the first */
} wctx;

/* The first and last tensor (by offset) with bytes in [lo, hi) of file f, and how many there are. */
static size_t chunk_tensors(const hoist__table *t, uint32_t f, uint64_t lo, uint64_t hi,
                            const hoist__tensor **first, const hoist__tensor **last)
{
    size_t n = 0;
    *first = *last = NULL;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        if (x->file != f || !x->nbytes || x->offset >= hi || x->offset + x->nbytes <= lo) continue;
        if (!n++ || x->offset < (*first)->offset) *first = x;
        if (!*last || x->offset > (*last)->offset) *last = x;
    }
    return n;
}

static int finish_chunk(wctx *c)
{
    const hoist__table *t = c->s->ld->table;
    const hoist__manifest_file *mf = &c->s->m.files[c->w->file];
    uint64_t k = c->chunk, got = XXH3_64bits_digest(c->hs);
    RETURN_IF(k < mf->first_chunk || k - mf->first_chunk >= mf->nchunks, HOIST_E_INTERNAL,
              "%s: chunk %llu is outside the manifest's %llu..+%llu", t->files[c->w->file].path,
              (unsigned long long)k, (unsigned long long)mf->first_chunk,
              (unsigned long long)mf->nchunks);
    uint64_t want = mf->chunks[k - mf->first_chunk];
    if (got == want) return HOIST_OK;
    uint64_t cb = c->s->m.chunk_bytes, lo = k * cb, hi = lo + cb;
    /* a chunk's hash cannot say which of its tensors changed: name them all, first to last */
    const hoist__tensor *x, *y;
    size_t n = chunk_tensors(t, c->w->file, lo, hi, &x, &y);
    char which[2 * 200 + 64]; /* two names of at most NM, and the words around them */
    if (n > 1)
        snprintf(which, sizeof which, "one of %zu tensors, '" NM "' to '" NM "',", n, x->name,
                 y->name);
    else
        snprintf(which, sizeof which, "tensor '" NM "'", x ? x->name : "?");
    return hoist__err(HOIST_E_INTEGRITY,
                      "%s: %s differs from the manifest %s in chunk %llu (bytes %llu..%llu of "
                      "the file): its bytes hash to %016llx, the manifest recorded %016llx",
                      t->files[c->w->file].path, which, c->s->path,
                      (unsigned long long)k, (unsigned long long)lo, (unsigned long long)hi,
                      (unsigned long long)got, (unsigned long long)want);
}

/* Feeds one piece of the window to the chunk hashes, closing each chunk it leaves. */
static int hash_piece(void *vctx, const hoist__extent *e, uint64_t src_off, uint64_t dst_off,
                      uint64_t len)
{
    (void)e;
    (void)dst_off;
    wctx *c = vctx;
    uint64_t cb = c->s->m.chunk_bytes;
    uint64_t a = c->w->lo + src_off, end = a + len;
    while (a < end) {
        uint64_t k = a / cb, stop = (k + 1) * cb < end ? (k + 1) * cb : end;
        if (k != c->chunk) {
            if (c->chunk != UINT64_MAX) RETURN_IF_ERR(finish_chunk(c));
            XXH3_64bits_reset(c->hs);
            c->chunk = k;
        }
        XXH3_64bits_update(c->hs, c->in + (a - c->w->lo), stop - a);
        a = stop;
    }
    return HOIST_OK;
}

/* Feeds one piece of the window to its tensors' hashes. */
static int tensor_piece(void *vctx, const hoist__extent *e, uint64_t src_off, uint64_t dst_off,
                        uint64_t len)
{
    (void)e;
    (void)dst_off;
    wctx *c = vctx;
    return hoist__tensor_hashes_feed_file(&c->s->th, c->w->file, c->w->lo + src_off,
                                          c->in + src_off, len);
}

static int manifest_window(void *vs, int worker, size_t index, const uint8_t *in, uint8_t *out)
{
    (void)out;
    mstate *s = vs;
    hoist__load *ld = s->ld;
    RETURN_IF(worker < 0 || (unsigned)worker >= s->nworkers, HOIST_E_INTERNAL,
              "hash state for worker %d of %u", worker, s->nworkers);
    double t0 = hoist__now();
    wctx c = {.s = s, .hs = &s->hs[worker], .w = &ld->plan.windows[index], .in = in,
              .chunk = UINT64_MAX};
    int rc = hoist__window_pieces(&ld->plan, c.w, hash_piece, &c);
    if (rc == HOIST_OK && c.chunk != UINT64_MAX) rc = finish_chunk(&c);
    /* the chunks first: a byte that differs is then named by its chunk, and a tensor hash that
     * differs with every chunk matching is the manifest contradicting itself */
    if (rc == HOIST_OK) rc = hoist__window_pieces(&ld->plan, c.w, tensor_piece, &c);
    atomic_fetch_add(&ld->verify_ns, (uint64_t)((hoist__now() - t0) * 1e9));
    return rc;
}

const hoist__transform_ops hoist__transform_manifest = {
    .name = "manifest check",
    .decodes = 0,
    .prepare = manifest_prepare,
    .start = manifest_start,
    .window = manifest_window,
    .close = manifest_close,
};
