/* NCCL through dlopen: the communicators and collectives of cooperative loads. The types and
 * functions below are declared here rather than taken from nccl.h, which the build machines do
 * not have; they are NCCL's stable C ABI (unchanged since 2.0). Every call reports failures
 * through hoist__err with NCCL's own description; device memory and streams go through the CUDA
 * backend's operations, so they pass the device seam and its live counters like any other. */
#include "gpu/nccl.h"
#include "gpu/cuda_native.h"
#include "core/core.h"

#include <dlfcn.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- NCCL's ABI (nccl.h) -------------------------------------------------------------------- */

typedef struct ncclComm *ncclComm_t;
typedef int ncclResult_t;   /* an enum in nccl.h: ncclSuccess = 0 */
typedef int ncclDataType_t; /* an enum in nccl.h */
#define NCCL_SUCCESS 0
#define NCCL_UINT8 1

typedef struct nccl_api {
    ncclResult_t (*get_version)(int *version);
    ncclResult_t (*comm_init_all)(ncclComm_t *comms, int ndev, const int *devlist);
    ncclResult_t (*all_gather)(const void *send, void *recv, size_t count, ncclDataType_t type,
                               ncclComm_t comm, cudaStream_t stream);
    ncclResult_t (*comm_destroy)(ncclComm_t comm);
    ncclResult_t (*comm_count)(ncclComm_t comm, int *count);
    ncclResult_t (*comm_user_rank)(ncclComm_t comm, int *rank);
    const char *(*error_string)(ncclResult_t result);
} nccl_api;

#define NCCL_LIB "libnccl.so.2"
#define WHEEL_LIB "/nvidia/nccl/lib/" NCCL_LIB

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static nccl_api api;
static int load_status; /* HOIST_OK once loaded */
static char load_why[2048];
static int load_version;

/* ---- finding the library ------------------------------------------------------------------- */

static void note(const char *what, const char *why)
{
    size_t n = strlen(load_why);
    /* a cut list still names the first places tried */
    if (snprintf(load_why + n, sizeof load_why - n, "%s%s (%s)", n ? "; " : "", what, why) < 0)
        load_why[n] = '\0';
}

static void *try_open(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        note(path, e ? e : "not loadable");
    }
    return h;
}

/* The wheel's library under one site-packages directory. */
static void *try_site(const char *site)
{
    if (!site || !*site) return NULL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s%s", site, WHEEL_LIB) >= (int)sizeof path) return NULL;
    return try_open(path);
}

static void *try_pythonpath(void)
{
    const char *pp = getenv("PYTHONPATH");
    if (!pp) return NULL;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", pp);
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        void *h = try_site(dir);
        if (h) return h;
    }
    return NULL;
}

/* Every match of a site-packages pattern (a virtual environment's, the system's pip). */
static void *try_glob(const char *pattern)
{
    glob_t g;
    void *h = NULL;
    if (glob(pattern, 0, NULL, &g) != 0) return NULL;
    for (size_t i = 0; !h && i < g.gl_pathc; i++) h = try_open(g.gl_pathv[i]);
    globfree(&g);
    return h;
}

static void *find_library(void)
{
    void *h = try_open(NCCL_LIB);
    if (!h && getenv("HOIST_NCCL_LIBRARY")) h = try_open(getenv("HOIST_NCCL_LIBRARY"));
    if (!h) h = try_site(getenv("HOIST_NCCL_SITE_PACKAGES"));
    if (!h) h = try_pythonpath();
    const char *venv = getenv("VIRTUAL_ENV");
    char pattern[4096];
    if (!h && venv && snprintf(pattern, sizeof pattern, "%s/lib/python3*/site-packages" WHEEL_LIB,
                               venv) < (int)sizeof pattern)
        h = try_glob(pattern);
    if (!h) h = try_glob("/usr/local/lib/python3*/dist-packages" WHEEL_LIB);
    if (!h) h = try_glob("/usr/local/lib/python3*/site-packages" WHEEL_LIB);
    return h;
}

static bool resolve(void *h, const char *name, void **fn)
{
    *fn = dlsym(h, name);
    if (!*fn) note(name, "missing from the library");
    return *fn != NULL;
}

static void load(void)
{
    void *h = find_library();
    if (!h) {
        load_status = HOIST_E_UNSUPPORTED;
        return;
    }
    load_why[0] = '\0';
    bool ok = resolve(h, "ncclGetVersion", (void **)&api.get_version) &&
              resolve(h, "ncclCommInitAll", (void **)&api.comm_init_all) &&
              resolve(h, "ncclAllGather", (void **)&api.all_gather) &&
              resolve(h, "ncclCommDestroy", (void **)&api.comm_destroy) &&
              resolve(h, "ncclCommCount", (void **)&api.comm_count) &&
              resolve(h, "ncclCommUserRank", (void **)&api.comm_user_rank) &&
              resolve(h, "ncclGetErrorString", (void **)&api.error_string);
    if (ok && api.get_version(&load_version) != NCCL_SUCCESS) {
        note("ncclGetVersion", "failed");
        ok = false;
    }
    load_status = ok ? HOIST_OK : HOIST_E_UNSUPPORTED;
    /* the handle stays open for the life of the process: communicators may outlive any load */
}

