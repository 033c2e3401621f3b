/* Per-tensor hashes during a load (the scheme is in tensor_hash.h). */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t's size: states come through the allocator seam */
#include "loader/tensor_hash.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define NM "%.200s"
/* How often a waiting worker looks at ld->failed: the pipeline does not signal this module's
 * condition variable when another worker fails, so a wait must not be unbounded. */
#define WAIT_POLL_NS 20000000L

uint64_t hoist__tensor_hashes_bytes(size_t n)
{
    return (uint64_t)n * (sizeof(uint64_t) + sizeof(void *));
}

uint64_t hoist__tensor_hashes_state_bytes(void) { return sizeof(XXH3_state_t); }

int hoist__tensor_hashes_start(hoist__tensor_hashes *h, unsigned workers)
{
    size_t n = (size_t)workers + 1;
    RETURN_IF_ERR(hoist__budget_take(&h->ld->budget, n * sizeof(XXH3_state_t),
                                     "the running tensor hashes"));
    h->reserve = n;
    return HOIST_OK;
}

/* One more running state exists (1) or one fewer (-1); counts those beyond the reservation
 * against the budget. */
static int count_state(hoist__tensor_hashes *h, int delta)
{
    pthread_mutex_lock(&h->lock);
    bool beyond = delta > 0 ? h->live >= h->reserve : h->live > h->reserve;
    h->live += (size_t)(ssize_t)delta;
    pthread_mutex_unlock(&h->lock);
    if (!beyond) return HOIST_OK;
    if (delta < 0) {
        hoist__budget_give(&h->ld->budget, sizeof(XXH3_state_t));
        return HOIST_OK;
    }
    int rc = hoist__budget_take(&h->ld->budget, sizeof(XXH3_state_t), "a tensor hash");
    if (rc < 0) {
        pthread_mutex_lock(&h->lock);
        h->live--;
        pthread_mutex_unlock(&h->lock);
    }
    return rc;
}

int hoist__tensor_hashes_init(hoist__tensor_hashes *h, hoist__load *ld, const uint64_t *want,
                              const char *source, int file_offsets)
{
    memset(h, 0, sizeof *h);
    h->ld = ld;
    h->want = want;
    h->source = source;
    h->file_offsets = file_offsets;
    size_t n = ld->table->ntensors ? ld->table->ntensors : 1;
    h->done = hoist__calloc(n, sizeof *h->done);
    h->run = hoist__calloc(n, sizeof *h->run);
    RETURN_IF(!h->done || !h->run, HOIST_E_NOMEM, "out of memory for %zu tensor hashes", n);
    RETURN_IF(pthread_mutex_init(&h->lock, NULL) != 0, HOIST_E_NOMEM, "cannot create a lock");
    if (pthread_cond_init(&h->cond, NULL) != 0) {
        pthread_mutex_destroy(&h->lock);
        return hoist__err(HOIST_E_NOMEM, "cannot create a condition variable");
    }
    h->sync_ready = 1;
    return HOIST_OK;
}

void hoist__tensor_hashes_free(hoist__tensor_hashes *h)
{
    if (!h) return;
    size_t n = h->ld ? h->ld->table->ntensors : 0;
    for (size_t i = 0; h->run && i < n; i++) {
        if (!h->run[i]) continue;
        hoist__free(h->run[i]); /* a load that failed with tensors in flight */
        if (h->live-- > h->reserve) hoist__budget_give(&h->ld->budget, sizeof(XXH3_state_t));
    }
    if (h->reserve) hoist__budget_give(&h->ld->budget, h->reserve * sizeof(XXH3_state_t));
    hoist__free(h->run);
    hoist__free(h->done);
    if (h->sync_ready) {
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->lock);
    }
    memset(h, 0, sizeof *h);
}

int hoist__tensor_hashes_check(const hoist__tensor_hashes *h, size_t ti, uint64_t got)
{
    uint64_t want = h->want[ti];
    if (got == want) return HOIST_OK;
    const hoist__table *t = h->ld->table;
    const hoist__tensor *x = &t->tensors[ti];
    char where[96] = "";
    if (h->file_offsets)
        snprintf(where, sizeof where, " (bytes %llu..%llu of the file)",
                 (unsigned long long)x->offset, (unsigned long long)(x->offset + x->nbytes));
    return hoist__err(HOIST_E_INTEGRITY,
                      "%s: tensor '" NM "'%s hashes to %016llx, %s recorded %016llx for it "
                      "(every chunk of it matches: the record contradicts itself)",
                      t->files[x->file].path, x->name, where, (unsigned long long)got, h->source,
                      (unsigned long long)want);
}

