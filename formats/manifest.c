/* Manifests (layout in manifest.h): strict parsing, writing, and matching against a table. */
#include "formats/manifest.h"
#include "formats/json_kind.h"
#include "core/core.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NM "%.200s"
#define FORMAT_NAME "hoist-manifest"
#define HASH_NAME "xxh3-64"

void hoist__manifest_free(hoist__manifest *m)
{
    if (!m) return;
    for (uint32_t i = 0; m->files && i < m->nfiles; i++) {
        hoist__free(m->files[i].name);
        hoist__free(m->files[i].chunks);
    }
    for (size_t i = 0; m->tensors && i < m->ntensors; i++) hoist__free(m->tensors[i].name);
    hoist__free(m->files);
    hoist__free(m->tensors);
    hoist__free(m->hoist_version);
    memset(m, 0, sizeof *m);
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct rctx {
    const char *path;
    hoist__manifest *m;
} rctx;

/* Every key of obj is one of `keys` (NULL-terminated), and each of them is present. */
static int exact_keys(const rctx *c, const json_t *obj, const char *const *keys, const char *where)
{
    RETURN_IF(!json_is_object(obj), HOIST_E_BAD_MANIFEST, "%s: %s is a JSON %s, not an object",
              c->path, where, hoist__json_kind(obj));
    size_t n = 0;
    for (; keys[n]; n++)
        RETURN_IF(!json_object_get(obj, keys[n]), HOIST_E_BAD_MANIFEST,
                  "%s: %s has no \"%s\"", c->path, where, keys[n]);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (i < n && strcmp(keys[i], k) != 0) i++;
        RETURN_IF(i == n, HOIST_E_BAD_MANIFEST, "%s: %s has an unknown key \"" NM "\"", c->path,
                  where, k);
    }
    return HOIST_OK;
}

static int get_u64(const rctx *c, const json_t *obj, const char *key, const char *where,
                   uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    RETURN_IF(!json_is_integer(v), HOIST_E_BAD_MANIFEST,
              "%s: %s: \"%s\" is a JSON %s, not an integer", c->path, where, key,
              hoist__json_kind(v));
    json_int_t x = json_integer_value(v);
    RETURN_IF(x < 0, HOIST_E_BAD_MANIFEST, "%s: %s: \"%s\" is negative (%lld)", c->path, where,
              key, (long long)x);
    *out = (uint64_t)x;
    return HOIST_OK;
}

static int get_str(const rctx *c, const json_t *obj, const char *key, const char *where,
                   const char **out)
{
    const json_t *v = json_object_get(obj, key);
    RETURN_IF(!json_is_string(v), HOIST_E_BAD_MANIFEST,
              "%s: %s: \"%s\" is a JSON %s, not a string", c->path, where, key,
              hoist__json_kind(v));
    *out = json_string_value(v);
    RETURN_IF(strlen(*out) != json_string_length(v), HOIST_E_BAD_MANIFEST,
              "%s: %s: \"%s\" holds a NUL character", c->path, where, key);
    return HOIST_OK;
}

