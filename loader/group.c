/* hoist_load_group: one process loading a model onto several devices at once, one thread per
 * device, each thread one rank (hoist_load with tp.rank = i). A cooperative group meets twice at
 * a barrier in its exchange: after every rank has posted its outcome and arena, and after every
 * rank has copied what it lacks, so that no arena is freed while another rank still reads it.
 * GPUs exchange through NCCL (a communicator per device from ncclCommInitAll) instead. */
#include "core/abi.h"
#include "gpu/nccl.h"
#include "loader/group.h"
#include "loader/load_ctx.h"

#include <stdio.h>
#include <string.h>

/* ---- the host exchange -------------------------------------------------------------------- */

int hoist__group_exchange(hoist__group *g, int rank, int status, uint8_t *base,
                          uint64_t share_bytes, uint64_t part, uint64_t *received)
{
    *received = 0;
    g->status[rank] = status;
    g->share[rank] = share_bytes;
    g->base[rank] = base;
    snprintf(g->msg[rank], sizeof g->msg[rank], "%s", status < 0 ? hoist_last_error() : "");
    pthread_barrier_wait(&g->barrier);
    int bad = -1;
    for (int q = 0; q < g->world && bad < 0; q++)
        if (g->status[q] < 0 || g->share[q] != share_bytes) bad = q;
    int rc = status;
    if (status == HOIST_OK && bad >= 0) {
        rc = g->status[bad] < 0
                 ? hoist__err(HOIST_E_ABORTED,
                              "cooperative load: rank %d failed (%s); this rank's load is "
                              "abandoned",
                              bad, g->msg[bad])
                 : hoist__err(HOIST_E_INVALID_ARG,
                              "cooperative load: rank %d shares %llu bytes, this rank %llu",
                              bad, (unsigned long long)g->share[bad],
                              (unsigned long long)share_bytes);
    }
    for (int q = 0; rc == HOIST_OK && q < g->world; q++) {
        if (q == rank || !part) continue;
        memcpy(base + (uint64_t)q * part, g->base[q] + (uint64_t)q * part, part);
        *received += part;
    }
    pthread_barrier_wait(&g->barrier); /* nobody frees an arena another rank still reads */
    return rc;
}

/* ---- the group ---------------------------------------------------------------------------- */

typedef struct rank_job {
    hoist_model *model;
    hoist_load_options opts;
    hoist_tp_options tp;
    hoist__group *group;
    pthread_t thread;
    int started;
    int status;
    char msg[1024];
    hoist_weights *weights;
} rank_job;

/* Threads start loading only once every one of them exists: a rank whose thread could not be
 * created would leave the others waiting at the exchange for ever. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state; /* 0 closed, 1 go, -1 give up */
} gate;

typedef struct rank_arg {
    rank_job *job;
    gate *gate;
} rank_arg;

static void *rank_main(void *varg)
{
    rank_arg *a = varg;
    gate *gt = a->gate;
    pthread_mutex_lock(&gt->lock);
    while (gt->state == 0) pthread_cond_wait(&gt->cond, &gt->lock);
    int go = gt->state > 0;
    pthread_mutex_unlock(&gt->lock);
    rank_job *j = a->job;
    if (!go) return NULL;
    j->status = hoist__load_rank(j->model, &j->opts, j->group, &j->weights);
    if (j->status < 0) snprintf(j->msg, sizeof j->msg, "%s", hoist_last_error());
    return NULL;
}

static void open_gate(gate *gt, int state)
{
    pthread_mutex_lock(&gt->lock);
    gt->state = state;
    pthread_cond_broadcast(&gt->cond);
    pthread_mutex_unlock(&gt->lock);
}

/* Starts every rank and waits for them all. HOIST_E_NOMEM when a thread cannot be created
 * (then no rank loads anything). */
static int run_ranks(rank_job *jobs, size_t n)
{
    gate gt = {.state = 0};
    pthread_mutex_init(&gt.lock, NULL);
    pthread_cond_init(&gt.cond, NULL);
    rank_arg args[HOIST_PLAN_MAX_DEVICES];
    int rc = HOIST_OK;
    for (size_t i = 0; i < n && rc == HOIST_OK; i++) {
        args[i] = (rank_arg){&jobs[i], &gt};
        if (pthread_create(&jobs[i].thread, NULL, rank_main, &args[i]) != 0)
            rc = hoist__err(HOIST_E_NOMEM, "hoist_load_group: cannot start the thread of rank %zu",
                            i);
        else
            jobs[i].started = 1;
    }
    open_gate(&gt, rc == HOIST_OK ? 1 : -1);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].started) pthread_join(jobs[i].thread, NULL);
    pthread_cond_destroy(&gt.cond);
    pthread_mutex_destroy(&gt.lock);
    return rc;
}

/* The failure to report: the first rank that failed of its own accord, not one that gave up
 * because another did (HOIST_E_ABORTED from the exchange). */
