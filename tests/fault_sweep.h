/* Fault sweeps (docs/RELIABILITY.md 27, 33, 34), shared by test_faults.c (host backend, CI) and
 * test_gpu_faults.c (CUDA, on the device machine): a fault is injected at the k-th call of one
 * kind, through the seams (loader/io.h reads, the allocator hook of loader/internal.h, the
 * device-call hook of gpu/gpu.h), for k = 1, 2, ... until a run no longer reaches a k-th call.
 * Every run must either fail with the status that fault stands for and a message, publishing
 * nothing, or succeed with every byte right; and either way leave host memory (the allocator's
 * live bytes), pinned and device buffers, registrations, streams, events and file descriptors
 * exactly where they were. */
#ifndef HOIST_FAULT_SWEEP_H
#define HOIST_FAULT_SWEEP_H

#include "gpu/gpu.h"
#include "core/core.h"
#include "source_test_common.h"

#include <jansson.h>

typedef enum fs_fault {
    FS_READ_EIO,   /* the k-th read (pread or io_uring completion) fails with EIO */
    FS_READ_EINTR, /* ... is interrupted (EINTR): must be retried */
    FS_READ_SHORT, /* ... returns half of what was asked: must be continued */
    FS_HOST_ALLOC, /* the k-th host allocation fails */
    FS_GPU_CALL,   /* the k-th device call of one kind fails */
    FS_NONE,       /* no injected fault (the file changes, or nothing happens) */
} fs_fault;

typedef struct fs_case {
    const char *model;           /* what hoist_model_open is given */
    hoist_load_options opts;
    fs_fault fault;
    hoist__gpu_call call;        /* for FS_GPU_CALL */
    bool host_as_device;         /* drive the host backend through the device pipeline */
    bool during_open;            /* count calls from hoist_model_open on (else from hoist_load) */
    bool sink;                   /* hoist_load_sink into a callback instead of hoist_load */
    bool plan;                   /* load by a plan placing everything on opts.device */
    bool cold;                   /* the model's files dropped from the page cache before each
                                    load (after the open) */
    bool partly_cold;            /* ... the last quarter of each dropped (st_partly_uncache) */
    const char *reference;       /* a model whose bytes the load must equal (else model's own
                                    files: not for containers that compress) */
} fs_case;

typedef struct fs_result {
    unsigned runs;     /* runs of the sweep (the last one reached no k-th call) */
    unsigned failed;   /* runs that failed with the fault's status */
} fs_result;

static _Atomic unsigned fs_calls;
static unsigned fs_k;
static fs_fault fs_kind;
static hoist__gpu_call fs_call;

static ST_UNUSED bool fs_hit(void) { return atomic_fetch_add(&fs_calls, 1) + 1 == fs_k; }

static ST_UNUSED ssize_t fs_pread(int fd, void *buf, size_t n, off_t off)
{
    if (!fs_hit()) return pread(fd, buf, n, off);
    switch (fs_kind) {
    case FS_READ_EIO: errno = EIO; return -1;
    case FS_READ_EINTR: errno = EINTR; return -1;
    default: return pread(fd, buf, n > 1 ? n / 2 : n, off);
    }
}

static ST_UNUSED int fs_uring_result(int direct, uint64_t off, unsigned len, int res)
{
    if (!fs_hit()) return res;
    switch (fs_kind) {
    case FS_READ_EIO: return -EIO;
    case FS_READ_EINTR: return -EINTR;
    default: return res > 1 ? res / 2 : res;
    }
}

static ST_UNUSED bool fs_alloc_fail(size_t bytes) { return fs_hit(); }

/* The status a backend reports for each call that fails. */
static ST_UNUSED int fs_gpu_status(hoist__gpu_call call)
{
    switch (call) {
    case HOIST_GPU_MEM_ALLOC: return HOIST_E_DEVICE_NOMEM;
    case HOIST_GPU_PINNED_ALLOC: return HOIST_E_PINNED_NOMEM;
    default: return HOIST_E_DEVICE;
    }
}

