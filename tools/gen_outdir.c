/* The output directory of `hoist gen` (see gen_outdir.h). */
#include "gen_outdir.h"

#include "gen_config_json.h"
#include "gen_internal.h"
#include "gen_safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tries per temporary name before giving up: another gen (or anything) may hold the first. */
#define TMP_ATTEMPTS 100

int gen_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    size_t len = strlen(dir);
    char *path = malloc(len + 1);
    if (!path) {
        gen_set_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            gen_set_err(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            free(path);
            return -1;
        }
        path[i] = saved;
    }
    free(path);
    return 0;
}

int gen_outdir_open(gen_outdir *d, const char *path, bool force, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->fd = -1;
    d->path = path;
    d->force = force;
    if (mkdir_p(path, err, errlen) != 0) return -1;
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        gen_set_err(err, errlen, "cannot open directory %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* What goes between the directory as given and a name in messages. */
static const char *sep(const gen_outdir *d)
{
    size_t n = strlen(d->path);
    return n && d->path[n - 1] == '/' ? "" : "/";
}

long gen_outdir_add(gen_outdir *d, const char *name)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        gen_outfile *f = realloc(d->files, cap * sizeof *f);
        if (!f) return -1;
        d->files = f;
        d->cap = cap;
    }
    gen_outfile *f = &d->files[d->n];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    size_t len = strlen(d->path) + strlen(name) + 2;
    f->shown = malloc(len);
    if (!f->shown) return -1;
    snprintf(f->shown, len, "%s%s%s", d->path, sep(d), name);
    return (long)d->n++;
}

/* The files that make up a checkpoint of this format in a directory. */
static bool is_checkpoint_file(const char *name, gen_format format)
{
    if (format == GEN_FORMAT_GGUF) return strcmp(name, GEN_GGUF_FILE) == 0;
    if (strcmp(name, GEN_INDEX_FILE) == 0 || strcmp(name, GEN_CONFIG_FILE) == 0) return true;
    size_t n = strlen(name), sl = strlen(".safetensors");
    return strncmp(name, "model", 5) == 0 && n >= 5 + sl &&
           strcmp(name + n - sl, ".safetensors") == 0;
}

static bool is_added(const gen_outdir *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->files[i].name, name) == 0) return true;
    return false;
}

/* Calls fn on every checkpoint file of this format in the directory; stops at fn's first
 * non-zero return, which it returns. */
static int each_checkpoint_file(const gen_outdir *d, gen_format format,
                                int (*fn)(const gen_outdir *, const char *, char *, size_t),
                                char *err, size_t errlen)
{
    /* a descriptor of its own: readdir moves the offset, which a dup() would share */
    int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        gen_set_err(err, errlen, "cannot read directory %s: %s", d->path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dir)) != NULL)
        if (is_checkpoint_file(de->d_name, format)) rc = fn(d, de->d_name, err, errlen);
    closedir(dir);
    return rc;
}

static int refuse(const gen_outdir *d, const char *name, char *err, size_t errlen)
{
    gen_set_err(err, errlen, "%s%s%s already exists; use --force to replace it", d->path, sep(d),
                name);
    return -1;
}

int gen_outdir_refuse_existing(const gen_outdir *d, gen_format format, char *err, size_t errlen)
{
    if (d->force) return 0;
    struct stat st;
    for (size_t i = 0; i < d->n; i++)
        if (fstatat(d->fd, d->files[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return refuse(d, d->files[i].name, err, errlen);
    return each_checkpoint_file(d, format, refuse, err, errlen);
}

int gen_outdir_create(gen_outdir *d, size_t i, char *err, size_t errlen)
{
    gen_outfile *f = &d->files[i];
    for (unsigned k = 0; k < TMP_ATTEMPTS; k++) {
        /* hidden and not *.safetensors: nothing that lists a model directory picks it up */
        snprintf(f->tmp, sizeof f->tmp, ".%s.%ld-%u.tmp", f->name, (long)getpid(), k);
        int fd = openat(d->fd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            f->created = true;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    gen_set_err(err, errlen, "cannot create a temporary file for %s: %s", f->shown,
                strerror(errno));
    return -1;
}

/* Moves tmp to name; without replace, fails with EEXIST rather than replace anything. */
static int place(int dirfd, const char *tmp, const char *name, bool replace)
{
    if (replace) return renameat(dirfd, tmp, dirfd, name);
    if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
    /* a filesystem without RENAME_NOREPLACE: a hard link refuses an existing name just as well */
    if (linkat(dirfd, tmp, dirfd, name, 0) != 0) return -1;
    unlinkat(dirfd, tmp, 0);
    return 0;
}

static int remove_stale(const gen_outdir *d, const char *name, char *err, size_t errlen)
{
    if (is_added(d, name) || unlinkat(d->fd, name, 0) == 0 || errno == ENOENT) return 0;
    gen_set_err(err, errlen, "cannot remove %s%s%s, left from the checkpoint replaced: %s",
                d->path, sep(d), name, strerror(errno));
    return -1;
}

int gen_outdir_publish(gen_outdir *d, gen_format format, bool sync, char *err, size_t errlen)
{
    for (size_t i = 0; i < d->n; i++) {
        gen_outfile *f = &d->files[i];
        if (place(d->fd, f->tmp, f->name, d->force) == 0) {
            f->published = true;
            continue;
        }
        if (errno == EEXIST)
            gen_set_err(err, errlen, "%s appeared while writing; use --force to replace it",
                        f->shown);
        else
            gen_set_err(err, errlen, "cannot rename a temporary file to %s: %s", f->shown,
                        strerror(errno));
        /* all or nothing: no checkpoint with some of its files missing */
        for (size_t k = 0; k < i; k++) unlinkat(d->fd, d->files[k].name, 0);
        return -1;
    }
    if (d->force && each_checkpoint_file(d, format, remove_stale, err, errlen) != 0) return -1;
    if (sync && fsync(d->fd) != 0) {
        gen_set_err(err, errlen, "cannot flush directory %s to storage: %s", d->path,
                    strerror(errno));
        return -1;
    }
    return 0;
}

void gen_outdir_close(gen_outdir *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->files[i].created && !d->files[i].published) unlinkat(d->fd, d->files[i].tmp, 0);
        free(d->files[i].shown);
    }
    free(d->files);
    if (d->fd >= 0) close(d->fd);
    memset(d, 0, sizeof *d);
    d->fd = -1;
}
