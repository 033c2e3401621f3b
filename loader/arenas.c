/* A load's destinations: one arena on opts->device, or with a plan one arena on each device the
 * plan put tensors on. Every arena is checked against its device's free memory before any is
 * allocated, so that a load that cannot fit fails without taking (or leaving) anything. */
#include "loader/load_ctx.h"

#include "core/abi.h"

#include <string.h>

/* The plan's devices that hold tensors become arenas, in plan order. */
static int resolve_plan(hoist__load *ld, const hoist_plan *p, const hoist_model *model)
{
    const hoist__table *t = ld->table;
    RETURN_IF(p->model != model, HOIST_E_INVALID_ARG,
              "the load's plan was made for another model (%s)",
              p->model->table.nfiles ? p->model->table.files[0].path : "?");
    RETURN_IF(p->info.tp_world > 1, HOIST_E_INVALID_ARG,
              "the load's plan is tensor-parallel over %zu devices: load each rank with "
              "hoist_load_options.tp on its device (hoist_load_group loads them all)",
              p->info.tp_world);
    int arena_of[HOIST_PLAN_MAX_DEVICES];
    for (size_t d = 0; d < HOIST_PLAN_MAX_DEVICES; d++) arena_of[d] = -1;
    for (size_t i = 0; i < t->ntensors; i++) arena_of[p->tensor_dev[i]] = 0;
    ld->narenas = 0;
    for (size_t d = 0; d < p->info.ndevices; d++) {
        if (arena_of[d] < 0) continue;
        arena_of[d] = (int)ld->narenas;
        ld->arenas[ld->narenas++] = (hoist__arena){.device = p->usage[d].device,
                                                  .bytes = p->usage[d].weights_bytes};
    }
    if (ld->narenas == 0) { /* no tensors at all: one empty arena on the first device */
        ld->arenas[0] = (hoist__arena){.device = p->usage[0].device};
        ld->narenas = 1;
    }
    ld->tensor_arena = hoist__malloc(t->ntensors ? t->ntensors : 1);
    RETURN_IF(!ld->tensor_arena, HOIST_E_NOMEM, "out of memory for %zu tensor placements",
              t->ntensors);
    for (size_t i = 0; i < t->ntensors; i++)
        ld->tensor_arena[i] = (uint8_t)arena_of[p->tensor_dev[i]];
    return HOIST_OK;
}

int hoist__arenas_resolve(hoist__load *ld, const hoist_model *model)
{
    if (ld->opts.plan) {
        RETURN_IF_ERR(resolve_plan(ld, ld->opts.plan, model));
    } else {
        ld->narenas = 1;
        ld->arenas[0] = (hoist__arena){.device = ld->opts.device};
    }
    bool all_host = true;
    ld->gpu = NULL;
    for (size_t a = 0; a < ld->narenas; a++) {
        hoist__arena *ar = &ld->arenas[a];
        RETURN_IF_ERR(hoist__gpu_for_device(ar->device, &ar->gpu));
        if (ar->device != HOIST_DEVICE_HOST) {
            all_host = false;
            if (!ld->gpu) ld->gpu = ar->gpu; /* pinned staging serves every GPU */
        }
    }
    if (!ld->gpu) ld->gpu = ld->arenas[0].gpu;
    ld->host_sink = all_host && !hoist__gpu_host_as_device();
    return HOIST_OK;
}

/* A device's free memory can shrink between the plan and the load (another process, another
 * model loaded without a plan); better to say so than to fail half-way through allocating. */
static int check_free(const hoist__load *ld)
{
    if (!ld->opts.plan) return HOIST_OK;
    for (size_t a = 0; a < ld->narenas; a++) {
        const hoist__arena *ar = &ld->arenas[a];
        if (ar->device == HOIST_DEVICE_HOST) continue; /* page cache makes "free" meaningless */
        hoist_device_info info;
        RETURN_IF_ERR(ar->gpu->device_info(ar->device, &info));
        char dn[HOIST_DEVICE_NAME_MAX];
        RETURN_IF(info.free_bytes < ar->bytes, HOIST_E_NO_FIT,
                  "%s has %llu bytes free now, but the plan puts %llu bytes of weights there "
                  "(memory was taken since the plan was made); nothing was allocated",
                  hoist_device_name(ar->device, dn, sizeof dn), (unsigned long long)info.free_bytes,
                  (unsigned long long)ar->bytes);
    }
    return HOIST_OK;
}

