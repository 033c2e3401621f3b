/* gen_model_write: the checkpoint's plan, its files created in the output directory, the data
 * written by the workers, the side files, and the whole published at once (see gen.h). */
#include "gen.h"

#include "gen_config_json.h"
#include "gen_gguf.h"
#include "gen_internal.h"
#include "gen_outdir.h"
#include "gen_plan.h"
#include "gen_safetensors.h"
#include "gen_workers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define GEN_TMPFS_MAGIC 0x01021994
#define GEN_RAMFS_MAGIC 0x858458f6

/* Refuses a filesystem without room for the whole model before writing any of it (ramfs
 * reports no free space, and grows until memory runs out). */
static int check_space(int fd, const char *dir, uint64_t need, bool *in_memory, char *err,
                       size_t errlen)
{
    struct statfs sfs;
    *in_memory = false;
    if (fstatfs(fd, &sfs) != 0) return 0;
    *in_memory = sfs.f_type == GEN_TMPFS_MAGIC || sfs.f_type == GEN_RAMFS_MAGIC;
    uint64_t have = (uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize;
    if (sfs.f_type == GEN_RAMFS_MAGIC || have >= need) return 0;
    gen_set_err(err, errlen, "not enough space in %s: %llu bytes free, %llu needed", dir,
                (unsigned long long)have, (unsigned long long)need);
    return -1;
}

/* Sizes weight file f and writes its header; the workers fill in the data. */
static int prepare_weight_file(int fd, const gen_plan *plan, uint32_t f, bool in_memory,
                               const char *shown, char *err, size_t errlen)
{
    uint64_t size = plan->file_start[f] + plan->file_data[f];
    /* Preallocate on disk filesystems (no fragmentation, ENOSPC up front). On tmpfs it would
     * zero every page in this one thread before the workers overwrite them: skip it there. */
    int fe = in_memory ? 0 : fallocate(fd, 0, 0, (off_t)size);
    if (fe != 0 && (errno == ENOSPC || errno == EFBIG)) {
        gen_set_err(err, errlen, "cannot preallocate %llu bytes for %s: %s",
                    (unsigned long long)size, shown, strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        gen_set_err(err, errlen, "cannot size %s to %llu bytes: %s", shown,
                    (unsigned long long)size, strerror(errno));
        return -1;
    }
    if (gen_pwrite_all(fd, plan->headers[f], plan->file_start[f], 0) != 0) {
        gen_set_err(err, errlen, "cannot write the header of %s at offset 0: %s", shown,
                    strerror(errno));
        return -1;
    }
    return 0;
}

/* Flushes (with cfg->sync) and closes the weight files; fds[f] becomes -1. */
static int close_weight_files(int *fds, char *const *shown, uint32_t n, bool sync, char *err,
                              size_t errlen)
{
    int rc = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (fds[f] < 0) continue;
        if (rc == 0 && sync && fsync(fds[f]) != 0) {
            gen_set_err(err, errlen, "cannot flush %s to storage: %s", shown[f], strerror(errno));
            rc = -1;
        }
        if (close(fds[f]) != 0 && rc == 0) {
            gen_set_err(err, errlen, "cannot close %s: %s", shown[f], strerror(errno));
            rc = -1;
        }
        fds[f] = -1;
    }
    return rc;
}

/* The weight files are the outdir's first plan->nfiles files. */
static int write_weight_files(gen_outdir *d, const gen_plan *plan, const gen_config *cfg,
                              char *err, size_t errlen)
{
    int *fds = malloc(plan->nfiles * sizeof *fds);
    char **shown = malloc(plan->nfiles * sizeof *shown);
    if (!fds || !shown) {
        free(fds);
        free(shown);
        gen_set_err(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t f = 0; f < plan->nfiles; f++) {
        fds[f] = -1;
        shown[f] = d->files[f].shown;
    }
    int rc = 0;
    bool in_memory = false;
    for (uint32_t f = 0; f < plan->nfiles && rc == 0; f++) {
        fds[f] = gen_outdir_create(d, f, err, errlen);
        if (fds[f] < 0) rc = -1;
        else if (f == 0)
            rc = check_space(fds[0], d->path, gen_total_bytes(cfg), &in_memory, err, errlen);
        if (rc == 0) rc = prepare_weight_file(fds[f], plan, f, in_memory, shown[f], err, errlen);
    }
    if (rc == 0) rc = gen_write_data(plan, cfg, fds, shown, err, errlen);
    if (close_weight_files(fds, shown, plan->nfiles, rc == 0 && cfg->sync, err, errlen) != 0)
        rc = -1;
    free(fds);
    free(shown);
    return rc;
}

typedef int (*side_writer)(FILE *f, const gen_plan *plan, const gen_config *cfg);

static int put_index(FILE *f, const gen_plan *plan, const gen_config *cfg)
{
    return gen_st_write_index(f, plan);
}

static int put_config(FILE *f, const gen_plan *plan, const gen_config *cfg)
{
    gen_write_config_json(f, cfg);
    return 0;
}

static int write_side_file(gen_outdir *d, size_t i, side_writer put, const gen_plan *plan,
                           const gen_config *cfg, char *err, size_t errlen)
{
    int fd = gen_outdir_create(d, i, err, errlen);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        gen_set_err(err, errlen, "cannot write %s: %s", d->files[i].shown, strerror(errno));
        close(fd);
        return -1;
    }
    int bad = put(f, plan, cfg) != 0 || ferror(f);
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        gen_set_err(err, errlen, "cannot write %s: %s", d->files[i].shown,
                    strerror(saved ? saved : EIO));
        return -1;
    }
    return 0;
}

