/* The packed decoder stage: each worker decodes the chunks of its window from the bytes the
 * source read into the slot the pipeline copies from (or straight into a host arena), checking
 * every chunk against its XXH3 hash. One zstd context per worker, reused for every chunk. */
#include "formats/packed.h"
#include "loader/transform.h"

typedef struct dstate {
    hoist__load *ld;
    hoist__decoder *dec; /* per worker */
    unsigned nworkers;
    uint64_t taken; /* counted against the budget */
} dstate;

static void decode_close(void *vs)
{
    dstate *s = vs;
    if (!s) return;
    for (unsigned i = 0; s->dec && i < s->nworkers; i++) hoist__decoder_free(&s->dec[i]);
    hoist__free(s->dec);
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
    ld->transform_needs.worker_bytes = hoist__decoder_bytes(c);
    *out = s;
    return HOIST_OK;
}

static int decode_start(void *vs, unsigned workers)
{
    dstate *s = vs;
    uint64_t c = s->ld->table->packed->chunk_bytes;
    uint64_t n = (uint64_t)workers * hoist__decoder_bytes(c);
    RETURN_IF_ERR(hoist__budget_take(&s->ld->budget, n, "the decoders"));
    s->taken = n;
    s->dec = hoist__calloc(workers ? workers : 1, sizeof *s->dec);
    RETURN_IF(!s->dec, HOIST_E_NOMEM, "out of memory for %u decoders", workers);
    for (; s->nworkers < workers; s->nworkers++)
        RETURN_IF_ERR(hoist__decoder_init(&s->dec[s->nworkers], c));
    return HOIST_OK;
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
    for (uint64_t c = dw->first_chunk; rc == HOIST_OK && c < dw->first_chunk + dw->nchunks; c++) {
        const hoist__chunk *ch = &t->packed->chunks[c];
        rc = hoist__packed_decode(t, &s->dec[worker], c, in + (ch->file_off - fw->lo),
                                  out + (ch->vofs - dw->model.lo), &dns, &hns);
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
