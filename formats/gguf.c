/* GGUF, ggml's model file: versions 2 and 3, little-endian. Layout:
 *   "GGUF", u32 version, u64 tensor count, u64 key-value count;
 *   key-value pairs: string key, u32 value type, value (an array is a u32 element type, a u64
 *     count and the elements);
 *   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type,
 *     u64 offset from the data section's start;
 *   padding to general.alignment (a u32, default 32), then the data section.
 * A string is a u64 length and that many bytes, without a NUL.
 *
 * Validation follows llama.cpp's reader (ggml/src/gguf.cpp) and goes further where that reader
 * trusts the file: every count and length is bounded by the bytes left in the file (and the
 * header by GG_MAX_HEADER) before anything is allocated from it; names are shorter than ggml's
 * GGML_MAX_NAME (64); at most GGML_MAX_DIMS (4) dimensions, each positive; ne[0] is a whole
 * number of blocks of the tensor's type; and each tensor starts, aligned, exactly where the
 * previous one's padded end puts it, which rules out gaps, overlaps and disorder. Nothing is
 * added to the table until the whole header has passed. */
#include "formats/table.h"
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "metadata arrays are handed out in host byte order straight from the little-endian file"
#endif

#define GG_MAX_NAME 64u         /* ggml's GGML_MAX_NAME, the NUL included */
#define GG_MAX_DIMS 4u          /* ggml's GGML_MAX_DIMS */
#define GG_DEFAULT_ALIGNMENT 32u
#define GG_ALIGNMENT_KEY "general.alignment"
/* Far above any real header (a 256k-token vocabulary with its merges takes about 20 MB); it
 * bounds the memory an adversarial header can make the parser take. */
#define GG_MAX_HEADER (256ull << 20)
#define GG_MAX_KV (1u << 20)
#define GG_MIN_KV_BYTES 14u     /* key length, a 1-byte key, the type, a 1-byte value */
#define GG_MIN_TENSOR_BYTES 33u /* name length, a 1-byte name, n_dims, one ne, type, offset */
#define GG_READ_BUF (1u << 20)
#define NM "%.200s"             /* names in messages, cut so the reason after them survives */

bool hoist__gguf_magic(const unsigned char *p) { return memcmp(p, "GGUF", 4) == 0; }

/* ---- ggml tensor types ---------------------------------------------------------------------- */

/* ggml_type id -> hoist dtype. Ids ggml retired are named so that a file using one is told why;
 * ids past the table are unknown. */
static const struct {
    int dtype; /* -1: retired */
    const char *retired;
} ggml_types[] = {
    [0] = {HOIST_DTYPE_F32, NULL},       [1] = {HOIST_DTYPE_F16, NULL},
    [2] = {HOIST_DTYPE_Q4_0, NULL},      [3] = {HOIST_DTYPE_Q4_1, NULL},
    [4] = {-1, "Q4_2"},                  [5] = {-1, "Q4_3"},
    [6] = {HOIST_DTYPE_Q5_0, NULL},      [7] = {HOIST_DTYPE_Q5_1, NULL},
    [8] = {HOIST_DTYPE_Q8_0, NULL},      [9] = {HOIST_DTYPE_Q8_1, NULL},
    [10] = {HOIST_DTYPE_Q2_K, NULL},     [11] = {HOIST_DTYPE_Q3_K, NULL},
    [12] = {HOIST_DTYPE_Q4_K, NULL},     [13] = {HOIST_DTYPE_Q5_K, NULL},
    [14] = {HOIST_DTYPE_Q6_K, NULL},     [15] = {HOIST_DTYPE_Q8_K, NULL},
    [16] = {HOIST_DTYPE_IQ2_XXS, NULL},  [17] = {HOIST_DTYPE_IQ2_XS, NULL},
    [18] = {HOIST_DTYPE_IQ3_XXS, NULL},  [19] = {HOIST_DTYPE_IQ1_S, NULL},
    [20] = {HOIST_DTYPE_IQ4_NL, NULL},   [21] = {HOIST_DTYPE_IQ3_S, NULL},
    [22] = {HOIST_DTYPE_IQ2_S, NULL},    [23] = {HOIST_DTYPE_IQ4_XS, NULL},
    [24] = {HOIST_DTYPE_I8, NULL},       [25] = {HOIST_DTYPE_I16, NULL},
    [26] = {HOIST_DTYPE_I32, NULL},      [27] = {HOIST_DTYPE_I64, NULL},
    [28] = {HOIST_DTYPE_F64, NULL},      [29] = {HOIST_DTYPE_IQ1_M, NULL},
    [30] = {HOIST_DTYPE_BF16, NULL},     [31] = {-1, "Q4_0_4_4"},
    [32] = {-1, "Q4_0_4_8"},             [33] = {-1, "Q4_0_8_8"},
    [34] = {HOIST_DTYPE_TQ1_0, NULL},    [35] = {HOIST_DTYPE_TQ2_0, NULL},
    [36] = {-1, "IQ4_NL_4_4"},           [37] = {-1, "IQ4_NL_4_8"},
    [38] = {-1, "IQ4_NL_8_8"},           [39] = {HOIST_DTYPE_MXFP4, NULL},
    [40] = {HOIST_DTYPE_NVFP4, NULL},    [41] = {HOIST_DTYPE_Q1_0, NULL},
    [42] = {HOIST_DTYPE_Q2_0, NULL},
};
#define GG_NTYPES (sizeof ggml_types / sizeof ggml_types[0])

