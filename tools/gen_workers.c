/* The worker pool of `hoist gen` (see gen_workers.h). */
#include "gen_family.h"
#include "gen_workers.h"

#include "gen_gguf.h"
#include "gen_internal.h"
#include "gen_outdir.h"
#include "gen_values.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Elements per work item (a multiple of GEN_BLOCK_ELEMS): 8 MiB of bf16, 16 MiB of f32. */
#define GEN_ITEM_ELEMS (4u * GEN_BLOCK_ELEMS)

typedef struct gen_item {
    uint32_t tensor;
    uint64_t first; /* first element: a multiple of GEN_BLOCK_ELEMS, or of a head's elements */
    uint32_t count;
} gen_item;

typedef struct gen_job {
    const gen_config *cfg;
    const gen_plan *plan;
    const gen_item *items;
    size_t nitems;
    const int *fds;
    char *const *names;
    size_t bufsize;          /* bytes of the largest item's values */
    bool need_permuted, need_quantized;
    atomic_size_t next;
    atomic_bool failed;
    atomic_uint_fast64_t bytes_done;
    atomic_uint running;
    pthread_mutex_t mu;
    char err[1024];
} gen_job;

static void job_fail(gen_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_fail(gen_job *job, const char *fmt, ...)
{
    pthread_mutex_lock(&job->mu);
    if (!atomic_load(&job->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->err, sizeof job->err, fmt, ap);
        va_end(ap);
        atomic_store(&job->failed, true);
    }
    pthread_mutex_unlock(&job->mu);
}

static unsigned char *aligned_buf(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 4096, n) == 0 ? p : NULL;
}

typedef struct gen_buffers {
    unsigned char *values, *permuted, *quantized, *scratch;
} gen_buffers;

/* Produces the bytes of one work item: the values (f32 when they are to be quantized), rows
 * permuted for a GGUF q/k projection, Q8_0 blocks. *out and *len receive what to write, *at
 * its offset from the tensor's start. */
static void make_item(const gen_job *job, const gen_item *it, gen_buffers *b,
                      const unsigned char **out, size_t *len, uint64_t *at)
{
    const gen_config *c = job->cfg;
    const gen_tensor *t = &job->plan->t[it->tensor];
    gen_dtype vd = t->dtype == GEN_DTYPE_Q8_0 ? GEN_DTYPE_F32 : t->dtype;
    size_t esz = gen_dtype_size(vd);
    unsigned char *p = b->values;
    if (t->ones)
        gen_fill_ones(it->count, vd, p);
    else if (t->factors)
        gen_rope_factors(c, (float *)p); /* F32, one item */
    else if (t->jitter)
        gen_fill_jitter(gen_block_key(c->seed, it->tensor, 0), it->count, vd, p, b->scratch);
    else
        gen_fill_range(c->seed, it->tensor, it->first, it->count, vd, p, b->scratch);
    if (t->rope_heads) {
        uint64_t head = (uint64_t)c->head_dim * t->shape[1];
        gen_rope_permute(p, b->permuted, it->count / head, c->head_dim, t->shape[1], esz);
        p = b->permuted;
    }
    if (t->dtype == GEN_DTYPE_Q8_0) {
        gen_quantize_q8_0((const float *)p, it->count, b->quantized);
        *out = b->quantized;
        *len = (size_t)it->count / GEN_Q8_0_BLOCK * GEN_Q8_0_BYTES;
        *at = it->first / GEN_Q8_0_BLOCK * GEN_Q8_0_BYTES;
        return;
    }
    *out = p;
    *len = (size_t)it->count * esz;
    *at = it->first * esz;
}

/* Work items in file order: up to GEN_ITEM_ELEMS elements of one tensor, or, for a permuted q/k
 * projection, as many whole heads as fit (at least one). Sets the job's buffer needs. */
static int plan_items(const gen_plan *p, const gen_config *c, gen_item **out, size_t *n,
                      gen_job *job)
{
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (size_t i = 0; i < p->nt; i++) {
            const gen_tensor *t = &p->t[i];
            uint64_t step = GEN_ITEM_ELEMS;
            if (t->rope_heads) {
                uint64_t head = (uint64_t)c->head_dim * t->shape[1];
                step = head * (head < GEN_ITEM_ELEMS ? GEN_ITEM_ELEMS / head : 1);
            }
            size_t vsz = t->dtype == GEN_DTYPE_Q8_0 ? 4 : gen_dtype_size(t->dtype);
            for (uint64_t e = 0; e < t->numel; e += step, k++) {
                uint64_t left = t->numel - e, cnt = left < step ? left : step;
                if (pass == 0) {
                    if (cnt * vsz > job->bufsize) job->bufsize = (size_t)(cnt * vsz);
                    continue;
                }
                (*out)[k] = (gen_item){(uint32_t)i, e, (uint32_t)cnt};
            }
            if (pass == 0) {
                job->need_permuted |= t->rope_heads != 0;
                job->need_quantized |= t->dtype == GEN_DTYPE_Q8_0;
            }
        }
        if (pass == 0) {
            count = k;
            *out = malloc((count ? count : 1) * sizeof **out);
            if (!*out) return -1;
        }
    }
    *n = count;
    return 0;
}

