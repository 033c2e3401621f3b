/* The packed container (layout in packed.h): parsing its header and index, and decoding one
 * chunk. The index is bounded before it is read, hashed before it is parsed, and every count in
 * it is bounded by the bytes left before anything is allocated from it. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createDCtx_advanced: zstd allocates through hoist's seam */
#include "formats/packed.h"
#include "formats/exphuff.h"
#include "formats/filter.h"
#include "core/abi.h"
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

/* Names in messages are cut here so that the reason after them survives the message limit. */
#define NM "%.200s"

/* ---- names -------------------------------------------------------------------------------- */

static const char *const format_names[] = {
#define X(name, value, str) [value] = str,
    HOIST_FORMAT_LIST(X)
#undef X
};

static const char *const filter_names[] = {
#define X(name, value, str) [value] = str,
    HOIST_FILTER_LIST(X)
#undef X
};

#define NFILTERS (sizeof filter_names / sizeof *filter_names)

const char *hoist_format_name(hoist_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

const char *hoist_filter_name(hoist_filter f)
{
    return (unsigned)f < NFILTERS ? filter_names[f] : "?";
}

int hoist_filter_parse(const char *text, int *filter)
{
    RETURN_IF(!text || !filter, HOIST_E_INVALID_ARG, "hoist_filter_parse: NULL argument");
    if (strcmp(text, "auto") == 0) {
        *filter = HOIST_FILTER_AUTO;
        return HOIST_OK;
    }
    for (unsigned i = 0; i < NFILTERS; i++)
        if (strcmp(text, filter_names[i]) == 0) {
            *filter = (int)i;
            return HOIST_OK;
        }
    return hoist__err(HOIST_E_INVALID_ARG,
                      "unknown filter '%s' (expected auto, none, planes or exponent)", text);
}

/* ---- little-endian reading ---------------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* A cursor over the index; every read is bounded by what is left. */
typedef struct reader {
    const uint8_t *p;
    uint64_t n, pos;
    uint64_t base; /* file offset of p[0], for messages */
    const char *path;
} reader;

static uint64_t left(const reader *r) { return r->n - r->pos; }

static int need(reader *r, uint64_t n, const char *what)
{
    RETURN_IF(left(r) < n, HOIST_E_BAD_PACKED,
              "%s: the index ends inside %s (needs %llu bytes at byte %llu, %llu left)", r->path,
              what, (unsigned long long)n, (unsigned long long)(r->base + r->pos),
              (unsigned long long)left(r));
    return HOIST_OK;
}

static int rd32(reader *r, uint32_t *v, const char *what)
{
    RETURN_IF_ERR(need(r, 4, what));
    *v = le32(r->p + r->pos);
    r->pos += 4;
    return HOIST_OK;
}

static int rd64(reader *r, uint64_t *v, const char *what)
{
    RETURN_IF_ERR(need(r, 8, what));
    *v = le64(r->p + r->pos);
    r->pos += 8;
    return HOIST_OK;
}

/* A length-prefixed string without NUL bytes, copied NUL-terminated into *out (hoist__malloc). */
static int rd_string(reader *r, uint32_t max, char **out, const char *what)
{
    uint32_t len;
    RETURN_IF_ERR(rd32(r, &len, what));
    RETURN_IF(len > max, HOIST_E_BAD_PACKED, "%s: %s of %u bytes at byte %llu (at most %u)",
              r->path, what, len, (unsigned long long)(r->base + r->pos - 4), max);
    RETURN_IF_ERR(need(r, len, what));
    const uint8_t *s = r->p + r->pos;
    RETURN_IF(memchr(s, 0, len), HOIST_E_BAD_PACKED, "%s: %s at byte %llu holds a NUL byte",
              r->path, what, (unsigned long long)(r->base + r->pos));
    char *c = hoist__malloc((size_t)len + 1);
    RETURN_IF(!c, HOIST_E_NOMEM, "%s: out of memory for %s", r->path, what);
    memcpy(c, s, len);
    c[len] = 0;
    r->pos += len;
    *out = c;
    return HOIST_OK;
}

/* ---- the header --------------------------------------------------------------------------- */

typedef struct header {
    uint32_t version;
    uint64_t chunk_bytes, index_off, index_bytes, index_xxh3;
} header;

int hoist__packed_probe_fd(int fd, const char *path)
{
    char magic[8];
    struct stat st;
    int64_t got = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= sizeof magic)
        got = hoist__pread_full(fd, magic, sizeof magic, 0);
    RETURN_IF(got < 0, HOIST_E_IO, "%s: reading its first bytes: %s", path, strerror((int)-got));
    return got == (int64_t)sizeof magic && memcmp(magic, HOIST_PACKED_MAGIC, sizeof magic) == 0;
}