/* Blocks until tensor ti has been fed up to `off`: 0, or HOIST_E_ABORTED when the load failed. */
static int wait_turn(hoist__tensor_hashes *h, size_t ti, uint64_t off)
{
    int rc = HOIST_OK;
    pthread_mutex_lock(&h->lock);
    while (h->done[ti] != off) {
        if (atomic_load(&h->ld->failed)) {
            rc = HOIST_E_ABORTED;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WAIT_POLL_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    pthread_mutex_unlock(&h->lock);
    if (rc < 0) {
        const hoist__tensor *x = &h->ld->table->tensors[ti];
        return hoist__err(rc, "%s: tensor '" NM "': the load failed elsewhere before its bytes "
                              "up to %llu were hashed",
                          h->ld->table->files[x->file].path, x->name, (unsigned long long)off);
    }
    return HOIST_OK;
}

int hoist__tensor_hashes_feed(hoist__tensor_hashes *h, size_t ti, uint64_t off,
                              const uint8_t *data, uint64_t len)
{
    const hoist__tensor *x = &h->ld->table->tensors[ti];
    if (off == 0 && len == x->nbytes) /* all of it here: no one else has a byte of it */
        return hoist__tensor_hashes_check(h, ti, XXH3_64bits(data, len));
    RETURN_IF(off > x->nbytes || len > x->nbytes - off, HOIST_E_INTERNAL,
              "tensor '" NM "': bytes %llu..+%llu of %llu fed", x->name,
              (unsigned long long)off, (unsigned long long)len, (unsigned long long)x->nbytes);
    RETURN_IF_ERR(wait_turn(h, ti, off));
    /* this worker alone holds the tensor's state until it moves the cursor on */
    XXH3_state_t *st = h->run[ti];
    if (off == 0) {
        RETURN_IF_ERR(count_state(h, 1));
        st = hoist__memalign(64, sizeof *st);
        if (!st) {
            count_state(h, -1);
            return hoist__err(HOIST_E_NOMEM, "tensor '" NM "': out of memory for its hash",
                              x->name);
        }
        XXH3_64bits_reset(st);
        h->run[ti] = st;
    }
    RETURN_IF(!st, HOIST_E_INTERNAL, "tensor '" NM "': no running hash at byte %llu", x->name,
              (unsigned long long)off);
    XXH3_64bits_update(st, data, len);
    int rc = HOIST_OK;
    if (off + len == x->nbytes) {
        rc = hoist__tensor_hashes_check(h, ti, XXH3_64bits_digest(st));
        h->run[ti] = NULL;
        hoist__free(st);
        count_state(h, -1);
    }
    pthread_mutex_lock(&h->lock);
    h->done[ti] = off + len;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int hoist__tensor_hashes_feed_file(hoist__tensor_hashes *h, uint32_t file, uint64_t lo,
                                   const uint8_t *data, uint64_t len)
{
    const hoist__table *t = h->ld->table;
    if (!len) return HOIST_OK;
    long i = hoist__table_tensor_at(t, file, lo);
    RETURN_IF(i < 0, HOIST_E_INTERNAL, "%s: no tensor holds byte %llu", t->files[file].path,
              (unsigned long long)lo);
    uint64_t a = lo, end = lo + len;
    for (; a < end && (size_t)i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        if (x->file != file || x->offset >= end) break;
        if (!x->nbytes) continue; /* checked when the load was prepared */
        if (x->offset > a) a = x->offset; /* pieces hold tensor bytes only; never a gap */
        uint64_t b = x->offset + x->nbytes < end ? x->offset + x->nbytes : end;
        RETURN_IF_ERR(
            hoist__tensor_hashes_feed(h, (size_t)i, a - x->offset, data + (a - lo), b - a));
        a = b;
    }
    RETURN_IF(a < end, HOIST_E_INTERNAL, "%s: no tensor holds byte %llu", t->files[file].path,
              (unsigned long long)a);
    return HOIST_OK;
}
