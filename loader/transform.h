/* Transforms: the stage between a window's read and its copy (docs/ARCHITECTURE.md's data path). A load runs
 * at most one, on the pipeline's worker threads:
 *  - the packed decoder (loader/transform_decode.c): decompresses a packed model's chunks into a
 *    slot, checking each against its hash; the pipeline copies the decoded bytes;
 *  - the manifest check (loader/transform_manifest.c): hashes the bytes the source produced,
 *    in place, against the manifest (HOIST_VERIFY_MANIFEST).
 * The pipeline knows only this interface; load.c calls the three functions at the bottom. */
#ifndef HOIST_TRANSFORM_H
#define HOIST_TRANSFORM_H

#include "loader/load_ctx.h"

typedef struct hoist__transform_ops {
    const char *name;
    /* 1: window() writes the decoded bytes of plan.decode[i].model to out, which the pipeline
     * then copies from; 0: window() checks the source's bytes in place and out is NULL. */
    int decodes;
    /* Called once the source has resolved the options and before the budget is fitted: reads
     * what the transform needs (a manifest), and sets ld->transform_needs. */
    int (*prepare)(hoist__load *ld, void **state);
    /* After the plan: per-worker contexts for ld->opts.threads workers, counted against the
     * budget. */
    int (*start)(void *state, unsigned workers);
    /* Window index of ld->plan: `in` holds the source's bytes of plan.windows[index]. Called
     * from worker `worker`, concurrently with other workers. It may wait for windows of lower
     * index to pass through window() (a tensor's bytes reach its hash in order:
     * loader/tensor_hash.h), so the driver must hand windows out in increasing index order, each
     * worker finishing one window's call before it starts another's, as the sink's delivery order
     * already requires; it gives up when ld->failed is set. */
    int (*window)(void *state, int worker, size_t index, const uint8_t *in, uint8_t *out);
    /* Releases everything (NULL state is a no-op). */
    void (*close)(void *state);
} hoist__transform_ops;

extern const hoist__transform_ops hoist__transform_decode, hoist__transform_manifest;

/* Before the source opens: options the transform wants when the caller left them to defaults
 * (a packed model: one worker per core, 8 to 16, since decoding takes CPU as reading does not). */
void hoist__transform_defaults(hoist__load *ld);
/* Picks the transform ld needs (decode for a packed model, the manifest check for
 * HOIST_VERIFY_MANIFEST, else none), prepares it, and fits ld->opts.chunk_bytes to its window
 * constraints (logging when a value the caller chose changes). Call after the source's open. */
int hoist__transform_prepare(hoist__load *ld);
/* After the plan is built. */
int hoist__transform_start(hoist__load *ld);
void hoist__transform_close(hoist__load *ld);

#endif