int hoist__packed_probe(const char *path)
{
    int fd = hoist__io_open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* the format's own parser reports what it cannot open */
    int rc = hoist__packed_probe_fd(fd, path);
    close(fd);
    return rc;
}

static int parse_header(const char *path, const uint8_t *b, uint64_t size, header *h)
{
    RETURN_IF(memcmp(b, HOIST_PACKED_MAGIC, 8) != 0, HOIST_E_BAD_PACKED,
              "%s: not a packed container (bad magic)", path);
    h->version = le32(b + 8);
    RETURN_IF(h->version < HOIST_PACKED_VERSION || h->version > HOIST_PACKED_VERSION_GPU,
              HOIST_E_BAD_PACKED, "%s: container version %u (this hoist reads versions %u to %u)",
              path, h->version, HOIST_PACKED_VERSION, HOIST_PACKED_VERSION_GPU);
    RETURN_IF(le32(b + 12) != HOIST_PACKED_HEADER, HOIST_E_BAD_PACKED,
              "%s: header length %u (version %u has %u)", path, le32(b + 12), h->version,
              HOIST_PACKED_HEADER);
    RETURN_IF(XXH3_64bits(b, 56) != le64(b + 56), HOIST_E_INTEGRITY,
              "%s: header checksum mismatch (bytes 0..55 changed since the container was written)",
              path);
    h->chunk_bytes = le64(b + 16);
    h->index_off = le64(b + 24);
    h->index_bytes = le64(b + 32);
    h->index_xxh3 = le64(b + 40);
    RETURN_IF(le64(b + 48) != 0, HOIST_E_BAD_PACKED, "%s: reserved header field is not 0", path);
    RETURN_IF(h->chunk_bytes < HOIST_PACKED_MIN_CHUNK || h->chunk_bytes > HOIST_PACKED_MAX_CHUNK ||
                  (h->chunk_bytes & (h->chunk_bytes - 1)),
              HOIST_E_BAD_PACKED,
              "%s: chunk size %llu is not a power of two between %u and %u bytes", path,
              (unsigned long long)h->chunk_bytes, HOIST_PACKED_MIN_CHUNK, HOIST_PACKED_MAX_CHUNK);
    RETURN_IF(h->index_off < HOIST_PACKED_HEADER, HOIST_E_BAD_PACKED,
              "%s: index offset %llu is inside the header", path,
              (unsigned long long)h->index_off);
    RETURN_IF(h->index_bytes > HOIST_PACKED_MAX_INDEX, HOIST_E_BAD_PACKED,
              "%s: index of %llu bytes (at most %llu)", path, (unsigned long long)h->index_bytes,
              (unsigned long long)HOIST_PACKED_MAX_INDEX);
    uint64_t end;
    RETURN_IF(!hoist__add_u64(h->index_off, h->index_bytes, &end) || end > size,
              HOIST_E_TRUNCATED,
              "%s: the file ends at byte %llu, but its index runs from byte %llu for %llu bytes "
              "(truncated?)",
              path, (unsigned long long)size, (unsigned long long)h->index_off,
              (unsigned long long)h->index_bytes);
    RETURN_IF(end < size, HOIST_E_TRAILING_BYTES,
              "%s: %llu bytes after the index, which ends at byte %llu", path,
              (unsigned long long)(size - end), (unsigned long long)end);
    return HOIST_OK;
}

/* ---- the index ---------------------------------------------------------------------------- */

/* Per-tensor entries in index order, before the table is sorted. */
typedef struct hoist__packed_pending {
    const char *name; /* the table's copy */
    hoist__packed_tensor info;
} pending;

typedef struct parse_ctx {
    hoist__table *t;
    hoist__packed *pk;
    reader r;
    pending *tensors;
    uint32_t ntensors;
    header h;
} parse_ctx;

/* One tensor entry as it is in the file. */
typedef struct raw_tensor {
    char *name; /* hoist__malloc'd; the caller frees it */
    uint32_t dtype, filter, ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t nbytes, xxh3;
} raw_tensor;

