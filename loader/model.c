/* hoist_model: opening a checkpoint (single file, directory or index, or a Hugging Face hub cache
 * entry) and querying its table.
 *
 * What a PATH may be, and how the files under it are found, is docs/PATHS.md. In short: every
 * file is opened once, relative to the descriptor of the directory it was found in (openat), and
 * that descriptor is what is parsed and whose fstat is recorded in the table; the name is never
 * resolved first and opened again. */
#include "formats/packed.h"
#include "formats/table.h"
#include "core/abi.h"
#include "core/core.h"
#include "core/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* O_NONBLOCK: a FIFO under a model file's name must not wait for a writer; the parser refuses it
 * after fstat, with a status that says what it is. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
/* A revision in refs/main is a 40-digit commit hash; anything much longer is not one. */
#define HUB_REF_MAX 256u

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* a + "/" + b (no doubled slash), or NULL when out of memory. */
static char *join(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    bool slash = n && a[n - 1] != '/';
    char *p = hoist__malloc(n + slash + m + 1);
    if (!p) return NULL;
    memcpy(p, a, n);
    if (slash) p[n] = '/';
    memcpy(p + n + slash, b, m + 1);
    return p;
}

enum kind { K_ANY, K_INDEX, K_SAFETENSORS, K_PACKED, K_GGUF };

/* Parses fd (named path, found in the directory open as dirfd) as `kind`; K_ANY picks by the
 * name and the first bytes: a packed container by its magic, GGUF by its magic or a .gguf name
 * (a .gguf file with a bad magic is a GGUF file for the GGUF parser to report), anything else as
 * safetensors. */
static int parse_fd(hoist__table *t, const char *path, int fd, int dirfd, enum kind kind,
                    int strict)
{
    if (kind == K_ANY) {
        int packed = hoist__packed_probe_fd(fd, path); /* 1: packed; < 0: unreadable */
        if (packed < 0) return packed;
        unsigned char magic[4];
        struct stat st;
        if (packed)
            kind = K_PACKED;
        else if (ends_with(path, ".gguf") ||
                 (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                  hoist__pread_full(fd, magic, 4, 0) == 4 && hoist__gguf_magic(magic)))
            kind = K_GGUF;
        else
            kind = K_SAFETENSORS;
    }
    switch (kind) {
    case K_INDEX: return hoist__safetensors_index_parse_fd(t, path, fd, dirfd, strict);
    case K_PACKED: return hoist__packed_parse_fd(t, path, fd);
    case K_GGUF: return hoist__gguf_parse_fd(t, path, fd, strict);
    default: return hoist__safetensors_parse_fd(t, path, fd, strict);
    }
}

/* Opens `name` in the directory open as dirfd (named dir), following a final symbolic link, and
 * parses it; the table's origin is then dir/name. */
static int parse_in_dir(hoist__table *t, const char *dir, int dirfd, const char *name,
                        enum kind kind, int strict)
{
    char *path = join(dir, name);
    RETURN_IF(!path, HOIST_E_NOMEM, "%s: out of memory", dir);
    int rc, fd = openat(dirfd, name, OPEN_FLAGS);
    if (fd < 0) {
        rc = hoist__err(HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    } else {
        rc = parse_fd(t, path, fd, dirfd, kind, strict);
        close(fd);
    }
    if (rc == HOIST_OK) rc = hoist__table_set_origin(t, path);
    hoist__free(path);
    return rc;
}

/* Present at all (a link followed): a FIFO or directory under a model file's name is then refused
 * by the parser with a status that says so, instead of "no model here". Only a probe: the file is
 * then opened, and what that open finds is what counts. */
static bool exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, 0) == 0;
}

/* The directory's only *.gguf file (release with hoist__free); NULL when it has none or several. */
static char *single_gguf(int dirfd)
{
    int dup_fd = openat(dirfd, ".", DIR_FLAGS);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0) close(dup_fd);
        return NULL;
    }
    char *found = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".gguf") || de->d_name[0] == '.') continue;
        if (++n > 1) break;
        found = hoist__strdup(de->d_name);
    }
    closedir(d);
    if (n == 1 && found) return found;
    hoist__free(found);
    return NULL;
}

