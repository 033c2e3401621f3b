/* The window pipeline: worker threads take windows from a shared counter, have the source produce
 * each window's bytes, and hand every piece to the destination.
 *
 * On devices, each worker owns a stream per arena and a small ring of slots (a pinned buffer and
 * an event per arena). A slot is reused only after the events recorded behind its last copies
 * have completed, so the read of window k+1 overlaps the device copy of window k without any
 * per-tensor synchronisation. On the host, pieces are plain memcpys, and a source that reads
 * (rather than maps) reads straight into the arena when the window is a single piece.
 *
 * With a callback sink, workers still read in parallel, but hand their windows to the sink one at
 * a time in plan order (a ticket per window), so the embedder sees the model's bytes in order
 * while the reads of the next windows are already under way. */
#include "loader/gpu_decode.h"
#include "loader/source.h"
#include "loader/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct slot {
    void *buf;                 /* pinned staging (NULL when the source's bytes are DMA-able) */
    hoist__event *ev[HOIST_PLAN_MAX_DEVICES]; /* one per arena: events live on one device */
    uint32_t recorded;         /* arenas whose event was recorded behind the last window */
    const hoist__window *busy; /* window whose copy may still be in flight */
    int release;               /* call source->release on busy once its copy is done */
    /* GPU decoding: the slot's own read buffer and stream (its device staging is the decoder's),
     * so that the worker's next window is read and copied while this one decodes */
    void *in;
    hoist__stream *stream;
} slot;

typedef struct worker {
    hoist__load *ld;
    int id;
    pthread_t thread;
    int started;
    hoist__stream *stream[HOIST_PLAN_MAX_DEVICES]; /* one per arena */
    slot slots[HOIST_SLOTS_PER_WORKER];
    unsigned nslots, next;
    void *in_buf; /* a transform's read buffer (read_buffers; GPU decoding: each slot's in) */
} worker;

int hoist__load_fail(hoist__load *ld, int status)
{
    pthread_mutex_lock(&ld->err_lock);
    if (!ld->err_status) {
        ld->err_status = status;
        snprintf(ld->err_msg, sizeof ld->err_msg, "%s", hoist_last_error());
    }
    pthread_mutex_unlock(&ld->err_lock);
    atomic_store(&ld->failed, 1);
    if (ld->sink) { /* wake the workers waiting for their delivery turn */
        pthread_mutex_lock(&ld->deliver_lock);
        pthread_cond_broadcast(&ld->deliver_cond);
        pthread_mutex_unlock(&ld->deliver_lock);
    }
    return status;
}

/* ---- callback sink ---- */

static int sink_call(hoist__load *ld, size_t tensor, uint64_t offset, const void *data,
                     uint64_t len)
{
    const hoist__tensor *ti = &ld->table->tensors[tensor];
    hoist_piece piece = {.tensor = tensor,
                         .name = ti->name,
                         .offset = offset,
                         .nbytes = len,
                         .data = data,
                         .last = offset + len == ti->nbytes};
    int rc = ld->sink(&piece, ld->sink_user);
    if (rc == 0) return HOIST_OK;
    int known = rc < 0 && strcmp(hoist_status_name(rc), "HOIST_E_UNKNOWN") != 0;
    return hoist__err(known ? rc : HOIST_E_ABORTED,
                      "%s: the sink stopped the load at tensor '%s', byte %llu of the tensor "
                      "(it returned %d)",
                      ld->table->files[ti->file].path, ti->name, (unsigned long long)offset, rc);
}

int hoist__sink_announce_empty(hoist__load *ld, size_t end)
{
    for (; ld->next_tensor < end; ld->next_tensor++) {
        if (ld->table->tensors[ld->next_tensor].nbytes) continue;
        RETURN_IF_ERR(sink_call(ld, ld->next_tensor, 0, NULL, 0));
    }
    return HOIST_OK;
}