/* One arena from the embedder's allocator: NULL is that device's out-of-memory, and memory the
 * views cannot start in (misaligned) goes back at once. */
static int embedder_alloc(hoist__arena *ar, const hoist_allocator *a)
{
    char dn[HOIST_DEVICE_NAME_MAX];
    size_t bytes = ar->bytes ? (size_t)ar->bytes : 1; /* an empty model still gets a base */
    void *p = a->alloc(a->user, ar->device, bytes);
    RETURN_IF(!p, ar->device == HOIST_DEVICE_HOST ? HOIST_E_NOMEM : HOIST_E_DEVICE_NOMEM,
              "%s: the embedder's allocator returned NULL for the %zu-byte arena of the weights",
              hoist_device_name(ar->device, dn, sizeof dn), bytes);
    if ((uintptr_t)p % HOIST_ALLOCATOR_ALIGN) {
        a->free(a->user, ar->device, p, bytes);
        return hoist__err(HOIST_E_INVALID_ARG, "%s: the embedder's allocator returned %p for the "
                          "weights' arena, not aligned to %u bytes (HOIST_ALLOCATOR_ALIGN)",
                          hoist_device_name(ar->device, dn, sizeof dn), p, HOIST_ALLOCATOR_ALIGN);
    }
    ar->base = p;
    ar->alloc = *a;
    ar->alloc_bytes = bytes;
    return HOIST_OK;
}

int hoist__arenas_alloc(hoist__load *ld)
{
    for (size_t a = 0; a < ld->narenas; a++) {
        /* the layout is the loader's own; the plan predicted the same sizes */
        if (ld->opts.plan && ld->arenas[a].bytes != ld->plan.arena_bytes[a])
            return hoist__err(HOIST_E_INTERNAL,
                              "arena %zu: the plan predicted %llu bytes, the layout needs %llu", a,
                              (unsigned long long)ld->arenas[a].bytes,
                              (unsigned long long)ld->plan.arena_bytes[a]);
        ld->arenas[a].bytes = ld->plan.arena_bytes[a];
    }
    hoist_allocator embedder = HOIST_ALLOCATOR_INIT;
    if (ld->opts.allocator) {
        RETURN_IF_ERR(HOIST__IN(hoist_allocator, &embedder, ld->opts.allocator, NULL));
        RETURN_IF(!embedder.alloc || !embedder.free, HOIST_E_INVALID_ARG,
                  "hoist_load: the allocator needs both alloc and free (alloc %s, free %s)",
                  embedder.alloc ? "set" : "NULL", embedder.free ? "set" : "NULL");
    }
    RETURN_IF_ERR(check_free(ld));
    for (size_t a = 0; a < ld->narenas; a++) {
        hoist__arena *ar = &ld->arenas[a];
        int rc = embedder.alloc ? embedder_alloc(ar, &embedder)
                                : ar->gpu->mem_alloc(ar->device, ar->bytes, (void **)&ar->base);
        if (rc < 0) {
            ar->base = NULL;
            hoist__arenas_free(ld->arenas, a);
            return rc;
        }
    }
    return HOIST_OK;
}

void hoist__arenas_free(hoist__arena *arenas, size_t n)
{
    for (size_t a = 0; a < n; a++) {
        hoist__arena *ar = &arenas[a];
        if (ar->base && ar->alloc.free)
            ar->alloc.free(ar->alloc.user, ar->device, ar->base, ar->alloc_bytes);
        else if (ar->base)
            ar->gpu->mem_free(ar->device, ar->base);
        ar->base = NULL;
    }
}
