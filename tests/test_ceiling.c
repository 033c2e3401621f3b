/* loader/ceiling.c: the raw read ceiling (O_DIRECT through io_uring, each fallback forced through
 * the I/O seam) and the host staging ceiling, on real files. */
#include "gpu/gpu.h"
#include "core/core.h"
#include "core/io.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    hoist__io_set_hooks(NULL);
    hoist__alloc_set_hooks(NULL);
    hoist__gpu_set_hooks(NULL);
    hoist_set_log_callback(NULL, NULL, HOIST_LOG_ERROR);
    tu_rmtree(dir);
    dir = NULL;
}

/* A sharded model from `hoist gen` (3 files of odd sizes). */
static hoist_model *gen_model(void)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --size 12M --shard-size 5M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "m");
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    ck_assert_uint_ge(hoist_model_file_count(m), 3);
    free(p);
    return m;
}

/* One shape (8 rings x 16 x 1 MiB) over whole files, as any option set asks for: every byte of
 * the model in one pass. */
static const hoist_ceiling_options *one_shape(void)
{
    static hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.block_bytes = 1u << 20;
    return &o;
}

static uint64_t file_bytes(const hoist_model *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < hoist_model_file_count(m); i++) n += hoist_model_file_size(m, i);
    return n;
}

/* Whether this filesystem takes an aligned O_DIRECT read of the model's first file. */
static int direct_works(const hoist_model *m)
{
    int fd = open(hoist_model_file_path(m, 0), O_RDONLY | O_DIRECT);
    if (fd < 0) return 0;
    void *buf = NULL;
    ck_assert_int_eq(posix_memalign(&buf, 4096, 4096), 0);
    int ok = pread(fd, buf, 4096, 0) > 0;
    free(buf);
    close(fd);
    return ok;
}

/* Whether this kernel (and seccomp profile) gives a process an io_uring. */
static int uring_works(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0) return 0;
    io_uring_queue_exit(&ring);
    return 1;
}

static void assert_sane(const hoist_ceiling *c, uint64_t bytes)
{
    ck_assert_uint_eq(c->bytes, bytes);
    ck_assert(c->seconds > 0);
    ck_assert(c->gbps > 0);
    ck_assert(c->gbps < 1e4); /* 10 TB/s: a clock or byte count gone wrong */
    ck_assert_double_eq_tol(c->gbps, (double)c->bytes / c->seconds / 1e9, c->gbps * 1e-9);
}

/* One option set: the others take their defaults, 8 rings x 16 reads. */
START_TEST(test_read_one_shape)
{
    hoist_model *m = gen_model();
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_uint_eq(c.threads, 8);
    ck_assert_uint_eq(c.queue_depth, 16);
    ck_assert_uint_eq(c.block_bytes, 1u << 20);
    ck_assert_int_eq(c.uring, uring_works());
    ck_assert(!c.fixed_buffers || c.uring); /* registration may meet a small memlock limit */
    ck_assert_int_eq(c.direct, direct_works(m));
    if (c.direct) ck_assert_str_eq(c.note, "");
    hoist_model_free(m);
}
END_TEST

typedef struct calls {
    pthread_t caller;
    int n, bad;
    uint64_t last, total;
} calls;

static void record(uint64_t done, uint64_t total, void *user)
{
    calls *c = user;
    if (!pthread_equal(pthread_self(), c->caller) || done < c->last || done > total ||
        (c->n == 0 && done != 0) || (c->n && total != c->total))
        c->bad++;
    c->n++;
    c->last = done;
    c->total = total;
}


/* The default sweeps its shapes, each on its own slice of every file: the progress covers every
 * byte once, the result is one shape's slice, and the note has each shape's figure. */