static void *worker(void *arg)
{
    gen_job *job = arg;
    const size_t n = job->bufsize;
    gen_buffers b = {0};
    bool ok = (b.values = aligned_buf(n)) != NULL &&
              (b.scratch = aligned_buf((size_t)GEN_BLOCK_ELEMS * 4)) != NULL &&
              (!job->need_permuted || (b.permuted = aligned_buf(n)) != NULL) &&
              (!job->need_quantized || (b.quantized = aligned_buf(n)) != NULL);
    if (!ok) job_fail(job, "out of memory for %zu-byte buffers", n);
    while (ok && !atomic_load_explicit(&job->failed, memory_order_relaxed)) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->nitems) break;
        const gen_item *it = &job->items[i];
        const gen_tensor *t = &job->plan->t[it->tensor];
        const unsigned char *out;
        size_t len;
        uint64_t at;
        make_item(job, it, &b, &out, &len, &at);
        uint64_t off = job->plan->file_start[t->file] + t->offset + at;
        if (gen_pwrite_all(job->fds[t->file], out, len, off) != 0) {
            job_fail(job, "cannot write %zu bytes to %s at offset %llu (tensor %s): %s", len,
                     job->names[t->file], (unsigned long long)off, t->name, strerror(errno));
            break;
        }
        atomic_fetch_add_explicit(&job->bytes_done, len, memory_order_relaxed);
    }
    free(b.values);
    free(b.permuted);
    free(b.quantized);
    free(b.scratch);
    atomic_fetch_sub(&job->running, 1);
    return NULL;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > (long)GEN_MAX_THREADS) n = GEN_MAX_THREADS;
    return (unsigned)n;
}

static void print_progress(uint64_t done, uint64_t total, double secs, bool final)
{
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    double rate = secs > 0 ? (double)done / secs / 1e9 : 0.0;
    fprintf(stderr, "\r  %5.1f%%  %.2f of %.2f GB  %.2f GB/s   %s", pct, (double)done / 1e9,
            (double)total / 1e9, rate, final ? "\n" : "");
    fflush(stderr);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs the workers; the calling thread draws the progress line, or works itself when no thread
 * could be started. */
static void run_workers(gen_job *job, unsigned nthreads, pthread_t *tids, bool progress)
{
    double t0 = now_s();
    uint64_t total = gen_total_bytes(job->cfg);
    unsigned started = 0;
    atomic_init(&job->running, nthreads);
    for (; started < nthreads; started++)
        if (pthread_create(&tids[started], NULL, worker, job) != 0) break;
    if (started < nthreads) atomic_fetch_sub(&job->running, nthreads - started);
    if (started == 0) {
        atomic_fetch_add(&job->running, 1);
        worker(job);
    } else if (progress) {
        while (atomic_load(&job->running) > 0) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
            print_progress(atomic_load(&job->bytes_done), total, now_s() - t0, false);
        }
    }
    for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
    if (progress && started > 0)
        print_progress(atomic_load(&job->bytes_done), total, now_s() - t0, true);
}

int gen_write_data(const gen_plan *plan, const gen_config *cfg, const int *fds,
                   char *const *names, char *err, size_t errlen)
{
    gen_job job;
    memset(&job, 0, sizeof job);
    gen_item *items = NULL;
    size_t nitems = 0;
    if (plan_items(plan, cfg, &items, &nitems, &job) != 0) {
        gen_set_err(err, errlen, "out of memory planning the work");
        return -1;
    }
    unsigned nthreads = cfg->threads ? cfg->threads : default_threads();
    if (nthreads > nitems) nthreads = (unsigned)nitems;
    if (nthreads == 0) nthreads = 1;
    pthread_t *tids = calloc(nthreads, sizeof *tids);
    if (!tids) {
        free(items);
        gen_set_err(err, errlen, "out of memory");
        return -1;
    }
    job.cfg = cfg;
    job.plan = plan;
    job.items = items;
    job.nitems = nitems;
    job.fds = fds;
    job.names = names;
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, false);
    atomic_init(&job.bytes_done, 0);
    pthread_mutex_init(&job.mu, NULL);
    run_workers(&job, nthreads, tids, cfg->progress);
    int rc = 0;
    if (atomic_load(&job.failed)) {
        gen_set_err(err, errlen, "%s", job.err);
        rc = -1;
    }
    pthread_mutex_destroy(&job.mu);
    free(tids);
    free(items);
    return rc;
}
