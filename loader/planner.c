/* The placement planner: what fits where, before anything is allocated or read.
 *
 * The model is cut into units that must stay on one device: the embeddings (with everything that
 * belongs to no layer and is not the head), each layer with its KV cache, and the head (final
 * norm and output matrix; with tied embeddings the head reads the embedding matrix, so it joins
 * the embeddings' unit). Units are placed in order, filling each device before the next
 * (exllama's autosplit): the hidden state crosses devices once per boundary, and the first
 * devices of the list are used first. Every device that receives a unit also receives the
 * inference layer's workspace for what it runs there.
 *
 * Each unit is charged at most what it can add to its device's arena (every tensor rounded up to
 * the arena's extent alignment), so a placement that fits here fits the loader's layout; the
 * exact arena sizes are then taken from the loader's own layout function.
 *
 * A tensor-parallel plan (hoist_plan_options.tp) puts rank i on device i instead: every device
 * holds its rank's slices of every layer (their exact arena, from the loader's own layout of
 * those slices), its kv heads' cache (n_kv_heads / world, or one replicated head), and a
 * workspace sized for its share of the heads and the MLP. */
#include "core/abi.h"
#include "loader/coordinator.h"
#include "loader/plan.h"
#include "loader/tp.h"
#include "loader/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_FORWARD_TOKENS 256u
#define MAX_BATCH 65536u
#define MAX_FORWARD_TOKENS (1u << 20)
#define MAX_SEQ_LEN (1ull << 32)
#define MAX_DEVICE_ID 1023

/* The inference layer's fixed costs per GPU used (infer/gpu_forward.c): a cuBLAS workspace of
 * 32 MiB, and an allowance of 32 MiB for the cuBLAS handle and the kernels' modules, which the
 * driver takes when they are first used. The host has neither. */
#define GPU_FIXED ((32ull << 20) + (32ull << 20))
/* Weights of a ggml block type (Q8_0) are dequantized into a slice of 32 MiB on each GPU before
 * their products (infer/gpu_forward.c's DEQUANT_BYTES). */
#define GPU_DEQUANT (32ull << 20)
/* A cooperative tensor-parallel load exchanges over NCCL, which keeps buffers of its own on each
 * GPU for as long as the communicator lives: NCCL_BUFFSIZE (4 MiB) per channel and direction for
 * the Simple protocol, plus the LL and LL128 buffers, over up to 32 channels; 512 MiB covers
 * that on PCIe and NVLink machines. The exchange itself is in place (no device staging). */
#define NCCL_ALLOWANCE (512ull << 20)

/* ---- kv dtypes ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned block; /* bytes per 32 elements */
} kv_dtypes[HOIST_KV_DTYPE_COUNT] = {
#define X(id, value, str, blk) [value] = {str, blk},
    HOIST_KV_DTYPE_LIST(X)
#undef X
};

const char *hoist_kv_dtype_name(hoist_kv_dtype kv)
{
    return (unsigned)kv < HOIST_KV_DTYPE_COUNT ? kv_dtypes[kv].name : "?";
}

int hoist_kv_dtype_parse(const char *text, hoist_kv_dtype *out)
{
    RETURN_IF(!text || !out, HOIST_E_INVALID_ARG, "hoist_kv_dtype_parse: NULL argument");
    for (int i = 0; i < HOIST_KV_DTYPE_COUNT; i++) {
        if (strcmp(text, kv_dtypes[i].name) != 0) continue;
        *out = (hoist_kv_dtype)i;
        return HOIST_OK;
    }
    return hoist__err(HOIST_E_INVALID_ARG,
                      "unknown kv dtype '%s' (expected f16, bf16, f32, f8, q8 or q4)", text);
}

/* Saturating arithmetic: a size past 2^64 simply does not fit anywhere. */
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return hoist__mul_u64(a, b, &r) ? r : UINT64_MAX;
}
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return hoist__add_u64(a, b, &r) ? r : UINT64_MAX;
}

/* One head of one token in kv's encoding: quantized types in whole blocks of 32. */
static uint64_t kv_row_bytes(hoist_kv_dtype kv, uint32_t head_dim)
{
    unsigned block = kv_dtypes[kv].block;
    if (block % 32 == 0) return (uint64_t)head_dim * (block / 32);
    return (uint64_t)(head_dim + 31) / 32 * block;
}

/* K and V of one layer. */
static uint64_t kv_layer_bytes(const hoist_geometry *g, hoist_kv_dtype kv, uint64_t seq,
                               uint32_t batch)
{
    uint64_t b = 2 * (uint64_t)g->n_kv_heads * kv_row_bytes(kv, g->head_dim);
    return sat_mul(sat_mul(b, seq), batch);
}

int hoist_kv_cache_bytes(const hoist_geometry *g, hoist_kv_dtype kv, uint64_t max_seq_len,
                         uint32_t batch, uint64_t *out)
{
    RETURN_IF(!g || !out, HOIST_E_INVALID_ARG, "hoist_kv_cache_bytes: NULL argument");
    hoist_geometry geo;
    RETURN_IF_ERR(HOIST__IN(hoist_geometry, &geo, g, NULL));
    RETURN_IF((unsigned)kv >= HOIST_KV_DTYPE_COUNT, HOIST_E_INVALID_ARG, "kv dtype %d unknown",
              (int)kv);
    RETURN_IF_ERR(hoist_geometry_check(&geo));
    uint64_t b = sat_mul(kv_layer_bytes(&geo, kv, max_seq_len, batch), geo.n_layers);
    RETURN_IF(b == UINT64_MAX, HOIST_E_OVERFLOW,
              "KV cache of %llu tokens x %u sequences overflows 64 bits",
              (unsigned long long)max_seq_len, batch);
    *out = b;
    hoist__err_clear();
    return HOIST_OK;
}