START_TEST(test_read_sweep)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/big' --size 40M --shard-size 20M --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *p = tu_path(dir, "big");
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    free(p);
    calls k = {.caller = pthread_self()};
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.progress = record;
    o.progress_user = &k;
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_OK);
    ck_assert_int_eq(k.bad, 0);
    ck_assert_uint_eq(k.last, file_bytes(m)); /* the slices cover the files exactly */
    ck_assert_uint_gt(c.bytes, 0);
    ck_assert_uint_lt(c.bytes, file_bytes(m) / 2);
    ck_assert(c.gbps > 0 && c.seconds > 0);
    const char *shapes[] = {"8x16x1024K", "16x4x512K", "4x32x1024K", "16x8x2048K"};
    char mine[64];
    snprintf(mine, sizeof mine, "%ux%ux%lluK", c.threads, c.queue_depth,
             (unsigned long long)(c.block_bytes >> 10));
    int found = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(strstr(c.note, shapes[i]) != NULL, "%s not in '%s'", shapes[i], c.note);
        found += !c.uring || strcmp(mine, shapes[i]) == 0;
    }
    ck_assert_int_ge(found, 1); /* the result is one of them */
    hoist_model_free(m);
}
END_TEST

START_TEST(test_read_options)
{
    hoist_model *m = gen_model();
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 3;
    o.queue_depth = 2;
    o.block_bytes = 64 << 10; /* many blocks per file, a short last one */
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_uint_eq(c.threads, 3);
    ck_assert_uint_eq(c.queue_depth, 2);
    ck_assert_uint_eq(c.block_bytes, 64 << 10);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_progress)
{
    hoist_model *m = gen_model();
    calls k = {.caller = pthread_self()};
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.progress = record;
    o.progress_user = &k;
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_OK);
    ck_assert_int_ge(k.n, 2);
    ck_assert_int_eq(k.bad, 0);
    ck_assert_uint_eq(k.total, file_bytes(m));
    ck_assert_uint_eq(k.last, k.total);

    /* the staging sweep reports every pass against one total */
    memset(&k, 0, sizeof k);
    k.caller = pthread_self();
    o.threads = 0;
    ck_assert_int_eq(hoist_staging_ceiling(m, &o, &c), HOIST_OK);
    ck_assert_int_eq(k.bad, 0);
    ck_assert_uint_eq(k.last, k.total);
    ck_assert_uint_eq(k.total % file_bytes(m), 0);
    hoist_model_free(m);
}
END_TEST

static int no_uring(unsigned entries, struct io_uring *ring, unsigned flags) { return -ENOSYS; }

/* io_uring unavailable: pread threads, one per queue slot (capped), the same bytes. */
START_TEST(test_read_without_uring)
{
    hoist_model *m = gen_model();
    hoist__io_hooks h = {.uring_init = no_uring};
    hoist__io_set_hooks(&h);
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 2;
    o.queue_depth = 4;
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_int_eq(c.uring, 0);
    ck_assert_int_eq(c.fixed_buffers, 0);
    ck_assert_uint_eq(c.threads, 8);
    ck_assert_uint_eq(c.queue_depth, 1);
    ck_assert_ptr_nonnull(strstr(c.note, "io_uring unavailable"));
    hoist_model_free(m);
}
END_TEST

static int refuse_direct_open(const char *path, int flags)
{
    if (flags & O_DIRECT) {
        errno = EINVAL;
        return -1;
    }
    return open(path, flags);
}

/* O_DIRECT refused at open: buffered reads of every file, said in the note and the log. */
START_TEST(test_read_direct_refused_at_open)
{
    hoist_model *m = gen_model();
    hoist__io_hooks h = {.open = refuse_direct_open};
    hoist__io_set_hooks(&h);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_int_eq(c.direct, 0);
    ck_assert_ptr_nonnull(strstr(c.note, "O_DIRECT refused"));
    ck_assert_ptr_nonnull(strstr(c.note, hoist_model_file_path(m, 0)));
    hoist_model_free(m);
}
END_TEST

static int refuse_direct_read(int direct, uint64_t off, unsigned len, int res)
{
    return direct ? -EINVAL : res;
}