/* Splits one extent piece at tensor boundaries and hands each part to the sink. */
static int sink_piece(hoist__load *ld, const hoist__extent *e, const uint8_t *src, uint64_t dst_off,
                      uint64_t len)
{
    const hoist__table *t = ld->table;
    uint64_t file_off = hoist__extent_file_at(e, dst_off);
    long i = hoist__table_tensor_at(t, e->file, file_off);
    RETURN_IF(i < 0, HOIST_E_INTERNAL, "%s: no tensor holds byte %llu",
              t->files[e->file].path, (unsigned long long)file_off);
    while (len) {
        const hoist__tensor *ti = &t->tensors[i];
        uint64_t in = file_off - ti->offset;
        uint64_t n = ti->nbytes - in < len ? ti->nbytes - in : len;
        RETURN_IF_ERR(hoist__sink_announce_empty(ld, (size_t)i));
        RETURN_IF_ERR(sink_call(ld, (size_t)i, in, src, n));
        ld->next_tensor = (size_t)i + 1;
        src += n;
        file_off += n;
        len -= n;
        i++;
    }
    return HOIST_OK;
}

/* Blocks until window `index` is next in line (or the load failed). */
static int deliver_wait(hoist__load *ld, size_t index)
{
    pthread_mutex_lock(&ld->deliver_lock);
    while (ld->next_deliver != index && !atomic_load(&ld->failed))
        pthread_cond_wait(&ld->deliver_cond, &ld->deliver_lock);
    pthread_mutex_unlock(&ld->deliver_lock);
    return atomic_load(&ld->failed) ? HOIST_E_ABORTED : HOIST_OK;
}

static void deliver_done(hoist__load *ld)
{
    pthread_mutex_lock(&ld->deliver_lock);
    ld->next_deliver++;
    pthread_cond_broadcast(&ld->deliver_cond);
    pthread_mutex_unlock(&ld->deliver_lock);
}

static uint64_t ns_since(double t0) { return (uint64_t)((hoist__now() - t0) * 1e9); }

/* Waits for a slot's previous copy and lets the source release that window. */
static int slot_retire(worker *wk, slot *s)
{
    if (!s->busy) return HOIST_OK;
    hoist__load *ld = wk->ld;
    const hoist__source_ops *src = ld->source;
    int rc = HOIST_OK;
    if (s->recorded) { /* host loads record nothing: no clock read for them */
        double t0 = hoist__now();
        for (size_t a = 0; a < ld->narenas; a++) {
            if (!(s->recorded & (1u << a))) continue;
            int r = ld->arenas[a].gpu->event_sync(s->ev[a]);
            if (rc == HOIST_OK) rc = r;
        }
        atomic_fetch_add(&ld->wait_ns, ns_since(t0));
    }
    s->recorded = 0;
    if (s->release) src->release(wk->ld->source_state, s->busy);
    s->busy = NULL;
    s->release = 0;
    return rc;
}

typedef struct piece_ctx {
    worker *wk;
    slot *s;
    const hoist__window *w;
    const uint8_t *src;
    int staged; /* src already sits in pinned memory or DMA-able memory */
    int mapped; /* src is a registered file mapping the device copies from directly */
    uint32_t arenas; /* arenas this window copied into */
} piece_ctx;

/* Copies source bytes out, the source's way (a plain memcpy unless it guards a mapping). */
static int copy_in(const piece_ctx *c, void *dst, const void *src, uint64_t n)
{
    const hoist__load *ld = c->wk->ld;
    return ld->source->copy(ld->source_state, c->w, dst, src, n);
}

typedef struct h2d_call {
    const hoist__arena *ar;
    void *dst;
    const void *src;
    uint64_t n;
    void *stream;
} h2d_call;

static int call_h2d(void *arg)
{
    const h2d_call *c = arg;
    return c->ar->gpu->copy_h2d(c->dst, c->src, c->n, c->stream);
}

/* A copy straight out of a registered file mapping. The driver may read small copies with the
 * CPU while queueing them, and a page truncated away under the mapping would then kill the
 * process with SIGBUS inside the driver; the guard patches such pages with zeros instead, and
 * the window fails here. */
static int copy_mapped(const piece_ctx *c, const hoist__extent *e, void *dst, const uint8_t *p,
                       uint64_t len)
{
    const hoist__load *ld = c->wk->ld;
    h2d_call call = {&ld->arenas[e->arena], dst, p, len, c->wk->stream[e->arena]};
    unsigned patched = 0;
    int rc = hoist__call_patched(p, (size_t)len, call_h2d, &call, &patched);
    if (rc < 0 || !patched) return rc;
    uint64_t at = c->w->lo + (uint64_t)(p - c->src);
    long ti = hoist__table_tensor_at(ld->table, e->file, at);
    return hoist__err(HOIST_E_FILE_CHANGED,
                      "%s: bytes %llu..%llu (tensor '%s') vanished from the mapping while being "
                      "copied (truncated during the load?)",
                      ld->table->files[e->file].path, (unsigned long long)at,
                      (unsigned long long)(at + len), ti >= 0 ? ld->table->tensors[ti].name : "?");
}