static int read_tensor(reader *r, raw_tensor *x)
{
    RETURN_IF_ERR(rd_string(r, HOIST_MAX_NAME, &x->name, "a tensor name"));
    RETURN_IF(!x->name[0], HOIST_E_BAD_TENSOR, "%s: empty tensor name at byte %llu", r->path,
              (unsigned long long)(r->base + r->pos - 4));
    RETURN_IF_ERR(rd32(r, &x->dtype, "a tensor entry"));
    RETURN_IF_ERR(rd32(r, &x->filter, "a tensor entry"));
    RETURN_IF_ERR(rd32(r, &x->ndim, "a tensor entry"));
    RETURN_IF(x->ndim > HOIST_MAX_DIMS, HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "' has %u dimensions (at most %d)", r->path, x->name, x->ndim,
              HOIST_MAX_DIMS);
    for (uint32_t d = 0; d < x->ndim; d++) {
        uint64_t v;
        RETURN_IF_ERR(rd64(r, &v, "a tensor shape"));
        x->shape[d] = (int64_t)v;
    }
    RETURN_IF_ERR(rd64(r, &x->nbytes, "a tensor entry"));
    return rd64(r, &x->xxh3, "a tensor entry");
}

static int check_tensor(const reader *r, const raw_tensor *x, uint64_t vofs, uint64_t *end)
{
    RETURN_IF(x->dtype >= HOIST_DTYPE_COUNT, HOIST_E_BAD_DTYPE,
              "%s: tensor '" NM "': unknown dtype %u", r->path, x->name, x->dtype);
    uint64_t expect;
    int rc = hoist__tensor_bytes(x->name, (hoist_dtype)x->dtype, x->ndim, x->shape, &expect);
    if (rc < 0) return hoist__err_prefix(rc, "%s", r->path);
    RETURN_IF(expect != x->nbytes, HOIST_E_SIZE_MISMATCH,
              "%s: tensor '" NM "' records %llu bytes; its shape and dtype make %llu", r->path,
              x->name, (unsigned long long)x->nbytes, (unsigned long long)expect);
    RETURN_IF(x->filter >= NFILTERS ||
                  (x->filter != HOIST_FILTER_NONE && !hoist__filter_width((hoist_dtype)x->dtype)),
              HOIST_E_BAD_PACKED, "%s: tensor '" NM "': filter %u cannot apply to %s", r->path,
              x->name, x->filter, hoist_dtype_name((hoist_dtype)x->dtype));
    RETURN_IF(!hoist__add_u64(vofs, x->nbytes, end), HOIST_E_OVERFLOW,
              "%s: tensor '" NM "': the tensors add up past 2^64 bytes", r->path, x->name);
    return HOIST_OK;
}

/* Adds entry i to the table at decoded-stream offset *vofs; its chunks start at *chunks. */
static int parse_tensor(parse_ctx *c, uint32_t i, uint64_t *vofs, uint64_t *chunks)
{
    raw_tensor x = {0};
    uint64_t end = 0;
    int rc = read_tensor(&c->r, &x);
    if (rc == HOIST_OK) rc = check_tensor(&c->r, &x, *vofs, &end);
    if (rc == HOIST_OK) {
        hoist__tensor ti = {.name = x.name, .dtype = (hoist_dtype)x.dtype, .ndim = x.ndim,
                            .file = 0, .offset = *vofs, .nbytes = x.nbytes};
        memcpy(ti.shape, x.shape, sizeof ti.shape);
        rc = hoist__table_add_tensor(c->t, &ti);
    }
    hoist__free(x.name);
    RETURN_IF_ERR(rc);
    uint64_t n = x.nbytes / c->h.chunk_bytes + (x.nbytes % c->h.chunk_bytes != 0);
    c->tensors[i] = (pending){.name = c->t->tensors[c->t->ntensors - 1].name,
                              .info = {.first_chunk = *chunks,
                                       .nchunks = n,
                                       .xxh3 = x.xxh3,
                                       .filter = (hoist_filter)x.filter}};
    *vofs = end;
    *chunks += n;
    return HOIST_OK;
}

static int parse_meta(parse_ctx *c)
{
    char *k = NULL, *v = NULL;
    int rc = rd_string(&c->r, 1u << 30, &k, "a metadata key");
    if (rc == HOIST_OK) rc = rd_string(&c->r, 1u << 30, &v, "a metadata value");
    if (rc == HOIST_OK) rc = hoist__table_add_meta(c->t, k, v);
    hoist__free(k);
    hoist__free(v);
    return rc;
}

/* Codec 2 is for 16-bit floats stored unfiltered, in containers that announce it (version 2), so
 * that an older reader refuses the whole file instead of a chunk in the middle of a load. */