/* ---- buffered reads of the header ----------------------------------------------------------- */

typedef struct gg_reader {
    const char *path;
    int fd;
    const unsigned char *mem; /* the whole file in memory (fuzzing), instead of fd */
    uint64_t size; /* of the file, at fstat */
    uint64_t pos;  /* offset of the next byte; never past size */
    unsigned char *buf;
    uint64_t buf_off; /* file offset of buf[0] */
    uint64_t buf_len;
} gg_reader;

static uint64_t left(const gg_reader *r) { return r->size - r->pos; }

/* Copies n bytes at the cursor into dst (NULL: skips them) and advances. `what` names the item
 * being read, for the message. */
static int rd(gg_reader *r, void *dst, uint64_t n, const char *what)
{
    RETURN_IF(n > left(r), HOIST_E_TRUNCATED_HEADER,
              "%s: %s at byte %llu needs %llu bytes, but the file ends %llu bytes later", r->path,
              what, (unsigned long long)r->pos, (unsigned long long)n,
              (unsigned long long)left(r));
    RETURN_IF(r->pos + n > GG_MAX_HEADER, HOIST_E_HEADER_TOO_LARGE,
              "%s: %s at byte %llu runs past %llu bytes, the limit of a GGUF header", r->path,
              what, (unsigned long long)r->pos, GG_MAX_HEADER);
    unsigned char *d = dst;
    if (r->mem) {
        if (d) memcpy(d, r->mem + r->pos, n);
        r->pos += n;
        return HOIST_OK;
    }
    while (n > 0) {
        if (r->pos < r->buf_off || r->pos >= r->buf_off + r->buf_len) {
            uint64_t want = left(r) < GG_READ_BUF ? left(r) : GG_READ_BUF;
            int64_t got = hoist__pread_full(r->fd, r->buf, want, r->pos);
            RETURN_IF(got < 0, HOIST_E_IO, "%s: read failed at byte %llu (%s): %s", r->path,
                      (unsigned long long)r->pos, what, strerror((int)-got));
            RETURN_IF((uint64_t)got < want, HOIST_E_TRUNCATED_HEADER,
                      "%s: file shrank while reading its header: %lld of %llu bytes at byte %llu",
                      r->path, (long long)got, (unsigned long long)want,
                      (unsigned long long)r->pos);
            r->buf_off = r->pos;
            r->buf_len = want;
        }
        uint64_t at = r->pos - r->buf_off, take = r->buf_len - at < n ? r->buf_len - at : n;
        if (d) {
            memcpy(d, r->buf + at, take);
            d += take;
        }
        r->pos += take;
        n -= take;
    }
    return HOIST_OK;
}

static int rd_u32(gg_reader *r, uint32_t *v, const char *what)
{
    unsigned char b[4];
    RETURN_IF_ERR(rd(r, b, 4, what));
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return HOIST_OK;
}

static int rd_u64(gg_reader *r, uint64_t *v, const char *what)
{
    unsigned char b[8];
    RETURN_IF_ERR(rd(r, b, 8, what));
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = *v << 8 | b[i];
    return HOIST_OK;
}

/* Reads a string's u64 length and checks it against the bytes left; *at receives the length
 * field's offset. */
static int rd_len(gg_reader *r, uint64_t *len, uint64_t *at, const char *what)
{
    *at = r->pos;
    RETURN_IF_ERR(rd_u64(r, len, what));
    RETURN_IF(*len > left(r), HOIST_E_TRUNCATED_HEADER,
              "%s: %s at byte %llu: string length %llu runs past the end of the file (%llu bytes "
              "left)",
              r->path, what, (unsigned long long)*at, (unsigned long long)*len,
              (unsigned long long)left(r));
    return HOIST_OK;
}

/* Reads len bytes into a new NUL-terminated string. len was checked by rd_len. */
static int rd_chars(gg_reader *r, uint64_t len, char **out, const char *what)
{
    RETURN_IF(r->pos + len > GG_MAX_HEADER, HOIST_E_HEADER_TOO_LARGE,
              "%s: %s at byte %llu: a %llu-byte string runs past %llu bytes, the limit of a GGUF "
              "header",
              r->path, what, (unsigned long long)r->pos, (unsigned long long)len, GG_MAX_HEADER);
    char *s = hoist__malloc(len + 1);
    RETURN_IF(!s, HOIST_E_NOMEM, "%s: out of memory for a %llu-byte string (%s)", r->path,
              (unsigned long long)len, what);
    int rc = rd(r, s, len, what);
    if (rc < 0) {
        hoist__free(s);
        return rc;
    }
    s[len] = '\0';
    *out = s;
    return HOIST_OK;
}

/* ---- a set of names (keys, tensor names), for duplicates ------------------------------------ */

typedef struct name_set {
    const char **slot; /* borrowed names; NULL = empty */
    uint64_t *at;      /* byte offset where each name was read */
    size_t cap;
} name_set;