static int parse_dir(hoist__table *t, const char *dir, int dirfd, int strict, int depth);

/* A Hugging Face hub repo folder (models--org--name): refs/main names the revision whose
 * snapshots/<rev> folder is the model. The revision is a name read from a file, so it is held to
 * one plain path component before it is used. */
static int parse_hub_repo(hoist__table *t, const char *dir, int dirfd, int strict, int depth)
{
    int fd = openat(dirfd, "refs/main", OPEN_FLAGS);
    RETURN_IF(fd < 0, HOIST_E_OPEN, "%s/refs/main: cannot open: %s", dir, strerror(errno));
    char *text = NULL;
    size_t len = 0;
    int rc = hoist__io_read_whole(fd, "refs/main", HUB_REF_MAX, HOIST_E_NOT_FOUND,
                                  "a hub ref", &text, &len);
    close(fd);
    if (rc < 0) return hoist__err_prefix(rc, "%s", dir);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    bool ok = len && strlen(text) == len && strcmp(text, ".") != 0 && strcmp(text, "..") != 0;
    for (size_t i = 0; ok && i < len; i++)
        ok = text[i] != '/' && (unsigned char)text[i] > 0x20 && text[i] != 0x7f;
    if (!ok) {
        hoist__free(text);
        return hoist__err(HOIST_E_NOT_FOUND,
                          "%s/refs/main does not name a revision (one path component: the "
                          "commit hash of a snapshots/ folder)",
                          dir);
    }
    char *snaps = join(dir, "snapshots"), *snap = snaps ? join(snaps, text) : NULL;
    rc = snap ? HOIST_OK : hoist__err(HOIST_E_NOMEM, "%s: out of memory", dir);
    int sfd = -1, rfd = -1;
    if (rc == HOIST_OK) {
        /* snapshots/ and the revision's folder are real directories in the hub cache */
        sfd = openat(dirfd, "snapshots", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rfd = sfd >= 0 ? openat(sfd, text, DIR_FLAGS | O_NOFOLLOW) : -1;
        if (rfd < 0)
            rc = hoist__err(HOIST_E_NOT_FOUND,
                            "%s: refs/main names revision %s, but %s is not a directory: %s", dir,
                            text, snap, strerror(errno));
    }
    if (rc == HOIST_OK) rc = parse_dir(t, snap, rfd, strict, depth + 1);
    if (rfd >= 0) close(rfd);
    if (sfd >= 0) close(sfd);
    hoist__free(snap);
    hoist__free(snaps);
    hoist__free(text);
    return rc;
}

/* A directory holds a sharded checkpoint (its index), one model.safetensors, a packed
 * model.hoist, a model.gguf, or a single .gguf file; or it is a hub repo folder. */
static int parse_dir(hoist__table *t, const char *dir, int dirfd, int strict, int depth)
{
    static const struct {
        const char *name;
        enum kind kind;
    } names[] = {{"model.safetensors.index.json", K_INDEX},
                 {"model.safetensors", K_SAFETENSORS},
                 {HOIST_PACKED_DIR_NAME, K_PACKED},
                 {"model.gguf", K_GGUF}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (exists_at(dirfd, names[i].name))
            return parse_in_dir(t, dir, dirfd, names[i].name, names[i].kind, strict);
    char *gguf = single_gguf(dirfd);
    if (gguf) {
        int rc = parse_in_dir(t, dir, dirfd, gguf, K_GGUF, strict);
        hoist__free(gguf);
        return rc;
    }
    if (depth == 0 && exists_at(dirfd, "refs/main") && exists_at(dirfd, "snapshots"))
        return parse_hub_repo(t, dir, dirfd, strict, depth);
    return hoist__err(HOIST_E_NOT_FOUND,
                      "%s: directory holds none of model.safetensors.index.json, "
                      "model.safetensors, " HOIST_PACKED_DIR_NAME ", model.gguf or a single .gguf "
                      "file, and is not a Hugging Face repo folder (refs/main, snapshots/)",
                      dir);
}

/* A Hugging Face model id: "org/name", two plain components. */
static bool is_model_id(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/')) return false;
    size_t a = (size_t)(slash - s);
    if ((a == 1 && s[0] == '.') || (a == 2 && s[0] == '.' && s[1] == '.')) return false;
    return strcmp(slash + 1, ".") != 0 && strcmp(slash + 1, "..") != 0;
}

/* The hub cache as huggingface_hub finds it: HF_HUB_CACHE (or its older name
 * HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub. NULL when none can be named (or out of memory). */
static char *hub_cache(void)
{
    const char *v;
    if ((v = getenv("HF_HUB_CACHE")) && *v) return hoist__strdup(v);
    if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v) return hoist__strdup(v);
    if ((v = getenv("HF_HOME")) && *v) return join(v, "hub");
    if ((v = getenv("XDG_CACHE_HOME")) && *v) return join(v, "huggingface/hub");
    if ((v = getenv("HOME")) && *v) return join(v, ".cache/huggingface/hub");
    return NULL;
}

/* PATH names nothing: as a model id, the repo folder models--org--name of the hub cache. */
static int parse_model_id(hoist__table *t, const char *id, int strict)
{
    char *cache = hub_cache();
    RETURN_IF(!cache, HOIST_E_OPEN,
              "%s: no such file or directory (and no Hugging Face cache to look the model id up "
              "in: HF_HUB_CACHE, HF_HOME and HOME are unset)",
              id);
    const char *slash = strchr(id, '/');
    size_t n = strlen(id) + sizeof "models--" + 2;
    char *repo_name = hoist__malloc(n);
    char *repo = NULL;
    if (repo_name) {
        snprintf(repo_name, n, "models--%.*s--%s", (int)(slash - id), id, slash + 1);
        repo = join(cache, repo_name);
    }
    int rc = repo ? HOIST_OK : hoist__err(HOIST_E_NOMEM, "%s: out of memory", id);
    int fd = repo ? open(repo, DIR_FLAGS) : -1;
    if (rc == HOIST_OK && fd < 0)
        rc = hoist__err(HOIST_E_OPEN,
                        "%s: no such file or directory, nor a model in the Hugging Face cache "
                        "(%s: %s)",
                        id, repo, strerror(errno));
    if (rc == HOIST_OK) rc = parse_dir(t, repo, fd, strict, 0);
    if (fd >= 0) close(fd);
    hoist__free(repo);
    hoist__free(repo_name);
    hoist__free(cache);
    return rc;
}

/* An index named by its own path: opened inside its directory, which the shards are then read
 * relative to. */
static int parse_index_path(hoist__table *t, const char *path, int strict)
{
    int dirfd, rc;
    const char *leaf;
    RETURN_IF_ERR(hoist__io_open_parent(path, DIR_FLAGS, &dirfd, &leaf));
    int fd = openat(dirfd, leaf, OPEN_FLAGS);
    if (fd < 0) {
        rc = hoist__err(HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(errno));
    } else {
        struct stat st;
        /* a directory that happens to end in .json is read as a directory */
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
            rc = parse_dir(t, path, fd, strict, 0);
        else
            rc = parse_fd(t, path, fd, dirfd, K_INDEX, strict);
        close(fd);
    }
    close(dirfd);
    return rc;
}

static int open_table(hoist__table *t, const char *path, int strict)
{
    if (ends_with(path, ".json")) return parse_index_path(t, path, strict);
    int fd = open(path, OPEN_FLAGS);
    if (fd < 0) {
        int e = errno;
        /* a model id only where PATH names nothing at all: a file or folder always wins */
        if (e == ENOENT && is_model_id(path)) return parse_model_id(t, path, strict);
        return hoist__err(HOIST_E_OPEN, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    int rc;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        rc = parse_dir(t, path, fd, strict, 0);
    else
        rc = parse_fd(t, path, fd, -1, K_ANY, strict);
    close(fd);
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

    int rc = open_table(&m->table, path, o.strict);
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
