/* hoist_load: resolve options, plan, allocate the arenas, run the path, verify, publish. */
#include "core/abi.h"
#include "formats/packed.h"
#include "loader/gpu_decode.h"
#include "loader/source.h"
#include "loader/transform.h"
#include "loader/weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Process-wide count of published weights and their arena bytes (hoist_weights_live). */
static _Atomic size_t live_weights;
static _Atomic uint64_t live_arena_bytes;

static const char *const path_names[] = {
#define X(name, value, str) [value] = str,
    HOIST_PATH_LIST(X)
#undef X
};

const char *hoist_path_name(hoist_path path)
{
    return (unsigned)path < sizeof path_names / sizeof *path_names ? path_names[path] : "?";
}

int hoist_path_parse(const char *text, hoist_path *path)
{
    RETURN_IF(!text || !path, HOIST_E_INVALID_ARG, "hoist_path_parse: NULL argument");
    for (unsigned i = 0; i < sizeof path_names / sizeof *path_names; i++) {
        if (strcmp(text, path_names[i]) != 0) continue;
        RETURN_IF(!hoist__source_for((hoist_path)i, NULL), HOIST_E_UNSUPPORTED,
                  "path '%s' is not part of this build", text);
        *path = (hoist_path)i;
        return HOIST_OK;
    }
    return hoist__err(HOIST_E_INVALID_ARG,
                      "unknown path '%s' (expected auto, mmap, uring or stream)", text);
}

/* A load is published only if every file is still the one that was parsed. */
static int check_unchanged(const hoist__table *t)
{
    for (uint32_t i = 0; i < t->nfiles; i++) {
        const hoist__file *f = &t->files[i];
        struct stat st;
        RETURN_IF(stat(f->path, &st) != 0, HOIST_E_FILE_CHANGED, "%s: gone during the load: %s",
                  f->path, strerror(errno));
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        RETURN_IF((uint64_t)st.st_size != f->size || mtime != f->mtime_ns, HOIST_E_FILE_CHANGED,
                  "%s: changed during the load (size %llu -> %llu bytes, or mtime changed)",
                  f->path, (unsigned long long)f->size, (unsigned long long)st.st_size);
        RETURN_IF(f->ino && ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev),
                  HOIST_E_FILE_CHANGED, "%s: replaced by another file during the load", f->path);
    }
    return HOIST_OK;
}

/* Everything from the allocated arena to the last byte placed; on failure the caller frees the
 * arena. */
static int transfer(hoist__load *ld)
{
    uint64_t placements = (ld->tensor_arena ? ld->table->ntensors : 0) +
                          (ld->slices ? ld->table->ntensors * sizeof *ld->slices : 0);
    RETURN_IF_ERR(
        hoist__budget_take(&ld->budget, ld->plan.host_bytes + placements, "the load plan"));
    RETURN_IF_ERR(hoist__tp_zero_padding(ld));
    uint64_t held = ld->source->host_bytes(ld->source_state, ld->opts.threads,
                                           ld->plan.window_bytes);
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, held, "the source's resident windows"));
    int trc = hoist__transform_start(ld);
    if (trc == HOIST_OK && ld->gpu_decode) trc = hoist__gdec_open(ld, ld->opts.threads);
    if (trc < 0) {
        hoist__budget_give(&ld->budget, held);
        return trc;
    }
    hoist__progress_start(&ld->progress, ld->opts.progress, ld->opts.progress_user,
                          ld->slices ? ld->plan.placed_bytes : ld->table->total_bytes);
    int rc = hoist__pipeline_run(ld);
    hoist__budget_give(&ld->budget, held);
    if (rc == HOIST_OK && ld->gpu_decode) rc = hoist__gdec_finish(ld);
    RETURN_IF_ERR(rc);
    hoist__progress_finish(&ld->progress);
    return HOIST_OK;
}

/* Once every byte is in place (and exchanged): the checks before publishing. */
static int finish(hoist__load *ld)
{
    /* GPU-decoded bytes passed no hash on the way: any verification asked for hashes them here,
     * read back from the device, chunk by chunk (docs/PACKED.md) */
    if ((ld->opts.verify & HOIST_VERIFY_READBACK) || (ld->gpu_decode && ld->opts.verify)) {
        double t0 = hoist__now();
        RETURN_IF_ERR(hoist__verify(ld));
        ld->readback_seconds = hoist__now() - t0;
    }
    return check_unchanged(ld->table);
}

static const hoist_load_options default_options = HOIST_LOAD_OPTIONS_DEFAULT;

