/* The tensor table: growable arrays filled by the parsers, then sorted and indexed by name. */
#include "formats/table.h"
#include "core/core.h"
#include "core/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hoist__table_init(hoist__table *t) { memset(t, 0, sizeof *t); }

void hoist__table_free(hoist__table *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->nfiles; i++) hoist__free(t->files[i].path);
    for (size_t i = 0; i < t->ntensors; i++) hoist__free(t->tensors[i].name);
    for (size_t i = 0; i < t->nmeta; i++) hoist__meta_free(&t->meta[i]);
    hoist__free(t->files);
    hoist__free(t->tensors);
    hoist__free(t->meta);
    hoist__free(t->hash);
    hoist__free(t->origin);
    hoist__free(t->manifest);
    if (t->packed) t->packed_free(t->packed);
    hoist__table_init(t);
}

/* Grows *arr (of elem-sized items) to hold one more than n; caps at max items. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max, const char *what)
{
    if (n < *cap) return HOIST_OK;
    RETURN_IF(n >= max, HOIST_E_TOO_MANY, "more than %zu %s", max, what);
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > max) ncap = max;
    void *p = hoist__realloc(*arr, ncap * elem);
    RETURN_IF(!p, HOIST_E_NOMEM, "out of memory growing the table of %s to %zu", what, ncap);
    *arr = p;
    *cap = ncap;
    return HOIST_OK;
}

int hoist__table_add_file(hoist__table *t, const char *path, uint64_t size, int64_t mtime_ns,
                          uint64_t data_start, uint32_t *index)
{
    size_t cap = t->files_cap;
    RETURN_IF_ERR(grow((void **)&t->files, &cap, t->nfiles, sizeof *t->files, HOIST_MAX_FILES,
                       "files"));
    t->files_cap = (uint32_t)cap;
    char *p = hoist__strdup(path);
    RETURN_IF(!p, HOIST_E_NOMEM, "%s: out of memory", path);
    t->files[t->nfiles] =
        (hoist__file){.path = p, .size = size, .mtime_ns = mtime_ns, .data_start = data_start};
    if (index) *index = t->nfiles;
    t->nfiles++;
    return HOIST_OK;
}

int hoist__table_add_tensor(hoist__table *t, const hoist__tensor *tensor)
{
    RETURN_IF_ERR(grow((void **)&t->tensors, &t->tensors_cap, t->ntensors, sizeof *t->tensors,
                       HOIST_MAX_TENSORS, "tensors"));
    char *name = hoist__strdup(tensor->name);
    RETURN_IF(!name, HOIST_E_NOMEM, "tensor '%s': out of memory", tensor->name);
    t->tensors[t->ntensors] = *tensor;
    t->tensors[t->ntensors].name = name;
    t->ntensors++;
    return HOIST_OK;
}

int hoist__table_set_origin(hoist__table *t, const char *path)
{
    size_t n = strlen(path) + sizeof HOIST_MANIFEST_SUFFIX;
    char *p = hoist__strdup(path), *m = hoist__malloc(n);
    if (!p || !m) {
        hoist__free(p);
        hoist__free(m);
        return hoist__err(HOIST_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(m, n, "%s" HOIST_MANIFEST_SUFFIX, path);
    hoist__free(t->origin);
    hoist__free(t->manifest);
    t->origin = p;
    t->manifest = m;
    return HOIST_OK;
}

void hoist__meta_free(hoist__meta *m)
{
    if (!m) return;
    hoist__free(m->key);
    hoist__free(m->value);
    hoist__free(m->array);
    hoist__free(m->str_lens);
    hoist__free(m->blob);
    memset(m, 0, sizeof *m);
}

int hoist__table_add_meta(hoist__table *t, const char *key, const char *value)
{
    hoist__meta m = {.type = HOIST_META_STRING, .count = 1, .str_len = strlen(value)};
    m.key = hoist__strdup(key);
    m.value = hoist__strdup(value);
    if (!m.key || !m.value) {
        hoist__meta_free(&m);
        return hoist__err(HOIST_E_NOMEM, "metadata '%s': out of memory", key);
    }
    return hoist__table_take_meta(t, &m);
}

int hoist__table_take_meta(hoist__table *t, hoist__meta *m)
{
    int rc = grow((void **)&t->meta, &t->meta_cap, t->nmeta, sizeof *t->meta, HOIST_MAX_TENSORS,
                  "metadata entries");
    if (rc < 0) {
        hoist__meta_free(m);
        return rc;
    }
    t->meta[t->nmeta++] = *m;
    memset(m, 0, sizeof *m);
    return HOIST_OK;
}

long hoist__table_find_meta(const hoist__table *t, const char *key)
{
    for (size_t i = 0; i < t->nmeta; i++)
        if (strcmp(t->meta[i].key, key) == 0) return (long)i;
    return -1;
}

int hoist__file_open(const hoist__file *f, int flags, int *fd, int *os_errno)
{
    return hoist__io_open_same(f->path, f->size, f->dev, f->ino, flags, fd, os_errno);
}

static int cmp_tensor(const void *a, const void *b)
{
    const hoist__tensor *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    /* zero-size tensors may share an offset: order by name for a stable table */
    return strcmp(x->name, y->name);
}

/* FNV-1a: names are short and trusted only after parsing; any decent spread will do. */
static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int hoist__table_finish(hoist__table *t)
{
    if (t->ntensors > 1) qsort(t->tensors, t->ntensors, sizeof *t->tensors, cmp_tensor);
    hoist__free(t->hash);
    t->hash = NULL;
    size_t cap = 16;
    while (cap < t->ntensors * 2) cap *= 2;
    t->hash = hoist__malloc(cap * sizeof *t->hash);
    RETURN_IF(!t->hash, HOIST_E_NOMEM, "out of memory indexing %zu tensors", t->ntensors);
    memset(t->hash, 0xff, cap * sizeof *t->hash);
    t->hash_cap = cap;
    t->total_bytes = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *ti = &t->tensors[i];
        size_t slot = hash_name(ti->name) & (cap - 1);
        while (t->hash[slot] != UINT32_MAX) {
            const hoist__tensor *o = &t->tensors[t->hash[slot]];
            RETURN_IF(strcmp(o->name, ti->name) == 0, HOIST_E_DUPLICATE_KEY,
                      "tensor '%s' appears twice: in %s at offset %llu and in %s at offset %llu",
                      ti->name, t->files[o->file].path, (unsigned long long)o->offset,
                      t->files[ti->file].path, (unsigned long long)ti->offset);
            slot = (slot + 1) & (cap - 1);
        }
        t->hash[slot] = (uint32_t)i;
        t->total_bytes += ti->nbytes;
    }
    return t->packed ? t->packed_finish(t) : HOIST_OK;
}

long hoist__table_find(const hoist__table *t, const char *name)
{
    if (!t->hash) return -1;
    size_t slot = hash_name(name) & (t->hash_cap - 1);
    while (t->hash[slot] != UINT32_MAX) {
        if (strcmp(t->tensors[t->hash[slot]].name, name) == 0) return (long)t->hash[slot];
        slot = (slot + 1) & (t->hash_cap - 1);
    }
    return -1;
}