static int set_init(name_set *s, uint64_t n, const char *path)
{
    size_t cap = 16;
    while (cap < n * 2) cap *= 2; /* n is bounded by the header size: no overflow */
    s->slot = hoist__calloc(cap, sizeof *s->slot);
    s->at = hoist__calloc(cap, sizeof *s->at);
    s->cap = cap;
    RETURN_IF(!s->slot || !s->at, HOIST_E_NOMEM, "%s: out of memory indexing %llu names", path,
              (unsigned long long)n);
    return HOIST_OK;
}

static void set_free(name_set *s)
{
    hoist__free(s->slot);
    hoist__free(s->at);
}

/* Adds name (read at byte at); when it is already there, returns false and *first_at receives
 * where the first one was read. */
static bool set_add(name_set *s, const char *name, uint64_t at, uint64_t *first_at)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    size_t i = h & (s->cap - 1);
    while (s->slot[i]) {
        if (strcmp(s->slot[i], name) == 0) {
            *first_at = s->at[i];
            return false;
        }
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = name;
    s->at[i] = at;
    return true;
}

/* ---- the parser ----------------------------------------------------------------------------- */

typedef struct gg_tensor {
    char *name;
    uint32_t n_dims;
    int64_t ne[GG_MAX_DIMS];
    hoist_dtype dtype;
    uint64_t offset; /* from the data section's start */
    uint64_t nbytes;
    uint64_t info_at; /* byte offset of its tensor info */
} gg_tensor;

typedef struct gg_parser {
    gg_reader r;
    const char *path;
    int strict;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    uint32_t alignment;
    hoist__meta *kv;
    uint64_t nkv_read;
    gg_tensor *ti;
    uint64_t nti_read;
    name_set keys, names;
    char what[256];
} gg_parser;

static void parser_free(gg_parser *p)
{
    for (uint64_t i = 0; i < p->nkv_read; i++) hoist__meta_free(&p->kv[i]);
    for (uint64_t i = 0; i < p->nti_read; i++) hoist__free(p->ti[i].name);
    hoist__free(p->kv);
    hoist__free(p->ti);
    set_free(&p->keys);
    set_free(&p->names);
    hoist__free(p->r.buf);
}

/* Text forms of values: what hoist_model_metadata() returns. */
static int set_text(gg_parser *p, hoist__meta *m, const char *fmt, ...) HOIST_PRINTF(3, 4);
static int set_text(gg_parser *p, hoist__meta *m, const char *fmt, ...)
{
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    m->value = hoist__strdup(buf);
    RETURN_IF(!m->value, HOIST_E_NOMEM, "%s: out of memory (%s)", p->path, p->what);
    return HOIST_OK;
}

/* Decodes one little-endian scalar of a number or bool type from b into m->num. */
static void decode_scalar(hoist_meta_type type, const unsigned char *b, hoist__meta *m)
{
    size_t size = hoist_meta_type_size(type);
    uint64_t u = 0;
    for (size_t i = size; i-- > 0;) u = u << 8 | b[i];
    switch (type) {
    case HOIST_META_I8: m->num.i = (int8_t)u; break;
    case HOIST_META_I16: m->num.i = (int16_t)u; break;
    case HOIST_META_I32: m->num.i = (int32_t)u; break;
    case HOIST_META_I64: m->num.i = (int64_t)u; break;
    case HOIST_META_F32: {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, sizeof f);
        m->num.f = f;
        break;
    }
    case HOIST_META_F64: memcpy(&m->num.f, &u, sizeof m->num.f); break;
    default: m->num.u = u; break;
    }
}

static int scalar_text(gg_parser *p, hoist__meta *m)
{
    switch (m->type) {
    case HOIST_META_I8:
    case HOIST_META_I16:
    case HOIST_META_I32:
    case HOIST_META_I64: return set_text(p, m, "%" PRId64, m->num.i);
    case HOIST_META_F32: return set_text(p, m, "%.9g", m->num.f);
    case HOIST_META_F64: return set_text(p, m, "%.17g", m->num.f);
    case HOIST_META_BOOL: return set_text(p, m, "%s", m->num.u ? "true" : "false");
    default: return set_text(p, m, "%" PRIu64, m->num.u);
    }
}

static int check_bool(gg_parser *p, unsigned char b, uint64_t at)
{
    RETURN_IF(b > 1, HOIST_E_BAD_METADATA, "%s: %s: bool at byte %llu holds %u (not 0 or 1)",
              p->path, p->what, (unsigned long long)at, b);
    return HOIST_OK;
}

