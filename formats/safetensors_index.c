/* Sharded safetensors: model.safetensors.index.json maps every tensor name to the shard file that
 * holds it ({"metadata": {...}, "weight_map": {"name": "shard.safetensors", ...}}). Every shard
 * is parsed once, in sorted order of name, and the shards' tensors must match the weight_map
 * exactly, both ways.
 *
 * Shard names come from the index, which is untrusted: each is checked lexically (relative, no
 * empty or ".." component) and then opened relative to the index's directory descriptor, each
 * directory on the way opened without following a symbolic link, and the file itself with its
 * link followed wherever it leads (the Hugging Face hub cache links every file of a snapshot to
 * ../../blobs/<hash>). The descriptor opened is the one parsed and its fstat the identity
 * recorded: the name is never looked up a second time to be read. docs/PATHS.md has the rule. */
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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Index files of real models are a few hundred KB; this bounds the read. */
#define IDX_MAX_BYTES 100000000ull
#define NM "%.200s"


#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Reads the whole index file (bounded) into a malloc'd buffer. */
static int read_index(int fd, const char *path, char **out, size_t *len)
{
    return hoist__io_read_whole(fd, path, IDX_MAX_BYTES, HOIST_E_BAD_INDEX, "an index file", out,
                                len);
}

/* Absolute paths, empty components ("a//b", "a/") and ".." components are refused before the
 * file system is asked anything. */
