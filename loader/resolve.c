/* Resolving a load's options, once: the source is opened with hints taken from them and answers
 * with its needs; the transform (loader/transform.c) and the RAM budget may then only narrow
 * what it asked for. Sources never see the options. */
#include "loader/gpu_decode.h"
#include "loader/load_ctx.h"
#include "loader/transform.h"

static int validate_options(const hoist_load_options *o)
{
    RETURN_IF(o->chunk_bytes && (o->chunk_bytes < 4096 || o->chunk_bytes % 4096 ||
                                 o->chunk_bytes > (1ull << 30)),
              HOIST_E_INVALID_ARG,
              "chunk size %llu must be a multiple of 4096 between 4 KiB and 1 GiB",
              (unsigned long long)o->chunk_bytes);
    RETURN_IF(o->threads > 256, HOIST_E_INVALID_ARG, "%u threads (at most 256)", o->threads);
    RETURN_IF(o->mmap_register < -1 || o->mmap_register > 1, HOIST_E_INVALID_ARG,
              "mmap_register must be -1, 0 or 1");
    RETURN_IF(o->verify & ~(unsigned)(HOIST_VERIFY_MANIFEST | HOIST_VERIFY_READBACK),
              HOIST_E_INVALID_ARG, "verify flags 0x%x: unknown bits", o->verify);
    return HOIST_OK;
}

/* ---- the source --------------------------------------------------------------------------- */

/* The stage hoist__transform_prepare will pick, named for the source before it exists: it reads
 * every window first, so a mapping is not worth registering. */
static const char *transform_of(const hoist__load *ld)
{
    if (ld->table->packed) return hoist__transform_decode.name;
    if (ld->opts.verify & HOIST_VERIFY_MANIFEST) return hoist__transform_manifest.name;
    return NULL;
}

static hoist__source_hints hints_of(const hoist__load *ld)
{
    const hoist_load_options *o = &ld->opts;
    return (hoist__source_hints){.files = ld->table->files,
                                 .nfiles = ld->table->nfiles,
                                 .origin = ld->table->origin,
                                 .host = ld->host_sink,
                                 .gpu = ld->gpu,
                                 .ram_budget = o->ram_budget,
                                 .threads = o->threads,
                                 .window = o->chunk_bytes ? o->chunk_bytes
                                                          : hoist__gdec_window_hint(ld),
                                 .mmap_register = o->mmap_register,
                                 .transform = transform_of(ld),
                                 .readahead_bytes = o->readahead_bytes,
                                 .sparse = ld->slices != NULL,
                                 .read_bytes = (_Atomic uint64_t *)&ld->read_bytes};
}

/* The pipeline relies on these: a source answering otherwise is a bug, caught here. */
static int check_needs(const hoist__load *ld, const hoist__source_needs *n)
{
    const hoist__source_hints h = hints_of(ld);
    RETURN_IF(!n->threads || n->threads > 256 || (h.threads && n->threads != h.threads) ||
                  n->window < 4096 || n->window % 4096 || n->window > (1ull << 30) ||
                  (h.window && n->window != h.window),
              HOIST_E_INTERNAL,
              "source '%s' asked for %u workers and %llu-byte windows (the options say %u and "
              "%llu)",
              ld->source->name, n->threads, (unsigned long long)n->window, h.threads,
              (unsigned long long)h.window);
    return HOIST_OK;
}

static int open_source(hoist__load *ld)
{
    const hoist__source_ops *ops = hoist__source_for(ld->opts.path, ld->table);
    RETURN_IF(!ops, HOIST_E_UNSUPPORTED, "path '%s' is not part of this build",
              hoist_path_name(ld->opts.path));
    RETURN_IF_ERR(hoist__source_resolve(ops, &ld->source_ops));
    ld->source = &ld->source_ops;
    hoist__transform_defaults(ld); /* a packed model's workers: a wish the source then sees */
    hoist__source_hints h = hints_of(ld);
    hoist__source_needs n = {0};
    RETURN_IF_ERR(ld->source->open(&h, &ld->source_state, &n));
    RETURN_IF_ERR(check_needs(ld, &n));
    ld->source_needs = n;
    ld->opts.threads = n.threads;
    ld->opts.chunk_bytes = n.window;
    return HOIST_OK;
}

/* ---- the budget --------------------------------------------------------------------------- */

#define FIT_MIN_WINDOW (256u << 10)
#define FIT_PREFERRED_WINDOW (4u << 20)

/* Upper bound of the plan's own host bytes for a window size, before it is built: a window per
 * window-sized block of the files, and at most one more where each extent (each row of a strided
 * one) begins. */