static int read_string_array(gg_parser *p, hoist__meta *m, uint64_t count)
{
    gg_reader *r = &p->r;
    uint64_t need;
    RETURN_IF(!hoist__mul_u64(count, 8, &need), HOIST_E_OVERFLOW,
              "%s: %s at byte %llu: %llu strings overflow 64 bits", p->path, p->what,
              (unsigned long long)r->pos, (unsigned long long)count);
    RETURN_IF(need > left(r), HOIST_E_TRUNCATED_HEADER,
              "%s: %s at byte %llu: %llu strings need at least %llu bytes, but %llu are left",
              p->path, p->what, (unsigned long long)r->pos, (unsigned long long)count,
              (unsigned long long)need, (unsigned long long)left(r));
    RETURN_IF(r->pos + need > GG_MAX_HEADER, HOIST_E_HEADER_TOO_LARGE,
              "%s: %s at byte %llu: %llu strings run past %llu bytes, the limit of a GGUF header",
              p->path, p->what, (unsigned long long)r->pos, (unsigned long long)count,
              GG_MAX_HEADER);
    if (count == 0) return HOIST_OK;
    char **ptrs = hoist__malloc(count * sizeof *ptrs);
    uint64_t *lens = hoist__malloc(count * sizeof *lens);
    m->array = ptrs;
    m->str_lens = lens;
    RETURN_IF(!ptrs || !lens, HOIST_E_NOMEM, "%s: out of memory for %llu strings (%s)", p->path,
              (unsigned long long)count, p->what);
    /* all the strings' bytes in one blob: it grows with what was read, never past the file */
    uint64_t used = 0, cap = 0;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t len, at;
        RETURN_IF_ERR(rd_len(r, &len, &at, p->what));
        if (used + len + 1 > cap) {
            uint64_t ncap = cap ? cap * 2 : 4096;
            while (ncap < used + len + 1) ncap *= 2;
            char *nb = hoist__realloc(m->blob, ncap);
            RETURN_IF(!nb, HOIST_E_NOMEM, "%s: out of memory for the strings of %s", p->path,
                      p->what);
            m->blob = nb;
            cap = ncap;
        }
        RETURN_IF_ERR(rd(r, m->blob + used, len, p->what));
        m->blob[used + len] = '\0';
        lens[k] = len;
        ptrs[k] = (char *)(uintptr_t)used; /* an offset until the blob stops moving */
        used += len + 1;
    }
    for (uint64_t k = 0; k < count; k++) ptrs[k] = m->blob + (uintptr_t)ptrs[k];
    return HOIST_OK;
}

static int read_array(gg_parser *p, hoist__meta *m)
{
    gg_reader *r = &p->r;
    uint32_t et;
    uint64_t et_at = r->pos, count;
    RETURN_IF_ERR(rd_u32(r, &et, p->what));
    RETURN_IF(et >= HOIST_META_TYPE_COUNT, HOIST_E_BAD_METADATA,
              "%s: %s: array element type %u at byte %llu is out of range (0 to %d)", p->path,
              p->what, et, (unsigned long long)et_at, HOIST_META_TYPE_COUNT - 1);
    RETURN_IF(et == HOIST_META_ARRAY, HOIST_E_BAD_METADATA,
              "%s: %s: nested array at byte %llu (arrays of arrays are not supported)", p->path,
              p->what, (unsigned long long)et_at);
    RETURN_IF_ERR(rd_u64(r, &count, p->what));
    m->elem_type = (hoist_meta_type)et;
    m->count = count;
    if (et == HOIST_META_STRING) {
        RETURN_IF_ERR(read_string_array(p, m, count));
    } else {
        size_t size = hoist_meta_type_size((hoist_meta_type)et);
        uint64_t bytes;
        RETURN_IF(!hoist__mul_u64(count, size, &bytes), HOIST_E_OVERFLOW,
                  "%s: %s at byte %llu: %llu elements of %s overflow 64 bits", p->path, p->what,
                  (unsigned long long)r->pos, (unsigned long long)count,
                  hoist_meta_type_name((hoist_meta_type)et));
        RETURN_IF(bytes > left(r), HOIST_E_TRUNCATED_HEADER,
                  "%s: %s at byte %llu: %llu elements of %s take %llu bytes, but %llu are left",
                  p->path, p->what, (unsigned long long)r->pos, (unsigned long long)count,
                  hoist_meta_type_name((hoist_meta_type)et), (unsigned long long)bytes,
                  (unsigned long long)left(r));
        if (count) {
            uint64_t at = r->pos;
            RETURN_IF(r->pos + bytes > GG_MAX_HEADER, HOIST_E_HEADER_TOO_LARGE,
                      "%s: %s at byte %llu: a %llu-byte array runs past %llu bytes, the limit of "
                      "a GGUF header",
                      p->path, p->what, (unsigned long long)at, (unsigned long long)bytes,
                      GG_MAX_HEADER);
            m->array = hoist__malloc(bytes);
            RETURN_IF(!m->array, HOIST_E_NOMEM, "%s: out of memory for a %llu-byte array (%s)",
                      p->path, (unsigned long long)bytes, p->what);
            RETURN_IF_ERR(rd(r, m->array, bytes, p->what));
            if (et == HOIST_META_BOOL)
                for (uint64_t k = 0; k < count; k++)
                    RETURN_IF_ERR(check_bool(p, ((unsigned char *)m->array)[k], at + k));
        }
    }
    return set_text(p, m, "[%s x %llu]", hoist_meta_type_name((hoist_meta_type)et),
                    (unsigned long long)count);
}