/* opts: the library's full-size copy (HOIST__IN), never the caller's. */
static hoist__load *load_new(hoist_model *model, const hoist_load_options *opts)
{
    hoist__load *ld = hoist__calloc(1, sizeof *ld);
    if (!ld) return NULL;
    ld->opts = *opts;
    ld->table = &model->table;
    ld->model = model;
    pthread_mutex_init(&ld->err_lock, NULL);
    pthread_mutex_init(&ld->deliver_lock, NULL);
    pthread_cond_init(&ld->deliver_cond, NULL);
    hoist__budget_init(&ld->budget, ld->opts.ram_budget);
    return ld;
}

/* Bytes of the files a load consumed: a packed model's stored chunks (those its windows read,
 * when it is sliced), else the bytes placed. */
static uint64_t file_bytes(const hoist__load *ld)
{
    if (!ld->table->packed) return ld->slices ? ld->plan.placed_bytes : ld->table->total_bytes;
    if (!ld->slices) return ld->table->packed->stored_bytes;
    uint64_t n = 0;
    for (size_t i = 0; i < ld->plan.nwindows; i++)
        n += ld->plan.windows[i].hi - ld->plan.windows[i].lo;
    return n;
}

static hoist_load_stats load_stats(const hoist__load *ld, double t0)
{
    uint64_t arena_bytes = 0;
    for (size_t a = 0; a < ld->narenas; a++)
        arena_bytes += ld->arenas[a].base ? ld->arenas[a].bytes : 0;
    return (hoist_load_stats){
        .size = sizeof(hoist_load_stats),
        .path = ld->source->name,
        .seconds = hoist__now() - t0,
        .read_seconds = (double)atomic_load(&ld->read_ns) * 1e-9,
        .copy_seconds = (double)atomic_load(&ld->copy_ns) * 1e-9,
        .verify_seconds = (double)atomic_load(&ld->verify_ns) * 1e-9,
        .decode_seconds = (double)atomic_load(&ld->decode_ns) * 1e-9,
        .readback_seconds = ld->readback_seconds,
        .file_bytes = file_bytes(ld),
        .bytes = ld->slices ? ld->plan.placed_bytes : ld->table->total_bytes,
        .arena_bytes = arena_bytes,
        .peak_host_bytes = atomic_load(&ld->budget.peak),
        .threads = ld->opts.threads,
        .read_bytes = atomic_load(&ld->read_bytes),
        .exchange_seconds = ld->exchange_s,
        .exchange_bytes = ld->exchange_bytes,
        .gpu_decoded_bytes = atomic_load(&ld->gpu_decoded_bytes),
        .unhashed_bytes = 0, /* the GPU hashes what it decodes (loader/gpu_decode.c) */
    };
}

static void log_phases(const hoist__load *ld, double total)
{
    char gpu[96] = "";
    if (ld->gpu_decode)
        snprintf(gpu, sizeof gpu, " (of which decoding on the CPU and queueing for the GPU %.1f)",
                 atomic_load(&ld->queue_ns) / 1e6);
    hoist__log(HOIST_LOG_DEBUG,
               "load phases (ms): prepare %.1f, arenas %.1f, staging setup %.1f, transfer %.1f, "
               "teardown %.1f, the rest %.1f, of %.1f; the workers (summed) read %.1f, copied "
               "%.1f%s, waited for the device %.1f",
               ld->prepare_s * 1e3, ld->arenas_s * 1e3, ld->setup_s * 1e3, ld->transfer_s * 1e3,
               ld->teardown_s * 1e3,
               (total - ld->prepare_s - ld->arenas_s - ld->setup_s - ld->transfer_s -
                ld->teardown_s) * 1e3,
               total * 1e3, atomic_load(&ld->read_ns) / 1e6, atomic_load(&ld->copy_ns) / 1e6, gpu,
               atomic_load(&ld->wait_ns) / 1e6);
}

static void load_delete(hoist__load *ld)
{
    hoist__gdec_close(ld);
    hoist__transform_close(ld);
    if (ld->source && ld->source_state) ld->source->close(ld->source_state);
    hoist__plan_free(&ld->plan);
    hoist__free(ld->tensor_arena);
    hoist__free(ld->slices);
    pthread_mutex_destroy(&ld->err_lock);
    pthread_mutex_destroy(&ld->deliver_lock);
    pthread_cond_destroy(&ld->deliver_cond);
    hoist__free(ld);
}

