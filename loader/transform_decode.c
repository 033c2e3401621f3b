/* The packed decoder stage: each worker decodes the chunks of its window from the bytes the
 * source read into the slot the pipeline copies from (or straight into a host arena), checking
 * every chunk against its XXH3 hash, and then every tensor against the container's hash of it
 * (loader/tensor_hash.h): a tensor of one chunk by comparing the two records, a longer one by
 * hashing its decoded chunks in order. One zstd context per worker, reused for every chunk.
 *
 * A tensor-parallel plan decodes only the chunks a rank's slices touch: a tensor read in part has
 * its chunks checked, not its hash (whose bytes never all pass; waiting for them would never end),
 * which the loads that read it whole, and `hoist verify`, check. */
#define XXH_STATIC_LINKING_ONLY
#include "formats/packed.h"
#include "loader/tensor_hash.h"
#include "loader/transform.h"

#include <xxhash.h>

typedef struct dstate {
    hoist__load *ld;
    hoist__decoder *dec; /* per worker */
    unsigned nworkers;
    uint64_t taken; /* counted against the budget */
    uint64_t *want; /* per table tensor: the container's hash of it */
    uint8_t *part;  /* per table tensor in a sparse plan: 1 when only some of its chunks are read */
    hoist__tensor_hashes th;
} dstate;

static void decode_close(void *vs)
{
    dstate *s = vs;
    if (!s) return;
    for (unsigned i = 0; s->dec && i < s->nworkers; i++) hoist__decoder_free(&s->dec[i]);
    hoist__free(s->dec);
    hoist__tensor_hashes_free(&s->th);
    hoist__free(s->want);
    hoist__free(s->part);
    hoist__budget_give(&s->ld->budget, s->taken);
    hoist__free(s);
}