static int read_value(gg_parser *p, hoist__meta *m)
{
    gg_reader *r = &p->r;
    m->count = 1;
    if (m->type == HOIST_META_STRING) {
        uint64_t len, at;
        RETURN_IF_ERR(rd_len(r, &len, &at, p->what));
        m->str_len = len;
        return rd_chars(r, len, &m->value, p->what);
    }
    if (m->type == HOIST_META_ARRAY) return read_array(p, m);
    unsigned char b[8];
    uint64_t at = r->pos;
    RETURN_IF_ERR(rd(r, b, hoist_meta_type_size(m->type), p->what));
    if (m->type == HOIST_META_BOOL) RETURN_IF_ERR(check_bool(p, b[0], at));
    decode_scalar(m->type, b, m);
    return scalar_text(p, m);
}

/* general.alignment: a u32, a power of two (gguf.cpp's rule). */
static int check_alignment(gg_parser *p, const hoist__meta *m, uint64_t at)
{
    RETURN_IF(m->type != HOIST_META_U32, HOIST_E_BAD_METADATA,
              "%s: " GG_ALIGNMENT_KEY " (key at byte %llu) has type %s, not u32", p->path,
              (unsigned long long)at, hoist_meta_type_name(m->type));
    RETURN_IF(m->num.u == 0 || (m->num.u & (m->num.u - 1)) != 0, HOIST_E_BAD_METADATA,
              "%s: " GG_ALIGNMENT_KEY " (key at byte %llu) is %llu, not a power of two", p->path,
              (unsigned long long)at, (unsigned long long)m->num.u);
    p->alignment = (uint32_t)m->num.u;
    return HOIST_OK;
}

static int read_kv(gg_parser *p, uint64_t k)
{
    gg_reader *r = &p->r;
    hoist__meta *m = &p->kv[k];
    p->nkv_read = k + 1; /* m is freed by parser_free from here on */
    uint64_t len, at;
    snprintf(p->what, sizeof p->what, "metadata entry %llu's key", (unsigned long long)k);
    RETURN_IF_ERR(rd_len(r, &len, &at, p->what));
    RETURN_IF(len == 0, HOIST_E_BAD_METADATA, "%s: metadata entry %llu has an empty key (byte %llu)",
              p->path, (unsigned long long)k, (unsigned long long)at);
    RETURN_IF(len > HOIST_MAX_NAME, HOIST_E_BAD_METADATA,
              "%s: metadata entry %llu's key at byte %llu is %llu bytes (at most %u)", p->path,
              (unsigned long long)k, (unsigned long long)at, (unsigned long long)len,
              HOIST_MAX_NAME);
    RETURN_IF_ERR(rd_chars(r, len, &m->key, p->what));
    RETURN_IF(strlen(m->key) != len, HOIST_E_BAD_METADATA,
              "%s: metadata entry %llu's key at byte %llu holds a NUL byte", p->path,
              (unsigned long long)k, (unsigned long long)at);
    uint64_t first;
    RETURN_IF(!set_add(&p->keys, m->key, at, &first), HOIST_E_DUPLICATE_KEY,
              "%s: metadata key '" NM "' appears twice: at byte %llu and at byte %llu", p->path,
              m->key, (unsigned long long)first, (unsigned long long)at);
    snprintf(p->what, sizeof p->what, "metadata '" NM "'", m->key);
    uint32_t type;
    uint64_t type_at = r->pos;
    RETURN_IF_ERR(rd_u32(r, &type, p->what));
    RETURN_IF(type >= HOIST_META_TYPE_COUNT, HOIST_E_BAD_METADATA,
              "%s: %s: value type %u at byte %llu is out of range (0 to %d)", p->path, p->what,
              type, (unsigned long long)type_at, HOIST_META_TYPE_COUNT - 1);
    m->type = (hoist_meta_type)type;
    RETURN_IF_ERR(read_value(p, m));
    if (strcmp(m->key, GG_ALIGNMENT_KEY) == 0) RETURN_IF_ERR(check_alignment(p, m, at));
    return HOIST_OK;
}

/* ---- tensor infos --------------------------------------------------------------------------- */

static int tensor_type(gg_parser *p, gg_tensor *t, uint32_t type, uint64_t at)
{
    /* BOOL (0) is no ggml type: a 0 here would be a hole in the table */
    if (type < GG_NTYPES && ggml_types[type].dtype > 0) {
        t->dtype = (hoist_dtype)ggml_types[type].dtype;
        return HOIST_OK;
    }
    if (type < GG_NTYPES && ggml_types[type].retired)
        return hoist__err(HOIST_E_BAD_DTYPE,
                          "%s: tensor '" NM "' (info at byte %llu): ggml type %u (%s) at byte "
                          "%llu was retired from GGUF files",
                          p->path, t->name, (unsigned long long)t->info_at, type,
                          ggml_types[type].retired, (unsigned long long)at);
    return hoist__err(HOIST_E_BAD_DTYPE,
                      "%s: tensor '" NM "' (info at byte %llu): unknown ggml type %u at byte %llu",
                      p->path, t->name, (unsigned long long)t->info_at, type,
                      (unsigned long long)at);
}

