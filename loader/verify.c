/* Read-back verification: every byte in the destination is compared with the file, on worker
 * threads, window by window. A packed model's file holds compressed bytes: there each chunk read
 * back is hashed against the container's hash of its decoded bytes instead. */
#include "formats/packed.h"
#include "core/io.h"
#include "loader/source.h"
#include "loader/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define VERIFY_THREADS_MAX 8u

typedef struct verifier {
    hoist__load *ld;
    int *fds;
    uint8_t *file_buf, *dev_buf;
    const hoist__window *w;
    pthread_t thread;
    int started;
} verifier;

static int compare_piece(void *vctx, const hoist__extent *e, uint64_t src_off, uint64_t dst_off,
                         uint64_t len)
{
    verifier *v = vctx;
    hoist__load *ld = v->ld;
    const hoist__arena *ar = &ld->arenas[e->arena];
    const uint8_t *got = ar->base + dst_off;
    if (!ld->host_sink) {
        RETURN_IF_ERR(ar->gpu->copy_d2h(v->dev_buf, got, len, ar->device));
        got = v->dev_buf;
    }
    const uint8_t *want = v->file_buf + src_off;
    if (memcmp(got, want, len) == 0) return HOIST_OK;
    uint64_t i = 0;
    while (got[i] == want[i]) i++;
    uint64_t at = v->w->lo + src_off + i;
    long ti = hoist__table_tensor_at(ld->table, e->file, at);
    const hoist__tensor *t = ti >= 0 ? &ld->table->tensors[ti] : NULL;
    return hoist__err(HOIST_E_INTEGRITY,
                      "%s: tensor '%s' differs at byte %llu of the file (byte %llu of the tensor): "
                      "loaded 0x%02x, file has 0x%02x",
                      ld->table->files[e->file].path, t ? t->name : "?", (unsigned long long)at,
                      (unsigned long long)(t ? at - t->offset : 0), got[i], want[i]);
}

/* Chunk c of a packed model, read back from the destination, hashes as the container says. */
static int check_chunk(verifier *v, uint64_t c)
{
    hoist__load *ld = v->ld;
    const hoist__table *t = ld->table;
    const hoist__chunk *ch = &t->packed->chunks[c];
    const hoist__tensor *x = &t->tensors[ch->tensor];
    uint64_t in_tensor = ch->vofs - x->offset;
    const hoist__arena *ar = &ld->arenas[ld->tensor_arena ? ld->tensor_arena[ch->tensor] : 0];
    const uint8_t *got = ar->base + ld->plan.tensor_dst[ch->tensor] + in_tensor;
    if (!ld->host_sink) {
        RETURN_IF_ERR(ar->gpu->copy_d2h(v->dev_buf, got, ch->len, ar->device));
        got = v->dev_buf;
    }
    uint64_t h = XXH3_64bits(got, ch->len);
    RETURN_IF(h != ch->xxh3, HOIST_E_INTEGRITY,
              "%s: tensor '%s' differs from the container in its bytes %llu..%llu (chunk %llu): "
              "loaded bytes hash to %016llx, the container recorded %016llx",
              t->files[0].path, x->name, (unsigned long long)in_tensor,
              (unsigned long long)(in_tensor + ch->len),
              (unsigned long long)(c - t->packed->tensors[ch->tensor].first_chunk),
              (unsigned long long)h, (unsigned long long)ch->xxh3);
    return HOIST_OK;
}

static void *verify_main(void *arg)
{
    verifier *v = arg;
    hoist__load *ld = v->ld;
    const hoist__packed *pk = ld->table->packed;
    while (!atomic_load(&ld->failed)) {
        size_t i = atomic_fetch_add(&ld->next_window, 1);
        if (pk) {
            if (i >= pk->nchunks) break;
            int rc = check_chunk(v, i);
            if (rc < 0) {
                hoist__load_fail(ld, rc);
                break;
            }
            continue;
        }
        if (i >= ld->plan.nwindows) break;
        v->w = &ld->plan.windows[i];
        const hoist__file *f = &ld->table->files[v->w->file];
        uint64_t n = v->w->hi - v->w->lo;
        int64_t got = hoist__pread_full(v->fds[v->w->file], v->file_buf, n, v->w->lo);
        int rc = HOIST_OK;
        if (got < 0)
            rc = hoist__err(HOIST_E_IO, "%s: verify read at byte %llu: %s", f->path,
                            (unsigned long long)v->w->lo, strerror((int)-got));
        else if ((uint64_t)got != n)
            rc = hoist__err(HOIST_E_FILE_CHANGED, "%s: file ends at byte %llu during verify",
                            f->path, (unsigned long long)(v->w->lo + (uint64_t)got));
        else
            rc = hoist__window_pieces(&ld->plan, v->w, compare_piece, v);
        if (rc < 0) {
            hoist__load_fail(ld, rc);
            break;
        }
    }
    return NULL;
}

int hoist__verify(hoist__load *ld)
{
    const hoist__table *t = ld->table;
    unsigned n = ld->opts.threads < VERIFY_THREADS_MAX ? ld->opts.threads : VERIFY_THREADS_MAX;
    if (n == 0) n = 1;
    uint64_t per = ld->plan.window_bytes * (ld->host_sink ? 1 : 2);
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, per * n, "verification buffers"));
    int rc = HOIST_OK;
    int *fds = hoist__malloc((t->nfiles ? t->nfiles : 1) * sizeof *fds);
    verifier *vs = hoist__calloc(n, sizeof *vs);
    if (!fds || !vs) rc = hoist__err(HOIST_E_NOMEM, "out of memory for verification");
    for (uint32_t i = 0; fds && i < t->nfiles; i++) fds[i] = -1;
    for (uint32_t i = 0; rc == HOIST_OK && i < t->nfiles; i++) {
        int os_errno;
        rc = hoist__file_open(&t->files[i], O_RDONLY | O_CLOEXEC, &fds[i], &os_errno);
    }
    atomic_store(&ld->next_window, 0);
    for (unsigned i = 0; rc == HOIST_OK && i < n; i++) {
        vs[i] = (verifier){.ld = ld, .fds = fds};
        vs[i].file_buf = hoist__malloc(ld->plan.window_bytes);
        vs[i].dev_buf = ld->host_sink ? NULL : hoist__malloc(ld->plan.window_bytes);
        if (!vs[i].file_buf || (!ld->host_sink && !vs[i].dev_buf))
            rc = hoist__err(HOIST_E_NOMEM, "out of memory for verification buffers");
    }
    for (unsigned i = 0; rc == HOIST_OK && i < n; i++) {
        if (pthread_create(&vs[i].thread, NULL, verify_main, &vs[i]) != 0) {
            rc = hoist__load_fail(ld, hoist__err(HOIST_E_NOMEM, "cannot start verifier"));
            break;
        }
        vs[i].started = 1;
    }
    for (unsigned i = 0; vs && i < n; i++) {
        if (vs[i].started) pthread_join(vs[i].thread, NULL);
        hoist__free(vs[i].file_buf);
        hoist__free(vs[i].dev_buf);
    }
    for (uint32_t i = 0; fds && i < t->nfiles; i++)
        if (fds[i] >= 0) close(fds[i]);
    hoist__free(fds);
    hoist__free(vs);
    hoist__budget_give(&ld->budget, per * n);
    if (ld->err_status) return hoist__err(ld->err_status, "%s", ld->err_msg);
    return rc;
}