/* The checkpoint's files in publishing order: the weights, then the index, then config.json, so
 * that a directory with a config.json holds a whole checkpoint. GGUF carries its config in its
 * metadata. */
static int add_files(gen_outdir *d, const gen_plan *plan, const gen_config *cfg, long *index,
                     long *config)
{
    *index = *config = -1;
    for (uint32_t f = 0; f < plan->nfiles; f++) {
        char name[64];
        gen_plan_file_name(plan, cfg, f, name, sizeof name);
        if (gen_outdir_add(d, name) < 0) return -1;
    }
    if (cfg->format == GEN_FORMAT_GGUF) return 0;
    if (plan->nfiles > 1 && (*index = gen_outdir_add(d, GEN_INDEX_FILE)) < 0) return -1;
    return (*config = gen_outdir_add(d, GEN_CONFIG_FILE)) < 0 ? -1 : 0;
}

static int write_checkpoint(gen_outdir *d, const gen_plan *plan, const gen_config *cfg,
                            char *err, size_t errlen)
{
    long index, config;
    if (add_files(d, plan, cfg, &index, &config) != 0) {
        gen_set_err(err, errlen, "out of memory");
        return -1;
    }
    if (gen_outdir_refuse_existing(d, cfg->format, err, errlen) != 0) return -1;
    if (write_weight_files(d, plan, cfg, err, errlen) != 0) return -1;
    if (index >= 0 && write_side_file(d, (size_t)index, put_index, plan, cfg, err, errlen) != 0)
        return -1;
    if (config >= 0 && write_side_file(d, (size_t)config, put_config, plan, cfg, err, errlen) != 0)
        return -1;
    return gen_outdir_publish(d, cfg->format, cfg->sync, err, errlen);
}

/* The plan and the header of each file it will write, in the format asked for. */
static int plan_files(gen_plan *plan, const gen_config *cfg)
{
    if (gen_plan_build(plan, cfg) != 0) return -1;
    int rc = cfg->format == GEN_FORMAT_GGUF ? gen_gguf_plan_header(plan, cfg)
                                            : gen_st_plan_headers(plan);
    if (rc != 0) gen_plan_free(plan);
    return rc;
}

int gen_model_write(const char *out_dir, const gen_config *cfg, char *err, size_t errlen)
{
    if (!out_dir || !*out_dir) {
        gen_set_err(err, errlen, "no output directory");
        return -1;
    }
    if (gen_validate(cfg, err, errlen) != 0) return -1;
    gen_plan plan;
    if (plan_files(&plan, cfg) != 0) {
        gen_set_err(err, errlen, "out of memory planning the files");
        return -1;
    }
    gen_outdir d;
    int rc = gen_outdir_open(&d, out_dir, cfg->force, err, errlen);
    if (rc == 0) rc = write_checkpoint(&d, &plan, cfg, err, errlen);
    gen_outdir_close(&d);
    gen_plan_free(&plan);
    return rc;
}
