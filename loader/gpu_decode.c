/* GPU decoding of codec 2 chunks (see gpu_decode.h). Every chunk's structure is checked on the
 * CPU from the stored bytes before its descriptor is built, so the kernel only ever follows
 * offsets inside the staged window; what the bits decode to is checked by the kernel (error
 * word 0), and what landed is hashed on the GPU against the container's record (error word 1)
 * before anything is published. */
#include "formats/exphuff.h"
#include "formats/packed.h"
#include "gpu/codec.h"
#include "loader/gpu_decode.h"
#include "loader/source.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define DEV_ALIGN 256u

/* Windows of a GPU-decoded load, unless the caller chose: twice the sources' 2 MiB halves the
 * kernels and copies per byte. Warm from the page cache on an H100 (8.64 GB model, 16 workers,
 * mmap), 4 MiB windows placed 51-52 GB/s of model bytes against 36-37 with 2 MiB; 8 MiB gave
 * 39-48, 16 MiB 24-36 (docs/BENCHMARKS.md, "Issue #23, second session of 2026-12-05"). */
#define GDEC_WINDOW (4u << 20)

/* Each slot of each worker has its own device staging and chunk list, so that a worker copies
 * its next window while the kernels of its last one run (each slot queues on its own stream);
 * one allocation holds them all, then the error words every kernel may lower. */
typedef struct hoist__gdec {
    const hoist__gpu_ops *g;
    int device;
    unsigned nunits;                /* workers x HOIST_SLOTS_PER_WORKER */
    uint64_t stage, list_bytes;     /* a unit's device layout: its staging, then its list */
    uint8_t *dev;                   /* every unit, then the error words */
    uint64_t dev_bytes;
    uint8_t *pinned;                /* every unit's list, then the error words' start value */
    uint64_t pinned_bytes, taken;
} hoist__gdec;

static uint64_t list_bytes(uint64_t chunks)
{
    return hoist__align_up((chunks ? chunks : 1) * sizeof(hoist__gpu_codec_chunk), DEV_ALIGN);
}

/* Codec 2 chunks in the plan's fullest window: the length of a worker's chunk list. */
static uint64_t most_chunks(const hoist__load *ld)
{
    const hoist__packed *pk = ld->table->packed;
    uint64_t most = 0;
    for (size_t w = 0; w < ld->plan.nwindows; w++) {
        const hoist__decode_window *dw = &ld->plan.decode[w];
        uint64_t n = 0;
        for (uint64_t c = dw->first_chunk; c < dw->first_chunk + dw->nchunks; c++)
            n += pk->chunks[c].codec == HOIST_CODEC_EXPHUFF;
        if (n > most) most = n;
    }
    return most;
}

void hoist__gdec_decide(hoist__load *ld)
{
    const hoist__packed *pk = ld->table->packed;
    ld->gpu_decode = false;
    if (!pk || !pk->exphuff_chunks || ld->host_sink || ld->narenas != 1 || ld->slices ||
        !hoist__gpu_codec_ready(ld->arenas[0].gpu))
        return;
    const char *env = getenv("HOIST_GPU_DECODE");
    if (env && strcmp(env, "0") == 0) {
        hoist__log(HOIST_LOG_INFO, "%s: HOIST_GPU_DECODE=0: codec 2 chunks decode on the CPU",
                   ld->table->origin);
        return;
    }
    ld->gpu_decode = true;
    if (!ld->opts.chunk_bytes)
        hoist__log(HOIST_LOG_DEBUG,
                   "%s: %u-byte windows for the GPU decoder (the caller chose none)",
                   ld->table->origin, GDEC_WINDOW);
}

uint64_t hoist__gdec_window_hint(const hoist__load *ld) { return ld->gpu_decode ? GDEC_WINDOW : 0; }

static uint64_t stage_bytes(const hoist__load *ld)
{
    return hoist__align_up(ld->plan.window_bytes + HOIST_GPU_CODEC_SLACK, DEV_ALIGN);
}