static int copy_piece(void *vctx, const hoist__extent *e, uint64_t src_off, uint64_t dst_off,
                      uint64_t len)
{
    piece_ctx *c = vctx;
    hoist__load *ld = c->wk->ld;
    const uint8_t *p = c->src + src_off;
    hoist__progress_add(&ld->progress, len);
    if (ld->sink) return sink_piece(ld, e, p, dst_off, len);
    const hoist__arena *ar = &ld->arenas[e->arena];
    uint8_t *dst = ar->base + dst_off;
    if (ld->host_sink) return p != dst ? copy_in(c, dst, p, len) : HOIST_OK;
    if (!c->staged) { /* bounce through the slot's pinned buffer */
        RETURN_IF_ERR(copy_in(c, (uint8_t *)c->s->buf + src_off, p, len));
        p = (const uint8_t *)c->s->buf + src_off;
    }
    int rc = c->mapped ? copy_mapped(c, e, dst, p, len)
                       : ar->gpu->copy_h2d(dst, p, len, c->wk->stream[e->arena]);
    c->arenas |= 1u << e->arena;
    if (rc < 0) {
        uint64_t at = hoist__extent_file_at(e, dst_off);
        long ti = hoist__table_tensor_at(ld->table, e->file, at);
        return hoist__err_prefix(rc, "%s: copying %llu bytes at byte %llu (tensor '%s')",
                                 ld->table->files[e->file].path, (unsigned long long)len,
                                 (unsigned long long)at,
                                 ti >= 0 ? ld->table->tensors[ti].name : "?");
    }
    return HOIST_OK;
}

/* The one piece of a window that covers it entirely, or NULL. */
static const hoist__extent *single_piece(const hoist__plan *p, const hoist__window *w)
{
    const hoist__extent *x = &p->extents[w->first_ext];
    if (x->rows == 1 && x->file_off <= w->lo && x->file_off + x->len >= w->hi) return x;
    return NULL;
}

static int decoding(const hoist__load *ld) { return ld->transform && ld->transform->decodes; }

/* Whether the source may hand out bytes of a file mapping, which only its copy may read. */
static int mapped(const hoist__load *ld) { return !!(ld->source->flags & HOIST_SOURCE_MAPPED); }

/* The read buffers each worker has beside its slots: a decoding load reads (or copies) the
 * stored bytes there and decodes them into a slot; a checking load on the host with a mapping
 * source copies the window there before checking it (see transform_window). The CPU is done
 * with a read buffer when the window is decoded, but the GPU decoder copies from it later, so
 * there each slot has its own. */
static unsigned read_buffers(const hoist__load *ld)
{
    if (ld->gpu_decode) return HOIST_SLOTS_PER_WORKER;
    return decoding(ld) || (ld->transform && mapped(ld) && ld->host_sink) ? 1 : 0;
}

static int has_in_buf(const hoist__load *ld) { return read_buffers(ld) > 0; }

/* The transform stage. A source that hands out a mapping (HOIST_SOURCE_MAPPED) has its window
 * copied out first, the source's guarded way, into a buffer of the worker's (the read buffer, or
 * on a device the slot the copy goes from): a file truncated under the mapping then fails that
 * copy instead of raising SIGBUS inside the decoder or the hash. Then the transform checks the
 * bytes in place, or decodes them into the slot (into the arena itself on a host load when the
 * decoded window is one piece). On return *mw is the window pieces are cut from, *src its bytes
 * and *dma whether they sit in memory the device may copy from. */