/* ---- workspace ---------------------------------------------------------------------------- */

/* The inference layer's buffers on a device (infer/gpu_forward.c's dev_create and alloc_ends),
 * for T tokens per forward pass, besides GPU_FIXED: the residual stream in fp32 and the normalized
 * activations in the weights' dtype on every device; on a device with layers the q/k/v and gate/up outputs (fp32),
 * attention and MLP activations (weights' dtype) and the rotary tables (fp32, head_dim / 2 per
 * position, cos and sin); the token ids where the embeddings are; the logits (fp32, vocab per
 * sequence) and generated-token history where the head is. All factors are bounded by
 * hoist_geometry_check and the plan's option bounds, far below 2^64. */
typedef struct workspace {
    uint64_t base, layers, embed, head;
    uint64_t gpu; /* on a GPU only: the dequantization slice of block-quantized weights */
} workspace;

static workspace workspace_of(const hoist_geometry *g, uint64_t seq, uint32_t batch, uint32_t T)
{
    uint64_t es = hoist_dtype_bits(g->dtype) / 8;
    int dequant = es == 0; /* block-quantized weights; activations in at most 4 bytes */
    if (es == 0 || es > 4) es = 4;
    uint64_t q_dim = (uint64_t)g->n_heads * g->head_dim;
    uint64_t kv_dim = (uint64_t)g->n_kv_heads * g->head_dim;
    workspace w;
    w.base = 4 + (uint64_t)T * g->hidden * (4 + es);
    w.gpu = dequant ? GPU_DEQUANT : 0;
    w.layers = (uint64_t)T * (q_dim + 2 * kv_dim) * 4 + (uint64_t)T * q_dim * es +
               (uint64_t)T * 2 * g->intermediate * 4 + (uint64_t)T * g->intermediate * es +
               2 * seq * (g->head_dim / 2) * 4;
    w.embed = (uint64_t)T * 4;
    w.head = (uint64_t)batch * g->vocab * 4 + (uint64_t)batch * seq * 4 + 12;
    return w;
}

/* ---- units -------------------------------------------------------------------------------- */

/* Layer index from names like model.layers.12.mlp.up_proj.weight, blk.12.ffn_up.weight,
 * transformer.h.12.attn.c_attn.weight; -1 for a tensor in no layer. */