static uint64_t plan_estimate(const hoist__load *ld, uint64_t window)
{
    const hoist__table *t = ld->table;
    uint64_t rows = 0;
    for (size_t i = 0; ld->slices && i < t->ntensors; i++) rows += ld->slices[i].rows;
    uint64_t windows = t->total_bytes / window + t->ntensors + rows + t->nfiles + 1;
    return t->ntensors * (sizeof(uint64_t) + sizeof(hoist__extent) + 1) +
           windows * sizeof(hoist__window) +
           (ld->slices ? t->ntensors * sizeof *ld->slices : 0);
}

static uint64_t load_need(const hoist__load *ld, unsigned threads, uint64_t window)
{
    uint64_t verify =
        ld->opts.verify & HOIST_VERIFY_READBACK ? (uint64_t)threads * window * 2 : 0;
    uint64_t transform = (uint64_t)threads * ld->transform_needs.worker_bytes +
                         ld->transform_needs.fixed_bytes;
    return hoist__pipeline_staging_bytes(ld, threads, window) + plan_estimate(ld, window) +
           verify + transform + ld->source->host_bytes(ld->source_state, threads, window);
}

/* Half the window, kept to the transform's constraints; `window` itself when that breaks them. */
static uint64_t half_window(const hoist__load *ld, uint64_t window)
{
    uint64_t w = window / 2, q = ld->transform_needs.window_quantum;
    if (q) w = hoist__align_down(w, q);
    return w && w >= ld->transform_needs.window_min ? w : window;
}

/* Shrinks the staging to the RAM budget before anything is read: windows down to 4 MiB first,
 * then fewer workers, then windows down to 256 KiB. Fails naming the smallest budget that
 * works. */
static int fit_budget(hoist__load *ld)
{
    hoist_load_options *o = &ld->opts;
    if (!o->ram_budget) return HOIST_OK;
    unsigned threads = o->threads;
    uint64_t window = o->chunk_bytes;
    while (load_need(ld, threads, window) > o->ram_budget) {
        if (window > FIT_PREFERRED_WINDOW && half_window(ld, window) != window)
            window = half_window(ld, window);
        else if (threads > 1)
            threads--;
        else if (window > FIT_MIN_WINDOW && half_window(ld, window) != window)
            window = half_window(ld, window);
        else
            return hoist__err(HOIST_E_BUDGET,
                              "path %s needs at least %llu bytes of host RAM for this model "
                              "(staging, plan%s%s%s); the budget is %llu bytes",
                              ld->source->name, (unsigned long long)load_need(ld, 1, window),
                              o->verify & HOIST_VERIFY_READBACK ? ", verification" : "",
                              ld->transform ? ", " : "",
                              ld->transform ? ld->transform->name : "",
                              (unsigned long long)o->ram_budget);
    }
    if (threads != o->threads || window != o->chunk_bytes)
        hoist__log(HOIST_LOG_INFO,
                   "fitting a %llu-byte RAM budget: %u workers, %llu-byte windows (was %u, %llu)",
                   (unsigned long long)o->ram_budget, threads, (unsigned long long)window,
                   o->threads, (unsigned long long)o->chunk_bytes);
    o->threads = threads;
    o->chunk_bytes = window;
    return HOIST_OK;
}

static int build_plan(hoist__load *ld)
{
    if (!ld->slices)
        return hoist__plan_build(ld->table, ld->tensor_arena, ld->narenas, ld->opts.chunk_bytes,
                                 &ld->plan);
    hoist__plan_cut cut = {.slices = ld->slices, .rank = ld->tp.rank, .world = ld->tp.world,
                           .cooperative = ld->tp.cooperative};
    return hoist__plan_build_cut(ld->table, &cut, ld->opts.chunk_bytes, &ld->plan);
}

int hoist__load_resolve(hoist__load *ld)
{
    RETURN_IF_ERR(validate_options(&ld->opts));
    RETURN_IF_ERR(hoist__tp_resolve(ld, ld->sink ? "hoist_load_sink" : "hoist_load"));
    RETURN_IF_ERR(hoist__arenas_resolve(ld, ld->model));
    ld->host_sink |= ld->sink != NULL;
    hoist__gdec_decide(ld); /* before the source (its windows) and the budget (read buffers) */
    RETURN_IF_ERR(open_source(ld));
    RETURN_IF_ERR(hoist__transform_prepare(ld));
    RETURN_IF_ERR(fit_budget(ld));
    RETURN_IF_ERR(build_plan(ld));
    hoist__gdec_plan(ld);
    return HOIST_OK;
}