static int check_codec(parse_ctx *c, const hoist__tensor *ti, hoist__packed_tensor *pt, uint64_t j,
                       uint32_t codec)
{
    const reader *r = &c->r;
    RETURN_IF(codec > HOIST_CODEC_EXPHUFF, HOIST_E_BAD_PACKED,
              "%s: tensor '" NM "', chunk %llu: unknown codec %u", r->path, ti->name,
              (unsigned long long)j, codec);
    if (codec != HOIST_CODEC_EXPHUFF) return HOIST_OK;
    RETURN_IF(c->h.version < HOIST_PACKED_VERSION_GPU, HOIST_E_BAD_PACKED,
              "%s: tensor '" NM "', chunk %llu: codec 2 in a version %u container (it needs "
              "version %u)",
              r->path, ti->name, (unsigned long long)j, c->h.version, HOIST_PACKED_VERSION_GPU);
    RETURN_IF((ti->dtype != HOIST_DTYPE_BF16 && ti->dtype != HOIST_DTYPE_F16) ||
                  pt->filter != HOIST_FILTER_NONE,
              HOIST_E_BAD_PACKED,
              "%s: tensor '" NM "', chunk %llu: codec 2 cannot decode a %s tensor with filter %s "
              "(bf16 or f16, unfiltered)",
              r->path, ti->name, (unsigned long long)j, hoist_dtype_name(ti->dtype),
              hoist_filter_name(pt->filter));
    pt->exphuff++;
    return HOIST_OK;
}

/* The chunk table: lengths follow from the tensors; the frames must tile [64, index offset). */
static int parse_chunks(parse_ctx *c, uint64_t nchunks)
{
    reader *r = &c->r;
    hoist__packed *pk = c->pk;
    uint64_t bytes;
    RETURN_IF(!hoist__mul_u64(nchunks, 16, &bytes) || bytes != left(r), HOIST_E_BAD_PACKED,
              "%s: %llu chunks need %llu bytes of index, %llu are left", r->path,
              (unsigned long long)nchunks, (unsigned long long)(nchunks * 16),
              (unsigned long long)left(r));
    pk->chunks = hoist__calloc(nchunks ? nchunks : 1, sizeof *pk->chunks);
    RETURN_IF(!pk->chunks, HOIST_E_NOMEM, "%s: out of memory for %llu chunks", r->path,
              (unsigned long long)nchunks);
    pk->nchunks = nchunks;
    uint64_t off = HOIST_PACKED_HEADER, vofs = 0;
    for (uint32_t t = 0; t < c->ntensors; t++) {
        hoist__packed_tensor *pt = &c->tensors[t].info;
        const hoist__tensor *ti = &c->t->tensors[t];
        for (uint64_t j = 0; j < pt->nchunks; j++) {
            hoist__chunk *ch = &pk->chunks[pt->first_chunk + j];
            const uint8_t *e = r->p + r->pos;
            r->pos += 16;
            uint64_t len = ti->nbytes - j * c->h.chunk_bytes;
            if (len > c->h.chunk_bytes) len = c->h.chunk_bytes;
            *ch = (hoist__chunk){.file_off = off, .vofs = vofs + j * c->h.chunk_bytes,
                                 .xxh3 = le64(e + 8), .stored = le32(e), .len = (uint32_t)len,
                                 .tensor = t, .codec = (uint8_t)le32(e + 4)};
            RETURN_IF_ERR(check_codec(c, ti, pt, j, le32(e + 4)));
            RETURN_IF(ch->stored == 0 || ch->stored > len ||
                          (ch->codec == HOIST_CODEC_STORED && ch->stored != len),
                      HOIST_E_BAD_PACKED,
                      "%s: tensor '" NM "', chunk %llu stores %u bytes for %llu decoded bytes "
                      "(a chunk stores at least 1 and at most as many as it decodes to; a raw "
                      "one exactly as many)",
                      r->path, ti->name, (unsigned long long)j, ch->stored,
                      (unsigned long long)len);
            off += ch->stored; /* no overflow: each stored <= 64 MiB, fewer than 2^27 chunks */
            pt->stored += ch->stored;
            if (ch->codec == HOIST_CODEC_EXPHUFF) {
                pk->exphuff_chunks++;
                pk->exphuff_bytes += ch->len;
            }
        }
        vofs += ti->nbytes;
    }
    RETURN_IF(off != c->h.index_off, HOIST_E_BAD_PACKED,
              "%s: the frames end at byte %llu, but the index starts at byte %llu", r->path,
              (unsigned long long)off, (unsigned long long)c->h.index_off);
    pk->stored_bytes = off - HOIST_PACKED_HEADER;
    return HOIST_OK;
}