static long layer_of(const char *name)
{
    static const char *const segs[] = {"layers.", "blk.", "h.", "layer."};
    for (const char *p = name; *p; p++) {
        if (p != name && p[-1] != '.') continue;
        for (size_t s = 0; s < sizeof segs / sizeof *segs; s++) {
            size_t n = strlen(segs[s]);
            if (strncmp(p, segs[s], n) != 0) continue;
            const char *q = p + n;
            if (*q < '0' || *q > '9') continue;
            long v = 0;
            while (*q >= '0' && *q <= '9' && v < 1000000) v = v * 10 + (*q++ - '0');
            if (*q == '.' || *q == '\0') return v;
        }
    }
    return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The output matrix and the final norm (HF and GGUF names). */
static bool is_head(const char *name)
{
    return strstr(name, "lm_head") || strncmp(name, "output.", 7) == 0 ||
           strncmp(name, "output_norm.", 12) == 0 || ends_with(name, "norm.weight") ||
           ends_with(name, "norm.bias") || strstr(name, "ln_f.");
}

typedef struct planner {
    const hoist__table *t;
    hoist_geometry g;
    uint32_t nunits;         /* embeddings, n_layers layers, head */
    uint32_t *tensor_unit;
    uint64_t *unit_weights;  /* upper bound of the unit's arena bytes */
    bool tied;               /* the head shares the embeddings' unit */
    uint32_t batch, T;
    size_t ndev;
    int device[HOIST_PLAN_MAX_DEVICES];
    uint64_t free[HOIST_PLAN_MAX_DEVICES], reserve[HOIST_PLAN_MAX_DEVICES];
    uint64_t queried[HOIST_PLAN_MAX_DEVICES];
    /* tensor parallelism: ranks (0: a layer split), each rank's arena, and the shape of the
     * share of one rank (its heads, kv heads and MLP width) */
    int tp_world;
    bool tp_cooperative;
    uint64_t tp_weights[HOIST_PLAN_MAX_DEVICES];
    hoist_geometry g_rank;
} planner;

#define UNIT_EMBED 0u
#define UNIT_LAYER(l) (1u + (l))
#define UNIT_HEAD(pl) ((pl)->nunits - 1)

static void planner_free(planner *pl)
{
    hoist__free(pl->tensor_unit);
    hoist__free(pl->unit_weights);
}

static int planner_units(planner *pl)
{
    const hoist__table *t = pl->t;
    pl->nunits = pl->g.n_layers + 2;
    pl->tensor_unit = hoist__malloc((t->ntensors ? t->ntensors : 1) * sizeof *pl->tensor_unit);
    pl->unit_weights = hoist__calloc(pl->nunits, sizeof *pl->unit_weights);
    RETURN_IF(!pl->tensor_unit || !pl->unit_weights, HOIST_E_NOMEM,
              "out of memory planning %zu tensors", t->ntensors);
    bool has_output = false;
    for (size_t i = 0; i < t->ntensors; i++) {
        const char *name = t->tensors[i].name;
        long l = layer_of(name);
        uint32_t u;
        if (l >= 0) {
            RETURN_IF(l >= (long)pl->g.n_layers, HOIST_E_BAD_CONFIG,
                      "%s: tensor '%s' belongs to layer %ld, but the geometry has %u layers",
                      t->files[t->tensors[i].file].path, name, l, pl->g.n_layers);
            u = UNIT_LAYER((uint32_t)l);
        } else if (is_head(name)) {
            u = UNIT_HEAD(pl);
            has_output |= strstr(name, "lm_head") || strncmp(name, "output.", 7) == 0;
        } else {
            u = UNIT_EMBED;
        }
        pl->tensor_unit[i] = u;
        pl->unit_weights[u] =
            sat_add(pl->unit_weights[u], hoist__align_up(t->tensors[i].nbytes, HOIST_ARENA_ALIGN));
    }
    /* with tied embeddings (or no output matrix at all) the logits come from the embedding
     * matrix: the head runs where the embeddings are */
    pl->tied = pl->g.tied_embeddings || !has_output;
    if (pl->tied) {
        for (size_t i = 0; i < t->ntensors; i++)
            if (pl->tensor_unit[i] == UNIT_HEAD(pl)) pl->tensor_unit[i] = UNIT_EMBED;
        pl->unit_weights[UNIT_EMBED] =
            sat_add(pl->unit_weights[UNIT_EMBED], pl->unit_weights[UNIT_HEAD(pl)]);
        pl->unit_weights[UNIT_HEAD(pl)] = 0;
    }
    return HOIST_OK;
}

/* ---- placement ---------------------------------------------------------------------------- */

typedef struct placement {
    bool ok;
    uint8_t *unit_dev;       /* nunits entries */
    uint64_t used[HOIST_PLAN_MAX_DEVICES], weights[HOIST_PLAN_MAX_DEVICES],
        kv[HOIST_PLAN_MAX_DEVICES], ws[HOIST_PLAN_MAX_DEVICES];
    bool any[HOIST_PLAN_MAX_DEVICES], layers[HOIST_PLAN_MAX_DEVICES];
    /* on failure: the first unit that fit nowhere, and what the last device would hold if every
     * unit from there on went to it (weights, cache, workspace) */
    uint32_t fail_unit;
    uint64_t last_w, last_kv, last_ws;
    size_t fail_dev; /* the device the figures above are of */
} placement;

static uint64_t usable(const planner *pl, size_t d)
{
    return pl->free[d] > pl->reserve[d] ? pl->free[d] - pl->reserve[d] : 0;
}

/* The cost of unit u on device d as things stand: weights, cache, and the workspace it brings
 * to d. */
static void unit_cost(const planner *pl, const placement *p, const workspace *w, uint64_t kvl,
                      uint32_t u, size_t d, uint64_t *wt, uint64_t *kv, uint64_t *ws)
{
    bool layer = u != UNIT_EMBED && u != UNIT_HEAD(pl);
    *wt = pl->unit_weights[u];
    *kv = layer ? kvl : 0;
    *ws = p->any[d] ? 0
                    : w->base + (pl->device[d] != HOIST_DEVICE_HOST ? GPU_FIXED + w->gpu : 0);
    if (layer && !p->layers[d]) *ws += w->layers;
    if (u == UNIT_EMBED) *ws += w->embed + (pl->tied ? w->head : 0);
    if (u == UNIT_HEAD(pl) && !pl->tied) *ws += w->head;
}

/* Tensor parallelism: every device holds its rank of everything; the first device that cannot
 * is the failure. */
static void place_tp(const planner *pl, uint64_t seq, hoist_kv_dtype kv, placement *p)
{
    workspace w = workspace_of(&pl->g_rank, seq, pl->batch, pl->T);
    uint64_t kvb = sat_mul(kv_layer_bytes(&pl->g_rank, kv, seq, pl->batch), pl->g.n_layers);
    p->ok = true;
    for (size_t d = 0; d < pl->ndev; d++) {
        bool gpu = pl->device[d] != HOIST_DEVICE_HOST;
        uint64_t ws = sat_add(sat_add(w.base, w.layers), sat_add(w.embed, w.head));
        uint64_t nccl = pl->tp_cooperative ? NCCL_ALLOWANCE : 0;
        if (gpu) ws = sat_add(ws, GPU_FIXED + w.gpu + nccl);
        p->weights[d] = pl->tp_weights[d];
        p->kv[d] = kvb;
        p->ws[d] = ws;
        p->used[d] = sat_add(sat_add(p->weights[d], kvb), ws);
        p->any[d] = p->layers[d] = true;
        if (p->ok && p->used[d] > usable(pl, d)) {
            p->ok = false;
            p->fail_unit = UNIT_EMBED;
            p->fail_dev = d;
            p->last_w = p->weights[d];
            p->last_kv = kvb;
            p->last_ws = ws;
        }
    }
}

static void place(const planner *pl, uint64_t seq, hoist_kv_dtype kv, placement *p)
{
    uint8_t *unit_dev = p->unit_dev;
    memset(p, 0, sizeof *p);
    p->unit_dev = unit_dev;
    p->fail_dev = pl->ndev - 1;
    if (pl->tp_world > 1) {
        place_tp(pl, seq, kv, p);
        return;
    }
    workspace w = workspace_of(&pl->g, seq, pl->batch, pl->T);
    uint64_t kvl = kv_layer_bytes(&pl->g, kv, seq, pl->batch);
    size_t d = 0;
    /* units in their natural order: embeddings (with a tied head), layers, head */
    for (uint32_t u = 0; u < pl->nunits; u++) {
        if (u == UNIT_HEAD(pl) && pl->tied) {
            p->unit_dev[u] = p->unit_dev[UNIT_EMBED];
            continue;
        }
        for (;; d++) {
            if (d == pl->ndev) {
                p->fail_unit = u;
                /* what the last device would need for everything from u on */
                size_t last = pl->ndev - 1;
                placement q = *p;
                p->last_w = p->weights[last];
                p->last_kv = p->kv[last];
                p->last_ws = p->ws[last];
                for (uint32_t v = u; v < pl->nunits; v++) {
                    if (v == UNIT_HEAD(pl) && pl->tied) continue;
                    uint64_t wt, kc, ws;
                    unit_cost(pl, &q, &w, kvl, v, last, &wt, &kc, &ws);
                    q.any[last] = true;
                    q.layers[last] |= v != UNIT_EMBED && v != UNIT_HEAD(pl);
                    p->last_w = sat_add(p->last_w, wt);
                    p->last_kv = sat_add(p->last_kv, kc);
                    p->last_ws = sat_add(p->last_ws, ws);
                }
                return;
            }
            uint64_t wt, kc, ws;
            unit_cost(pl, p, &w, kvl, u, d, &wt, &kc, &ws);
            uint64_t cost = sat_add(sat_add(wt, kc), ws);
            if (sat_add(p->used[d], cost) > usable(pl, d)) continue;
            p->used[d] += cost;
            p->weights[d] += wt;
            p->kv[d] += kc;
            p->ws[d] += ws;
            p->any[d] = true;
            p->layers[d] |= u != UNIT_EMBED && u != UNIT_HEAD(pl);
            p->unit_dev[u] = (uint8_t)d;
            break;
        }
    }
    p->ok = true;
}

/* Largest seq in [1, cap] that places with kv (0 when even 1 does not). */
static uint64_t max_fitting_seq(const planner *pl, hoist_kv_dtype kv, uint64_t cap,
                                placement *scratch)
{
    place(pl, 1, kv, scratch);
    if (!scratch->ok) return 0;
    uint64_t lo = 1, hi = cap; /* lo fits */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        place(pl, mid, kv, scratch);
        if (scratch->ok)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* ---- options ------------------------------------------------------------------------------ */

typedef struct resolved {
    uint64_t seq;
    hoist_kv_dtype kv;
} resolved;

static const char *gib(uint64_t b, char *buf, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.2f MiB", (double)b / (double)(1ull << 20));
    else
        snprintf(buf, n, "%llu B", (unsigned long long)b);
    return buf;
}

/* The caller's options as the library's full-size copies (core/abi.h), the geometry and the
 * device array they point to included: *o's pointers are redirected to *g and devs. fn names the
 * public function in messages. */
static int options_in(const hoist_plan_options *opts, hoist_plan_options *o, hoist_geometry *g,
                      hoist_plan_device devs[HOIST_PLAN_MAX_DEVICES], const char *fn)
{
    static const hoist_plan_options def = HOIST_PLAN_OPTIONS_DEFAULT;
    static const hoist_plan_device dev_def = HOIST_PLAN_DEVICE_DEFAULT;
    RETURN_IF_ERR(hoist__struct_in(&hoist__sized_hoist_plan_options, o, opts, &def, fn));
    if (o->geometry) {
        RETURN_IF_ERR(hoist__struct_in(&hoist__sized_hoist_geometry, g, o->geometry, NULL, fn));
        o->geometry = g;
    }
    RETURN_IF(o->ndevices > HOIST_PLAN_MAX_DEVICES, HOIST_E_TOO_MANY,
              "%zu devices (at most %d)", o->ndevices, HOIST_PLAN_MAX_DEVICES);
    RETURN_IF(o->ndevices && !o->devices, HOIST_E_INVALID_ARG, "ndevices %zu but devices NULL",
              o->ndevices);
    for (size_t i = 0; i < o->ndevices; i++)
        RETURN_IF_ERR(hoist__struct_in_at(&hoist__sized_hoist_plan_device, &devs[i], o->devices,
                                          i, &dev_def, fn));
    if (o->ndevices) o->devices = devs;
    return HOIST_OK;
}

/* Geometry, bounds, units and the device list; no device is asked anything yet. o: the
 * library's copy (options_in). */
static int planner_init(planner *pl, hoist_model *model, const hoist_plan_options *o,
                        resolved *r)
{
    memset(pl, 0, sizeof *pl);
    pl->t = &model->table;
    if (o->geometry) {
        RETURN_IF_ERR(hoist_geometry_check(o->geometry));
        pl->g = *o->geometry;
    } else {
        pl->g = (hoist_geometry)HOIST_GEOMETRY_INIT;
        RETURN_IF_ERR(hoist_model_geometry(model, &pl->g));
    }
    RETURN_IF((unsigned)o->kv_dtype >= HOIST_KV_DTYPE_COUNT, HOIST_E_INVALID_ARG,
              "kv dtype %d unknown", (int)o->kv_dtype);
    r->kv = o->kv_dtype;
    r->seq = o->max_seq_len ? o->max_seq_len : pl->g.max_position;
    RETURN_IF(r->seq > MAX_SEQ_LEN, HOIST_E_INVALID_ARG, "max_seq_len %llu (at most %llu)",
              (unsigned long long)r->seq, MAX_SEQ_LEN);
    pl->batch = o->batch ? o->batch : 1;
    RETURN_IF(pl->batch > MAX_BATCH, HOIST_E_INVALID_ARG, "batch %u (at most %u)", pl->batch,
              MAX_BATCH);
    pl->T = o->forward_tokens ? o->forward_tokens : DEFAULT_FORWARD_TOKENS;
    RETURN_IF(pl->T > MAX_FORWARD_TOKENS, HOIST_E_INVALID_ARG, "forward_tokens %u (at most %u)",
              pl->T, MAX_FORWARD_TOKENS);
    if (pl->T < pl->batch) pl->T = pl->batch; /* a decode step runs one token per sequence */

    if (o->ndevices) {
        pl->ndev = o->ndevices;
        for (size_t i = 0; i < o->ndevices; i++) {
            int dv = o->devices[i].device;
            RETURN_IF(dv != HOIST_DEVICE_HOST && (dv < 0 || dv > MAX_DEVICE_ID),
                      HOIST_E_INVALID_ARG, "device id %d (expected host or 0..%d)", dv,
                      MAX_DEVICE_ID);
            for (size_t j = 0; j < i; j++) {
                char dn[32];
                RETURN_IF(o->devices[j].device == dv, HOIST_E_INVALID_ARG,
                          "%s is listed twice", hoist_device_name(dv, dn, sizeof dn));
            }
            pl->device[i] = dv;
            pl->free[i] = o->devices[i].free_bytes;
            pl->reserve[i] = o->devices[i].reserve_bytes;
        }
    } else {
        int n = hoist_device_count();
        if (n > HOIST_PLAN_MAX_DEVICES) n = HOIST_PLAN_MAX_DEVICES;
        pl->ndev = n > 0 ? (size_t)n : 1;
        for (size_t i = 0; i < pl->ndev; i++) pl->device[i] = n > 0 ? (int)i : HOIST_DEVICE_HOST;
    }
    return planner_units(pl);
}

/* ---- tensor parallelism -------------------------------------------------------------------- */

/* The arena of each rank: its slices laid out as the loader lays them out. The head counts come
 * from the plan's geometry when the options leave them out. */
static int tp_weights(planner *pl, hoist_tp_options t)
{
    if (!t.heads) t.heads = pl->g.n_heads;
    if (!t.kv_heads) t.kv_heads = pl->g.n_kv_heads;
    for (int r = 0; r < t.world; r++) {
        t.rank = r;
        hoist__slice *slices = NULL;
        RETURN_IF_ERR(hoist__tp_slices(pl->t, &t, &slices));
        hoist__plan_cut cut = {slices, r, t.world, t.cooperative};
        pl->tp_weights[r] = hoist__plan_cut_arena_bytes(pl->t, &cut);
        hoist__free(slices);
    }
    return HOIST_OK;
}

/* One rank's share of the shape: what its cache and activations are sized by. */
static hoist_geometry rank_geometry(const hoist_geometry *g, uint32_t w)
{
    hoist_geometry r = *g;
    r.n_heads = (g->n_heads + w - 1) / w;
    r.n_kv_heads = g->n_kv_heads >= w ? (g->n_kv_heads + w - 1) / w : 1;
    r.intermediate = (g->intermediate + w - 1) / w;
    return r;
}

/* A tensor-parallel plan: rank i on device i, so as many devices as ranks (the first CUDA
 * devices when none are named). */
static int planner_tp(planner *pl, const hoist_plan_options *o, const char *fn)
{
    hoist_tp_options t;
    RETURN_IF_ERR(hoist__tp_options_in(o->tp, &t, fn));
    if (t.world <= 1) return HOIST_OK;
    RETURN_IF(t.world > HOIST_PLAN_MAX_DEVICES, HOIST_E_TOO_MANY,
              "%s: %d tensor-parallel ranks (a plan has at most %d devices)", fn, t.world,
              HOIST_PLAN_MAX_DEVICES);
    if (!o->ndevices && hoist_device_count() >= t.world) {
        pl->ndev = (size_t)t.world;
        for (int d = 0; d < t.world; d++) pl->device[d] = d;
    }
    RETURN_IF(pl->ndev != (size_t)t.world, HOIST_E_INVALID_ARG,
              "%s: %d tensor-parallel ranks need %d devices, one per rank; %zu given (name "
              "them, with their memory for devices not present: cuda:0=80G,cuda:1=80G,...)",
              fn, t.world, t.world, o->ndevices ? o->ndevices : pl->ndev);
    pl->tp_world = t.world;
    pl->tp_cooperative = t.cooperative;
    pl->g_rank = rank_geometry(&pl->g, (uint32_t)t.world);
    return tp_weights(pl, t);
}

/* With the coordinator locked: each device's free bytes (given, or asked) less the coordinator's
 * reservations. */
static int planner_devices(planner *pl, hoist_coordinator *c)
{
    for (size_t d = 0; d < pl->ndev; d++) {
        const hoist__gpu_ops *ops;
        if (!pl->free[d]) RETURN_IF_ERR(hoist__gpu_for_device(pl->device[d], &ops));
        RETURN_IF_ERR(
            hoist__coord_available(c, pl->device[d], pl->free[d], &pl->free[d], &pl->queried[d]));
    }
    return HOIST_OK;
}

/* ---- failure message ---------------------------------------------------------------------- */

static void unit_name(const planner *pl, uint32_t u, char *buf, size_t n)
{
    if (u == UNIT_EMBED)
        snprintf(buf, n, "the embeddings");
    else if (u == UNIT_HEAD(pl))
        snprintf(buf, n, "the output head");
    else
        snprintf(buf, n, "layers %u..%u", u - 1, pl->g.n_layers - 1);
}

/* Which device lacks how much, and what would fit instead: a shorter max_seq_len, a smaller kv
 * dtype, another device. */
static int no_fit(const planner *pl, const resolved *r, const placement *p, placement *scratch)
{
    char msg[1024], a[32], b[32], c[32], e[32], f[32], g[32], h[32], dn[32];
    size_t n = 0;
    size_t last = p->fail_dev;
    uint64_t need = sat_add(sat_add(p->last_w, p->last_kv), p->last_ws);
    uint64_t have = usable(pl, last);
    uint64_t lack = need > have ? need - have : 0;
    char what[64];
    unit_name(pl, p->fail_unit, what, sizeof what);
    n += (size_t)snprintf(
        msg + n, sizeof msg - n,
        "%s does not fit with max_seq_len %llu, %s cache, batch %u: %s lacks %s: weights %s + "
        "KV cache %s + workspace %s, has %s (%s free - %s reserve)",
        pl->t->nfiles ? pl->t->files[0].path : "model", (unsigned long long)r->seq,
        kv_dtypes[r->kv].name, pl->batch, hoist_device_name(pl->device[last], dn, sizeof dn),
        gib(lack, a, sizeof a), gib(p->last_w, b, sizeof b), gib(p->last_kv, c, sizeof c),
        gib(p->last_ws, e, sizeof e), gib(have, f, sizeof f), gib(pl->free[last], g, sizeof g),
        gib(pl->reserve[last], h, sizeof h));
    if (pl->tp_world > 1)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              " (tensor-parallel rank %zu of %d: its slices of every layer)", last,
                              pl->tp_world);
    else if (pl->ndev > 1)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              " (%s and what follows; the devices before it are full)", what);
    n += (size_t)snprintf(msg + n, sizeof msg - n, ". Would fit:");
    uint64_t k = max_fitting_seq(pl, r->kv, r->seq, scratch);
    const char *sep = " ";
    if (k) {
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%smax_seq_len <= %llu", sep,
                              (unsigned long long)k);
        sep = "; or ";
    }
    /* the largest cache encoding below the requested one that keeps max_seq_len */
    int best = -1;
    for (int kv = 0; kv < HOIST_KV_DTYPE_COUNT; kv++) {
        if (kv_dtypes[kv].block >= kv_dtypes[r->kv].block) continue;
        place(pl, r->seq, (hoist_kv_dtype)kv, scratch);
        if (scratch->ok && (best < 0 || kv_dtypes[kv].block > kv_dtypes[best].block)) best = kv;
    }
    if (best >= 0) {
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%skv dtype %s at max_seq_len %llu", sep,
                              kv_dtypes[best].name, (unsigned long long)r->seq);
        sep = "; or ";
    }
    if (n < sizeof msg)
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%sanother device with %s more free", sep,
                              gib(lack, a, sizeof a));
    /* name the devices present but not in the list that have it */
    int count = hoist_device_count();
    bool named = false;
    for (int dv = 0; dv < count && n < sizeof msg; dv++) {
        bool listed = false;
        for (size_t d = 0; d < pl->ndev; d++) listed |= pl->device[d] == dv;
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        if (listed || hoist_device_info_get(dv, &info) < 0 || info.free_bytes < lack) continue;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%scuda:%d has %s", named ? ", " : " (",
                              dv, gib(info.free_bytes, a, sizeof a));
        named = true;
    }
    if (named && n < sizeof msg) n += (size_t)snprintf(msg + n, sizeof msg - n, ")");
    return hoist__err(HOIST_E_NO_FIT, "%s", msg);
}

