/* RELIABILITY case 28 under a transform (the manifest check, the packed decoder), shared by
 * test_manifest.c and test_packed.c: the file is truncated to 100 bytes when the mmap source has
 * made its k-th window ready, for k = 1, 2, ... until a load no longer reaches a k-th window, on
 * the host and through the device pipeline (host_as_device). A transform copies the window out
 * of the mapping (guarded) before it reads it, so each cut load fails with
 * HOIST_E_FILE_CHANGED, never SIGBUS, publishing nothing; the last load completes. */
#ifndef HOIST_CUT_SWEEP_H
#define HOIST_CUT_SWEEP_H

#include "gpu/gpu.h"
#include "core/io.h"
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct cut_sweep {
    const char *path; /* the file that is cut */
    int verify;       /* hoist_load_options.verify */
    /* Rewrites the file whole and opens the model to load. */
    hoist_model *(*prepare)(void *user);
    /* Checks a load that completed (may be NULL). */
    void (*check)(const hoist_weights *w, void *user);
    void *user;
} cut_sweep;

static const char *cut_path;
static unsigned cut_at;
static _Atomic unsigned cut_seen;

static void cut_on_window(const char *path, uint64_t lo, uint64_t hi)
{
    (void)lo;
    (void)hi;
    if (strcmp(path, cut_path) == 0 && atomic_fetch_add(&cut_seen, 1) + 1 == cut_at)
        ck_assert_int_eq(truncate(path, 100), 0);
}

/* Runs the sweep (one worker, 8 KiB windows); returns how many cut loads failed because the
 * copy itself faulted ("vanished from the mapping"): the guard turned SIGBUS away. */
static unsigned cut_sweep_run(const cut_sweep *c)
{
    cut_path = c->path;
    unsigned guarded = 0;
    for (int dev = 0; dev <= 1; dev++) {
        for (cut_at = 1;; cut_at++) {
            hoist_model *m = c->prepare(c->user);
            hoist__gpu_hooks g = {.host_as_device = dev != 0};
            hoist__gpu_set_hooks(&g);
            hoist__io_hooks h = {.mapped_window = cut_on_window};
            hoist__io_set_hooks(&h);
            atomic_store(&cut_seen, 0);
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.path = HOIST_PATH_MMAP;
            o.verify = c->verify;
            o.threads = 1;
            o.chunk_bytes = 8192;
            hoist_weights *w = (hoist_weights *)1;
            int rc = hoist_load(m, &o, &w);
            hoist__io_set_hooks(NULL);
            hoist__gpu_set_hooks(NULL);
            int done = atomic_load(&cut_seen) < cut_at;
            if (done) {
                ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
                if (c->check) c->check(w, c->user);
                hoist_weights_free(w);
            } else {
                ck_assert_msg(rc == HOIST_E_FILE_CHANGED, "window %u: %s: %s", cut_at,
                              hoist_status_name(rc), hoist_last_error());
                ck_assert_ptr_null(w);
                guarded += strstr(hoist_last_error(), "vanished from the mapping") != NULL;
            }
            hoist_model_free(m);
            if (done) break;
        }
        ck_assert_uint_gt(cut_at, 3);
    }
    return guarded;
}

#endif