static ST_UNUSED int fs_gpu_hook(const char *backend, hoist__gpu_call call, size_t bytes)
{
    if (fs_kind != FS_GPU_CALL || call != fs_call || !fs_hit()) return HOIST_OK;
    return fs_gpu_status(call);
}

static ST_UNUSED int fs_expected_status(const fs_case *c)
{
    switch (c->fault) {
    case FS_READ_EIO: return HOIST_E_IO;
    case FS_HOST_ALLOC: return HOIST_E_NOMEM;
    case FS_GPU_CALL: return fs_gpu_status(c->call);
    default: return HOIST_OK;
    }
}

/* Installs the seams for c with the fault at call k; calls are counted from now on. The device
 * hook stays installed between runs (for host_as_device), only armed by fs_kind. */
static ST_UNUSED void fs_arm(const fs_case *c, unsigned k)
{
    fs_k = k;
    fs_kind = c->fault;
    fs_call = c->call;
    atomic_store(&fs_calls, 0);
    switch (c->fault) {
    case FS_HOST_ALLOC: hoist__alloc_set_hooks(&(hoist__alloc_hooks){.fail = fs_alloc_fail}); break;
    case FS_GPU_CALL: break;
    default:
        hoist__io_set_hooks(&(hoist__io_hooks){.pread = fs_pread, .uring_result = fs_uring_result});
    }
}

static ST_UNUSED void fs_disarm(void)
{
    hoist__alloc_set_hooks(NULL);
    hoist__io_set_hooks(NULL);
    fs_k = 0;
}

/* ---- the callback sink: every piece lands in a copy of each tensor, compared afterwards ---- */

typedef struct fs_sink {
    hoist_model *m;
    uint8_t **bytes; /* per tensor */
} fs_sink;

static ST_UNUSED int fs_sink_fn(const hoist_piece *p, void *user)
{
    fs_sink *k = user;
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_tensor(k->m, p->tensor, &t), HOIST_OK);
    ck_assert_uint_le(p->offset + p->nbytes, t.nbytes);
    if (p->nbytes) memcpy(k->bytes[p->tensor] + p->offset, p->data, p->nbytes);
    return 0;
}

static ST_UNUSED void fs_sink_init(fs_sink *k, hoist_model *m)
{
    size_t n = hoist_model_tensor_count(m);
    k->m = m;
    k->bytes = calloc(n + 1, sizeof *k->bytes);
    for (size_t i = 0; i < n; i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, i, &t), HOIST_OK);
        k->bytes[i] = calloc(t.nbytes + 1, 1);
    }
}

/* Frees the copies; with check, asserts they hold the files' bytes. */
static ST_UNUSED void fs_sink_done(fs_sink *k, bool check)
{
    if (!k->m) return;
    size_t n = hoist_model_tensor_count(k->m);
    for (size_t i = 0; i < n; i++) {
        if (check) {
            hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
            ck_assert_int_eq(hoist_model_tensor(k->m, i, &t), HOIST_OK);
            int fd = open(hoist_model_file_path(k->m, t.file), O_RDONLY);
            ck_assert_int_ge(fd, 0);
            uint8_t *want = malloc(t.nbytes + 1);
            ck_assert_int_eq(pread(fd, want, t.nbytes, (off_t)t.offset), (ssize_t)t.nbytes);
            close(fd);
            ck_assert_msg(memcmp(want, k->bytes[i], t.nbytes) == 0, "tensor %s differs", t.name);
            free(want);
        }
        free(k->bytes[i]);
    }
    free(k->bytes);
    k->m = NULL;
}

