/* safetensors: one file. Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then
 * the data section. Validation follows the reference reader (huggingface/safetensors): the header
 * is bounded before anything is allocated from it, every tensor's byte length must equal
 * shape × dtype size, and the tensors must tile the data section exactly, from 0 to its end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "formats/json_kind.h"
#include "formats/table.h"
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference reader's MAX_HEADER_SIZE. */
#define ST_MAX_HEADER 100000000ull
#define ST_META_KEY "__metadata__"
/* Names in messages are cut here so that the reason after them survives the message limit. */
#define NM "%.200s"

typedef struct st_entry {
    const char *name; /* owned by the JSON document */
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t begin, end, nbytes;
} st_entry;


/* ---- JSON errors ------------------------------------------------------------------------ */

/* A number jansson could not hold (an integer of 2^63 or more, or a real beyond double) is a
 * parse error without a location in the document tree. Find where it sits by scanning the header
 * up to the error: the key of the top-level member (the tensor name) and the key inside it (the
 * field). Keys are returned as raw spans (escapes not decoded). */
typedef struct key_span {
    const char *p;
    size_t n;
} key_span;

static int span_is(key_span k, const char *s)
{
    return k.p && k.n == strlen(s) && memcmp(k.p, s, k.n) == 0;
}

static void locate_number(const char *buf, size_t end, int *depth_out, key_span *top,
                          key_span *field)
{
    int depth = 0;
    key_span last = {0}, keys[3] = {{0}};
    for (size_t i = 0; i < end; i++) {
        char c = buf[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < end && buf[j] != '"') j += buf[j] == '\\' ? 2 : 1;
            if (j >= end) break;
            last = (key_span){buf + i + 1, j - i - 1};
            i = j;
            continue;
        }
        if (c == ':') {
            if (depth >= 1 && depth <= 2) keys[depth] = last;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth <= 2) keys[depth] = (key_span){0};
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    *depth_out = depth;
    *top = keys[1];
    *field = keys[2];
}

static int json_fail(const char *path, const char *buf, size_t n, const json_error_t *e)
{
    int code = json_error_code(e);
    if (code == json_error_duplicate_key || strstr(e->text, "duplicate"))
        return hoist__err(HOIST_E_DUPLICATE_KEY, "%s: duplicate key in the header at byte %d: %s",
                          path, 8 + e->position, e->text);
    if (code == json_error_numeric_overflow && e->position >= 0 && (size_t)e->position <= n) {
        int depth;
        key_span top, field;
        locate_number(buf, (size_t)e->position, &depth, &top, &field);
        if (top.p && !span_is(top, ST_META_KEY) && depth == 3) {
            if (span_is(field, "data_offsets"))
                return hoist__err(HOIST_E_BAD_OFFSETS,
                                  "%s: tensor '%.*s': data_offsets hold a number too large for an "
                                  "offset (header byte %d: %s)",
                                  path, (int)(top.n > 200 ? 200 : top.n), top.p, 8 + e->position,
                                  e->text);
            if (span_is(field, "shape"))
                return hoist__err(strstr(e->text, "too big integer") ? HOIST_E_OVERFLOW
                                                                     : HOIST_E_BAD_TENSOR,
                                  "%s: tensor '%.*s': shape holds a number that does not fit 63 "
                                  "bits (header byte %d: %s)",
                                  path, (int)(top.n > 200 ? 200 : top.n), top.p, 8 + e->position,
                                  e->text);
        }
    }
    const char *what = code == json_error_invalid_utf8     ? "header is not valid UTF-8: "
                       : code == json_error_stack_overflow ? "header nests too deeply: "
                       : code == json_error_premature_end_of_input ? "header JSON is truncated: "
                                                                   : "";
    return hoist__err(HOIST_E_BAD_JSON,
                      "%s: malformed JSON header at byte %d (line %d, column %d): %s%s",
                      path, 8 + e->position, e->line, e->column, what, e->text);
}

/* ---- one tensor entry ------------------------------------------------------------------- */

