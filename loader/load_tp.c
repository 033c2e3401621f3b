/* Tensor parallelism inside one load: checking the options, zero-filling padded slices, and the
 * cooperative exchange of the shared region (over NCCL, or among hoist_load_group's host ranks).
 * The slices themselves are loader/tp.c's; the plan lays them out (loader/plan.c). */
#include "gpu/nccl.h"
#include "loader/group.h"
#include "loader/load_ctx.h"

#include <stdio.h>
#include <string.h>

/* What a tensor-parallel load cannot be combined with. */
static int refuse(const hoist__load *ld, const char *fn)
{
    const hoist_load_options *o = &ld->opts;
    RETURN_IF(ld->sink, HOIST_E_INVALID_ARG,
              "%s: tensor-parallel slices and cooperative loads place into an arena", fn);
    RETURN_IF(o->plan, HOIST_E_INVALID_ARG,
              "%s: a tensor-parallel load places every slice on opts->device; leave opts->plan "
              "NULL (hoist_plan_options.tp plans what fits per rank)",
              fn);
    RETURN_IF(o->verify & HOIST_VERIFY_MANIFEST, HOIST_E_UNSUPPORTED,
              "%s: a manifest hashes whole chunks of the files, and a rank reads only its "
              "slices; check the files with hoist_model_verify, or the slices with "
              "HOIST_VERIFY_READBACK",
              fn);
    return HOIST_OK;
}

/* A packed model is read back against its chunk hashes, which cover whole tensors: a rank whose
 * tensors are all whole (a cooperative load of the whole model) can, a rank with slices not. */
static int refuse_readback(const hoist__load *ld, const char *fn)
{
    if (!ld->table->packed || !(ld->opts.verify & HOIST_VERIFY_READBACK)) return HOIST_OK;
    for (size_t i = 0; i < ld->table->ntensors; i++)
        RETURN_IF(!ld->slices[i].shared, HOIST_E_UNSUPPORTED,
                  "%s: a packed model is read back against its chunk hashes, which cover whole "
                  "tensors, not this rank's slice of '%s' (its chunks are checked as they are "
                  "decoded)",
                  fn, ld->table->tensors[i].name);
    return HOIST_OK;
}

/* The embedder's communicator must be this rank's of this world, on a GPU. */
static int check_comm(const hoist__load *ld, const char *fn)
{
    const hoist_tp_options *t = &ld->tp;
    RETURN_IF(!t->cooperative, HOIST_E_INVALID_ARG,
              "%s: hoist_tp_options.nccl_comm serves only a cooperative load", fn);
    RETURN_IF(ld->opts.device == HOIST_DEVICE_HOST, HOIST_E_INVALID_ARG,
              "%s: NCCL gathers into GPU memory; opts->device is the host (complete a host "
              "load's exchange with hoist_weights_tp_share)",
              fn);
    int rank, count;
    RETURN_IF_ERR(hoist__nccl_rank(t->nccl_comm, &rank, &count));
    RETURN_IF(rank != t->rank || count != t->world, HOIST_E_INVALID_ARG,
              "%s: the NCCL communicator is rank %d of %d, the options say rank %d of %d", fn,
              rank, count, t->rank, t->world);
    return HOIST_OK;
}

int hoist__tp_resolve(hoist__load *ld, const char *fn)
{
    if (!ld->opts.tp) return HOIST_OK;
    RETURN_IF_ERR(hoist__tp_options_in(ld->opts.tp, &ld->tp, fn));
    ld->opts.tp = &ld->tp; /* the caller's struct is not read again */
    if (ld->tp.world == 1 && !ld->tp.cooperative) return HOIST_OK; /* an ordinary load */
    RETURN_IF_ERR(refuse(ld, fn));
    if (ld->tp.nccl_comm) RETURN_IF_ERR(check_comm(ld, fn));
    RETURN_IF_ERR(hoist__tp_slices(ld->table, &ld->tp, &ld->slices));
    return refuse_readback(ld, fn);
}

/* ---- padding ------------------------------------------------------------------------------ */

static int zero(const hoist__arena *ar, hoist__stream *s, uint64_t off, uint64_t n)
{
    if (ar->device == HOIST_DEVICE_HOST) {
        memset(ar->base + off, 0, n);
        return HOIST_OK;
    }
    RETURN_IF(!ar->gpu->memset_async, HOIST_E_UNSUPPORTED,
              "the %s backend cannot zero the padding of tensor-parallel slices", ar->gpu->name);
    return ar->gpu->memset_async(ar->base + off, 0, n, s);
}