static int parse_index(parse_ctx *c)
{
    reader *r = &c->r;
    uint32_t nmeta;
    uint64_t nchunks, vofs = 0, chunks = 0;
    RETURN_IF_ERR(rd32(r, &c->ntensors, "the index counts"));
    RETURN_IF_ERR(rd32(r, &nmeta, "the index counts"));
    RETURN_IF_ERR(rd64(r, &nchunks, "the index counts"));
    /* a tensor entry takes at least 33 bytes, a metadata entry 8 */
    RETURN_IF(c->ntensors > HOIST_MAX_TENSORS || (uint64_t)c->ntensors * 33 > left(r),
              HOIST_E_TOO_MANY, "%s: %u tensors cannot fit the %llu bytes of index left", r->path,
              c->ntensors, (unsigned long long)left(r));
    RETURN_IF(nmeta > HOIST_MAX_TENSORS || (uint64_t)nmeta * 8 > left(r), HOIST_E_TOO_MANY,
              "%s: %u metadata entries cannot fit the %llu bytes of index left", r->path, nmeta,
              (unsigned long long)left(r));
    c->tensors = hoist__calloc(c->ntensors ? c->ntensors : 1, sizeof *c->tensors);
    RETURN_IF(!c->tensors, HOIST_E_NOMEM, "%s: out of memory for %u tensors", r->path,
              c->ntensors);
    for (uint32_t i = 0; i < c->ntensors; i++) RETURN_IF_ERR(parse_tensor(c, i, &vofs, &chunks));
    for (uint32_t i = 0; i < nmeta; i++) RETURN_IF_ERR(parse_meta(c));
    RETURN_IF(nchunks != chunks, HOIST_E_BAD_PACKED,
              "%s: the index counts %llu chunks; its tensors need %llu", r->path,
              (unsigned long long)nchunks, (unsigned long long)chunks);
    return parse_chunks(c, nchunks);
}

/* Where the container's bytes come from: a file (fd) or memory (data). */
typedef struct origin {
    const char *path;
    int fd;
    const uint8_t *data;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t dev, ino; /* the file's identity (ino 0: from memory) */
} origin;

/* Reads n bytes at off into *buf (allocated for a file, pointed into memory for a buffer). */
static int fetch(const origin *o, uint64_t off, uint64_t n, uint8_t **owned, const uint8_t **buf,
                 const char *what)
{
    if (o->data) {
        *buf = o->data + off; /* parse_header bounded [off, off + n) by the size */
        return HOIST_OK;
    }
    *owned = hoist__malloc(n ? n : 1);
    RETURN_IF(!*owned, HOIST_E_NOMEM, "%s: out of memory for %llu bytes of %s", o->path,
              (unsigned long long)n, what);
    int64_t got = hoist__pread_full(o->fd, *owned, n, off);
    RETURN_IF(got < 0, HOIST_E_IO, "%s: reading %s: %s", o->path, what, strerror((int)-got));
    RETURN_IF((uint64_t)got != n, HOIST_E_TRUNCATED,
              "%s: the file ends inside %s (truncated while opening?)", o->path, what);
    *buf = *owned;
    return HOIST_OK;
}

static int parse_from(const origin *o, parse_ctx *c, uint8_t **index_owned)
{
    const char *path = o->path;
    uint8_t hb[HOIST_PACKED_HEADER];
    RETURN_IF(o->size < sizeof hb, HOIST_E_TRUNCATED_HEADER,
              "%s: %llu bytes, too short for the %u-byte header of a packed container", path,
              (unsigned long long)o->size, HOIST_PACKED_HEADER);
    if (o->data) {
        memcpy(hb, o->data, sizeof hb);
    } else {
        int64_t got = hoist__pread_full(o->fd, hb, sizeof hb, 0);
        RETURN_IF(got < 0, HOIST_E_IO, "%s: reading the header: %s", path, strerror((int)-got));
        RETURN_IF(got != (int64_t)sizeof hb, HOIST_E_TRUNCATED_HEADER,
                  "%s: the file ends inside its header (truncated while opening?)", path);
    }
    RETURN_IF_ERR(parse_header(path, hb, o->size, &c->h));
    const uint8_t *index = NULL;
    RETURN_IF_ERR(fetch(o, c->h.index_off, c->h.index_bytes, index_owned, &index, "the index"));
    RETURN_IF(XXH3_64bits(index, c->h.index_bytes) != c->h.index_xxh3, HOIST_E_INTEGRITY,
              "%s: index checksum mismatch (bytes %llu..%llu changed since the container was "
              "written)",
              path, (unsigned long long)c->h.index_off,
              (unsigned long long)(c->h.index_off + c->h.index_bytes));
    c->r = (reader){.p = index, .n = c->h.index_bytes, .base = c->h.index_off, .path = path};
    uint32_t file;
    RETURN_IF_ERR(
        hoist__table_add_file(c->t, path, o->size, o->mtime_ns, HOIST_PACKED_HEADER, &file));
    /* rechecked at every reopen and before a load is published, as the other formats' are */
    c->t->files[file].dev = o->dev;
    c->t->files[file].ino = o->ino;
    return parse_index(c);
}