static int parse_entry(const char *path, const char *name, const json_t *v, uint64_t data_start,
                       st_entry *out)
{
    size_t name_len = strlen(name);
    RETURN_IF(name_len == 0, HOIST_E_BAD_TENSOR, "%s: a tensor has an empty name", path);
    RETURN_IF(name_len > HOIST_MAX_NAME, HOIST_E_BAD_TENSOR,
              "%s: tensor '%.64s...': name is %zu bytes (at most %u)", path, name, name_len,
              HOIST_MAX_NAME);
    RETURN_IF(!json_is_object(v), HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "': entry is a JSON %s, not an object", path, name, hoist__json_kind(v));

    const char *key;
    json_t *field;
    json_object_foreach((json_t *)v, key, field)
    {
        RETURN_IF(strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
                      strcmp(key, "data_offsets") != 0,
                  HOIST_E_BAD_TENSOR, "%s: tensor '" NM "': unknown field '" NM "'", path, name,
                  key);
    }

    memset(out, 0, sizeof *out);
    out->name = name;

    /* dtype */
    const json_t *dt = json_object_get(v, "dtype");
    RETURN_IF(!dt, HOIST_E_BAD_TENSOR, "%s: tensor '" NM "': missing \"dtype\"", path, name);
    RETURN_IF(!json_is_string(dt), HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "': \"dtype\" is a JSON %s, not a string", path, name,
              hoist__json_kind(dt));
    int d = hoist__dtype_from_name(json_string_value(dt), json_string_length(dt));
    RETURN_IF(d < 0, HOIST_E_BAD_DTYPE, "%s: tensor '" NM "': unknown dtype \"%.64s\"", path,
              name, json_string_value(dt));
    out->dtype = (hoist_dtype)d;

    /* shape */
    const json_t *sh = json_object_get(v, "shape");
    RETURN_IF(!sh, HOIST_E_BAD_TENSOR, "%s: tensor '" NM "': missing \"shape\"", path, name);
    RETURN_IF(!json_is_array(sh), HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "': \"shape\" is a JSON %s, not an array", path, name,
              hoist__json_kind(sh));
    size_t ndim = json_array_size(sh);
    RETURN_IF(ndim > HOIST_MAX_DIMS, HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "': shape has %zu dimensions (at most %d)", path, name, ndim,
              HOIST_MAX_DIMS);
    for (size_t i = 0; i < ndim; i++) {
        const json_t *x = json_array_get(sh, i);
        RETURN_IF(!json_is_integer(x), HOIST_E_BAD_TENSOR,
                  "%s: tensor '" NM "': shape[%zu] is a JSON %s, not an integer", path, name, i,
                  hoist__json_kind(x));
        json_int_t dim = json_integer_value(x);
        RETURN_IF(dim < 0, HOIST_E_BAD_TENSOR, "%s: tensor '" NM "': shape[%zu] is negative (%lld)",
                  path, name, i, (long long)dim);
        out->shape[i] = (int64_t)dim;
    }
    out->ndim = (uint32_t)ndim;

    /* data_offsets */
    const json_t *off = json_object_get(v, "data_offsets");
    RETURN_IF(!off, HOIST_E_BAD_TENSOR, "%s: tensor '" NM "': missing \"data_offsets\"", path,
              name);
    RETURN_IF(!json_is_array(off) || json_array_size(off) != 2, HOIST_E_BAD_TENSOR,
              "%s: tensor '" NM "': \"data_offsets\" must be an array of 2 integers, not a JSON "
              "%s%s",
              path, name, hoist__json_kind(off), json_is_array(off) ? " of another length" : "");
    uint64_t be[2];
    for (size_t i = 0; i < 2; i++) {
        const json_t *x = json_array_get(off, i);
        RETURN_IF(!json_is_number(x), HOIST_E_BAD_TENSOR,
                  "%s: tensor '" NM "': data_offsets[%zu] is a JSON %s, not an integer", path, name,
                  i, hoist__json_kind(x));
        RETURN_IF(json_is_real(x), HOIST_E_BAD_OFFSETS,
                  "%s: tensor '" NM "': data_offsets[%zu] is not an integer (%g)", path, name, i,
                  json_real_value(x));
        json_int_t o = json_integer_value(x);
        RETURN_IF(o < 0, HOIST_E_BAD_OFFSETS,
                  "%s: tensor '" NM "': data_offsets[%zu] is negative (%lld)", path, name, i,
                  (long long)o);
        be[i] = (uint64_t)o;
    }
    out->begin = be[0];
    out->end = be[1];
    /* both offsets are below 2^63 and data_start below 2^27: no overflow */
    unsigned long long at = (unsigned long long)(data_start + be[0]);
    RETURN_IF(be[0] > be[1], HOIST_E_BAD_OFFSETS,
              "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]): begin is past end",
              path, name, at, (unsigned long long)be[0], (unsigned long long)be[1]);

    /* size */
    int rc = hoist__tensor_bytes(name, out->dtype, out->ndim, out->shape, &out->nbytes);
    if (rc < 0) {
        /* its message reads "tensor 'NAME': reason"; keep the reason, add file and offsets */
        char why[512];
        const char *m = hoist_last_error();
        const char *colon = strstr(m, "': ");
        snprintf(why, sizeof why, "%s", colon ? colon + 3 : m);
        return hoist__err(rc, "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]): %s",
                          path, name, at, (unsigned long long)be[0], (unsigned long long)be[1],
                          why);
    }
    if (be[1] - be[0] != out->nbytes) {
        char shape[HOIST_MAX_DIMS * 21 + 3], *p = shape;
        p += sprintf(p, "[");
        for (uint32_t i = 0; i < out->ndim; i++)
            p += sprintf(p, "%s%lld", i ? ", " : "", (long long)out->shape[i]);
        sprintf(p, "]");
        return hoist__err(HOIST_E_SIZE_MISMATCH,
                          "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]): spans "
                          "%llu bytes, but %s %s is %llu bytes",
                          path, name, at, (unsigned long long)be[0], (unsigned long long)be[1],
                          (unsigned long long)(be[1] - be[0]), hoist_dtype_name(out->dtype), shape,
                          (unsigned long long)out->nbytes);
    }
    return HOIST_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- the header --------------------------------------------------------------------------- */

static int check_metadata(const char *path, const json_t *meta)
{
    if (json_is_null(meta)) return HOIST_OK; /* the reference reader takes null as "none" */
    RETURN_IF(!json_is_object(meta), HOIST_E_BAD_METADATA,
              "%s: \"__metadata__\" is a JSON %s, not an object of strings", path, hoist__json_kind(meta));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)meta, key, val)
    {
        RETURN_IF(!json_is_string(val), HOIST_E_BAD_METADATA,
                  "%s: __metadata__ '" NM "' is a JSON %s, not a string", path, key,
                  hoist__json_kind(val));
    }
    return HOIST_OK;
}