static int hex_value(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = s[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    if (s[16]) return -1;
    *out = v;
    return 0;
}

static int get_hash(const rctx *c, const json_t *v, const char *where, uint64_t *out)
{
    RETURN_IF(!json_is_string(v) || json_string_length(v) != 16 ||
                  hex_value(json_string_value(v), out) != 0,
              HOIST_E_BAD_MANIFEST, "%s: %s is not 16 lowercase hex digits", c->path, where);
    return HOIST_OK;
}

static int read_file_entry(const rctx *c, const json_t *e, uint32_t i, hoist__manifest_file *f)
{
    static const char *const keys[] = {"name",        "size",  "header_bytes", "header_xxh3",
                                       "first_chunk", "chunks", NULL};
    char where[64];
    snprintf(where, sizeof where, "files[%u]", i);
    RETURN_IF_ERR(exact_keys(c, e, keys, where));
    const char *name;
    RETURN_IF_ERR(get_str(c, e, "name", where, &name));
    RETURN_IF(!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0,
              HOIST_E_BAD_MANIFEST, "%s: %s: \"" NM "\" is not a file name", c->path, where,
              name);
    RETURN_IF_ERR(get_u64(c, e, "size", where, &f->size));
    RETURN_IF_ERR(get_u64(c, e, "header_bytes", where, &f->header_bytes));
    RETURN_IF_ERR(get_u64(c, e, "first_chunk", where, &f->first_chunk));
    RETURN_IF_ERR(get_hash(c, json_object_get(e, "header_xxh3"), where, &f->header_xxh3));
    RETURN_IF(f->header_bytes > f->size, HOIST_E_BAD_MANIFEST,
              "%s: %s: header of %llu bytes in a %llu-byte file", c->path, where,
              (unsigned long long)f->header_bytes, (unsigned long long)f->size);
    const json_t *chunks = json_object_get(e, "chunks");
    RETURN_IF(!json_is_array(chunks), HOIST_E_BAD_MANIFEST,
              "%s: %s: \"chunks\" is a JSON %s, not an array", c->path, where,
              hoist__json_kind(chunks));
    f->nchunks = json_array_size(chunks);
    uint64_t most = f->size / c->m->chunk_bytes + 1;
    RETURN_IF(f->nchunks > most || f->first_chunk > most ||
                  f->first_chunk + f->nchunks > most,
              HOIST_E_BAD_MANIFEST,
              "%s: %s: chunks %llu..+%llu do not fit a %llu-byte file in %llu-byte chunks",
              c->path, where, (unsigned long long)f->first_chunk,
              (unsigned long long)f->nchunks, (unsigned long long)f->size,
              (unsigned long long)c->m->chunk_bytes);
    f->name = hoist__strdup(name);
    f->chunks = hoist__malloc((f->nchunks ? f->nchunks : 1) * sizeof *f->chunks);
    RETURN_IF(!f->name || !f->chunks, HOIST_E_NOMEM, "%s: out of memory", c->path);
    for (uint64_t k = 0; k < f->nchunks; k++) {
        char w[96];
        snprintf(w, sizeof w, "%s.chunks[%llu]", where, (unsigned long long)k);
        RETURN_IF_ERR(get_hash(c, json_array_get(chunks, k), w, &f->chunks[k]));
    }
    return HOIST_OK;
}

static int read_tensor_entry(const rctx *c, const json_t *e, size_t i, hoist__manifest_tensor *t)
{
    static const char *const keys[] = {"name", "file", "offset", "bytes", "xxh3", NULL};
    char where[64];
    snprintf(where, sizeof where, "tensors[%zu]", i);
    RETURN_IF_ERR(exact_keys(c, e, keys, where));
    const char *name;
    uint64_t file;
    RETURN_IF_ERR(get_str(c, e, "name", where, &name));
    RETURN_IF(!*name || strlen(name) > HOIST_MAX_NAME, HOIST_E_BAD_MANIFEST,
              "%s: %s: tensor name of %zu bytes", c->path, where, strlen(name));
    RETURN_IF_ERR(get_u64(c, e, "file", where, &file));
    RETURN_IF(file >= c->m->nfiles, HOIST_E_BAD_MANIFEST,
              "%s: %s: file %llu of %u", c->path, where, (unsigned long long)file, c->m->nfiles);
    t->file = (uint32_t)file;
    RETURN_IF_ERR(get_u64(c, e, "offset", where, &t->offset));
    RETURN_IF_ERR(get_u64(c, e, "bytes", where, &t->nbytes));
    uint64_t end;
    RETURN_IF(!hoist__add_u64(t->offset, t->nbytes, &end) || end > c->m->files[file].size,
              HOIST_E_BAD_MANIFEST, "%s: %s: bytes %llu..+%llu lie outside its %llu-byte file",
              c->path, where, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
              (unsigned long long)c->m->files[file].size);
    RETURN_IF_ERR(get_hash(c, json_object_get(e, "xxh3"), where, &t->xxh3));
    t->name = hoist__strdup(name);
    RETURN_IF(!t->name, HOIST_E_NOMEM, "%s: out of memory", c->path);
    return HOIST_OK;
}

static int read_root(const rctx *c, const json_t *root)
{
    static const char *const keys[] = {"format", "version", "hoist_version", "hash",
                                       "chunk_bytes", "files", "tensors", NULL};
    hoist__manifest *m = c->m;
    RETURN_IF_ERR(exact_keys(c, root, keys, "the manifest"));
    const char *s;
    uint64_t v;
    RETURN_IF_ERR(get_str(c, root, "format", "the manifest", &s));
    RETURN_IF(strcmp(s, FORMAT_NAME) != 0, HOIST_E_BAD_MANIFEST,
              "%s: format \"" NM "\" (expected \"" FORMAT_NAME "\")", c->path, s);
    RETURN_IF_ERR(get_u64(c, root, "version", "the manifest", &v));
    RETURN_IF(v != HOIST_MANIFEST_VERSION, HOIST_E_BAD_MANIFEST,
              "%s: manifest version %llu (this hoist reads version %d)", c->path,
              (unsigned long long)v, HOIST_MANIFEST_VERSION);
    RETURN_IF_ERR(get_str(c, root, "hash", "the manifest", &s));
    RETURN_IF(strcmp(s, HASH_NAME) != 0, HOIST_E_BAD_MANIFEST,
              "%s: hash \"" NM "\" (expected \"" HASH_NAME "\")", c->path, s);
    RETURN_IF_ERR(get_str(c, root, "hoist_version", "the manifest", &s));
    m->hoist_version = hoist__strdup(s);
    RETURN_IF(!m->hoist_version, HOIST_E_NOMEM, "%s: out of memory", c->path);
    RETURN_IF_ERR(get_u64(c, root, "chunk_bytes", "the manifest", &m->chunk_bytes));
    RETURN_IF(m->chunk_bytes < HOIST_MANIFEST_MIN_CHUNK || m->chunk_bytes > HOIST_MANIFEST_MAX_CHUNK ||
                  (m->chunk_bytes & (m->chunk_bytes - 1)),
              HOIST_E_BAD_MANIFEST, "%s: chunk_bytes %llu is not a power of two from %u to %u",
              c->path, (unsigned long long)m->chunk_bytes, HOIST_MANIFEST_MIN_CHUNK,
              HOIST_MANIFEST_MAX_CHUNK);
    const json_t *files = json_object_get(root, "files"), *tensors = json_object_get(root, "tensors");
    RETURN_IF(!json_is_array(files) || !json_is_array(tensors), HOIST_E_BAD_MANIFEST,
              "%s: \"files\" and \"tensors\" must be arrays", c->path);
    RETURN_IF(json_array_size(files) > HOIST_MAX_FILES ||
                  json_array_size(tensors) > HOIST_MAX_TENSORS,
              HOIST_E_TOO_MANY, "%s: %zu files and %zu tensors (at most %u and %u)", c->path,
              json_array_size(files), json_array_size(tensors), HOIST_MAX_FILES,
              HOIST_MAX_TENSORS);
    m->files = hoist__calloc(json_array_size(files) + 1, sizeof *m->files);
    m->tensors = hoist__calloc(json_array_size(tensors) + 1, sizeof *m->tensors);
    RETURN_IF(!m->files || !m->tensors, HOIST_E_NOMEM, "%s: out of memory", c->path);
    for (size_t i = 0; i < json_array_size(files); i++) {
        m->nfiles = (uint32_t)i + 1; /* so that a failure frees the entry */
        RETURN_IF_ERR(read_file_entry(c, json_array_get(files, i), (uint32_t)i, &m->files[i]));
    }
    for (size_t i = 0; i < json_array_size(tensors); i++) {
        m->ntensors = i + 1;
        RETURN_IF_ERR(read_tensor_entry(c, json_array_get(tensors, i), i, &m->tensors[i]));
    }
    return HOIST_OK;
}

static int slurp(const char *path, char **text, size_t *len)
{
    int fd = hoist__io_open(path, O_RDONLY | O_CLOEXEC);
    RETURN_IF(fd < 0 && errno == ENOENT, HOIST_E_NOT_FOUND,
              "%s: no manifest (write one with hoist sum)", path);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    int rc = hoist__io_read_whole(fd, path, HOIST_MANIFEST_MAX_BYTES, HOIST_E_BAD_MANIFEST,
                                  "a manifest", text, len);
    close(fd);
    return rc;
}

int hoist__manifest_read(const char *path, hoist__manifest *m)
{
    memset(m, 0, sizeof *m);
    char *text = NULL;
    size_t len = 0;
    int rc = slurp(path, &text, &len);
    if (rc == HOIST_OK) rc = hoist__manifest_read_buffer(path, text, len, m);
    hoist__free(text);
    return rc;
}

int hoist__manifest_read_buffer(const char *path, const char *text, size_t len,
                                hoist__manifest *m)
{
    memset(m, 0, sizeof *m);
    RETURN_IF(len > HOIST_MANIFEST_MAX_BYTES, HOIST_E_BAD_MANIFEST,
              "%s: %zu bytes (a manifest has at most %llu)", path, len,
              (unsigned long long)HOIST_MANIFEST_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hoist__err(HOIST_E_BAD_MANIFEST, "%s: %s at byte %d (line %d, column %d): %s",
                          path,
                          json_error_code(&jerr) == json_error_duplicate_key ? "duplicate key"
                                                                             : "malformed JSON",
                          jerr.position, jerr.line, jerr.column, jerr.text);
    rctx c = {.path = path, .m = m};
    int rc = read_root(&c, root);
    json_decref(root);
    if (rc < 0) hoist__manifest_free(m);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

static json_t *hex(uint64_t v)
{
    char s[17];
    snprintf(s, sizeof s, "%016llx", (unsigned long long)v);
    return json_string(s);
}

/* Appends v to arr, stealing it; false when either allocation failed. */
static bool push(json_t *arr, json_t *v) { return v && json_array_append_new(arr, v) == 0; }

static json_t *to_json(const hoist__manifest *m)
{
    json_t *files = json_array(), *tensors = json_array();
    bool ok = files && tensors;
    for (uint32_t i = 0; ok && i < m->nfiles; i++) {
        const hoist__manifest_file *f = &m->files[i];
        json_t *chunks = json_array();
        for (uint64_t k = 0; chunks && k < f->nchunks && ok; k++) ok = push(chunks, hex(f->chunks[k]));
        ok = ok && push(files, json_pack("{s:s, s:I, s:I, s:o, s:I, s:o}", "name", f->name, "size",
                                         (json_int_t)f->size, "header_bytes",
                                         (json_int_t)f->header_bytes, "header_xxh3",
                                         hex(f->header_xxh3), "first_chunk",
                                         (json_int_t)f->first_chunk, "chunks", chunks));
    }
    for (size_t i = 0; ok && i < m->ntensors; i++) {
        const hoist__manifest_tensor *t = &m->tensors[i];
        ok = push(tensors, json_pack("{s:s, s:I, s:I, s:I, s:o}", "name", t->name, "file",
                                     (json_int_t)t->file, "offset", (json_int_t)t->offset,
                                     "bytes", (json_int_t)t->nbytes, "xxh3", hex(t->xxh3)));
    }
    json_t *root = ok ? json_pack("{s:s, s:i, s:s, s:s, s:I, s:o, s:o}", "format", FORMAT_NAME,
                                  "version", HOIST_MANIFEST_VERSION, "hoist_version",
                                  hoist_version(), "hash", HASH_NAME, "chunk_bytes",
                                  (json_int_t)m->chunk_bytes, "files", files, "tensors", tensors)
                      : NULL;
    if (!root) {
        json_decref(files);
        json_decref(tensors);
    }
    return root;
}

int hoist__manifest_write(const char *path, const hoist__manifest *m)
{
    json_t *root = to_json(m);
    RETURN_IF(!root, HOIST_E_NOMEM, "%s: out of memory building the manifest", path);
    size_t n = strlen(path) + 16;
    char *tmp = hoist__malloc(n);
    if (!tmp) {
        json_decref(root);
        return hoist__err(HOIST_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    int rc = HOIST_OK;
    if (fd < 0) {
        rc = hoist__err(HOIST_E_OPEN, "%s: cannot create a file beside it: %s", path,
                        strerror(errno));
    } else {
        if (fchmod(fd, 0644) != 0 || json_dumpfd(root, fd, JSON_INDENT(1) | JSON_COMPACT) != 0 ||
            write(fd, "\n", 1) != 1)
            rc = hoist__err(HOIST_E_IO, "%s: writing: %s", tmp, strerror(errno));
        if (close(fd) != 0 && rc == HOIST_OK)
            rc = hoist__err(HOIST_E_IO, "%s: close: %s", tmp, strerror(errno));
        if (rc == HOIST_OK && rename(tmp, path) != 0)
            rc = hoist__err(HOIST_E_IO, "%s: cannot rename to %s: %s", tmp, path,
                            strerror(errno));
        if (rc < 0) unlink(tmp);
    }
    hoist__free(tmp);
    json_decref(root);
    return rc;
}

/* ---- matching a table --------------------------------------------------------------------- */

void hoist__manifest_chunk_range(const hoist__table *t, uint32_t f, uint64_t cb, uint64_t *first,
                                 uint64_t *n)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        if (x->file != f || !x->nbytes) continue;
        if (x->offset < lo) lo = x->offset;
        if (x->offset + x->nbytes > hi) hi = x->offset + x->nbytes;
    }
    *first = lo == UINT64_MAX ? 0 : lo / cb;
    *n = lo == UINT64_MAX ? 0 : (hi - 1) / cb - lo / cb + 1;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int match_files(const hoist__manifest *m, const hoist__table *t, const char *path)
{
    RETURN_IF(m->nfiles != t->nfiles, HOIST_E_BAD_MANIFEST,
              "%s: lists %u files, the model has %u", path, m->nfiles, t->nfiles);
    for (uint32_t i = 0; i < t->nfiles; i++) {
        const hoist__manifest_file *mf = &m->files[i];
        const hoist__file *f = &t->files[i];
        RETURN_IF(strcmp(mf->name, base_name(f->path)) != 0, HOIST_E_BAD_MANIFEST,
                  "%s: file %u is " NM ", the model's is %s", path, i, mf->name, f->path);
        RETURN_IF(mf->size != f->size, HOIST_E_INTEGRITY,
                  "%s: %llu bytes, the manifest %s recorded %llu (changed since hoist sum?)",
                  f->path, (unsigned long long)f->size, path, (unsigned long long)mf->size);
        RETURN_IF(mf->header_bytes != f->data_start, HOIST_E_INTEGRITY,
                  "%s: its header is %llu bytes, the manifest %s recorded %llu", f->path,
                  (unsigned long long)f->data_start, path,
                  (unsigned long long)mf->header_bytes);
        uint64_t first, n;
        hoist__manifest_chunk_range(t, i, m->chunk_bytes, &first, &n);
        RETURN_IF(mf->first_chunk != first || mf->nchunks != n, HOIST_E_INTEGRITY,
                  "%s: its tensor data spans chunks %llu..+%llu, the manifest %s records "
                  "%llu..+%llu",
                  f->path, (unsigned long long)first, (unsigned long long)n, path,
                  (unsigned long long)mf->first_chunk, (unsigned long long)mf->nchunks);
    }
    return HOIST_OK;
}

int hoist__manifest_match(const hoist__manifest *m, const hoist__table *t, const char *path)
{
    RETURN_IF_ERR(match_files(m, t, path));
    RETURN_IF(m->ntensors != t->ntensors, HOIST_E_BAD_MANIFEST,
              "%s: lists %zu tensors, the model has %zu", path, m->ntensors, t->ntensors);
    uint8_t *seen = hoist__calloc(t->ntensors + 1, 1);
    RETURN_IF(!seen, HOIST_E_NOMEM, "%s: out of memory", path);
    int rc = HOIST_OK;
    for (size_t i = 0; rc == HOIST_OK && i < m->ntensors; i++) {
        const hoist__manifest_tensor *mt = &m->tensors[i];
        long ti = hoist__table_find(t, mt->name);
        const hoist__tensor *x = ti >= 0 ? &t->tensors[ti] : NULL;
        if (!x)
            rc = hoist__err(HOIST_E_BAD_MANIFEST, "%s: tensor '" NM "' is not in the model", path,
                            mt->name);
        else if (seen[ti]++)
            rc = hoist__err(HOIST_E_BAD_MANIFEST, "%s: tensor '" NM "' is listed twice", path,
                            mt->name);
        else if (x->file != mt->file || x->offset != mt->offset || x->nbytes != mt->nbytes)
            rc = hoist__err(HOIST_E_INTEGRITY,
                            "%s: tensor '" NM "' holds bytes %llu..+%llu, the manifest %s "
                            "recorded %llu..+%llu of " NM,
                            t->files[x->file].path, x->name, (unsigned long long)x->offset,
                            (unsigned long long)x->nbytes, path, (unsigned long long)mt->offset,
                            (unsigned long long)mt->nbytes, m->files[mt->file].name);
    }
    hoist__free(seen);
    return rc;
}