static int check_shard_name(const char *index_path, const char *tensor, const char *shard,
                            size_t json_len)
{
    size_t n = strlen(shard);
    RETURN_IF(n != json_len, HOIST_E_BAD_INDEX,
              "%s: tensor '" NM "': shard name holds a NUL character", index_path, tensor);
    RETURN_IF(n == 0, HOIST_E_BAD_INDEX, "%s: tensor '" NM "' has an empty shard name",
              index_path, tensor);
    RETURN_IF(n >= PATH_MAX, HOIST_E_BAD_INDEX, "%s: tensor '" NM "': shard name is %zu bytes",
              index_path, tensor, n);
    RETURN_IF(shard[0] == '/', HOIST_E_PATH_ESCAPE,
              "%s: tensor '" NM "': shard '" NM "' is an absolute path, not one inside the model "
              "directory",
              index_path, tensor, shard);
    for (const char *p = shard;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        RETURN_IF(len == 2 && p[0] == '.' && p[1] == '.', HOIST_E_PATH_ESCAPE,
                  "%s: tensor '" NM "': shard '" NM "' has a '..' component", index_path, tensor,
                  shard);
        RETURN_IF(len == 0, HOIST_E_BAD_INDEX,
                  "%s: tensor '" NM "': shard '" NM "' has an empty component", index_path,
                  tensor, shard);
        if (!slash) break;
        p = slash + 1;
    }
    return HOIST_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct idx_ctx {
    const char *index_path;
    hoist__table *t;
    json_t *root;      /* the index document */
    json_t *shard_set; /* shard name -> null, to collect distinct names */
    const char **shards; /* sorted distinct names (owned by shard_set) */
    size_t nshards;
    char *dir;     /* directory of the index, as given ("" for the current one) */
    int dirfd;     /* that directory, open (-1 until needed) */
    int own_dirfd; /* dirfd was opened here, and is closed here */
    char *path;    /* scratch: dir + shard */
    json_t *seen;      /* tensor name -> shard position, over every shard parsed */
    json_t *meta_seen; /* __metadata__ keys already taken */
} idx_ctx;

static void ctx_free(idx_ctx *c)
{
    json_decref(c->root);
    json_decref(c->shard_set);
    json_decref(c->seen);
    json_decref(c->meta_seen);
    hoist__free(c->shards);
    hoist__free(c->dir);
    if (c->own_dirfd && c->dirfd >= 0) close(c->dirfd);
    hoist__free(c->path);
}

/* Keeps the first of each __metadata__ key across shards; drops later repeats. */
static int dedupe_meta(idx_ctx *c, size_t from)
{
    hoist__table *t = c->t;
    size_t w = from;
    for (size_t i = from; i < t->nmeta; i++) {
        if (json_object_get(c->meta_seen, t->meta[i].key)) {
            hoist__meta_free(&t->meta[i]);
            continue;
        }
        RETURN_IF(json_object_set_new(c->meta_seen, t->meta[i].key, json_null()) != 0,
                  HOIST_E_NOMEM, "%s: out of memory", c->index_path);
        t->meta[w++] = t->meta[i];
    }
    t->nmeta = w;
    return HOIST_OK;
}

/* Opens shard `name` relative to the index's directory: every directory on the way without
 * following a link (a linked directory could lead anywhere), the file itself following one (the
 * hub cache's ../../blobs/<hash>). *fd: the shard, open. */
static int open_shard(idx_ctx *c, const char *name, int *fd)
{
    *fd = -1;
    int cur = c->dirfd, rc = HOIST_OK;
    const char *p = name;
    for (const char *slash; rc == HOIST_OK && (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        char comp[NAME_MAX + 1];
        size_t len = (size_t)(slash - p);
        if (len > NAME_MAX) {
            rc = hoist__err(HOIST_E_MISSING_SHARD,
                            "%s: shard '" NM "' listed in the index is missing (a directory name "
                            "on its path is %zu bytes)",
                            c->index_path, name, len);
            break;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e = errno;
            struct stat st; /* only to say why: the open above decided */
            if ((e == ELOOP || e == ENOTDIR) && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                rc = hoist__err(HOIST_E_PATH_ESCAPE,
                                "%s: shard '" NM "': directory '%.*s' on its path is a symbolic "
                                "link (only the shard file itself may be one: docs/PATHS.md)",
                                c->index_path, name, (int)(slash - name), name);
            else if (e == ENOENT || e == ENOTDIR)
                rc = hoist__err(HOIST_E_MISSING_SHARD,
                                "%s: shard '" NM "' listed in the index is missing (%s: %s)",
                                c->index_path, name, c->path, strerror(e));
            else
                rc = hoist__err(HOIST_E_OPEN, "%s: shard '" NM "': cannot open %s: %s",
                                c->index_path, name, c->path, strerror(e));
        }
        if (cur != c->dirfd) close(cur);
        cur = next;
    }
    if (rc == HOIST_OK) {
        *fd = openat(cur, p, OPEN_FLAGS);
        if (*fd < 0) {
            int e = errno;
            rc = e == ENOENT || e == ENOTDIR
                     ? hoist__err(HOIST_E_MISSING_SHARD,
                                  "%s: shard '" NM "' listed in the index is missing (%s: %s)",
                                  c->index_path, name, c->path, strerror(e))
                     : hoist__err(HOIST_E_OPEN, "%s: shard '" NM "': cannot open %s: %s",
                                  c->index_path, name, c->path, strerror(e));
        }
    }
    if (cur >= 0 && cur != c->dirfd) close(cur);
    return rc;
}

/* Opens shard i and parses it into the table. */
static int parse_shard(idx_ctx *c, size_t i, int strict)
{
    const char *name = c->shards[i];
    size_t dl = strlen(c->dir), nl = strlen(name);
    hoist__free(c->path);
    c->path = hoist__malloc(dl + nl + 1);
    RETURN_IF(!c->path, HOIST_E_NOMEM, "%s: out of memory", c->index_path);
    memcpy(c->path, c->dir, dl);
    memcpy(c->path + dl, name, nl + 1);

    int fd;
    RETURN_IF_ERR(open_shard(c, name, &fd));
    hoist__table *t = c->t;
    size_t meta0 = t->nmeta, tensor0 = t->ntensors;
    int rc = hoist__safetensors_parse_fd(t, c->path, fd, strict);
    close(fd);
    RETURN_IF_ERR(rc);
    RETURN_IF_ERR(dedupe_meta(c, meta0));
    for (size_t k = tensor0; k < t->ntensors; k++) {
        const char *tn = t->tensors[k].name;
        json_t *prev = json_object_get(c->seen, tn);
        RETURN_IF(prev, HOIST_E_DUPLICATE_KEY,
                  "%s: tensor '" NM "' is in two shards: '" NM "' and '" NM "' (at byte %llu)",
                  c->index_path, tn, c->shards[json_integer_value(prev)], name,
                  (unsigned long long)t->tensors[k].offset);
        RETURN_IF(json_object_set_new(c->seen, tn, json_integer((json_int_t)i)) != 0,
                  HOIST_E_NOMEM, "%s: out of memory", c->index_path);
    }
    return HOIST_OK;
}

/* Parses the index text (len bytes) and every shard it names. */
static int run(idx_ctx *c, const char *text, size_t len, int strict)
{
    const char *ip = c->index_path;
    hoist__table *t = c->t;

    json_error_t jerr;
    int oom;
    c->root = hoist__json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    RETURN_IF(oom, HOIST_E_NOMEM, "%s: out of memory parsing the %zu-byte index", ip, len);
    if (!c->root) {
        int dup = json_error_code(&jerr) == json_error_duplicate_key ||
                  strstr(jerr.text, "duplicate") != NULL;
        return hoist__err(dup ? HOIST_E_DUPLICATE_KEY : HOIST_E_BAD_JSON,
                          "%s: %s at byte %d (line %d, column %d): %s", ip,
                          dup ? "duplicate key" : "malformed JSON", jerr.position, jerr.line,
                          jerr.column, jerr.text);
    }
    RETURN_IF(!json_is_object(c->root), HOIST_E_BAD_INDEX, "%s: index is a JSON %s, not an object",
              ip, hoist__json_kind(c->root));
    const json_t *meta = json_object_get(c->root, "metadata");
    RETURN_IF(meta && !json_is_object(meta) && !json_is_null(meta), HOIST_E_BAD_INDEX,
              "%s: \"metadata\" is a JSON %s, not an object", ip, hoist__json_kind(meta));
    json_t *wm = json_object_get(c->root, "weight_map");
    RETURN_IF(!wm, HOIST_E_BAD_INDEX, "%s: no \"weight_map\"", ip);
    RETURN_IF(!json_is_object(wm), HOIST_E_BAD_INDEX,
              "%s: \"weight_map\" is a JSON %s, not an object", ip, hoist__json_kind(wm));
    RETURN_IF(json_object_size(wm) > HOIST_MAX_TENSORS, HOIST_E_TOO_MANY,
              "%s: weight_map lists %zu tensors (at most %u)", ip, json_object_size(wm),
              HOIST_MAX_TENSORS);

    /* names, then the distinct shards */
    c->shard_set = json_object();
    c->seen = json_object();
    c->meta_seen = json_object();
    RETURN_IF(!c->shard_set || !c->seen || !c->meta_seen, HOIST_E_NOMEM, "%s: out of memory", ip);
    const char *tn;
    json_t *sv;
    json_object_foreach(wm, tn, sv)
    {
        size_t tl = strlen(tn);
        RETURN_IF(tl == 0, HOIST_E_BAD_INDEX, "%s: weight_map has an empty tensor name", ip);
        RETURN_IF(tl > HOIST_MAX_NAME, HOIST_E_BAD_INDEX,
                  "%s: weight_map: tensor '%.64s...' has a %zu-byte name (at most %u)", ip, tn, tl,
                  HOIST_MAX_NAME);
        RETURN_IF(!json_is_string(sv), HOIST_E_BAD_INDEX,
                  "%s: weight_map: tensor '" NM "' maps to a JSON %s, not a shard file name", ip,
                  tn, hoist__json_kind(sv));
        const char *shard = json_string_value(sv);
        RETURN_IF_ERR(check_shard_name(ip, tn, shard, json_string_length(sv)));
        if (!json_object_get(c->shard_set, shard)) {
            RETURN_IF(json_object_size(c->shard_set) >= HOIST_MAX_FILES, HOIST_E_TOO_MANY,
                      "%s: more than %u shard files", ip, HOIST_MAX_FILES);
            RETURN_IF(json_object_set_new(c->shard_set, shard, json_null()) != 0, HOIST_E_NOMEM,
                      "%s: out of memory", ip);
        }
    }
    c->nshards = json_object_size(c->shard_set);
    c->shards = hoist__calloc(c->nshards ? c->nshards : 1, sizeof *c->shards);
    RETURN_IF(!c->shards, HOIST_E_NOMEM, "%s: out of memory", ip);
    size_t k = 0;
    const char *sn;
    json_object_foreach(c->shard_set, sn, sv) { c->shards[k++] = sn; }
    if (c->nshards > 1) qsort(c->shards, c->nshards, sizeof *c->shards, cmp_str);

    /* the index's directory */
    const char *slash = strrchr(ip, '/');
    size_t dl = slash ? (size_t)(slash - ip) + 1 : 0;
    c->dir = hoist__malloc(dl + 1);
    RETURN_IF(!c->dir, HOIST_E_NOMEM, "%s: out of memory", ip);
    memcpy(c->dir, ip, dl);
    c->dir[dl] = '\0';
    if (c->dirfd < 0) {
        c->dirfd = open(dl ? c->dir : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        RETURN_IF(c->dirfd < 0, HOIST_E_OPEN, "%s: cannot open the index's directory: %s", ip,
                  strerror(errno));
        c->own_dirfd = 1;
    }

    /* every shard, each once; duplicates across shards found as they are added */
    uint32_t file0 = t->nfiles;
    size_t tensor0 = t->ntensors;
    for (size_t i = 0; i < c->nshards; i++) RETURN_IF_ERR(parse_shard(c, i, strict));

    /* every tensor of the shards is listed, under its shard */
    for (size_t i = tensor0; i < t->ntensors; i++) {
        const hoist__tensor *ti = &t->tensors[i];
        const char *have = c->shards[ti->file - file0];
        const json_t *want = json_object_get(wm, ti->name);
        RETURN_IF(!want, HOIST_E_BAD_INDEX,
                  "%s: tensor '" NM "' in shard '" NM "' (at byte %llu) is not listed in the "
                  "weight_map",
                  ip, ti->name, have, (unsigned long long)ti->offset);
        RETURN_IF(strcmp(json_string_value(want), have) != 0, HOIST_E_BAD_INDEX,
                  "%s: tensor '" NM "' is listed under shard '" NM "' but found in shard '" NM
                  "' (at byte %llu)",
                  ip, ti->name, json_string_value(want), have, (unsigned long long)ti->offset);
    }
    /* and every listed tensor is in its shard */
    json_object_foreach(wm, tn, sv)
    {
        RETURN_IF(!json_object_get(c->seen, tn), HOIST_E_BAD_INDEX,
                  "%s: tensor '" NM "' is listed under shard '" NM "' but absent from it", ip, tn,
                  json_string_value(sv));
    }
    return HOIST_OK;
}

int hoist__safetensors_index_parse_fd(hoist__table *t, const char *index_path, int index_fd,
                                      int dirfd, int strict)
{
    RETURN_IF(!t || !index_path || index_fd < 0 || dirfd < 0, HOIST_E_INVALID_ARG,
              "safetensors index: NULL table or path, or no descriptor");
    char *text = NULL;
    size_t len = 0;
    RETURN_IF_ERR(read_index(index_fd, index_path, &text, &len));
    idx_ctx c = {.index_path = index_path, .t = t, .dirfd = dirfd};
    int rc = run(&c, text, len, strict);
    hoist__free(text);
    ctx_free(&c);
    return rc;
}

int hoist__safetensors_index_parse(hoist__table *t, const char *index_path, int strict)
{
    RETURN_IF(!t || !index_path, HOIST_E_INVALID_ARG, "safetensors index: NULL table or path");
    /* the directory first, then the index inside it: the shards are then found relative to the
     * very directory the index was read from */
    int dirfd;
    const char *leaf;
    RETURN_IF_ERR(
        hoist__io_open_parent(index_path, O_PATH | O_DIRECTORY | O_CLOEXEC, &dirfd, &leaf));
    /* non-blocking: a FIFO in the index's place must not hang the open */
    int fd = openat(dirfd, leaf, OPEN_FLAGS);
    int rc;
    if (fd < 0) {
        rc = hoist__err(HOIST_E_OPEN, "%s: cannot open: %s", index_path, strerror(errno));
    } else {
        rc = hoist__safetensors_index_parse_fd(t, index_path, fd, dirfd, strict);
        close(fd);
    }
    close(dirfd);
    return rc;
}

int hoist__safetensors_index_parse_buffer(hoist__table *t, const char *index_path,
                                          const char *text, size_t len, int strict)
{
    RETURN_IF(!t || !index_path || (!text && len), HOIST_E_INVALID_ARG,
              "safetensors index: NULL table, path or text");
    idx_ctx c = {.index_path = index_path, .t = t, .dirfd = -1};
    int rc = run(&c, text ? text : "", len, strict);
    ctx_free(&c);
    return rc;
}