static int decode_prepare(hoist__load *ld, void **out)
{
    dstate *s = hoist__calloc(1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory");
    s->ld = ld;
    uint64_t c = ld->table->packed->chunk_bytes;
    /* a window holds at least one chunk, widened to O_DIRECT boundaries: C + 4096 would do;
     * twice C keeps windows powers of two and holds two chunks */
    ld->transform_needs.window_min = 2 * c;
    ld->transform_needs.worker_bytes = hoist__decoder_bytes(c) + hoist__tensor_hashes_state_bytes();
    const hoist__table *t = ld->table;
    size_t n = t->ntensors;
    uint64_t fixed = n * sizeof *s->want + hoist__tensor_hashes_bytes(n);
    /* and the one running hash beyond a worker's each that hoist__tensor_hashes_start takes */
    ld->transform_needs.fixed_bytes = fixed + hoist__tensor_hashes_state_bytes();
    int rc = hoist__budget_take(&ld->budget, fixed, "the tensor hashes");
    if (rc == HOIST_OK) {
        s->taken = fixed;
        s->want = hoist__calloc(n ? n : 1, sizeof *s->want);
        if (!s->want) rc = hoist__err(HOIST_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; rc == HOIST_OK && i < n; i++) s->want[i] = t->packed->tensors[i].xxh3;
    if (rc == HOIST_OK) rc = hoist__tensor_hashes_init(&s->th, ld, s->want, "the container", 0);
    /* a tensor without bytes has no chunk to pass through a window */
    uint64_t empty = XXH3_64bits(NULL, 0);
    for (size_t i = 0; rc == HOIST_OK && i < n; i++)
        if (!t->tensors[i].nbytes) rc = hoist__tensor_hashes_check(&s->th, i, empty);
    if (rc < 0) {
        decode_close(s);
        return rc;
    }
    *out = s;
    return HOIST_OK;
}

/* Which tensors a sparse plan reads only in part: their chunks in its windows are fewer than all.
 * A GPU-decoded load marks the tensors with codec 2 chunks too: their bytes never pass through
 * the host, so only their other chunks are hashed here (loader/gpu_decode.h). */
static int mark_partial(dstate *s)
{
    const hoist__plan *p = &s->ld->plan;
    if (!p->sparse && !s->ld->gpu_decode) return HOIST_OK;
    const hoist__table *t = s->ld->table;
    size_t n = t->ntensors;
    uint64_t bytes = (uint64_t)(n ? n : 1) * (sizeof *s->part + sizeof(uint64_t));
    RETURN_IF_ERR(hoist__budget_take(&s->ld->budget, bytes, "the partly read tensors"));
    s->taken += bytes;
    uint64_t *seen = hoist__calloc(n ? n : 1, sizeof *seen);
    s->part = hoist__calloc(n ? n : 1, sizeof *s->part);
    if (!seen || !s->part) {
        hoist__free(seen);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %zu tensors", n);
    }
    for (size_t w = 0; w < p->nwindows; w++)
        for (uint64_t c = 0; c < p->decode[w].nchunks; c++)
            seen[t->packed->chunks[p->decode[w].first_chunk + c].tensor]++;
    for (size_t i = 0; i < n; i++)
        s->part[i] = seen[i] < t->packed->tensors[i].nchunks ||
                     (s->ld->gpu_decode && t->packed->tensors[i].exphuff);
    hoist__free(seen);
    return HOIST_OK;
}

static int decode_start(void *vs, unsigned workers)
{
    dstate *s = vs;
    uint64_t c = s->ld->table->packed->chunk_bytes;
    uint64_t n = (uint64_t)workers * hoist__decoder_bytes(c);
    RETURN_IF_ERR(hoist__budget_take(&s->ld->budget, n, "the decoders"));
    s->taken += n;
    s->dec = hoist__calloc(workers ? workers : 1, sizeof *s->dec);
    RETURN_IF(!s->dec, HOIST_E_NOMEM, "out of memory for %u decoders", workers);
    for (; s->nworkers < workers; s->nworkers++)
        RETURN_IF_ERR(hoist__decoder_init(&s->dec[s->nworkers], c));
    RETURN_IF_ERR(mark_partial(s));
    return hoist__tensor_hashes_start(&s->th, workers);
}

static int decode_window(void *vs, int worker, size_t index, const uint8_t *in, uint8_t *out)
{
    dstate *s = vs;
    const hoist__table *t = s->ld->table;
    const hoist__window *fw = &s->ld->plan.windows[index];
    const hoist__decode_window *dw = &s->ld->plan.decode[index];
    RETURN_IF(worker < 0 || (unsigned)worker >= s->nworkers, HOIST_E_INTERNAL,
              "decoder for worker %d of %u", worker, s->nworkers);
    uint64_t dns = 0, hns = 0;
    int rc = HOIST_OK;
    const uint64_t end = dw->first_chunk + dw->nchunks;
    for (uint64_t c = dw->first_chunk; rc == HOIST_OK && c < end; c++) {
        const hoist__chunk *ch = &t->packed->chunks[c];
        if (s->ld->gpu_decode && ch->codec == HOIST_CODEC_EXPHUFF) continue; /* the GPU's */
        rc = hoist__packed_decode(t, &s->dec[worker], c, in + (ch->file_off - fw->lo),
                                  out + (ch->vofs - dw->model.lo), &dns, &hns);
    }
    /* Only then the tensors' hashes, whose bytes must arrive in order: feeding each chunk as it
     * was decoded made this window's later chunks wait for the window before to finish, so
     * the decoders ran one after another (a zstd container loaded at half its earlier speed on
     * 16 cores); now every window decodes in parallel and only the hashing waits its turn. */
    for (uint64_t c = dw->first_chunk; rc == HOIST_OK && c < end; c++) {
        const hoist__chunk *ch = &t->packed->chunks[c];
        if (s->part && s->part[ch->tensor]) continue; /* checked by chunk only (mark_partial) */
        if (t->packed->tensors[ch->tensor].nchunks == 1) {
            rc = hoist__tensor_hashes_check(&s->th, ch->tensor, ch->xxh3);
            continue;
        }
        const hoist__tensor *x = &t->tensors[ch->tensor];
        double t0 = hoist__now();
        rc = hoist__tensor_hashes_feed(&s->th, ch->tensor, ch->vofs - x->offset,
                                       out + (ch->vofs - dw->model.lo), ch->len);
        hns += (uint64_t)((hoist__now() - t0) * 1e9);
    }
    atomic_fetch_add(&s->ld->decode_ns, dns);
    atomic_fetch_add(&s->ld->verify_ns, hns);
    return rc;
}

const hoist__transform_ops hoist__transform_decode = {
    .name = "packed decoder",
    .decodes = 1,
    .prepare = decode_prepare,
    .start = decode_start,
    .window = decode_window,
    .close = decode_close,
};