/* Moves what the weights keep out of the load. */
static void publish(hoist__load *ld, hoist_weights *w, hoist_model *model, double t0)
{
    hoist__model_retain(model);
    *w = (hoist_weights){.refs = 1,
                         .model = model,
                         .narenas = ld->narenas,
                         .tensor_arena = ld->tensor_arena,
                         .tensor_dst = ld->plan.tensor_dst,
                         .reservation = ld->reservation,
                         .slices = ld->slices};
    memcpy(w->arenas, ld->arenas, sizeof w->arenas);
    w->share = (hoist_tp_share){.size = sizeof w->share, .rank = ld->tp.rank,
                                .world = ld->tp.world, .device = ld->arenas[0].device};
    if (ld->slices && ld->tp.cooperative && ld->plan.share_bytes) {
        w->share.base = ld->arenas[0].base;
        w->share.part_bytes = ld->plan.share_part;
        w->share.bytes = ld->plan.share_bytes;
        w->share.pending = !ld->exchanged;
    }
    w->stats = load_stats(ld, t0);
    log_phases(ld, w->stats.seconds);
    ld->plan.tensor_dst = NULL; /* moved into the weights */
    ld->tensor_arena = NULL;
    ld->slices = NULL;
}

int hoist__load_rank(hoist_model *model, const hoist_load_options *o, struct hoist__group *group,
                     hoist_weights **out)
{
    double t0 = hoist__now();
    hoist__load *ld = load_new(model, o);
    if (!ld) return hoist__tp_exchange_alone(o, group, hoist__err(HOIST_E_NOMEM, "out of memory"));
    ld->group = group;

    hoist_weights *w = NULL;
    int rc = hoist__load_resolve(ld);
    ld->prepare_s = hoist__now() - t0;
    if (rc == HOIST_OK && ld->opts.plan) {
        rc = hoist__reservation_bind(ld->opts.plan->reservation);
        if (rc == HOIST_OK) ld->reservation = ld->opts.plan->reservation;
    }
    double ta = hoist__now();
    if (rc == HOIST_OK) rc = hoist__arenas_alloc(ld);
    ld->arenas_s = hoist__now() - ta;
    if (rc == HOIST_OK) rc = transfer(ld);
    rc = hoist__tp_exchange(ld, rc); /* every rank, whatever happened: see load_ctx.h */
    if (rc == HOIST_OK) rc = finish(ld);
    if (rc == HOIST_OK) {
        w = hoist__calloc(1, sizeof *w);
        if (!w) rc = hoist__err(HOIST_E_NOMEM, "out of memory");
    }
    if (rc < 0) {
        hoist__arenas_free(ld->arenas, ld->narenas);
        hoist__reservation_unbind(ld->reservation);
    } else {
        publish(ld, w, model, t0);
    }
    load_delete(ld);
    if (rc < 0) return rc;
    /* the teardown (unmapping, closing the source) is part of what the caller waited for */
    w->stats.seconds = hoist__now() - t0;
    atomic_fetch_add(&live_weights, 1);
    atomic_fetch_add(&live_arena_bytes, w->stats.arena_bytes);
    *out = w;
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_load(hoist_model *model, const hoist_load_options *opts, hoist_weights **out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_load: out is NULL");
    *out = NULL;
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_load: model is NULL");
    hoist_load_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_load_options, &o, opts, &default_options));
    return hoist__load_rank(model, &o, NULL, out);
}

int hoist_load_sink(hoist_model *model, const hoist_load_options *opts, hoist_sink_fn fn,
                    void *user, hoist_load_stats *stats)
{
    RETURN_IF(!model || !fn, HOIST_E_INVALID_ARG, "hoist_load_sink: NULL model or callback");
    hoist_load_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_load_options, &o, opts, &default_options));
    if (stats) RETURN_IF_ERR(HOIST__CHECK(hoist_load_stats, stats));
    RETURN_IF(o.device != HOIST_DEVICE_HOST, HOIST_E_INVALID_ARG,
              "hoist_load_sink: the sink is the destination; leave opts->device at "
              "HOIST_DEVICE_HOST");
    RETURN_IF(o.plan, HOIST_E_INVALID_ARG,
              "hoist_load_sink: the sink is the destination; a plan places into devices");
    RETURN_IF(o.tp, HOIST_E_INVALID_ARG,
              "hoist_load_sink: tensor-parallel slices and cooperative loads place into an "
              "arena; leave opts->tp NULL here (hoist_load takes it)");
    RETURN_IF(o.verify & HOIST_VERIFY_READBACK, HOIST_E_INVALID_ARG,
              "hoist_load_sink: nothing to read back (HOIST_VERIFY_MANIFEST checks the bytes "
              "before the sink sees them)");
    double t0 = hoist__now();
    hoist__load *ld = load_new(model, &o);
    RETURN_IF(!ld, HOIST_E_NOMEM, "out of memory");
    ld->sink = fn;
    ld->sink_user = user;
    int rc = hoist__load_resolve(ld);
    if (rc == HOIST_OK) rc = transfer(ld);
    if (rc == HOIST_OK) rc = finish(ld);
    if (rc == HOIST_OK) rc = hoist__sink_announce_empty(ld, ld->table->ntensors);
    hoist_load_stats st = {0};
    if (rc == HOIST_OK && stats) st = load_stats(ld, t0);
    load_delete(ld);
    if (rc == HOIST_OK && stats) {
        st.seconds = hoist__now() - t0; /* the teardown included, as in hoist_load */
        HOIST__OUT(hoist_load_stats, stats, &st);
    }
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}