int hoist__tp_zero_padding(hoist__load *ld)
{
    if (!ld->slices) return HOIST_OK;
    const hoist__arena *ar = &ld->arenas[0];
    hoist__stream *s = NULL;
    int rc = HOIST_OK;
    for (size_t i = 0; rc == HOIST_OK && i < ld->table->ntensors; i++) {
        const hoist__slice *sl = &ld->slices[i];
        if (!sl->padded || !sl->nbytes) continue;
        if (!s && ar->device != HOIST_DEVICE_HOST)
            RETURN_IF_ERR(ar->gpu->stream_create(ar->device, &s));
        /* the whole slice: its rows overwrite all but the padding */
        rc = zero(ar, s, ld->plan.tensor_dst[i], sl->nbytes);
    }
    if (s) {
        int src = ar->gpu->stream_sync(s);
        if (rc == HOIST_OK) rc = src;
        ar->gpu->stream_destroy(s);
    }
    return rc;
}

/* ---- the exchange ------------------------------------------------------------------------- */

bool hoist__tp_exchanging(const hoist__load *ld)
{
    return ld->tp.cooperative && (ld->group || ld->tp.nccl_comm);
}

/* What each rank tells the others before anything is gathered. */
typedef struct post {
    int64_t status;
    uint64_t share_bytes;
} post;

/* The first rank (other than rank) whose post says it failed or disagrees; -1 when none. */
static int first_bad(const post *all, int world, int rank, uint64_t share, int *disagrees)
{
    for (int q = 0; q < world; q++) {
        if (q == rank) continue;
        *disagrees = all[q].status >= 0 && all[q].share_bytes != share;
        if (all[q].status < 0 || *disagrees) return q;
    }
    return -1;
}

static int abandoned(int q, int64_t status, int disagrees, uint64_t theirs, uint64_t ours)
{
    if (disagrees)
        return hoist__err(HOIST_E_INVALID_ARG,
                          "cooperative load: rank %d shares %llu bytes, this rank %llu (do the "
                          "ranks cut the tensors by different rules?); nothing was exchanged",
                          q, (unsigned long long)theirs, (unsigned long long)ours);
    return hoist__err(HOIST_E_ABORTED,
                      "cooperative load: rank %d failed (%s); this rank's load is abandoned", q,
                      hoist_status_name((int)status));
}

/* Over NCCL: the posts through a small device buffer, then the region in place. */
static int nccl_exchange(const hoist_tp_options *t, int device, int status, uint8_t *base,
                         uint64_t share, uint64_t part, uint64_t *received)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", status < 0 ? hoist_last_error() : "");
    post mine = {status, share};
    post *all = hoist__calloc((size_t)t->world, sizeof *all);
    int rc = all ? HOIST_OK : hoist__err(HOIST_E_NOMEM, "out of memory for %d ranks", t->world);
    if (rc == HOIST_OK)
        rc = hoist__nccl_all_gather_host(t->nccl_comm, device, t->rank, t->world, &mine, all,
                                         sizeof mine);
    int disagrees = 0, q = rc == HOIST_OK ? first_bad(all, t->world, t->rank, share, &disagrees)
                                          : -1;
    if (status < 0)
        rc = hoist__err(status, "%s", saved); /* this rank's own failure stays its message */
    else if (rc == HOIST_OK && q >= 0)
        rc = abandoned(q, all[q].status, disagrees, all[q].share_bytes, share);
    hoist__free(all);
    if (rc < 0) return rc;
    RETURN_IF_ERR(hoist__nccl_all_gather(t->nccl_comm, device, base, part, t->rank));
    *received = share - part;
    return HOIST_OK;
}

static int exchange(const hoist_tp_options *t, struct hoist__group *g, int device, int status,
                    uint8_t *base, uint64_t share, uint64_t part, uint64_t *received)
{
    *received = 0;
    if (t->nccl_comm) return nccl_exchange(t, device, status, base, share, part, received);
    return hoist__group_exchange(g, t->rank, status, base, share, part, received);
}

int hoist__tp_exchange(hoist__load *ld, int status)
{
    if (!hoist__tp_exchanging(ld) || ld->exchanged) return status;
    ld->exchanged = true;
    double t0 = hoist__now();
    uint8_t *base = status == HOIST_OK ? ld->arenas[0].base : NULL;
    int rc = exchange(&ld->tp, ld->group, ld->opts.device, status, base, ld->plan.share_bytes,
                      ld->plan.share_part, &ld->exchange_bytes);
    ld->exchange_s = hoist__now() - t0;
    return rc;
}

int hoist__tp_exchange_alone(const hoist_load_options *o, struct hoist__group *g, int status)
{
    if (!o->tp) return status;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", hoist_last_error());
    hoist_tp_options t;
    if (hoist__tp_options_in(o->tp, &t, "hoist_load") < 0 || !t.cooperative ||
        (!g && !t.nccl_comm))
        return hoist__err(status, "%s", saved);
    uint64_t received;
    (void)exchange(&t, g, o->device, status, NULL, 0, 0, &received);
    return hoist__err(status, "%s", saved);
}