static int transform_window(worker *wk, slot *s, size_t wi, const hoist__window **mw,
                            const void **src, int *dma)
{
    hoist__load *ld = wk->ld;
    const hoist__transform_ops *tf = ld->transform;
    const hoist__window *w = *mw;
    if (mapped(ld)) {
        void *own = has_in_buf(ld) ? wk->in_buf : s->buf;
        RETURN_IF_ERR(ld->source->copy(ld->source_state, w, own, *src, w->hi - w->lo));
        *src = own;
        *dma = 0; /* own is a slot (the pipeline sees src == s->buf) or the read buffer */
    }
    if (!tf->decodes) return tf->window(ld->transform_state, wk->id, wi, *src, NULL);
    *mw = &ld->plan.decode[wi].model;
    const hoist__extent *x = ld->host_sink && !ld->sink ? single_piece(&ld->plan, *mw) : NULL;
    uint8_t *out = x ? ld->arenas[x->arena].base + x->dst_off + ((*mw)->lo - x->file_off)
                     : s->buf;
    RETURN_IF_ERR(tf->window(ld->transform_state, wk->id, wi, *src, out));
    *src = out;
    *dma = 1; /* a pinned slot (or the arena itself) */
    return HOIST_OK;
}

/* A window of a GPU-decoded load (loader/gpu_decode.h): the stored bytes must sit in the read
 * buffer (pinned) for the staging copy; the decode transform decodes the other chunks into the
 * slot; the decoder queues every copy and the kernel on the slot's stream, and the slot's event
 * follows them. */
static int gpu_window(worker *wk, slot *s, size_t index, const void *src)
{
    hoist__load *ld = wk->ld;
    const hoist__window *w = &ld->plan.windows[index];
    const uint8_t *in = src, *own = s->in;
    uint64_t n = w->hi - w->lo;
    double t1 = hoist__now(); /* the copy out of a mapping counts as copying, as copy_piece's */
    if (mapped(ld) || in < own || in + n > own + ld->plan.window_bytes) {
        RETURN_IF_ERR(ld->source->copy(ld->source_state, w, s->in, src, n));
        in = own;
    }
    double t2 = hoist__now();
    RETURN_IF_ERR(ld->transform->window(ld->transform_state, wk->id, index, in, s->buf));
    int rc = hoist__gdec_window(ld, wk->id, (unsigned)(s - wk->slots), index, in, s->buf,
                                s->stream);
    if (rc == HOIST_OK) rc = ld->arenas[0].gpu->event_record(s->ev[0], s->stream);
    if (rc < 0) { /* copies already queued may still read the buffers: let them finish */
        (void)ld->arenas[0].gpu->stream_sync(s->stream);
        return rc;
    }
    s->recorded = 1;
    s->busy = w;
    s->release = 0;
    const hoist__window *mw = &ld->plan.decode[index].model;
    hoist__progress_add(&ld->progress, mw->hi - mw->lo);
    atomic_fetch_add(&ld->queue_ns, ns_since(t2));
    atomic_fetch_add(&ld->copy_ns, ns_since(t1));
    return HOIST_OK;
}