/* EINVAL on O_DIRECT reads (as tmpfs on older kernels answers): the rest goes buffered. */
START_TEST(test_read_direct_refused_on_read)
{
    hoist_model *m = gen_model();
    if (!direct_works(m)) {
        hoist_model_free(m);
        return; /* nothing is read O_DIRECT here to begin with */
    }
    hoist__io_hooks h = {.uring_result = refuse_direct_read};
    hoist__io_set_hooks(&h);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_int_eq(c.direct, 0);
    ck_assert_ptr_nonnull(strstr(c.note, "EINVAL"));
    hoist_model_free(m);
}
END_TEST

static _Atomic int results;

/* Every read comes back short (a third of what was asked, at least one byte), and every fifth
 * one EINTR first: the count still comes out exact. */
static int short_reads(int direct, uint64_t off, unsigned len, int res)
{
    if (atomic_fetch_add(&results, 1) % 5 == 0) return -EINTR;
    return res > 3 ? res / 3 : res;
}

START_TEST(test_read_short_and_interrupted)
{
    hoist_model *m = gen_model();
    atomic_store(&results, 0);
    hoist__io_hooks h = {.uring_result = short_reads};
    hoist__io_set_hooks(&h);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_int_gt(atomic_load(&results), 10);
    hoist_model_free(m);
}
END_TEST

static int refuse_register(struct io_uring *ring, const struct iovec *iov, unsigned nr)
{
    return -ENOMEM;
}

START_TEST(test_read_buffers_not_registered)
{
    hoist_model *m = gen_model();
    hoist__io_hooks h = {.uring_register_buffers = refuse_register};
    hoist__io_set_hooks(&h);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_int_eq(c.uring, uring_works());
    ck_assert_int_eq(c.fixed_buffers, 0);
    if (!c.uring) {
        hoist_model_free(m);
        return;
    }
    ck_assert_ptr_nonnull(strstr(c.note, "register"));
    hoist_model_free(m);
}
END_TEST

static int eio_at_1m(int direct, uint64_t off, unsigned len, int res)
{
    return off == (1u << 20) ? -EIO : res;
}

/* A read error fails the measurement with the file and offset, and zeroes the result. */
START_TEST(test_read_error_names_file_and_offset)
{
    hoist_model *m = gen_model();
    hoist__io_hooks h = {.uring_result = eio_at_1m};
    hoist__io_set_hooks(&h);
    hoist_ceiling c;
    memset(&c, 0xff, sizeof c);
    c.size = sizeof c;
    ck_assert_int_eq(hoist_read_ceiling(m, one_shape(), &c), HOIST_E_IO);
    ck_assert_uint_eq(c.bytes, 0);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), ".safetensors"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "1048576"));
    hoist_model_free(m);
}
END_TEST

/* A file that changed size since the model was opened is refused by both ceilings. */
START_TEST(test_changed_file_refused)
{
    hoist_model *m = gen_model();
    const char *p = hoist_model_file_path(m, 1);
    ck_assert_int_eq(truncate(p, (off_t)hoist_model_file_size(m, 1) - 4096), 0);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, NULL, &c), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), p));
    ck_assert_int_eq(hoist_staging_ceiling(m, NULL, &c), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), p));
    hoist_model_free(m);
}
END_TEST

START_TEST(test_bad_arguments)
{
    hoist_model *m = gen_model();
    hoist_ceiling c = HOIST_CEILING_INIT;
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    ck_assert_int_eq(hoist_read_ceiling(NULL, NULL, &c), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_read_ceiling(m, NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_staging_ceiling(NULL, NULL, &c), HOIST_E_INVALID_ARG);
    o.block_bytes = 1000;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_staging_ceiling(m, &o, &c), HOIST_E_INVALID_ARG);
    o = (hoist_ceiling_options)HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 100000;
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_E_INVALID_ARG);
    o = (hoist_ceiling_options)HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 256;
    o.queue_depth = 1024;
    o.block_bytes = 1u << 30; /* 256 TiB in flight: refused before anything is allocated */
    ck_assert_int_eq(hoist_read_ceiling(m, &o, &c), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "in flight"));
    o = (hoist_ceiling_options)HOIST_CEILING_OPTIONS_DEFAULT;
    o.device = 4096;
    ck_assert_int_eq(hoist_staging_ceiling(m, &o, &c), HOIST_E_NO_DEVICE);
    hoist_model_free(m);
}
END_TEST

