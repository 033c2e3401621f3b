/* hoist_model: opening a checkpoint (single file, directory or index) and querying its table. */
#include "formats/packed.h"
#include "formats/table.h"
#include "core/abi.h"
#include "core/core.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Present at all: a FIFO or directory under a model file's name is then refused by the parser
 * with a status that says so, instead of "no model here". */
static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A GGUF file starts with its magic; a .gguf name without it is a GGUF file with a bad magic,
 * for the GGUF parser to report. Anything else is parsed as safetensors. */
static bool is_gguf(const char *path)
{
    if (ends_with(path, ".gguf")) return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return false;
    struct stat st;
    unsigned char magic[4];
    bool yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
               hoist__pread_full(fd, magic, 4, 0) == 4 && hoist__gguf_magic(magic);
    close(fd);
    return yes;
}

static int parse_file(hoist__table *t, const char *path, int strict)
{
    if (is_gguf(path)) return hoist__gguf_parse(t, path, strict);
    return hoist__safetensors_parse(t, path, strict);
}

/* The directory's only *.gguf file (release with hoist__free); NULL when it has none or several. */
static char *single_gguf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char *found = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".gguf") || de->d_name[0] == '.') continue;
        if (++n > 1) break;
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        found = hoist__malloc(len);
        if (found) snprintf(found, len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n == 1 && found) return found;
    hoist__free(found);
    return NULL;
}

/* A directory holds a sharded checkpoint (its index), one model.safetensors, a packed
 * model.hoist, a model.gguf, or a single .gguf file. */
static int parse_dir(hoist__table *t, const char *dir, int strict)
{
    size_t n = strlen(dir) + 64;
    char *p = hoist__malloc(n);
    RETURN_IF(!p, HOIST_E_NOMEM, "%s: out of memory", dir);
    int rc;
    char *gguf = NULL;
    snprintf(p, n, "%s/model.safetensors.index.json", dir);
    if (exists(p)) {
        rc = hoist__safetensors_index_parse(t, p, strict);
        goto out;
    }
    snprintf(p, n, "%s/model.safetensors", dir);
    if (exists(p)) {
        rc = hoist__safetensors_parse(t, p, strict);
        goto out;
    }
    snprintf(p, n, "%s/" HOIST_PACKED_DIR_NAME, dir);
    if (exists(p)) {
        rc = hoist__packed_parse(t, p);
        goto out;
    }
    snprintf(p, n, "%s/model.gguf", dir);
    if (exists(p) || (gguf = single_gguf(dir)) != NULL) {
        rc = hoist__gguf_parse(t, gguf ? gguf : p, strict);
        goto out;
    }
    rc = hoist__err(HOIST_E_NOT_FOUND,
                    "%s: directory holds none of model.safetensors.index.json, "
                    "model.safetensors, " HOIST_PACKED_DIR_NAME ", model.gguf or a single .gguf "
                    "file",
                    dir);
out:
    if (rc == HOIST_OK) rc = hoist__table_set_origin(t, gguf ? gguf : p);
    hoist__free(gguf);
    hoist__free(p);
    return rc;
}

int hoist_model_open(const char *path, const hoist_open_options *opts, hoist_model **out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_model_open: out is NULL");
    *out = NULL;
    RETURN_IF(!path || !*path, HOIST_E_INVALID_ARG, "hoist_model_open: empty path");
    static const hoist_open_options def = HOIST_OPEN_OPTIONS_DEFAULT;
    hoist_open_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_open_options, &o, opts, &def));

    hoist_model *m = hoist__calloc(1, sizeof *m);
    RETURN_IF(!m, HOIST_E_NOMEM, "%s: out of memory", path);
    atomic_init(&m->refs, 1);
    hoist__table_init(&m->table);

    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        rc = parse_dir(&m->table, path, o.strict);
    else if (ends_with(path, ".json"))
        rc = hoist__safetensors_index_parse(&m->table, path, o.strict);
    else if ((rc = hoist__packed_probe(path)) != 0) /* 1: packed; < 0: unreadable */
        rc = rc > 0 ? hoist__packed_parse(&m->table, path) : rc;
    else
        rc = parse_file(&m->table, path, o.strict);
    if (rc == HOIST_OK && !m->table.origin) rc = hoist__table_set_origin(&m->table, path);
    if (rc == HOIST_OK) rc = hoist__table_finish(&m->table);
    if (rc < 0) {
        hoist__table_free(&m->table);
        hoist__free(m);
        return rc;
    }
    *out = m;
    hoist__err_clear();
    return HOIST_OK;
}

void hoist__model_retain(hoist_model *m) { atomic_fetch_add(&m->refs, 1); }

void hoist_model_free(hoist_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    hoist__table_free(&m->table);
    hoist__free(m);
}

size_t hoist_model_tensor_count(const hoist_model *m) { return m ? m->table.ntensors : 0; }