static int parse_origin(hoist__table *t, const origin *o)
{
    RETURN_IF(t->nfiles || t->packed, HOIST_E_INTERNAL, "%s: a packed model is one file",
              o->path);
    parse_ctx c = {.t = t};
    uint8_t *index = NULL;
    c.pk = hoist__calloc(1, sizeof *c.pk);
    int rc = c.pk ? parse_from(o, &c, &index)
                  : hoist__err(HOIST_E_NOMEM, "%s: out of memory", o->path);
    hoist__free(index);
    if (rc == HOIST_OK) {
        c.pk->version = c.h.version;
        c.pk->chunk_bytes = c.h.chunk_bytes;
        c.pk->pending = c.tensors;
        t->packed = c.pk;
        t->packed_finish = hoist__packed_finish;
        t->packed_free = hoist__packed_free;
        return HOIST_OK;
    }
    hoist__free(c.tensors);
    hoist__packed_free(c.pk);
    return rc;
}

int hoist__packed_parse(hoist__table *t, const char *path)
{
    int fd = hoist__io_open(path, O_RDONLY | O_CLOEXEC);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    int rc = hoist__packed_parse_fd(t, path, fd);
    close(fd);
    return rc;
}

int hoist__packed_parse_fd(hoist__table *t, const char *path, int fd)
{
    struct stat st;
    int rc = HOIST_OK;
    if (fstat(fd, &st) != 0)
        rc = hoist__err(HOIST_E_IO, "%s: fstat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = hoist__err(HOIST_E_NOT_REGULAR, "%s: not a regular file", path);
    if (rc == HOIST_OK) {
        origin o = {.path = path, .fd = fd, .size = (uint64_t)st.st_size,
                    .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                    .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino};
        rc = parse_origin(t, &o);
    }
    return rc;
}

int hoist__packed_parse_buffer(hoist__table *t, const char *path, const uint8_t *data,
                               size_t size)
{
    origin o = {.path = path, .fd = -1, .data = data, .size = size};
    return parse_origin(t, &o);
}

int hoist__packed_finish(hoist__table *t)
{
    hoist__packed *pk = t->packed;
    pending *in = pk->pending;
    size_t n = t->ntensors;
    hoist__packed_tensor *out = hoist__calloc(n ? n : 1, sizeof *out);
    uint32_t *map = hoist__calloc(n ? n : 1, sizeof *map);
    if (!out || !map) {
        hoist__free(out);
        hoist__free(map);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %zu tensors", n);
    }
    for (size_t i = 0; i < n; i++) {
        long ti = hoist__table_find(t, in[i].name);
        map[i] = (uint32_t)ti; /* every name is in the table: it was added from this list */
        out[ti] = in[i].info;
    }
    for (uint64_t c = 0; c < pk->nchunks; c++) pk->chunks[c].tensor = map[pk->chunks[c].tensor];
    hoist__free(map);
    hoist__free(in);
    pk->pending = NULL;
    pk->tensors = out;
    return HOIST_OK;
}

void hoist__packed_free(hoist__packed *p)
{
    if (!p) return;
    hoist__free(p->chunks);
    hoist__free(p->tensors);
    hoist__free(p->pending);
    hoist__free(p);
}

/* ---- public queries ----------------------------------------------------------------------- */

hoist_format hoist_model_format(const hoist_model *m)
{
    if (!m) return HOIST_FORMAT_SAFETENSORS;
    return m->table.packed ? HOIST_FORMAT_PACKED : m->table.format;
}

int hoist_model_packed_info(const hoist_model *m, hoist_packed_info *out)
{
    RETURN_IF(!m || !out, HOIST_E_INVALID_ARG, "hoist_model_packed_info: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_packed_info, out));
    const hoist__packed *pk = m->table.packed;
    RETURN_IF(!pk, HOIST_E_UNSUPPORTED, "%s: not a packed model",
              m->table.origin ? m->table.origin : "model");
    hoist_packed_info info = {.version = pk->version,
                              .chunk_bytes = pk->chunk_bytes,
                              .chunks = pk->nchunks,
                              .stored_bytes = pk->stored_bytes};
    HOIST__OUT(hoist_packed_info, out, &info);
    return HOIST_OK;
}

int hoist_model_tensor_packing(const hoist_model *m, size_t index, hoist_tensor_packing *out)
{
    RETURN_IF(!m || !out, HOIST_E_INVALID_ARG, "hoist_model_tensor_packing: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_tensor_packing, out));
    const hoist__packed *pk = m->table.packed;
    RETURN_IF(!pk, HOIST_E_UNSUPPORTED, "%s: not a packed model",
              m->table.origin ? m->table.origin : "model");
    RETURN_IF(index >= m->table.ntensors, HOIST_E_INVALID_ARG,
              "tensor index %zu out of range (%zu tensors)", index, m->table.ntensors);
    const hoist__packed_tensor *pt = &pk->tensors[index];
    hoist_tensor_packing tp = {
        .filter = pt->filter, .chunks = pt->nchunks, .stored_bytes = pt->stored, .xxh3 = pt->xxh3,
        .gpu_chunks = pt->exphuff};
    HOIST__OUT(hoist_tensor_packing, out, &tp);
    return HOIST_OK;
}

/* ---- decoding ----------------------------------------------------------------------------- */

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

/* What a zstd decompression context takes with no window buffer (one-shot decoding needs none),
 * rounded up; measured 160 KiB with zstd 1.5. */
#define DCTX_BYTES (192u << 10)

uint64_t hoist__decoder_bytes(uint64_t chunk_bytes) { return chunk_bytes + DCTX_BYTES; }

int hoist__decoder_init(hoist__decoder *d, uint64_t chunk_bytes)
{
    memset(d, 0, sizeof *d);
    ZSTD_customMem mem = {zalloc, zfree, NULL};
    d->dctx = ZSTD_createDCtx_advanced(mem);
    d->scratch = hoist__malloc(chunk_bytes);
    d->scratch_bytes = chunk_bytes;
    if (!d->dctx || !d->scratch) {
        hoist__decoder_free(d);
        return hoist__err(HOIST_E_NOMEM, "out of memory for a decoder");
    }
    return HOIST_OK;
}

void hoist__decoder_free(hoist__decoder *d)
{
    if (!d) return;
    ZSTD_freeDCtx(d->dctx);
    hoist__free(d->scratch);
    memset(d, 0, sizeof *d);
}

/* Fails naming where the chunk lives, then why (printf-style). */
int hoist__packed_chunk_err(const hoist__table *t, uint64_t ci, int status, const char *fmt, ...)
{
    const hoist__chunk *c = &t->packed->chunks[ci];
    const hoist__tensor *ti = &t->tensors[c->tensor];
    const hoist__packed_tensor *pt = &t->packed->tensors[c->tensor];
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return hoist__err(status,
                      "%s: tensor '" NM "', chunk %llu of %llu (bytes %llu..%llu of the file): %s",
                      t->files[0].path, ti->name,
                      (unsigned long long)(ci - pt->first_chunk), (unsigned long long)pt->nchunks,
                      (unsigned long long)c->file_off,
                      (unsigned long long)(c->file_off + c->stored), why);
}

/* One zstd frame, exactly c->stored bytes long, declaring exactly c->len bytes, into dst. The
 * output is capped at c->len whatever the frame says; a window larger than a chunk is refused
 * (the writer's frames never need one). */
static int zstd_frame(const hoist__table *t, hoist__decoder *d, uint64_t ci, const uint8_t *in,
                      uint8_t *dst)
{
    const hoist__chunk *c = &t->packed->chunks[ci];
    ZSTD_frameHeader fh;
    size_t r = ZSTD_getFrameHeader(&fh, in, c->stored);
    if (r != 0) /* > 0: the frame header itself is cut short */
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE, "bad zstd frame header: %s",
                                       ZSTD_isError(r) ? ZSTD_getErrorName(r) : "truncated");
    if (fh.frameType != ZSTD_frame)
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE,
                                       "a skippable frame where data should be");
    if (fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN)
        return hoist__packed_chunk_err(
            t, ci, HOIST_E_DECODE,
            "the frame does not declare its decoded size (the chunk holds %u bytes)", c->len);
    if (fh.frameContentSize != c->len)
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE,
                                       "the frame declares %llu decoded bytes, the chunk holds %u",
                                       (unsigned long long)fh.frameContentSize, c->len);
    uint64_t wmax = t->packed->chunk_bytes > (1u << ZSTD_WINDOWLOG_MIN)
                        ? t->packed->chunk_bytes
                        : (1u << ZSTD_WINDOWLOG_MIN);
    if (fh.windowSize > wmax)
        return hoist__packed_chunk_err(
            t, ci, HOIST_E_DECODE, "the frame asks for a %llu-byte window (chunks are %llu bytes)",
            (unsigned long long)fh.windowSize, (unsigned long long)t->packed->chunk_bytes);
    size_t whole = ZSTD_findFrameCompressedSize(in, c->stored);
    if (ZSTD_isError(whole))
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE, "zstd: %s", ZSTD_getErrorName(whole));
    if (whole != c->stored)
        return hoist__packed_chunk_err(
            t, ci, HOIST_E_DECODE, "%llu trailing bytes after a %llu-byte frame",
            (unsigned long long)(c->stored - whole), (unsigned long long)whole);
    size_t got = ZSTD_decompressDCtx(d->dctx, dst, c->len, in, c->stored);
    if (ZSTD_isError(got))
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE, "zstd: %s", ZSTD_getErrorName(got));
    if (got != c->len)
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE,
                                       "the frame decodes to %llu bytes, not %u",
                                       (unsigned long long)got, c->len);
    return HOIST_OK;
}