/* Dimensions, element count and byte size of t (ne read already). */
static int tensor_size(gg_parser *p, gg_tensor *t)
{
    uint64_t elems = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        RETURN_IF(t->ne[d] <= 0, HOIST_E_BAD_TENSOR,
                  "%s: tensor '" NM "' (info at byte %llu): ne[%u] is %lld (%llu as read); every "
                  "dimension must be positive",
                  p->path, t->name, (unsigned long long)t->info_at, d, (long long)t->ne[d],
                  (unsigned long long)t->ne[d]);
        RETURN_IF(!hoist__mul_u64(elems, (uint64_t)t->ne[d], &elems) || elems > INT64_MAX,
                  HOIST_E_OVERFLOW,
                  "%s: tensor '" NM "' (info at byte %llu): element count overflows 63 bits at "
                  "ne[%u]",
                  p->path, t->name, (unsigned long long)t->info_at, d);
    }
    uint64_t row;
    unsigned block = hoist_dtype_block_elems(t->dtype);
    RETURN_IF((uint64_t)t->ne[0] % block != 0, HOIST_E_SIZE_MISMATCH,
              "%s: tensor '" NM "' (info at byte %llu): ne[0] = %lld is not a multiple of %s's "
              "%u-element block",
              p->path, t->name, (unsigned long long)t->info_at, (long long)t->ne[0],
              hoist_dtype_name(t->dtype), block);
    bool ok = hoist__dtype_row_bytes(t->dtype, (uint64_t)t->ne[0], &row);
    t->nbytes = row;
    for (uint32_t d = 1; ok && d < t->n_dims; d++)
        ok = hoist__mul_u64(t->nbytes, (uint64_t)t->ne[d], &t->nbytes);
    RETURN_IF(!ok, HOIST_E_OVERFLOW,
              "%s: tensor '" NM "' (info at byte %llu): %llu elements of %s overflow 64 bits of "
              "bytes",
              p->path, t->name, (unsigned long long)t->info_at, (unsigned long long)elems,
              hoist_dtype_name(t->dtype));
    return HOIST_OK;
}

static int read_tensor_info(gg_parser *p, uint64_t k)
{
    gg_reader *r = &p->r;
    gg_tensor *t = &p->ti[k];
    p->nti_read = k + 1;
    uint64_t len;
    t->info_at = r->pos;
    snprintf(p->what, sizeof p->what, "tensor info %llu's name", (unsigned long long)k);
    RETURN_IF_ERR(rd_u64(r, &len, p->what));
    RETURN_IF(len == 0, HOIST_E_BAD_TENSOR, "%s: tensor info %llu at byte %llu has an empty name",
              p->path, (unsigned long long)k, (unsigned long long)t->info_at);
    RETURN_IF(len >= GG_MAX_NAME, HOIST_E_BAD_TENSOR,
              "%s: tensor info %llu at byte %llu: name is %llu bytes (ggml allows at most %u)",
              p->path, (unsigned long long)k, (unsigned long long)t->info_at,
              (unsigned long long)len, GG_MAX_NAME - 1);
    RETURN_IF_ERR(rd_chars(r, len, &t->name, p->what));
    RETURN_IF(strlen(t->name) != len, HOIST_E_BAD_TENSOR,
              "%s: tensor info %llu at byte %llu: name holds a NUL byte", p->path,
              (unsigned long long)k, (unsigned long long)t->info_at);
    uint64_t first;
    RETURN_IF(!set_add(&p->names, t->name, t->info_at, &first), HOIST_E_DUPLICATE_KEY,
              "%s: tensor '" NM "' appears twice: tensor infos at byte %llu and at byte %llu",
              p->path, t->name, (unsigned long long)first, (unsigned long long)t->info_at);
    snprintf(p->what, sizeof p->what, "tensor '" NM "'", t->name);
    uint64_t at = r->pos;
    RETURN_IF_ERR(rd_u32(r, &t->n_dims, p->what));
    RETURN_IF(t->n_dims == 0 || t->n_dims > GG_MAX_DIMS, HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "' (info at byte %llu): n_dims %u at byte %llu (1 to %u)", p->path,
              t->name, (unsigned long long)t->info_at, t->n_dims, (unsigned long long)at,
              GG_MAX_DIMS);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        RETURN_IF_ERR(rd_u64(r, &v, p->what));
        t->ne[d] = (int64_t)v;
    }
    uint32_t type;
    at = r->pos;
    RETURN_IF_ERR(rd_u32(r, &type, p->what));
    RETURN_IF_ERR(tensor_type(p, t, type, at));
    RETURN_IF_ERR(tensor_size(p, t));
    return rd_u64(r, &t->offset, p->what);
}

/* ---- the data section ----------------------------------------------------------------------- */

/* Each tensor at its aligned offset, exactly where the previous one's padded end is; the data
 * inside the file; nothing after the last tensor's padded end (in strict mode). */