static int process_window(worker *wk, size_t index)
{
    const hoist__window *w = &wk->ld->plan.windows[index];
    hoist__load *ld = wk->ld;
    int dec = decoding(ld);
    slot *s = NULL;
    void *buf = NULL;
    if (wk->nslots) {
        s = &wk->slots[wk->next++ % wk->nslots];
        RETURN_IF_ERR(slot_retire(wk, s));
        buf = s->buf;
    }
    const hoist__extent *one = ld->host_sink && !ld->sink && !dec &&
                                       !(ld->source->flags & HOIST_SOURCE_SLOT_BUFFERS)
                                   ? single_piece(&ld->plan, w)
                                   : NULL;
    if (one) buf = ld->arenas[one->arena].base + one->dst_off + (w->lo - one->file_off);
    if (dec) buf = ld->gpu_decode ? s->in : wk->in_buf;

    const void *src = NULL;
    int dma = 0;
    double t0 = hoist__now();
    RETURN_IF_ERR(ld->source->read(ld->source_state, wk->id, w, buf, &src, &dma));
    double t1 = hoist__now();
    atomic_fetch_add(&ld->read_ns, (uint64_t)((t1 - t0) * 1e9));

    if (ld->gpu_decode) return gpu_window(wk, s, index, src);
    const hoist__window *mw = w; /* the window pieces are cut from */
    if (ld->transform) {
        int rc = transform_window(wk, s, index, &mw, &src, &dma);
        if (rc < 0) return rc;
        t1 = hoist__now();
    }
    piece_ctx ctx = {wk, s, w, src, (s && src == s->buf) || dma,
                     mapped(ld) && dma && (!s || src != s->buf), 0};
    if (ld->sink) {
        /* a failure elsewhere wakes this wait; that worker's error is the one reported */
        if (deliver_wait(ld, index) < 0) return HOIST_OK;
        int rc = hoist__window_pieces(&ld->plan, mw, copy_piece, &ctx);
        if (rc < 0) hoist__load_fail(ld, rc); /* before the next window's turn comes */
        deliver_done(ld);
        RETURN_IF_ERR(rc);
        atomic_fetch_add(&ld->copy_ns, ns_since(t1));
        return HOIST_OK;
    }
    int rc = hoist__window_pieces(&ld->plan, mw, copy_piece, &ctx);
    for (size_t a = 0; rc == HOIST_OK && !ld->host_sink && a < ld->narenas; a++) {
        if (!(ctx.arenas & (1u << a))) continue;
        rc = ld->arenas[a].gpu->event_record(s->ev[a], wk->stream[a]);
        if (rc == HOIST_OK) s->recorded |= 1u << a;
    }
    if (rc < 0) {
        if (!ld->host_sink && !dec && dma && src != buf) {
            /* the copies already issued may still read the window: let them finish first */
            for (size_t a = 0; a < ld->narenas; a++)
                if (ctx.arenas & (1u << a)) (void)ld->arenas[a].gpu->stream_sync(wk->stream[a]);
            ld->source->release(ld->source_state, w);
        }
        return rc;
    }
    if (!ld->host_sink) {
        s->busy = w;
        s->release = !dec && dma && src != s->buf;
    }
    atomic_fetch_add(&ld->copy_ns, ns_since(t1));
    return HOIST_OK;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    hoist__load *ld = wk->ld;
    while (!atomic_load(&ld->failed)) {
        size_t i = atomic_fetch_add(&ld->next_window, 1);
        if (i >= ld->plan.nwindows) break;
        int rc = process_window(wk, i);
        if (rc < 0) {
            hoist__load_fail(ld, rc);
            break;
        }
    }
    /* drain: every copy this worker issued must be complete before the load returns */
    for (unsigned i = 0; i < wk->nslots; i++) {
        int rc = slot_retire(wk, &wk->slots[i]);
        if (rc < 0) hoist__load_fail(ld, rc);
    }
    return NULL;
}

static void worker_teardown(worker *wk)
{
    hoist__load *ld = wk->ld;
    for (unsigned i = 0; i < HOIST_SLOTS_PER_WORKER; i++) {
        slot *s = &wk->slots[i];
        for (size_t a = 0; a < ld->narenas; a++)
            if (s->ev[a]) ld->arenas[a].gpu->event_destroy(s->ev[a]);
    }
    for (unsigned i = 0; i < HOIST_SLOTS_PER_WORKER; i++)
        if (wk->slots[i].stream) ld->arenas[0].gpu->stream_destroy(wk->slots[i].stream);
    for (size_t a = 0; a < ld->narenas; a++)
        if (wk->stream[a]) ld->arenas[a].gpu->stream_destroy(wk->stream[a]);
}

/* How many slots a worker has; *buffers says whether they carry staging buffers. */
static unsigned worker_slots(const hoist__load *ld, int *buffers)
{
    if (decoding(ld)) *buffers = 1; /* the slots hold the decoded bytes */
    if (ld->host_sink) return *buffers ? 1 : 0;
    return HOIST_SLOTS_PER_WORKER;
}

/* Staging bytes of one worker: a window per slot buffer and per read buffer. */
static uint64_t worker_staging(const hoist__load *ld, int buffers, uint64_t window)
{
    unsigned nslots = worker_slots(ld, &buffers);
    return ((buffers ? nslots : 0) + read_buffers(ld)) * window;
}

/* Streams and events for one worker, and its share of the staging pool (`base`: its slot
 * buffers, then its read buffers), handed to the source. */