/* The one device allocation of `units` units: each one's staging and list, then the error
 * words. */
static uint64_t device_bytes(uint64_t units, uint64_t stage, uint64_t list)
{
    return units * (stage + list) + DEV_ALIGN;
}

void hoist__gdec_plan(hoist__load *ld)
{
    ld->plan.device_staging = 0;
    if (!ld->gpu_decode) return;
    ld->plan.device_staging = device_bytes((uint64_t)ld->opts.threads * HOIST_SLOTS_PER_WORKER,
                                           stage_bytes(ld), list_bytes(most_chunks(ld)));
}

/* The two error words (a chunk that does not decode, one that does not hash) */
#define NERR 2

static uint32_t *dev_errors(const hoist__gdec *gd)
{
    return (uint32_t *)(gd->dev + gd->dev_bytes - DEV_ALIGN);
}

/* The error words start at UINT32_MAX (no chunk failed): copied on a stream of its own and
 * waited for before any kernel can run. */
static int init_errors(hoist__gdec *gd)
{
    hoist__stream *s = NULL;
    uint32_t *start = (uint32_t *)(gd->pinned + gd->pinned_bytes - DEV_ALIGN);
    for (unsigned k = 0; k < NERR; k++) start[k] = UINT32_MAX;
    int rc = gd->g->stream_create(gd->device, &s);
    if (rc == HOIST_OK) rc = gd->g->copy_h2d(dev_errors(gd), start, NERR * sizeof *start, s);
    if (s) {
        int r = gd->g->stream_sync(s);
        if (rc == HOIST_OK) rc = r;
        gd->g->stream_destroy(s);
    }
    return rc;
}

int hoist__gdec_open(hoist__load *ld, unsigned workers)
{
    hoist__gdec *gd = hoist__calloc(1, sizeof *gd);
    RETURN_IF(!gd, HOIST_E_NOMEM, "out of memory");
    ld->gdec = gd;
    const hoist__packed *pk = ld->table->packed;
    gd->g = ld->arenas[0].gpu;
    gd->device = ld->arenas[0].device;
    gd->nunits = workers * HOIST_SLOTS_PER_WORKER;
    gd->stage = stage_bytes(ld);
    gd->list_bytes = list_bytes(most_chunks(ld));
    gd->dev_bytes = device_bytes(gd->nunits, gd->stage, gd->list_bytes);
    gd->pinned_bytes = (uint64_t)gd->nunits * gd->list_bytes + DEV_ALIGN;
    RETURN_IF_ERR(hoist__budget_take(&ld->budget, gd->pinned_bytes, "the GPU decoder's lists"));
    gd->taken = gd->pinned_bytes;
    void *p = NULL;
    RETURN_IF_ERR(hoist__pinned_acquire(gd->g, gd->pinned_bytes, &p));
    gd->pinned = p;
    RETURN_IF_ERR(gd->g->mem_alloc(gd->device, gd->dev_bytes, &p));
    gd->dev = p;
    RETURN_IF_ERR(init_errors(gd));
    char dn[HOIST_DEVICE_NAME_MAX];
    hoist__log(HOIST_LOG_INFO,
               "%s: %llu codec 2 chunks (%.3f GB) decode on %s, %llu bytes of device staging; "
               "their structure, codes and XXH3 hashes are checked there (docs/PACKED.md)",
               ld->table->origin, (unsigned long long)pk->exphuff_chunks,
               (double)pk->exphuff_bytes / 1e9, hoist_device_name(gd->device, dn, sizeof dn),
               (unsigned long long)gd->dev_bytes);
    return HOIST_OK;
}

/* Where chunk c's decoded bytes go in the arena (whole tensors: one extent each). */
static uint8_t *chunk_dst(const hoist__load *ld, const hoist__chunk *ch)
{
    const hoist__tensor *x = &ld->table->tensors[ch->tensor];
    return ld->arenas[0].base + ld->plan.tensor_dst[ch->tensor] + (ch->vofs - x->offset);
}