int hoist__packed_exphuff_check(const hoist__table *t, uint64_t ci, const uint8_t *in,
                                hoist__exphuff *x)
{
    const hoist__chunk *c = &t->packed->chunks[ci];
    char why[200];
    if (hoist__exphuff_parse(in, c->stored, c->len, x, why, sizeof why) < 0)
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE, "%s", why);
    return HOIST_OK;
}

static int exphuff_chunk(const hoist__table *t, uint64_t ci, const uint8_t *in, uint8_t *out)
{
    hoist__exphuff x;
    RETURN_IF_ERR(hoist__packed_exphuff_check(t, ci, in, &x));
    char why[200];
    if (hoist__exphuff_decode(in, &x, out, why, sizeof why) < 0)
        return hoist__packed_chunk_err(t, ci, HOIST_E_DECODE, "%s", why);
    return HOIST_OK;
}

int hoist__packed_decode(const hoist__table *t, hoist__decoder *d, uint64_t ci, const uint8_t *in,
                         uint8_t *out, uint64_t *decode_ns, uint64_t *hash_ns)
{
    const hoist__chunk *c = &t->packed->chunks[ci];
    const hoist__packed_tensor *pt = &t->packed->tensors[c->tensor];
    unsigned width = hoist__filter_width(t->tensors[c->tensor].dtype);
    double t0 = hoist__now();
    if (c->codec == HOIST_CODEC_EXPHUFF) {
        RETURN_IF_ERR(exphuff_chunk(t, ci, in, out));
    } else if (c->codec == HOIST_CODEC_ZSTD) {
        int filtered = pt->filter != HOIST_FILTER_NONE;
        RETURN_IF(filtered && c->len > d->scratch_bytes, HOIST_E_INTERNAL,
                  "decoder scratch of %llu bytes for a %u-byte chunk",
                  (unsigned long long)d->scratch_bytes, c->len);
        RETURN_IF_ERR(zstd_frame(t, d, ci, in, filtered ? d->scratch : out));
        if (filtered) hoist__filter_undo(pt->filter, width, d->scratch, out, c->len);
    } else {
        hoist__filter_undo(pt->filter, width, in, out, c->len);
    }
    double t1 = hoist__now();
    uint64_t h = XXH3_64bits(out, c->len);
    double t2 = hoist__now();
    if (decode_ns) *decode_ns += (uint64_t)((t1 - t0) * 1e9);
    if (hash_ns) *hash_ns += (uint64_t)((t2 - t1) * 1e9);
    if (h != c->xxh3)
        return hoist__packed_chunk_err(
            t, ci, HOIST_E_INTEGRITY,
            "decoded bytes hash to %016llx, the container recorded %016llx", (unsigned long long)h,
            (unsigned long long)c->xxh3);
    return HOIST_OK;
}
