/* The output directory of `hoist gen`, which gen only ever adds to.
 *
 * Every file is created under a temporary name with O_CREAT | O_EXCL | O_NOFOLLOW relative to the
 * directory's descriptor, and renamed into place once the whole checkpoint is written. So gen never
 * writes through a symlink (a config.json pointing out of the folder is replaced, never followed),
 * never leaves a half-written file under a final name, and without --force never replaces or
 * removes anything: it refuses up front naming the file in the way, and the final rename refuses
 * too (RENAME_NOREPLACE), should one appear meanwhile. */
#ifndef HOIST_GEN_OUTDIR_H
#define HOIST_GEN_OUTDIR_H

#include "gen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gen_outfile {
    char name[64]; /* final name */
    char tmp[96];  /* temporary name, once created */
    char *shown;   /* out_dir/name, for messages */
    bool created, published;
} gen_outfile;

typedef struct gen_outdir {
    const char *path; /* as given */
    int fd;
    bool force;       /* replace existing files, remove a replaced checkpoint's leftovers */
    gen_outfile *files;
    size_t n, cap;
} gen_outdir;

/* Creates path (with its parents) when missing and opens it. 0, or -1 with a message. */
int gen_outdir_open(gen_outdir *d, const char *path, bool force, char *err, size_t errlen);
/* Adds a file to write, in publishing order. Its index, or -1 when out of memory. */
long gen_outdir_add(gen_outdir *d, const char *name);
/* Without force: -1 naming the first file in the way, that is any added name or any file of a
 * checkpoint of this format (model*.safetensors, model.safetensors.index.json, config.json; or
 * model.gguf) that exists, as anything, a dangling symlink included. 0 with force. */
int gen_outdir_refuse_existing(const gen_outdir *d, gen_format format, char *err, size_t errlen);
/* Creates file i's temporary; its descriptor (write-only), or -1 with a message. */
int gen_outdir_create(gen_outdir *d, size_t i, char *err, size_t errlen);
/* Renames every file into place, in order (on failure the ones placed are removed again). With
 * force, then removes the files of a checkpoint of this format that were not replaced (shards of
 * another count, a stale index), so that none is read with the new one. With sync, flushes the
 * directory. 0, or -1 with a message. */
int gen_outdir_publish(gen_outdir *d, gen_format format, bool sync, char *err, size_t errlen);
/* Removes the temporaries not published and closes the directory. */
void gen_outdir_close(gen_outdir *d);

/* pwrite of all len bytes (EINTR and short writes retried). 0, or -1 with errno. */
int gen_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

#endif