static int loaded(void)
{
    pthread_once(&load_once, load);
    RETURN_IF(load_status < 0, load_status, "NCCL is not available: %s", load_why);
    return HOIST_OK;
}

static int check(ncclResult_t r, const char *call, int device)
{
    if (r == NCCL_SUCCESS) return HOIST_OK;
    const char *what = api.error_string ? api.error_string(r) : "?";
    if (device < 0) return hoist__err(HOIST_E_DEVICE, "NCCL: %s failed: %s (%d)", call, what, r);
    return hoist__err(HOIST_E_DEVICE, "cuda:%d: NCCL %s failed: %s (%d)", device, call, what, r);
}

/* ---- the calls ----------------------------------------------------------------------------- */

int hoist__nccl_version(int *version)
{
    *version = 0;
    RETURN_IF_ERR(loaded());
    *version = load_version;
    return HOIST_OK;
}

int hoist__nccl_init_all(int n, const int *devices, void **comms)
{
    RETURN_IF_ERR(loaded());
    RETURN_IF(n < 1 || n > HOIST_PLAN_MAX_DEVICES, HOIST_E_INVALID_ARG,
              "NCCL: %d devices (1..%d)", n, HOIST_PLAN_MAX_DEVICES);
    ncclComm_t c[HOIST_PLAN_MAX_DEVICES] = {0};
    RETURN_IF_ERR(check(api.comm_init_all(c, n, devices), "ncclCommInitAll", -1));
    for (int i = 0; i < n; i++) comms[i] = c[i];
    return HOIST_OK;
}

void hoist__nccl_destroy(void *comm)
{
    if (comm && loaded() == HOIST_OK) (void)api.comm_destroy((ncclComm_t)comm);
}

int hoist__nccl_rank(void *comm, int *rank, int *count)
{
    RETURN_IF_ERR(loaded());
    RETURN_IF_ERR(check(api.comm_user_rank((ncclComm_t)comm, rank), "ncclCommUserRank", -1));
    return check(api.comm_count((ncclComm_t)comm, count), "ncclCommCount", -1);
}

/* One all-gather of `part` bytes per rank from send into recv, on a stream of its own that is
 * synchronised before return. */
static int gather(const hoist__gpu_ops *g, void *comm, int device, const void *send, void *recv,
                  uint64_t part)
{
    hoist__stream *s = NULL;
    RETURN_IF_ERR(g->stream_create(device, &s));
    hoist__device_scope sc;
    int rc = g->scope_enter(&sc, device);
    if (rc == HOIST_OK) {
        rc = check(api.all_gather(send, recv, (size_t)part, NCCL_UINT8, (ncclComm_t)comm,
                                  s->stream),
                   "ncclAllGather", device);
        g->scope_leave(&sc);
    }
    int src = g->stream_sync(s); /* also after a failed enqueue: nothing may stay in flight */
    g->stream_destroy(s);
    return rc < 0 ? rc : src;
}

int hoist__nccl_all_gather(void *comm, int device, void *buf, uint64_t part, int rank)
{
    RETURN_IF_ERR(loaded());
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    RETURN_IF(!g, HOIST_E_UNSUPPORTED, "NCCL: no CUDA backend");
    if (!part) return HOIST_OK;
    return gather(g, comm, device, (uint8_t *)buf + (uint64_t)rank * part, buf, part);
}

int hoist__nccl_all_gather_host(void *comm, int device, int rank, int world, const void *mine,
                                void *all, size_t bytes)
{
    RETURN_IF_ERR(loaded());
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    RETURN_IF(!g, HOIST_E_UNSUPPORTED, "NCCL: no CUDA backend");
    size_t total = (size_t)world * bytes;
    uint8_t *dev = NULL;
    RETURN_IF_ERR(g->mem_alloc(device, total, (void **)&dev));
    hoist__stream *s = NULL;
    int rc = g->stream_create(device, &s);
    if (rc == HOIST_OK) {
        rc = g->copy_h2d(dev + (size_t)rank * bytes, mine, bytes, s);
        int src = g->stream_sync(s);
        if (rc == HOIST_OK) rc = src;
        g->stream_destroy(s);
    }
    if (rc == HOIST_OK) rc = gather(g, comm, device, dev + (size_t)rank * bytes, dev, bytes);
    if (rc == HOIST_OK) rc = g->copy_d2h(all, dev, total, device);
    g->mem_free(device, dev);
    return rc;
}