int hoist_model_tensor(const hoist_model *m, size_t index, hoist_tensor_info *out)
{
    RETURN_IF(!m || !out, HOIST_E_INVALID_ARG, "hoist_model_tensor: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_tensor_info, out));
    RETURN_IF(index >= m->table.ntensors, HOIST_E_INVALID_ARG,
              "tensor index %zu out of range (%zu tensors)", index, m->table.ntensors);
    const hoist__tensor *t = &m->table.tensors[index];
    hoist_tensor_info r = {.name = t->name,
                           .dtype = t->dtype,
                           .ndim = t->ndim,
                           .nbytes = t->nbytes,
                           .file = t->file,
                           .offset = t->offset};
    memcpy(r.shape, t->shape, sizeof r.shape);
    HOIST__OUT(hoist_tensor_info, out, &r);
    return HOIST_OK;
}

int hoist_model_find(const hoist_model *m, const char *name, size_t *index)
{
    RETURN_IF(!m || !name || !index, HOIST_E_INVALID_ARG, "hoist_model_find: NULL argument");
    long i = hoist__table_find(&m->table, name);
    RETURN_IF(i < 0, HOIST_E_NOT_FOUND, "no tensor named '%s'", name);
    *index = (size_t)i;
    return HOIST_OK;
}

size_t hoist_model_file_count(const hoist_model *m) { return m ? m->table.nfiles : 0; }

const char *hoist_model_file_path(const hoist_model *m, size_t i)
{
    return m && i < m->table.nfiles ? m->table.files[i].path : NULL;
}

uint64_t hoist_model_file_size(const hoist_model *m, size_t i)
{
    return m && i < m->table.nfiles ? m->table.files[i].size : 0;
}

uint64_t hoist_model_total_bytes(const hoist_model *m) { return m ? m->table.total_bytes : 0; }

size_t hoist_model_metadata_count(const hoist_model *m) { return m ? m->table.nmeta : 0; }

/* Fills the library's full-size *out (copied to the caller's by HOIST__OUT). */
static void meta_view(const hoist__meta *e, hoist_meta_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = e->type;
    out->elem_type = e->elem_type;
    out->count = e->count;
    out->text = e->value;
    if (e->type == HOIST_META_STRING) {
        out->str = e->value;
        out->str_len = e->str_len;
    } else if (e->type == HOIST_META_ARRAY) {
        out->array = e->array;
        out->str_lens = e->str_lens;
    } else {
        memcpy(&out->num, &e->num, sizeof out->num);
    }
}

int hoist_model_metadata(const hoist_model *m, size_t index, const char **key, const char **value)
{
    RETURN_IF(!m || index >= m->table.nmeta, HOIST_E_INVALID_ARG,
              "metadata index %zu out of range", index);
    if (key) *key = m->table.meta[index].key;
    if (value) *value = m->table.meta[index].value;
    return HOIST_OK;
}

int hoist_model_metadata_value(const hoist_model *m, size_t index, const char **key,
                               hoist_meta_value *out)
{
    RETURN_IF(!m || !out || index >= m->table.nmeta, HOIST_E_INVALID_ARG,
              "metadata index %zu out of range (or NULL argument)", index);
    RETURN_IF_ERR(HOIST__CHECK(hoist_meta_value, out));
    if (key) *key = m->table.meta[index].key;
    hoist_meta_value v;
    meta_view(&m->table.meta[index], &v);
    HOIST__OUT(hoist_meta_value, out, &v);
    return HOIST_OK;
}

int hoist_model_geometry(const hoist_model *model, hoist_geometry *out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_model_geometry: out is NULL");
    RETURN_IF_ERR(HOIST__CHECK(hoist_geometry, out));
    HOIST__ZERO(hoist_geometry, out); /* what a failure leaves */
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_model_geometry: model is NULL");
    hoist_geometry g;
    RETURN_IF_ERR(hoist__geometry_of_table(&model->table, &g));
    HOIST__OUT(hoist_geometry, out, &g);
    hoist__err_clear();
    return HOIST_OK;
}

const char *hoist_model_metadata_get(const hoist_model *m, const char *key)
{
    if (!m || !key) return NULL;
    long i = hoist__table_find_meta(&m->table, key);
    return i < 0 ? NULL : m->table.meta[i].value;
}

int hoist_model_metadata_find(const hoist_model *m, const char *key, hoist_meta_value *out)
{
    RETURN_IF(!m || !key || !out, HOIST_E_INVALID_ARG, "hoist_model_metadata_find: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_meta_value, out));
    long i = hoist__table_find_meta(&m->table, key);
    RETURN_IF(i < 0, HOIST_E_NOT_FOUND, "no metadata key '%s'", key);
    hoist_meta_value v;
    meta_view(&m->table.meta[i], &v);
    HOIST__OUT(hoist_meta_value, out, &v);
    return HOIST_OK;
}