/* Every tensor of w holds the bytes of the tensor of the same name in the model at ref. */
static ST_UNUSED void fs_assert_matches(const hoist_weights *w, const char *ref)
{
    hoist_model *r = st_open(ref);
    hoist_weights *rw = NULL;
    ck_assert_int_eq(hoist_load(r, NULL, &rw), HOIST_OK);
    ck_assert_uint_eq(hoist_weights_count(w), hoist_weights_count(rw));
    for (size_t i = 0; i < hoist_weights_count(rw); i++) {
        hoist_view want = HOIST_VIEW_INIT, got = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(rw, i, &want), HOIST_OK);
        ck_assert_int_eq(hoist_weights_find(w, want.name, &got), HOIST_OK);
        ck_assert_uint_eq(got.nbytes, want.nbytes);
        size_t gi = 0;
        for (; gi < hoist_weights_count(w); gi++) {
            hoist_view v = HOIST_VIEW_INIT;
            ck_assert_int_eq(hoist_weights_view(w, gi, &v), HOIST_OK);
            if (strcmp(v.name, want.name) == 0) break;
        }
        uint8_t *bytes = malloc(got.nbytes + 1);
        ck_assert_int_eq(hoist_weights_read(w, gi, 0, bytes, got.nbytes), HOIST_OK);
        ck_assert_msg(memcmp(bytes, want.data, want.nbytes) == 0, "tensor %s differs", want.name);
        free(bytes);
    }
    hoist_weights_free(rw);
    hoist_model_free(r);
}

/* What a failed load must give back. */
typedef struct fs_snapshot {
    int64_t host;
    uint64_t reserved; /* by the process-wide coordinator, on the host */
    int64_t gpu[HOIST_GPU_NRES];
    int fds;
    uint64_t vram_free; /* of fs_vram_device, when set */
} fs_snapshot;

/* The CUDA device whose free memory snapshots also record (-1: none). */
static int fs_vram_device = -1;
/* Free device memory may differ by this much: the arena of the models used is smaller, but
 * takes a whole 2 MiB page. */
#define FS_VRAM_SLACK (1u << 20)

static ST_UNUSED fs_snapshot fs_take(void)
{
    hoist_trim(); /* the pinned cache keeps buffers on purpose; they must all be freeable */
    fs_snapshot s = {.host = hoist__alloc_live_bytes(),
                     .reserved = hoist_coordinator_reserved(NULL, HOIST_DEVICE_HOST),
                     .fds = st_fd_count()};
    for (int r = 0; r < HOIST_GPU_NRES; r++) s.gpu[r] = hoist__gpu_live((hoist__gpu_res)r);
    if (fs_vram_device >= 0) {
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        ck_assert_int_eq(hoist_device_info_get(fs_vram_device, &info), HOIST_OK);
        s.vram_free = info.free_bytes;
    }
    return s;
}

static ST_UNUSED const char *fs_fault_name(const fs_case *c)
{
    static const char *const names[] = {"EIO on read", "EINTR on read", "short read",
                                        "host allocation failure", "device call failure",
                                        "no injected fault"};
    return names[c->fault];
}

static ST_UNUSED void fs_assert_same(const fs_snapshot *a, const fs_snapshot *b, const fs_case *c,
                                     unsigned k, int rc)
{
    ck_assert_msg(b->host == a->host,
                  "%s at call %u (%s, status %s): %lld bytes of host memory not given back",
                  fs_fault_name(c), k, hoist_path_name(c->opts.path), hoist_status_name(rc),
                  (long long)(b->host - a->host));
    ck_assert_msg(b->reserved == a->reserved,
                  "%s at call %u (%s, status %s): %lld bytes of plan reservation left",
                  fs_fault_name(c), k, hoist_path_name(c->opts.path), hoist_status_name(rc),
                  (long long)(b->reserved - a->reserved));
    for (int r = 0; r < HOIST_GPU_NRES; r++)
        ck_assert_msg(b->gpu[r] == a->gpu[r], "%s at call %u (%s, status %s): %lld %s left",
                      fs_fault_name(c), k, hoist_path_name(c->opts.path), hoist_status_name(rc),
                      (long long)(b->gpu[r] - a->gpu[r]),
                      hoist__gpu_res_name((hoist__gpu_res)r));
    ck_assert_msg(b->vram_free + FS_VRAM_SLACK >= a->vram_free,
                  "%s at call %u (%s, status %s): free device memory fell by %lld bytes",
                  fs_fault_name(c), k, hoist_path_name(c->opts.path), hoist_status_name(rc),
                  (long long)(a->vram_free - b->vram_free));
    ck_assert_msg(b->fds == a->fds, "%s at call %u (%s, status %s): %d file descriptors left",
                  fs_fault_name(c), k, hoist_path_name(c->opts.path), hoist_status_name(rc),
                  b->fds - a->fds);
}