/* ---- the plan ------------------------------------------------------------------------------ */

static int build_plan(const planner *pl, const resolved *r, const placement *p, hoist_model *model,
                      hoist_plan **out)
{
    const hoist__table *t = pl->t;
    hoist_plan *plan = hoist__calloc(1, sizeof *plan);
    RETURN_IF(!plan, HOIST_E_NOMEM, "out of memory for a plan");
    plan->tensor_dev = hoist__malloc(t->ntensors ? t->ntensors : 1);
    plan->layer_dev = hoist__malloc(pl->g.n_layers);
    if (!plan->tensor_dev || !plan->layer_dev) {
        hoist__free(plan->tensor_dev);
        hoist__free(plan->layer_dev);
        hoist__free(plan);
        return hoist__err(HOIST_E_NOMEM, "out of memory for a plan");
    }
    for (size_t i = 0; i < t->ntensors; i++) plan->tensor_dev[i] = p->unit_dev[pl->tensor_unit[i]];
    for (uint32_t l = 0; l < pl->g.n_layers; l++) plan->layer_dev[l] = p->unit_dev[UNIT_LAYER(l)];
    uint64_t arena[HOIST_PLAN_MAX_DEVICES] = {0};
    if (pl->tp_world > 1)
        memcpy(arena, pl->tp_weights, sizeof arena);
    else
        hoist__plan_arena_sizes(t, plan->tensor_dev, pl->ndev, arena);

    plan->geometry = pl->g;
    hoist_plan_info *in = &plan->info;
    in->size = sizeof *in;
    in->max_seq_len = r->seq;
    in->batch = pl->batch;
    in->forward_tokens = pl->T;
    in->kv_dtype = r->kv;
    const hoist_geometry *kg = pl->tp_world > 1 ? &pl->g_rank : &pl->g;
    in->kv_bytes_per_token = kv_layer_bytes(kg, r->kv, 1, 1) * pl->g.n_layers;
    in->ndevices = pl->ndev;
    in->tp_world = pl->tp_world > 1 ? (size_t)pl->tp_world : 0;
    for (size_t d = 0; d < pl->ndev; d++) {
        hoist_plan_usage *u = &plan->usage[d];
        *u = (hoist_plan_usage){.size = sizeof *u,
                                .device = pl->device[d],
                                .free_bytes = pl->free[d],
                                .reserve_bytes = pl->reserve[d],
                                .weights_bytes = arena[d],
                                .kv_bytes = p->kv[d],
                                .workspace_bytes = p->ws[d],
                                .embeddings = (p->unit_dev[UNIT_EMBED] == d || pl->tp_world > 1) &&
                                              p->any[d],
                                .head = (p->unit_dev[UNIT_HEAD(pl)] == d || pl->tp_world > 1) &&
                                        p->any[d]};
        uint64_t used = arena[d] + p->kv[d] + p->ws[d];
        u->headroom_bytes = usable(pl, d) - used; /* arena <= the charged upper bound */
        for (uint32_t l = 0; l < pl->g.n_layers; l++) {
            if (plan->layer_dev[l] != d && pl->tp_world <= 1) continue;
            if (!u->layers) u->first_layer = l;
            u->layers++;
        }
        in->weights_bytes += arena[d];
        in->kv_bytes += p->kv[d];
        in->workspace_bytes += p->ws[d];
    }
    hoist__model_retain(model);
    plan->model = model;
    *out = plan;
    return HOIST_OK;
}