static int check_layout(const char *path, st_entry *e, size_t n, uint64_t data_start,
                        uint64_t data_len, int strict)
{
    if (n > 1) qsort(e, n, sizeof *e, cmp_entry);
    uint64_t expect = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin == expect) {
            expect = e[i].end;
            continue;
        }
        unsigned long long at = (unsigned long long)(data_start + e[i].begin);
        RETURN_IF(i == 0, HOIST_E_LAYOUT,
                  "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]): the first tensor "
                  "must begin at data offset 0",
                  path, e[i].name, at, (unsigned long long)e[i].begin,
                  (unsigned long long)e[i].end);
        RETURN_IF(e[i].begin > expect, HOIST_E_LAYOUT,
                  "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]): gap of %llu "
                  "bytes after tensor '" NM "', which ends at data offset %llu",
                  path, e[i].name, at, (unsigned long long)e[i].begin,
                  (unsigned long long)e[i].end, (unsigned long long)(e[i].begin - expect),
                  e[i - 1].name, (unsigned long long)expect);
        return hoist__err(HOIST_E_LAYOUT,
                          "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]) overlaps "
                          "tensor '" NM "' (data_offsets [%llu, %llu])",
                          path, e[i].name, at, (unsigned long long)e[i].begin,
                          (unsigned long long)e[i].end, e[i - 1].name,
                          (unsigned long long)e[i - 1].begin, (unsigned long long)e[i - 1].end);
    }
    if (expect > data_len) {
        const st_entry *last = &e[n - 1];
        return hoist__err(HOIST_E_TRUNCATED,
                          "%s: tensor '" NM "' at byte %llu (data_offsets [%llu, %llu]) ends past "
                          "the end of the file: the data section holds %llu bytes, %llu short",
                          path, last->name, (unsigned long long)(data_start + last->begin),
                          (unsigned long long)last->begin, (unsigned long long)last->end,
                          (unsigned long long)data_len, (unsigned long long)(expect - data_len));
    }
    if (expect < data_len) {
        unsigned long long extra = (unsigned long long)(data_len - expect);
        RETURN_IF(strict, HOIST_E_TRAILING_BYTES,
                  "%s: %llu trailing bytes after the last tensor's data (at byte %llu); open "
                  "with strict off to accept them",
                  path, extra, (unsigned long long)(data_start + expect));
        hoist__log(HOIST_LOG_WARN,
                   "%s: ignoring %llu trailing bytes after the last tensor (at byte %llu)", path,
                   extra, (unsigned long long)(data_start + expect));
    }
    return HOIST_OK;
}