static int first_failure(const rank_job *jobs, size_t n, const int *devices)
{
    size_t pick = n;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].status >= 0) continue;
        if (pick == n || (jobs[pick].status == HOIST_E_ABORTED &&
                          jobs[i].status != HOIST_E_ABORTED))
            pick = i;
    }
    if (pick == n) return HOIST_OK;
    char dn[HOIST_DEVICE_NAME_MAX];
    return hoist__err(jobs[pick].status, "rank %zu (%s): %s", pick,
                      hoist_device_name(devices[pick], dn, sizeof dn), jobs[pick].msg);
}

static int check_devices(const int *devices, size_t n, bool *all_gpu)
{
    *all_gpu = true;
    for (size_t i = 0; i < n; i++) {
        RETURN_IF(devices[i] < HOIST_DEVICE_HOST, HOIST_E_INVALID_ARG,
                  "hoist_load_group: device id %d", devices[i]);
        for (size_t j = 0; j < i && devices[i] != HOIST_DEVICE_HOST; j++) {
            char dn[HOIST_DEVICE_NAME_MAX];
            RETURN_IF(devices[j] == devices[i], HOIST_E_INVALID_ARG,
                      "hoist_load_group: %s is listed twice",
                      hoist_device_name(devices[i], dn, sizeof dn));
        }
        if (devices[i] == HOIST_DEVICE_HOST) *all_gpu = false;
    }
    return HOIST_OK;
}

static bool devices_any_gpu(const int *devices, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (devices[i] != HOIST_DEVICE_HOST) return true;
    return false;
}

/* The group's options: opts->tp's rules with world n, or every tensor whole. */
static int group_tp(const hoist_load_options *o, size_t n, hoist_tp_options *tp)
{
    RETURN_IF_ERR(hoist__tp_options_in(o->tp, tp, "hoist_load_group"));
    if (!o->tp) tp->rules_default = 0;
    RETURN_IF(tp->world != 1 && (size_t)tp->world != n, HOIST_E_INVALID_ARG,
              "hoist_load_group: tp->world is %d for %zu devices (give %zu, or 1)", tp->world, n,
              n);
    tp->world = (int)n;
    tp->nccl_comm = NULL;
    return HOIST_OK;
}

static int load_group(hoist_model *model, const hoist_load_options *o, const int *devices,
                      size_t n, rank_job *jobs, hoist__group *g)
{
    hoist_tp_options tp;
    bool all_gpu;
    RETURN_IF_ERR(group_tp(o, n, &tp));
    RETURN_IF_ERR(check_devices(devices, n, &all_gpu));
    RETURN_IF(tp.cooperative && !all_gpu && devices_any_gpu(devices, n), HOIST_E_INVALID_ARG,
              "hoist_load_group: a cooperative group is all GPUs (exchanging over NCCL) or all "
              "host memory");
    g->world = (int)n;
    if (tp.cooperative && all_gpu) RETURN_IF_ERR(hoist__nccl_init_all((int)n, devices, g->comms));
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (rank_job){.model = model, .opts = *o, .tp = tp, .group = g};
        jobs[i].opts.device = devices[i];
        jobs[i].tp.rank = (int)i;
        jobs[i].tp.nccl_comm = g->comms[i];
        jobs[i].opts.tp = &jobs[i].tp;
    }
    if (pthread_barrier_init(&g->barrier, NULL, (unsigned)n) != 0)
        return hoist__err(HOIST_E_NOMEM, "hoist_load_group: cannot create a barrier");
    int rc = run_ranks(jobs, n);
    pthread_barrier_destroy(&g->barrier);
    return rc < 0 ? rc : first_failure(jobs, n, devices);
}

int hoist_load_group(hoist_model *model, const hoist_load_options *opts, const int *devices,
                     size_t ndevices, hoist_weights **out)
{
    RETURN_IF(!model || !devices || !out, HOIST_E_INVALID_ARG,
              "hoist_load_group: NULL argument");
    RETURN_IF(ndevices < 1 || ndevices > HOIST_PLAN_MAX_DEVICES, HOIST_E_INVALID_ARG,
              "hoist_load_group: %zu devices (1..%d)", ndevices, HOIST_PLAN_MAX_DEVICES);
    for (size_t i = 0; i < ndevices; i++) out[i] = NULL;
    static const hoist_load_options defaults = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_load_options o;
    RETURN_IF_ERR(HOIST__IN(hoist_load_options, &o, opts, &defaults));
    RETURN_IF(o.plan, HOIST_E_INVALID_ARG,
              "hoist_load_group: each rank places on its device; leave opts->plan NULL");
    rank_job jobs[HOIST_PLAN_MAX_DEVICES];
    hoist__group g;
    memset(&g, 0, sizeof g);
    memset(jobs, 0, sizeof jobs);
    int rc = load_group(model, &o, devices, ndevices, jobs, &g);
    for (size_t i = 0; i < ndevices; i++) {
        if (rc == HOIST_OK)
            out[i] = jobs[i].weights;
        else
            hoist_weights_free(jobs[i].weights);
        hoist__nccl_destroy(g.comms[i]);
    }
    if (rc == HOIST_OK) hoist__err_clear();
    return rc;
}

int hoist_nccl_version(int *version)
{
    RETURN_IF(!version, HOIST_E_INVALID_ARG, "hoist_nccl_version: version is NULL");
    RETURN_IF_ERR(hoist__nccl_version(version));
    hoist__err_clear();
    return HOIST_OK;
}