/* Runs the planner on the caller's opts with the coordinator locked; fit, when not NULL, receives
 * what fits (and nothing is reserved); otherwise the plan is built and reserved, or
 * HOIST_E_NO_FIT. fn names the public function in messages. */
static int plan_run(hoist_model *model, const hoist_plan_options *opts, hoist_fit *fit,
                    hoist_plan **out, const char *fn)
{
    hoist_plan_options o_copy;
    hoist_geometry g_copy;
    hoist_plan_device dev_copy[HOIST_PLAN_MAX_DEVICES];
    RETURN_IF_ERR(options_in(opts, &o_copy, &g_copy, dev_copy, fn));
    const hoist_plan_options *o = &o_copy;
    planner pl;
    resolved r = {0, HOIST_KV_F16};
    placement p = {0}, scratch = {0};
    hoist__reservation *res = NULL;
    hoist_coordinator *c = hoist__coord_resolve(o->coordinator);
    int rc = planner_init(&pl, model, o, &r);
    if (rc == HOIST_OK && o->tp) rc = planner_tp(&pl, o, fn);
    if (rc == HOIST_OK) {
        p.unit_dev = hoist__calloc(pl.nunits, 1);
        scratch.unit_dev = hoist__calloc(pl.nunits, 1);
        if (!p.unit_dev || !scratch.unit_dev)
            rc = hoist__err(HOIST_E_NOMEM, "out of memory planning %u layers", pl.g.n_layers);
    }
    if (rc < 0) goto out;
    hoist__coord_lock(c);
    rc = planner_devices(&pl, c);
    if (rc == HOIST_OK) place(&pl, r.seq, r.kv, &p);
    if (rc == HOIST_OK && fit) {
        _Static_assert(HOIST_KV_DTYPE_COUNT <= HOIST_KV_DTYPE_MAX, "hoist_fit has no slot");
        memset(fit, 0, sizeof *fit);
        fit->fits = p.ok;
        if (!p.ok) {
            uint64_t need = sat_add(sat_add(p.last_w, p.last_kv), p.last_ws);
            uint64_t have = usable(&pl, p.fail_dev);
            fit->shortfall_bytes = need > have ? need - have : 0;
        }
        uint64_t cap = pl.g.max_position > r.seq ? pl.g.max_position : r.seq;
        for (int kv = 0; kv < HOIST_KV_DTYPE_COUNT; kv++)
            fit->max_seq_len[kv] = max_fitting_seq(&pl, (hoist_kv_dtype)kv, cap, &scratch);
    } else if (rc == HOIST_OK && !p.ok) {
        rc = no_fit(&pl, &r, &p, &scratch);
    } else if (rc == HOIST_OK) {
        rc = build_plan(&pl, &r, &p, model, out);
        if (rc == HOIST_OK) {
            int devs[HOIST_PLAN_MAX_DEVICES];
            uint64_t bytes[HOIST_PLAN_MAX_DEVICES], queried[HOIST_PLAN_MAX_DEVICES];
            size_t n = 0;
            for (size_t d = 0; d < pl.ndev; d++) {
                const hoist_plan_usage *u = &(*out)->usage[d];
                if (!p.any[d]) continue;
                devs[n] = u->device;
                bytes[n] = u->weights_bytes + u->kv_bytes + u->workspace_bytes;
                queried[n++] = pl.queried[d];
            }
            rc = hoist__coord_reserve(c, n, devs, bytes, queried, &res);
            if (rc == HOIST_OK) {
                (*out)->reservation = res;
            } else {
                hoist_plan_free(*out);
                *out = NULL;
            }
        }
    }
    hoist__coord_unlock(c);
out:
    hoist__free(p.unit_dev);
    hoist__free(scratch.unit_dev);
    planner_free(&pl);
    return rc;
}