/* What the table records of the file the header came from. */
typedef struct file_id {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t dev, ino; /* ino 0: none (parsed from memory) */
} file_id;

static int parse_header(hoist__table *t, const char *path, const char *buf, size_t n,
                        const file_id *id, int strict)
{
    json_error_t jerr;
    int oom;
    json_t *root = hoist__json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr, &oom);
    RETURN_IF(oom, HOIST_E_NOMEM, "%s: out of memory parsing the %zu-byte header", path, n);
    if (!root) return json_fail(path, buf, n, &jerr);
    int rc = HOIST_OK;
    st_entry *entries = NULL;
    if (!json_is_object(root)) {
        rc = hoist__err(HOIST_E_BAD_JSON, "%s: header is a JSON %s, not an object", path,
                        hoist__json_kind(root));
        goto out;
    }

    size_t count = json_object_size(root);
    const json_t *meta = json_object_get(root, ST_META_KEY);
    size_t ntensors = count - (meta ? 1 : 0);
    if (ntensors > HOIST_MAX_TENSORS) {
        rc = hoist__err(HOIST_E_TOO_MANY, "%s: header lists %zu tensors (at most %u)", path,
                        ntensors, HOIST_MAX_TENSORS);
        goto out;
    }
    entries = hoist__calloc(ntensors ? ntensors : 1, sizeof *entries);
    if (!entries) {
        rc = hoist__err(HOIST_E_NOMEM, "%s: out of memory for %zu tensor entries", path, ntensors);
        goto out;
    }

    uint64_t data_start = 8 + (uint64_t)n;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, ST_META_KEY) == 0)
            rc = check_metadata(path, val);
        else
            rc = parse_entry(path, key, val, data_start, &entries[k++]);
        if (rc < 0) goto out;
    }

    uint64_t size = id->size;
    rc = check_layout(path, entries, k, data_start, size - data_start, strict);
    if (rc < 0) goto out;

    uint32_t file;
    rc = hoist__table_add_file(t, path, size, id->mtime_ns, data_start, &file);
    if (rc < 0) goto out;
    t->files[file].dev = id->dev;
    t->files[file].ino = id->ino;
    if (json_is_object(meta)) {
        json_object_foreach((json_t *)meta, key, val)
        {
            rc = hoist__table_add_meta(t, key, json_string_value(val));
            if (rc < 0) goto out;
        }
    }
    for (size_t i = 0; i < k; i++) {
        hoist__tensor tt = {.name = (char *)entries[i].name,
                            .dtype = entries[i].dtype,
                            .ndim = entries[i].ndim,
                            .file = file,
                            .offset = data_start + entries[i].begin,
                            .nbytes = entries[i].nbytes};
        memcpy(tt.shape, entries[i].shape, sizeof tt.shape);
        rc = hoist__table_add_tensor(t, &tt);
        if (rc < 0) {
            hoist__err_prefix(rc, "%s", path);
            goto out;
        }
    }