/* Runs the sweep of c; max_k bounds it (a sweep that reaches max_k fails: raise it). */
static ST_UNUSED fs_result fs_sweep(const fs_case *c, unsigned max_k)
{
    fs_result r = {0, 0};
    int want = fs_expected_status(c);
    hoist__gpu_set_hooks(&(hoist__gpu_hooks){.call = fs_gpu_hook,
                                             .host_as_device = c->host_as_device});
    for (unsigned k = 1;; k++) {
        ck_assert_msg(k <= max_k, "%s: sweep of %s did not end within %u calls",
                      hoist_path_name(c->opts.path), fs_fault_name(c), max_k);
        fs_snapshot before = fs_take();
        hoist_model *m = NULL;
        hoist_weights *w = NULL;
        hoist_plan *plan = NULL;
        fs_sink sink = {0};
        hoist_load_options o = c->opts;
        if (c->during_open) fs_arm(c, k);
        int rc = hoist_model_open(c->model, NULL, &m);
        if (rc == HOIST_OK && c->plan) {
            hoist_plan_device d = TU_PLAN_DEVICE(c->opts.device, 64ull << 30, 0);
            hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
            po.devices = &d;
            po.ndevices = 1;
            po.max_seq_len = 256;
            rc = hoist_plan_create(m, &po, &plan);
            o.plan = plan;
        }
        if (rc == HOIST_OK && c->sink) fs_sink_init(&sink, m);
        for (size_t f = 0; rc == HOIST_OK && c->cold && f < hoist_model_file_count(m); f++)
            st_uncache(hoist_model_file_path(m, f));
        for (size_t f = 0; rc == HOIST_OK && c->partly_cold && f < hoist_model_file_count(m); f++)
            st_partly_uncache(hoist_model_file_path(m, f));
        if (rc == HOIST_OK) {
            if (!c->during_open) fs_arm(c, k);
            w = (hoist_weights *)1;
            if (c->sink) {
                rc = hoist_load_sink(m, &o, fs_sink_fn, &sink, NULL);
                w = NULL;
            } else {
                rc = hoist_load(m, &o, &w);
            }
        }
        unsigned seen = atomic_load(&fs_calls);
        fs_disarm();
        hoist_plan_free(plan);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hoist_last_error());
        r.runs++;
        if (rc == HOIST_OK) {
            ck_assert_ptr_nonnull(m);
            if (want != HOIST_OK && seen >= k && getenv("HOIST_SWEEP_LOG"))
                fprintf(stderr, "  %s at call %u (%s) did not fail the load\n", fs_fault_name(c),
                        k, hoist_path_name(c->opts.path));
            if (c->sink)
                fs_sink_done(&sink, true);
            else if (c->reference)
                fs_assert_matches(w, c->reference);
            else
                tu_assert_weights_match_files(m, w);
        } else {
            ck_assert_msg(rc == want, "%s at call %u (%s): status %s, expected %s: %s",
                          fs_fault_name(c), k, hoist_path_name(c->opts.path),
                          hoist_status_name(rc), hoist_status_name(want), msg);
            ck_assert_msg(strlen(msg) > 10, "%s at call %u: status %s without a message",
                          fs_fault_name(c), k, hoist_status_name(rc));
            if (m) ck_assert_ptr_null(w); /* nothing published */
            else w = NULL;
            r.failed++;
        }
        fs_sink_done(&sink, false);
        hoist_weights_free(w);
        hoist_model_free(m);
        fs_snapshot after = fs_take();
        fs_assert_same(&before, &after, c, k, rc);
        if (seen < k) break; /* no k-th call: each call of the kind has failed once */
    }
    hoist__gpu_set_hooks(NULL);
    if (getenv("HOIST_SWEEP_LOG"))
        fprintf(stderr,
                "sweep %-24s %-7s %-22s as_device=%d verify=%d sink=%d plan=%d: %u runs, "
                "%u failed\n",
                fs_fault_name(c), hoist_path_name(c->opts.path),
                c->fault == FS_GPU_CALL ? hoist__gpu_call_name(c->call) : "-", c->host_as_device,
                c->opts.verify, c->sink, c->plan, r.runs, r.failed);

    return r;
}