static int copy_err(const hoist__load *ld, const hoist__chunk *ch, int rc)
{
    return hoist__err_prefix(rc, "%s: copying %u decoded bytes of tensor '%s'",
                             ld->table->files[0].path, ch->len,
                             ld->table->tensors[ch->tensor].name);
}

/* The window's chunk list; the CPU-decoded chunks' copies queued on s. */
static int build_list(hoist__load *ld, size_t wi, const uint8_t *in, const uint8_t *decoded,
                      hoist__stream *s, hoist__gpu_codec_chunk *list, uint32_t *n,
                      uint32_t *groups, uint64_t *bytes)
{
    const hoist__table *t = ld->table;
    const hoist__window *fw = &ld->plan.windows[wi];
    const hoist__decode_window *dw = &ld->plan.decode[wi];
    for (uint64_t c = dw->first_chunk; c < dw->first_chunk + dw->nchunks; c++) {
        const hoist__chunk *ch = &t->packed->chunks[c];
        uint8_t *dst = chunk_dst(ld, ch);
        if (ch->codec != HOIST_CODEC_EXPHUFF) {
            int rc = ld->arenas[0].gpu->copy_h2d(dst, decoded + (ch->vofs - dw->model.lo),
                                                 ch->len, s);
            if (rc < 0) return copy_err(ld, ch, rc);
            continue;
        }
        hoist__exphuff x;
        RETURN_IF_ERR(hoist__packed_exphuff_check(t, c, in + (ch->file_off - fw->lo), &x));
        hoist__gpu_codec_chunk *d = &list[(*n)++];
        *d = (hoist__gpu_codec_chunk){.out = (uint64_t)(uintptr_t)dst, .xxh3 = ch->xxh3,
                                      .in = (uint32_t)(ch->file_off - fw->lo),
                                      .elems = x.elems, .block_elems = x.block_elems,
                                      .syms = x.syms, .offsets = x.offsets, .raw = x.raw,
                                      .bits = x.bits, .words = x.words, .index = (uint32_t)c};
        memcpy(d->count, x.count, sizeof d->count);
        uint32_t g = (x.nblocks + HOIST_GPU_CODEC_THREADS - 1) / HOIST_GPU_CODEC_THREADS;
        if (g > *groups) *groups = g;
        *bytes += ch->len;
    }
    return HOIST_OK;
}

static int window_err(const hoist__load *ld, size_t wi, int rc)
{
    const hoist__window *fw = &ld->plan.windows[wi];
    return hoist__err_prefix(rc, "%s: decoding bytes %llu..%llu of the file on the GPU",
                             ld->table->files[0].path, (unsigned long long)fw->lo,
                             (unsigned long long)fw->hi);
}

/* Unit u's device staging (its list follows it): slot `slot` of worker `worker` is unit
 * worker * HOIST_SLOTS_PER_WORKER + slot. */
static uint8_t *unit_stage(const hoist__gdec *gd, uint64_t u)
{
    return gd->dev + u * (gd->stage + gd->list_bytes);
}