out:
    hoist__free(entries);
    json_decref(root);
    return rc;
}

/* ---- the file ------------------------------------------------------------------------------ */

/* The header length from the first 8 bytes, bounded by the limit and by the file's size. */
static int header_len(const char *path, const unsigned char lenbuf[8], uint64_t size,
                      uint64_t *out)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenbuf[i];
    RETURN_IF(n > ST_MAX_HEADER, HOIST_E_HEADER_TOO_LARGE,
              "%s: header length %llu is above the limit of %llu bytes", path,
              (unsigned long long)n, ST_MAX_HEADER);
    RETURN_IF(n > size - 8, HOIST_E_BAD_HEADER_LEN,
              "%s: header length %llu runs past the end of the file (%llu bytes, header would end "
              "at byte %llu)",
              path, (unsigned long long)n, (unsigned long long)size, (unsigned long long)(8 + n));
    *out = n;
    return HOIST_OK;
}

int hoist__safetensors_parse_fd(hoist__table *t, const char *path, int fd, int strict)
{
    RETURN_IF(!t || !path || fd < 0, HOIST_E_INVALID_ARG, "safetensors: NULL table or path");
    struct stat st;
    RETURN_IF_ERR(hoist__io_fstat_regular(fd, path, &st));
    uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    RETURN_IF(size < 8, HOIST_E_TRUNCATED_HEADER,
              "%s: file is %llu bytes, too short for the 8-byte header length", path,
              (unsigned long long)size);

    unsigned char lenbuf[8];
    int64_t r = hoist__pread_full(fd, lenbuf, 8, 0);
    RETURN_IF(r < 0, HOIST_E_IO, "%s: read failed at byte 0: %s", path, strerror((int)-r));
    RETURN_IF(r < 8, HOIST_E_TRUNCATED_HEADER,
              "%s: file shrank to %lld bytes while reading the header length", path, (long long)r);
    uint64_t n = 0;
    RETURN_IF_ERR(header_len(path, lenbuf, size, &n));

    char *buf = hoist__malloc(n ? (size_t)n : 1);
    RETURN_IF(!buf, HOIST_E_NOMEM, "%s: out of memory for a %llu-byte header", path,
              (unsigned long long)n);
    r = hoist__pread_full(fd, buf, n, 8);
    int rc;
    if (r < 0)
        rc = hoist__err(HOIST_E_IO, "%s: read failed at byte 8: %s", path, strerror((int)-r));
    else if ((uint64_t)r < n)
        rc = hoist__err(HOIST_E_BAD_HEADER_LEN,
                        "%s: file shrank while reading the header: %lld of %llu bytes at byte 8",
                        path, (long long)r, (unsigned long long)n);
    else {
        file_id id = {.size = size,
                      .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                      .dev = (uint64_t)st.st_dev,
                      .ino = (uint64_t)st.st_ino};
        rc = parse_header(t, path, buf, (size_t)n, &id, strict);
    }
    hoist__free(buf);
    return rc;
}

int hoist__safetensors_parse(hoist__table *t, const char *path, int strict)
{
    RETURN_IF(!t || !path, HOIST_E_INVALID_ARG, "safetensors: NULL table or path");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused after fstat. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    int rc = hoist__safetensors_parse_fd(t, path, fd, strict);
    close(fd);
    return rc;
}

int hoist__safetensors_parse_buffer(hoist__table *t, const char *path, const void *data,
                                    size_t len, int strict)
{
    RETURN_IF(!t || !path || (!data && len), HOIST_E_INVALID_ARG,
              "safetensors: NULL table, path or data");
    RETURN_IF(len < 8, HOIST_E_TRUNCATED_HEADER,
              "%s: %zu bytes, too short for the 8-byte header length", path, len);
    uint64_t n = 0;
    RETURN_IF_ERR(header_len(path, data, len, &n));
    file_id id = {.size = len};
    return parse_header(t, path, (const char *)data + 8, (size_t)n, &id, strict);
}