/* Into host memory: every byte of every file per pass, the best of the sweep reported, each
 * pass in the note. */
START_TEST(test_staging_host)
{
    hoist_model *m = gen_model();
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_staging_ceiling(m, NULL, &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_uint_ge(c.threads, 1);
    ck_assert_uint_eq(c.block_bytes, 2u << 20);
    ck_assert_ptr_nonnull(strstr(c.note, "1 thread"));
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 3;
    o.block_bytes = 64 << 10;
    ck_assert_int_eq(hoist_staging_ceiling(m, &o, &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_uint_eq(c.threads, 3);
    ck_assert_uint_eq(c.block_bytes, 64 << 10);
    hoist_model_free(m);
}
END_TEST

/* An empty model has nothing to read: zero bytes, no failure. */
START_TEST(test_empty_model)
{
    char *p = tu_path(dir, "empty.safetensors");
    tu_write_safetensors(p, "{}", NULL, 0);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_read_ceiling(m, NULL, &c), HOIST_OK);
    ck_assert_uint_eq(c.bytes, hoist_model_file_size(m, 0));
    ck_assert_int_eq(hoist_staging_ceiling(m, NULL, &c), HOIST_OK);
    ck_assert_uint_eq(c.bytes, hoist_model_file_size(m, 0));
    hoist_model_free(m);
    free(p);
}
END_TEST

/* ---- every error path gives back what it took ------------------------------------------- */

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Atomic: the hooks are called from the ceilings' worker threads. */
static _Atomic int fail_at, alloc_calls;

static bool fail_kth_alloc(size_t bytes)
{
    (void)bytes;
    return ++alloc_calls == fail_at;
}

static void assert_all_back(int64_t live, int fds)
{
    ck_assert_int_eq(hoist__alloc_live_bytes(), live);
    ck_assert_int_eq(open_fds(), fds);
    for (int r = 0; r < HOIST_GPU_NRES; r++) ck_assert_int_eq(hoist__gpu_live(r), 0);
}

typedef int (*ceiling_fn)(const hoist_model *, const hoist_ceiling_options *, hoist_ceiling *);

/* Fails the 1st, 2nd ... allocation until a run needs no more: each failure is HOIST_E_NOMEM
 * with memory and descriptors back where they were. */
static void sweep_allocations(ceiling_fn fn)
{
    hoist_model *m = gen_model();
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 2;
    o.queue_depth = 2;
    int64_t live = hoist__alloc_live_bytes();
    int fds = open_fds(), failed = 0;
    hoist__alloc_hooks h = {.fail = fail_kth_alloc};
    for (fail_at = 1;; fail_at++) {
        alloc_calls = 0;
        hoist__alloc_set_hooks(&h);
        hoist_ceiling c = HOIST_CEILING_INIT;
        int rc = fn(m, &o, &c);
        hoist__alloc_set_hooks(NULL);
        assert_all_back(live, fds);
        if (rc == HOIST_OK) break;
        ck_assert_msg(rc == HOIST_E_NOMEM, "allocation %d: %s", fail_at, hoist_last_error());
        ck_assert_uint_eq(c.bytes, 0);
        failed++;
    }
    ck_assert_int_ge(failed, 3);
    hoist_model_free(m);
}

START_TEST(test_read_allocation_failures) { sweep_allocations(hoist_read_ceiling); }
END_TEST

START_TEST(test_staging_allocation_failures) { sweep_allocations(hoist_staging_ceiling); }
END_TEST

static hoist__gpu_call fail_call;
static _Atomic int gpu_calls[HOIST_GPU_NCALLS], fail_nth, nth; /* called from worker threads */

static int gpu_hook(const char *backend, hoist__gpu_call call, size_t bytes)
{
    gpu_calls[call]++;
    return call == fail_call && ++nth == fail_nth ? HOIST_E_DEVICE : HOIST_OK;
}

/* With host_as_device the staging ceiling takes its device path (pinned slots, a stream and
 * events per thread, asynchronous copies) through the host backend: it runs, and a failure of
 * any device call, first or later, gives every buffer, stream and event back. */
START_TEST(test_staging_device_path)
{
    hoist_model *m = gen_model();
    hoist_ceiling_options o = HOIST_CEILING_OPTIONS_DEFAULT;
    o.threads = 2;
    o.block_bytes = 256 << 10;
    int64_t live = hoist__alloc_live_bytes();
    int fds = open_fds();
    memset(gpu_calls, 0, sizeof gpu_calls);
    fail_call = HOIST_GPU_NCALLS;
    hoist__gpu_hooks h = {.call = gpu_hook, .host_as_device = true};
    hoist__gpu_set_hooks(&h);
    hoist_ceiling c = HOIST_CEILING_INIT;
    ck_assert_int_eq(hoist_staging_ceiling(m, &o, &c), HOIST_OK);
    assert_sane(&c, file_bytes(m));
    ck_assert_uint_eq(c.queue_depth, 3);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_STREAM_CREATE], 2);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_PINNED_ALLOC], 6);
    int windows = 0; /* every file in 256 KiB windows, the last one short */
    for (size_t i = 0; i < hoist_model_file_count(m); i++)
        windows += (int)((hoist_model_file_size(m, i) + (256 << 10) - 1) >> 18);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_COPY_H2D], windows);
    ck_assert_int_eq(gpu_calls[HOIST_GPU_EVENT_RECORD], gpu_calls[HOIST_GPU_COPY_H2D]);
    assert_all_back(live, fds);

    hoist__gpu_call which[] = {HOIST_GPU_MEM_ALLOC,    HOIST_GPU_PINNED_ALLOC,
                               HOIST_GPU_STREAM_CREATE, HOIST_GPU_EVENT_CREATE,
                               HOIST_GPU_EVENT_RECORD,  HOIST_GPU_EVENT_SYNC,
                               HOIST_GPU_COPY_H2D};
    for (size_t i = 0; i < sizeof which / sizeof *which; i++) {
        for (int k = 1; k <= 5; k++) { /* the first of its kind, and some later ones */
            fail_call = which[i];
            fail_nth = k;
            nth = 0;
            c = (hoist_ceiling)HOIST_CEILING_INIT;
            int rc = hoist_staging_ceiling(m, &o, &c);
            if (nth < k) { /* fewer such calls than k: it ran */
                ck_assert_int_eq(rc, HOIST_OK);
                break;
            }
            ck_assert_msg(rc == HOIST_E_DEVICE, "%s #%d: %s", hoist__gpu_call_name(which[i]), k,
                          hoist_status_name(rc));
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), hoist__gpu_call_name(which[i])));
            ck_assert_uint_eq(c.bytes, 0);
            assert_all_back(live, fds);
        }
    }
    hoist__gpu_set_hooks(NULL);
    hoist_model_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ceiling");
    TCase *tc = tcase_create("read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_read_one_shape);
    tcase_add_test(tc, test_read_sweep);
    tcase_add_test(tc, test_read_options);
    tcase_add_test(tc, test_progress);
    tcase_add_test(tc, test_read_without_uring);
    tcase_add_test(tc, test_read_direct_refused_at_open);
    tcase_add_test(tc, test_read_direct_refused_on_read);
    tcase_add_test(tc, test_read_short_and_interrupted);
    tcase_add_test(tc, test_read_buffers_not_registered);
    tcase_add_test(tc, test_read_error_names_file_and_offset);
    tcase_add_test(tc, test_changed_file_refused);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_read_allocation_failures);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("staging");
    tcase_add_checked_fixture(st, setup, teardown);
    tcase_add_test(st, test_staging_host);
    tcase_add_test(st, test_empty_model);
    tcase_add_test(st, test_staging_allocation_failures);
    tcase_add_test(st, test_staging_device_path);
    suite_add_tcase(s, st);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