hoist_weights *hoist_weights_retain(hoist_weights *w)
{
    if (w) atomic_fetch_add(&w->refs, 1);
    return w;
}

size_t hoist_weights_live(uint64_t *arena_bytes)
{
    if (arena_bytes) *arena_bytes = atomic_load(&live_arena_bytes);
    return atomic_load(&live_weights);
}

void hoist_weights_free(hoist_weights *w)
{
    if (!w || atomic_fetch_sub(&w->refs, 1) != 1) return;
    atomic_fetch_sub(&live_weights, 1);
    atomic_fetch_sub(&live_arena_bytes, w->stats.arena_bytes);
    hoist__arenas_free(w->arenas, w->narenas);
    hoist__reservation_unbind(w->reservation);
    hoist__free(w->tensor_arena);
    hoist__free(w->tensor_dst);
    hoist__free(w->slices);
    hoist_model_free(w->model);
    hoist__free(w);
}

size_t hoist_weights_count(const hoist_weights *w) { return w ? w->model->table.ntensors : 0; }

int hoist_weights_view(const hoist_weights *w, size_t index, hoist_view *out)
{
    RETURN_IF(!w || !out, HOIST_E_INVALID_ARG, "hoist_weights_view: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_view, out));
    const hoist__table *t = &w->model->table;
    RETURN_IF(index >= t->ntensors, HOIST_E_INVALID_ARG,
              "tensor index %zu out of range (%zu tensors)", index, t->ntensors);
    const hoist__tensor *ti = &t->tensors[index];
    const hoist__arena *ar = &w->arenas[w->tensor_arena ? w->tensor_arena[index] : 0];
    hoist_view v = {.name = ti->name,
                    .dtype = ti->dtype,
                    .ndim = ti->ndim,
                    .nbytes = w->slices ? w->slices[index].nbytes : ti->nbytes,
                    .device = ar->device,
                    .data = ar->base + w->tensor_dst[index]};
    memcpy(v.shape, w->slices ? w->slices[index].shape : ti->shape, sizeof v.shape);
    HOIST__OUT(hoist_view, out, &v);
    return HOIST_OK;
}

int hoist_weights_find(const hoist_weights *w, const char *name, hoist_view *out)
{
    RETURN_IF(!w || !name || !out, HOIST_E_INVALID_ARG, "hoist_weights_find: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_view, out));
    long i = hoist__table_find(&w->model->table, name);
    RETURN_IF(i < 0, HOIST_E_NOT_FOUND, "no tensor named '%s'", name);
    return hoist_weights_view(w, (size_t)i, out);
}

int hoist_weights_stats(const hoist_weights *w, hoist_load_stats *out)
{
    RETURN_IF(!w || !out, HOIST_E_INVALID_ARG, "hoist_weights_stats: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_load_stats, out));
    HOIST__OUT(hoist_load_stats, out, &w->stats);
    return HOIST_OK;
}

int hoist_weights_read(const hoist_weights *w, size_t index, uint64_t offset, void *dst,
                       uint64_t nbytes)
{
    RETURN_IF(!w || (!dst && nbytes), HOIST_E_INVALID_ARG, "hoist_weights_read: NULL argument");
    const hoist__table *t = &w->model->table;
    RETURN_IF(index >= t->ntensors, HOIST_E_INVALID_ARG, "tensor index %zu out of range", index);
    uint64_t end, have = w->slices ? w->slices[index].nbytes : t->tensors[index].nbytes;
    RETURN_IF(!hoist__add_u64(offset, nbytes, &end) || end > have, HOIST_E_INVALID_ARG,
              "tensor '%s': bytes %llu..+%llu are outside its %llu bytes%s",
              t->tensors[index].name, (unsigned long long)offset, (unsigned long long)nbytes,
              (unsigned long long)have, w->slices ? " (this rank's slice)" : "");
    if (!nbytes) return HOIST_OK;
    const hoist__arena *ar = &w->arenas[w->tensor_arena ? w->tensor_arena[index] : 0];
    return ar->gpu->copy_d2h(dst, ar->base + w->tensor_dst[index] + offset, nbytes, ar->device);
}

int hoist_weights_tp_share(const hoist_weights *w, hoist_tp_share *out)
{
    RETURN_IF(!w || !out, HOIST_E_INVALID_ARG, "hoist_weights_tp_share: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_tp_share, out));
    HOIST__OUT(hoist_tp_share, out, &w->share);
    return HOIST_OK;
}