static int worker_setup(worker *wk, int buffers, uint8_t *base)
{
    hoist__load *ld = wk->ld;
    uint64_t window = ld->plan.window_bytes;
    wk->nslots = worker_slots(ld, &buffers);
    /* a GPU-decoding worker queues everything on its slots' streams */
    for (size_t a = 0; a < ld->narenas && !ld->host_sink && !ld->gpu_decode; a++)
        RETURN_IF_ERR(ld->arenas[a].gpu->stream_create(ld->arenas[a].device, &wk->stream[a]));
    uint64_t in = (buffers ? wk->nslots : 0) * window; /* the read buffers' place in base */
    void *ins[HOIST_SLOTS_PER_WORKER];
    for (unsigned i = 0; i < wk->nslots; i++) {
        slot *s = &wk->slots[i];
        for (size_t a = 0; a < ld->narenas && !ld->host_sink; a++)
            RETURN_IF_ERR(ld->arenas[a].gpu->event_create(ld->arenas[a].device, &s->ev[a]));
        if (buffers) s->buf = base + i * window;
        if (!ld->gpu_decode) continue;
        RETURN_IF_ERR(ld->arenas[0].gpu->stream_create(ld->arenas[0].device, &s->stream));
        s->in = ins[i] = base + in + i * window;
    }
    if (ld->gpu_decode) {
        RETURN_IF_ERR(ld->source->attach(ld->source_state, wk->id, ins, wk->nslots, window));
    } else if (has_in_buf(ld)) {
        wk->in_buf = base + in;
        RETURN_IF_ERR(ld->source->attach(ld->source_state, wk->id, &wk->in_buf, 1, window));
    } else if (buffers && wk->nslots) {
        void *bufs[HOIST_SLOTS_PER_WORKER];
        for (unsigned i = 0; i < wk->nslots; i++) bufs[i] = wk->slots[i].buf;
        RETURN_IF_ERR(ld->source->attach(ld->source_state, wk->id, bufs, wk->nslots, window));
    }
    return HOIST_OK;
}

uint64_t hoist__pipeline_staging_bytes(const hoist__load *ld, unsigned threads, uint64_t window)
{
    int buffers = ld->source_needs.staging;
    return (uint64_t)threads * worker_staging(ld, buffers, window);
}

/* The staging of every worker as one pinned pool, counted against the budget first. One pool,
 * not a buffer per slot: pinning is paid per call as well as per byte (gpu/host_pages.c). */
static int pool_acquire(hoist__load *ld, uint64_t bytes, uint8_t **pool)
{
    if (!bytes) return HOIST_OK;
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, bytes, "the staging pool"));
    void *p = NULL;
    int rc = hoist__pinned_acquire(ld->gpu, bytes, &p);
    if (rc < 0) {
        hoist__budget_give(&ld->budget, bytes);
        return rc;
    }
    *pool = p;
    return HOIST_OK;
}

static void pool_release(hoist__load *ld, uint8_t *pool, uint64_t bytes)
{
    if (!pool) return;
    hoist__pinned_release(ld->gpu, pool, bytes);
    hoist__budget_give(&ld->budget, bytes);
}

int hoist__pipeline_run(hoist__load *ld)
{
    unsigned n = ld->opts.threads;
    worker *wks = hoist__calloc(n, sizeof *wks);
    RETURN_IF(!wks, HOIST_E_NOMEM, "out of memory for %u workers", n);
    int buffers = ld->source_needs.staging;
    uint64_t per = worker_staging(ld, buffers, ld->plan.window_bytes);
    uint8_t *pool = NULL;
    double t0 = hoist__now();
    int rc = ld->source->start(ld->source_state, &ld->plan, &ld->budget);
    if (rc == HOIST_OK) rc = pool_acquire(ld, per * n, &pool);
    for (unsigned i = 0; i < n && rc == HOIST_OK; i++) {
        wks[i].ld = ld;
        wks[i].id = (int)i;
        rc = worker_setup(&wks[i], buffers, pool ? pool + i * per : NULL);
    }
    for (unsigned i = 0; i < n && rc == HOIST_OK; i++) {
        if (pthread_create(&wks[i].thread, NULL, worker_main, &wks[i]) != 0) {
            rc = hoist__load_fail(ld, hoist__err(HOIST_E_NOMEM, "cannot start worker %u", i));
            break;
        }
        wks[i].started = 1;
    }
    if (rc < 0) atomic_store(&ld->failed, 1);
    double t1 = hoist__now();
    for (unsigned i = 0; i < n; i++)
        if (wks[i].started) hoist__progress_join(&ld->progress, wks[i].thread);
    double t2 = hoist__now();
    for (unsigned i = 0; i < n; i++)
        if (wks[i].ld) worker_teardown(&wks[i]);
    pool_release(ld, pool, per * n);
    hoist__free(wks);
    ld->setup_s = t1 - t0;
    ld->transfer_s = t2 - t1;
    ld->teardown_s = hoist__now() - t2;
    if (ld->err_status) return hoist__err(ld->err_status, "%s", ld->err_msg);
    return rc;
}