/* ---- case 28: the file cut or replaced under the mmap path ---------------------------- */

enum { FS_TRUNCATE, FS_REPLACE };

static char *fs_victim;
static unsigned fs_at_window;
static _Atomic unsigned fs_windows_seen;
static int fs_action;
static uint64_t fs_cut_to;

/* A copy of path with the same bytes and mtime renamed over it: only the inode differs. */
static ST_UNUSED void fs_replace_file(const char *path)
{
    size_t n = 0;
    void *bytes = tu_read(path, &n);
    ck_assert_ptr_nonnull(bytes);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char *tmp = tu_path(dir, "replacement");
    tu_write(tmp, bytes, n);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ck_assert_int_eq(utimensat(AT_FDCWD, tmp, times, 0), 0);
    ck_assert_int_eq(rename(tmp, path), 0);
    free(tmp);
    free(bytes);
}

static ST_UNUSED void fs_on_window(const char *path, uint64_t lo, uint64_t hi)
{
    if (atomic_fetch_add(&fs_windows_seen, 1) + 1 != fs_at_window) return;
    if (fs_action == FS_TRUNCATE)
        ck_assert_int_eq(truncate(fs_victim, (off_t)fs_cut_to), 0);
    else
        fs_replace_file(fs_victim);
}

/* Loads a fresh copy of a small model by the mmap path with options o, the file cut (or
 * replaced) when the k-th window is ready, for every k: HOIST_E_FILE_CHANGED naming the file each
 * time, nothing published, everything given back. Returns how many runs took the guarded-copy
 * error (the copy itself faulted). */
static ST_UNUSED unsigned fs_cut_sweep(int what, hoist_load_options o, bool as_device)
{
    fs_victim = tu_path(dir, "victim.safetensors");
    unsigned guarded = 0;
    for (unsigned k = 1;; k++) {
        fs_snapshot before = fs_take();
        tu_write_odd_model(fs_victim, 7, 3); /* about 145 KB: 18 windows */
        hoist_model *m = st_open(fs_victim);
        hoist_tensor_info t0 = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, 0, &t0), HOIST_OK);
        fs_cut_to = t0.offset + 100; /* inside the first window: every later byte vanishes */
        hoist__gpu_set_hooks(&(hoist__gpu_hooks){.host_as_device = as_device});
        fs_at_window = k;
        fs_action = what;
        atomic_store(&fs_windows_seen, 0);
        hoist__io_set_hooks(&(hoist__io_hooks){.mapped_window = fs_on_window});
        hoist_weights *w = (hoist_weights *)1;
        int rc = hoist_load(m, &o, &w);
        unsigned seen = atomic_load(&fs_windows_seen);
        hoist__io_set_hooks(NULL);
        hoist__gpu_set_hooks(NULL);
        const char *e = hoist_last_error();
        if (seen < k) { /* past the last window: nothing was cut */
            ck_assert_msg(rc == HOIST_OK, "%s", e);
            tu_assert_weights_match_files(m, w);
            hoist_weights_free(w);
            hoist_model_free(m);
            break;
        }
        ck_assert_msg(rc == HOIST_E_FILE_CHANGED, "window %u: %s: %s", k, hoist_status_name(rc), e);
        ck_assert_ptr_null(w);
        ck_assert_msg(strstr(e, "victim.safetensors"), "message: %s", e);
        if (what == FS_REPLACE) ck_assert_msg(strstr(e, "replaced"), "message: %s", e);
        guarded += strstr(e, "vanished from the mapping") != NULL;
        hoist_model_free(m);
        fs_case any = {.opts = o, .fault = FS_NONE};
        fs_snapshot after = fs_take();
        fs_assert_same(&before, &after, &any, k, rc);
    }
    free(fs_victim);
    return guarded;
}

/* Routes jansson's allocations through the wrappers too, so that the parsers' JSON documents
 * are counted and their allocations can fail. Before any JSON is parsed. */
static ST_UNUSED void fs_init(void) { json_set_alloc_funcs(hoist__malloc, hoist__free); }

#endif