int hoist_plan_create(hoist_model *model, const hoist_plan_options *opts, hoist_plan **out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_plan_create: out is NULL");
    *out = NULL;
    RETURN_IF(!model, HOIST_E_INVALID_ARG, "hoist_plan_create: model is NULL");
    RETURN_IF_ERR(plan_run(model, opts, NULL, out, __func__));
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_plan_fit(hoist_model *model, const hoist_plan_options *opts, hoist_fit *out)
{
    RETURN_IF(!out || !model, HOIST_E_INVALID_ARG, "hoist_plan_fit: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_fit, out));
    hoist_fit f = HOIST_FIT_INIT;
    int rc = plan_run(model, opts, &f, NULL, __func__);
    if (rc < 0) {
        HOIST__ZERO(hoist_fit, out); /* as it always was */
        return rc;
    }
    HOIST__OUT(hoist_fit, out, &f);
    hoist__err_clear();
    return HOIST_OK;
}

void hoist_plan_free(hoist_plan *plan)
{
    if (!plan) return;
    hoist__reservation_put(plan->reservation);
    hoist_model_free(plan->model);
    hoist__free(plan->tensor_dev);
    hoist__free(plan->layer_dev);
    hoist__free(plan);
}

int hoist_plan_info_get(const hoist_plan *plan, hoist_plan_info *out)
{
    RETURN_IF(!plan || !out, HOIST_E_INVALID_ARG, "hoist_plan_info_get: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_plan_info, out));
    HOIST__OUT(hoist_plan_info, out, &plan->info);
    return HOIST_OK;
}

int hoist_plan_geometry(const hoist_plan *plan, hoist_geometry *out)
{
    RETURN_IF(!plan || !out, HOIST_E_INVALID_ARG, "hoist_plan_geometry: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_geometry, out));
    HOIST__OUT(hoist_geometry, out, &plan->geometry);
    return HOIST_OK;
}

int hoist_plan_usage_get(const hoist_plan *plan, size_t index, hoist_plan_usage *out)
{
    RETURN_IF(!plan || !out, HOIST_E_INVALID_ARG, "hoist_plan_usage_get: NULL argument");
    RETURN_IF_ERR(HOIST__CHECK(hoist_plan_usage, out));
    RETURN_IF(index >= plan->info.ndevices, HOIST_E_INVALID_ARG,
              "device index %zu out of range (%zu devices)", index, plan->info.ndevices);
    HOIST__OUT(hoist_plan_usage, out, &plan->usage[index]);
    return HOIST_OK;
}

int hoist_plan_tensor_device(const hoist_plan *plan, size_t tensor, int *device)
{
    RETURN_IF(!plan || !device, HOIST_E_INVALID_ARG, "hoist_plan_tensor_device: NULL argument");
    RETURN_IF(tensor >= plan->model->table.ntensors, HOIST_E_INVALID_ARG,
              "tensor index %zu out of range (%zu tensors)", tensor, plan->model->table.ntensors);
    *device = plan->usage[plan->tensor_dev[tensor]].device;
    return HOIST_OK;
}

int hoist_plan_layer_device(const hoist_plan *plan, uint32_t layer, int *device)
{
    RETURN_IF(!plan || !device, HOIST_E_INVALID_ARG, "hoist_plan_layer_device: NULL argument");
    RETURN_IF(layer >= plan->geometry.n_layers, HOIST_E_INVALID_ARG,
              "layer %u out of range (%u layers)", layer, plan->geometry.n_layers);
    *device = plan->usage[plan->layer_dev[layer]].device;
    return HOIST_OK;
}