int hoist__gdec_window(hoist__load *ld, int worker, unsigned slot, size_t wi, const uint8_t *in,
                       const uint8_t *decoded, hoist__stream *s)
{
    hoist__gdec *gd = ld->gdec;
    uint64_t u = (uint64_t)worker * HOIST_SLOTS_PER_WORKER + slot;
    RETURN_IF(worker < 0 || slot >= HOIST_SLOTS_PER_WORKER || u >= gd->nunits, HOIST_E_INTERNAL,
              "GPU decoder for worker %d slot %u", worker, slot);
    uint8_t *stage = unit_stage(gd, u);
    hoist__gpu_codec_chunk *list = (hoist__gpu_codec_chunk *)(gd->pinned + u * gd->list_bytes);
    uint32_t n = 0, groups = 0;
    uint64_t bytes = 0;
    RETURN_IF_ERR(build_list(ld, wi, in, decoded, s, list, &n, &groups, &bytes));
    if (!n) return HOIST_OK;
    const hoist__window *fw = &ld->plan.windows[wi];
    int rc = gd->g->copy_h2d(stage, in, fw->hi - fw->lo, s);
    if (rc == HOIST_OK) rc = gd->g->copy_h2d(stage + gd->stage, list, n * sizeof *list, s);
    if (rc == HOIST_OK)
        rc = hoist__gpu_codec_decode(gd->g, gd->device, s, stage,
                                     (hoist__gpu_codec_chunk *)(stage + gd->stage), n, groups,
                                     dev_errors(gd));
    if (rc < 0) return window_err(ld, wi, rc);
    atomic_fetch_add(&ld->gpu_decoded_bytes, bytes);
    return HOIST_OK;
}

/* Chunk ci's decoded bytes did not hash to its record on the GPU: read them back and hash them
 * here, so that the message says whether the bytes are wrong (the container is damaged) or the
 * hash kernel is (a hoist bug, which HOIST_GPU_DECODE=0 steps around). */
static int hash_fail(hoist__load *ld, uint32_t ci)
{
    hoist__gdec *gd = ld->gdec;
    const hoist__table *t = ld->table;
    const hoist__chunk *ch = &t->packed->chunks[ci];
    uint8_t *buf = hoist__malloc(ch->len ? ch->len : 1);
    RETURN_IF(!buf, HOIST_E_NOMEM, "out of memory reading back a %u-byte chunk", ch->len);
    int rc = gd->g->copy_d2h(buf, chunk_dst(ld, ch), ch->len, gd->device);
    uint64_t h = rc == HOIST_OK ? XXH3_64bits(buf, ch->len) : 0;
    hoist__free(buf);
    if (rc < 0) return rc;
    if (h == ch->xxh3)
        return hoist__packed_chunk_err(
            t, ci, HOIST_E_INTERNAL,
            "the GPU's XXH3 of its decoded bytes differs from the CPU's, which matches the record "
            "%016llx: a hoist bug (HOIST_GPU_DECODE=0 decodes on the CPU instead)",
            (unsigned long long)ch->xxh3);
    return hoist__packed_chunk_err(
        t, ci, HOIST_E_INTEGRITY,
        "decoded on the GPU, its bytes hash to %016llx, the container recorded %016llx",
        (unsigned long long)h, (unsigned long long)ch->xxh3);
}

int hoist__gdec_finish(hoist__load *ld)
{
    hoist__gdec *gd = ld->gdec;
    const hoist__table *t = ld->table;
    uint32_t first[NERR];
    RETURN_IF_ERR(gd->g->copy_d2h(first, dev_errors(gd), sizeof first, gd->device));
    for (unsigned k = 0; k < NERR; k++)
        RETURN_IF(first[k] != UINT32_MAX && first[k] >= t->packed->nchunks, HOIST_E_INTERNAL,
                  "%s: the GPU decoder reported chunk %u of %llu", t->files[0].path, first[k],
                  (unsigned long long)t->packed->nchunks);
    if (first[0] != UINT32_MAX)
        return hoist__packed_chunk_err(t, first[0], HOIST_E_DECODE,
                                       "the GPU decoder found a block whose bits are no code or "
                                       "do not end on its recorded word");
    if (first[1] != UINT32_MAX) return hash_fail(ld, first[1]);
    return HOIST_OK;
}

void hoist__gdec_close(hoist__load *ld)
{
    hoist__gdec *gd = ld->gdec;
    if (!gd) return;
    if (gd->dev) gd->g->mem_free(gd->device, gd->dev);
    if (gd->pinned) hoist__pinned_release(gd->g, gd->pinned, gd->pinned_bytes);
    hoist__budget_give(&ld->budget, gd->taken);
    hoist__free(gd);
    ld->gdec = NULL;
}