static int check_layout(gg_parser *p, uint64_t data_start)
{
    const uint64_t a = p->alignment, size = p->r.size;
    uint64_t expect = 0;
    for (uint64_t k = 0; k < p->n_tensors; k++) {
        const gg_tensor *t = &p->ti[k];
        RETURN_IF(t->offset % a != 0, HOIST_E_BAD_OFFSETS,
                  "%s: tensor '" NM "' (info at byte %llu): offset %llu is not a multiple of the "
                  "alignment %llu",
                  p->path, t->name, (unsigned long long)t->info_at,
                  (unsigned long long)t->offset, (unsigned long long)a);
        if (t->offset != expect) {
            const gg_tensor *prev = k ? &p->ti[k - 1] : NULL;
            const char *how = !prev                     ? "the first tensor must start at 0"
                              : t->offset < prev->offset ? "out of order: before the previous tensor"
                              : t->offset < expect ? "overlaps the previous tensor"
                                                   : "leaves a gap after the previous tensor";
            return hoist__err(HOIST_E_LAYOUT,
                              "%s: tensor '" NM "' (info at byte %llu): offset %llu, expected "
                              "%llu: %s%s" NM "%s",
                              p->path, t->name, (unsigned long long)t->info_at,
                              (unsigned long long)t->offset, (unsigned long long)expect, how,
                              prev ? " '" : "", prev ? prev->name : "", prev ? "'" : "");
        }
        uint64_t end, abs_end;
        RETURN_IF(!hoist__add_u64(t->offset, t->nbytes, &end) ||
                      !hoist__add_u64(data_start, end, &abs_end) ||
                      hoist__align_up(end, a) < end || abs_end + a < abs_end,
                  HOIST_E_BAD_OFFSETS,
                  "%s: tensor '" NM "' (info at byte %llu): offset %llu plus %llu bytes wraps "
                  "past 2^64",
                  p->path, t->name, (unsigned long long)t->info_at,
                  (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        RETURN_IF(abs_end > size, HOIST_E_TRUNCATED,
                  "%s: tensor '" NM "' at byte %llu (offset %llu, %llu bytes) ends past the end "
                  "of the file (%llu bytes, %llu short)",
                  p->path, t->name, (unsigned long long)(data_start + t->offset),
                  (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                  (unsigned long long)size, (unsigned long long)(abs_end - size));
        expect = hoist__align_up(end, a);
    }
    /* the last tensor's padding (or the header's, with no tensors) may be cut short; no more */
    uint64_t limit = data_start + expect;
    if (size > limit) {
        unsigned long long extra = (unsigned long long)(size - limit);
        const char *after = p->n_tensors ? "the last tensor's data" : "the header";
        RETURN_IF(p->strict, HOIST_E_TRAILING_BYTES,
                  "%s: %llu trailing bytes after %s (at byte %llu); open with strict off to "
                  "accept them",
                  p->path, extra, after, (unsigned long long)limit);
        hoist__log(HOIST_LOG_WARN, "%s: ignoring %llu trailing bytes after %s (at byte %llu)",
                   p->path, extra, after, (unsigned long long)limit);
    }
    return HOIST_OK;
}

/* ---- the header ----------------------------------------------------------------------------- */

static int read_preamble(gg_parser *p)
{
    gg_reader *r = &p->r;
    unsigned char magic[4];
    RETURN_IF(r->size < 4, HOIST_E_TRUNCATED_HEADER,
              "%s: file is %llu bytes, too short for a GGUF header (24)", p->path,
              (unsigned long long)r->size);
    RETURN_IF_ERR(rd(r, magic, 4, "the magic"));
    RETURN_IF(!hoist__gguf_magic(magic), HOIST_E_BAD_MAGIC,
              "%s: bad magic %02x %02x %02x %02x at byte 0 (a GGUF file starts with \"GGUF\")",
              p->path, magic[0], magic[1], magic[2], magic[3]);
    RETURN_IF(r->size < 24, HOIST_E_TRUNCATED_HEADER,
              "%s: file is %llu bytes, too short for a GGUF header (24)", p->path,
              (unsigned long long)r->size);
    RETURN_IF_ERR(rd_u32(r, &p->version, "the version"));
    uint32_t swapped = __builtin_bswap32(p->version);
    RETURN_IF(p->version > 3 && swapped >= 1 && swapped <= 3, HOIST_E_BAD_VERSION,
              "%s: version %u at byte 4 reads as %u byte-swapped: a big-endian file? Only "
              "little-endian GGUF is supported",
              p->path, p->version, swapped);
    RETURN_IF(p->version == 1, HOIST_E_BAD_VERSION,
              "%s: GGUF version 1 at byte 4 (32-bit counts, superseded in 2023) is not supported; "
              "convert the file to version 3",
              p->path);
    RETURN_IF(p->version < 2 || p->version > 3, HOIST_E_BAD_VERSION,
              "%s: GGUF version %u at byte 4 is not supported (2 and 3 are)", p->path,
              p->version);
    RETURN_IF_ERR(rd_u64(r, &p->n_tensors, "the tensor count"));
    RETURN_IF_ERR(rd_u64(r, &p->n_kv, "the key-value count"));
    RETURN_IF(p->n_tensors > HOIST_MAX_TENSORS, HOIST_E_TOO_MANY,
              "%s: tensor count %llu at byte 8 is above the limit of %u", p->path,
              (unsigned long long)p->n_tensors, HOIST_MAX_TENSORS);
    RETURN_IF(p->n_kv > GG_MAX_KV, HOIST_E_TOO_MANY,
              "%s: key-value count %llu at byte 16 is above the limit of %u", p->path,
              (unsigned long long)p->n_kv, GG_MAX_KV);
    /* both counts are bounded above: no overflow */
    uint64_t need = p->n_tensors * GG_MIN_TENSOR_BYTES + p->n_kv * GG_MIN_KV_BYTES;
    RETURN_IF(need > left(r), HOIST_E_TRUNCATED_HEADER,
              "%s: %llu tensors and %llu key-value pairs need at least %llu bytes after byte 24, "
              "but the file holds %llu",
              p->path, (unsigned long long)p->n_tensors, (unsigned long long)p->n_kv,
              (unsigned long long)need, (unsigned long long)left(r));
    return HOIST_OK;
}

static int parse_header(gg_parser *p)
{
    RETURN_IF_ERR(read_preamble(p));
    p->kv = hoist__calloc(p->n_kv ? p->n_kv : 1, sizeof *p->kv);
    p->ti = hoist__calloc(p->n_tensors ? p->n_tensors : 1, sizeof *p->ti);
    RETURN_IF(!p->kv || !p->ti, HOIST_E_NOMEM, "%s: out of memory for %llu tensors", p->path,
              (unsigned long long)p->n_tensors);
    RETURN_IF_ERR(set_init(&p->keys, p->n_kv, p->path));
    RETURN_IF_ERR(set_init(&p->names, p->n_tensors, p->path));
    for (uint64_t k = 0; k < p->n_kv; k++) RETURN_IF_ERR(read_kv(p, k));
    for (uint64_t k = 0; k < p->n_tensors; k++) RETURN_IF_ERR(read_tensor_info(p, k));
    uint64_t data_start = hoist__align_up(p->r.pos, p->alignment);
    RETURN_IF_ERR(check_layout(p, data_start));
    p->r.pos = data_start; /* kept for publish() */
    return HOIST_OK;
}

/* Moves the parsed header into the table. st: the file's identity, rechecked before a load is
 * published (NULL for a file parsed from memory). */
static int publish(gg_parser *p, hoist__table *t, const struct stat *st)
{
    uint32_t file;
    int64_t mtime_ns = st ? (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec : 0;
    RETURN_IF_ERR(hoist__table_add_file(t, p->path, p->r.size, mtime_ns, p->r.pos, &file));
    t->format = HOIST_FORMAT_GGUF;
    if (st) {
        t->files[file].dev = (uint64_t)st->st_dev;
        t->files[file].ino = (uint64_t)st->st_ino;
    }
    for (uint64_t k = 0; k < p->n_kv; k++)
        RETURN_IF_ERR(hoist__table_take_meta(t, &p->kv[k]));
    for (uint64_t k = 0; k < p->n_tensors; k++) {
        const gg_tensor *g = &p->ti[k];
        hoist__tensor tt = {.name = g->name,
                            .dtype = g->dtype,
                            .ndim = g->n_dims,
                            .file = file,
                            .offset = p->r.pos + g->offset,
                            .nbytes = g->nbytes};
        for (uint32_t d = 0; d < g->n_dims; d++) tt.shape[d] = g->ne[g->n_dims - 1 - d];
        RETURN_IF_ERR(hoist__table_add_tensor(t, &tt));
    }
    return HOIST_OK;
}

int hoist__gguf_parse_fd(hoist__table *t, const char *path, int fd, int strict)
{
    RETURN_IF(!t || !path || fd < 0, HOIST_E_INVALID_ARG, "gguf: NULL table or path");
    struct stat st;
    RETURN_IF_ERR(hoist__io_fstat_regular(fd, path, &st));
    gg_parser p;
    memset(&p, 0, sizeof p);
    p.path = path;
    p.strict = strict;
    p.alignment = GG_DEFAULT_ALIGNMENT;
    p.r = (gg_reader){.path = path, .fd = fd, .size = st.st_size > 0 ? (uint64_t)st.st_size : 0};
    p.r.buf = hoist__malloc(GG_READ_BUF);
    int rc = p.r.buf ? parse_header(&p)
                     : hoist__err(HOIST_E_NOMEM, "%s: out of memory for a read buffer", path);
    if (rc == HOIST_OK) rc = publish(&p, t, &st);
    parser_free(&p);
    return rc;
}

int hoist__gguf_parse_buffer(hoist__table *t, const char *path, const void *data, size_t len,
                             int strict)
{
    RETURN_IF(!t || !path || (!data && len), HOIST_E_INVALID_ARG, "gguf: NULL table, path or data");
    gg_parser p;
    memset(&p, 0, sizeof p);
    p.path = path;
    p.strict = strict;
    p.alignment = GG_DEFAULT_ALIGNMENT;
    p.r = (gg_reader){.path = path, .fd = -1, .mem = data, .size = len};
    int rc = parse_header(&p);
    if (rc == HOIST_OK) rc = publish(&p, t, NULL);
    parser_free(&p);
    return rc;
}

int hoist__gguf_parse(hoist__table *t, const char *path, int strict)
{
    RETURN_IF(!t || !path, HOIST_E_INVALID_ARG, "gguf: NULL table or path");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused after fstat. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    int rc = hoist__gguf_parse_fd(t, path, fd, strict);
    close(fd);
    return rc;
}
