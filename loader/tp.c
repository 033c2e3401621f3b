/* Tensor-parallel slices: the rules that decide how each tensor is cut, and the arithmetic that
 * turns a cut into byte ranges. Shapes are outermost first (a GGUF shape is ggml's ne reversed),
 * so dim 0 is a Hugging Face matrix's rows in both formats. Every count comes from a parsed table
 * whose shapes and byte sizes were checked against each other, and every product is checked
 * again here before it is used. */
#include "loader/tp.h"
#include "core/abi.h"
#include "core/core.h"

#include <stdio.h>
#include <string.h>

static const hoist_tp_options default_options = HOIST_TP_OPTIONS_DEFAULT;

int hoist__tp_options_in(const hoist_tp_options *in, hoist_tp_options *out, const char *fn)
{
    RETURN_IF_ERR(hoist__struct_in(&hoist__sized_hoist_tp_options, out, in, &default_options, fn));
    RETURN_IF(out->world < 1 || out->world > HOIST_TP_MAX_WORLD, HOIST_E_INVALID_ARG,
              "%s: tensor-parallel world %d (1..%d)", fn, out->world, HOIST_TP_MAX_WORLD);
    RETURN_IF(out->rank < 0 || out->rank >= out->world, HOIST_E_INVALID_ARG,
              "%s: tensor-parallel rank %d outside 0..%d", fn, out->rank, out->world - 1);
    RETURN_IF(out->rules_default < 0 || out->rules_default > 1 || out->pad < 0 || out->pad > 1 ||
                  out->cooperative < 0 || out->cooperative > 1,
              HOIST_E_INVALID_ARG, "%s: rules_default, pad and cooperative must be 0 or 1", fn);
    return HOIST_OK;
}

/* ---- the default rules -------------------------------------------------------------------- */

typedef enum kind {
    KIND_OTHER,  /* replicated */
    KIND_COLUMN, /* dim 0: gate, up */
    KIND_ROW,    /* dim 1: down */
    KIND_Q,      /* dim 0 by heads */
    KIND_KV,     /* dim 0 by kv heads, replicated per head when there are fewer than ranks */
    KIND_O,      /* dim 1 by heads */
    KIND_VOCAB   /* dim 0: the vocabulary rows of the embeddings and the output head */
} kind;

static bool has(const char *name, const char *seg) { return strstr(name, seg) != NULL; }

static bool starts(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Hugging Face (model.layers.N.self_attn.q_proj.weight) and GGUF (blk.N.attn_q.weight) names. A
 * segment is matched with its dots, so attn_q_norm is not attn_q and q_norm is not q_proj. */
static kind kind_of(const char *name)
{
    if (has(name, ".q_proj.") || has(name, ".attn_q.")) return KIND_Q;
    if (has(name, ".k_proj.") || has(name, ".v_proj.") || has(name, ".attn_k.") ||
        has(name, ".attn_v."))
        return KIND_KV;
    if (has(name, ".o_proj.") || has(name, ".attn_output.")) return KIND_O;
    if (has(name, ".gate_proj.") || has(name, ".up_proj.") || has(name, ".ffn_gate.") ||
        has(name, ".ffn_up."))
        return KIND_COLUMN;
    if (has(name, ".down_proj.") || has(name, ".ffn_down.")) return KIND_ROW;
    if (has(name, "embed_tokens.") || starts(name, "lm_head.") || has(name, ".lm_head.") ||
        starts(name, "token_embd.") || starts(name, "output."))
        return KIND_VOCAB;
    return KIND_OTHER;
}

static bool is_bias(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, ".bias") == 0;
}

/* Attention by whole heads: the query heads (and o's columns) must divide among the ranks. */
static int split_heads(const char *name, uint32_t heads, int world, int rank, int dim,
                       hoist_tp_split *out)
{
    RETURN_IF(heads % (uint32_t)world, HOIST_E_INVALID_ARG,
              "tensor '%s': %u attention heads do not divide among %d tensor-parallel ranks",
              name, heads, world);
    *out = (hoist_tp_split){.dim = dim, .parts = (uint32_t)world, .index = (uint32_t)rank};
    return HOIST_OK;
}

/* k and v by kv heads; with fewer kv heads than ranks, rank r takes kv head
 * r / (world / kv_heads), the head its query heads attend with (vLLM's replication). */
static int split_kv(const char *name, uint32_t kv, int world, int rank, hoist_tp_split *out)
{
    uint32_t w = (uint32_t)world;
    if (kv >= w) {
        RETURN_IF(kv % w, HOIST_E_INVALID_ARG,
                  "tensor '%s': %u kv heads do not divide among %d tensor-parallel ranks", name,
                  kv, world);
        *out = (hoist_tp_split){.dim = 0, .parts = w, .index = (uint32_t)rank};
        return HOIST_OK;
    }
    RETURN_IF(w % kv, HOIST_E_INVALID_ARG,
              "tensor '%s': %u kv heads cannot be replicated evenly over %d tensor-parallel "
              "ranks (the ranks must be a multiple of the kv heads)",
              name, kv, world);
    *out = (hoist_tp_split){.dim = 0, .parts = kv, .index = (uint32_t)rank / (w / kv)};
    return HOIST_OK;
}

int hoist__tp_default_split(const hoist__table *t, size_t i, const hoist_tp_options *o,
                            const hoist_geometry *g, const char *why, hoist_tp_split *out)
{
    const hoist__tensor *ti = &t->tensors[i];
    int world = o->world, rank = o->rank;
    *out = (hoist_tp_split){.dim = HOIST_TP_REPLICATE, .parts = (uint32_t)world,
                            .index = (uint32_t)rank, .pad = o->pad};
    if (world == 1) return HOIST_OK;
    kind k = kind_of(ti->name);
    bool bias = is_bias(ti->name);
    if (k == KIND_OTHER || ((k == KIND_ROW || k == KIND_O) && bias)) return HOIST_OK;
    if (k == KIND_COLUMN || k == KIND_ROW || k == KIND_VOCAB) {
        out->dim = k == KIND_ROW ? 1 : 0;
        return HOIST_OK;
    }
    uint32_t heads = o->heads ? o->heads : g ? g->n_heads : 0;
    uint32_t kv = o->kv_heads ? o->kv_heads : g ? g->n_kv_heads : 0;
    RETURN_IF(!heads || !kv, HOIST_E_INVALID_ARG,
              "tensor '%s': the default tensor-parallel rules cut attention by heads, and the "
              "head counts are unknown (%s); give hoist_tp_options.heads and kv_heads",
              ti->name, why && *why ? why : "no geometry");
    if (k == KIND_KV) return split_kv(ti->name, kv, world, rank, out);
    return split_heads(ti->name, heads, world, rank, k == KIND_O ? 1 : 0, out);
}

/* ---- cutting ------------------------------------------------------------------------------ */

void hoist__tp_whole(const hoist__tensor *ti, hoist__slice *out)
{
    *out = (hoist__slice){.rows = 1, .src_off = 0, .src_stride = ti->nbytes, .len = ti->nbytes,
                          .dst_stride = ti->nbytes, .nbytes = ti->nbytes,
                          .dim = HOIST_TP_REPLICATE, .shared = true};
    memcpy(out->shape, ti->shape, sizeof out->shape);
}

/* Bytes of e consecutive entries of dimension dim (each entry `inner` elements of the dimensions
 * inside it). false when they are not a whole number of bytes, or of blocks along the innermost
 * dimension of a block type, or overflow. */
static bool step_bytes(const hoist__tensor *ti, uint32_t dim, uint64_t inner, uint64_t e,
                       uint64_t *out)
{
    unsigned bits = hoist_dtype_bits(ti->dtype);
    uint64_t elems, b;
    if (bits) {
        if (!hoist__mul_u64(e, inner, &elems) || !hoist__mul_u64(elems, bits, &b) || b % 8)
            return false;
        *out = b / 8;
        return true;
    }
    if (dim + 1 == ti->ndim) return hoist__dtype_row_bytes(ti->dtype, e, out);
    uint64_t innermost = (uint64_t)ti->shape[ti->ndim - 1], row;
    if (!innermost || !hoist__dtype_row_bytes(ti->dtype, innermost, &row)) return false;
    return hoist__mul_u64(e, inner / innermost, &elems) && hoist__mul_u64(elems, row, out);
}

static int cut_error(const hoist__tensor *ti, const hoist_tp_split *s, const char *what)
{
    return hoist__err(HOIST_E_INVALID_ARG,
                      "tensor '%s' (%s, dimension %d of %u): cannot take part %u of %u: %s",
                      ti->name, hoist_dtype_name(ti->dtype), s->dim, ti->ndim, s->index, s->parts,
                      what);
}

/* The entries of the dimension each part holds: n / parts, or with pad the ceiling, in whole
 * blocks (or whole bytes of a sub-byte type) along the innermost dimension. */
static int part_entries(const hoist__tensor *ti, const hoist_tp_split *s, uint64_t n,
                        uint64_t *p)
{
    char why[200];
    if (n % s->parts && !s->pad) {
        snprintf(why, sizeof why,
                 "%llu does not divide into %u equal parts (pad it with zeros: the split's pad, "
                 "or hoist_tp_options.pad for the default rules)",
                 (unsigned long long)n, s->parts);
        return cut_error(ti, s, why);
    }
    *p = n / s->parts + (n % s->parts != 0);
    unsigned q = (uint32_t)s->dim + 1 == ti->ndim ? hoist_dtype_block_elems(ti->dtype) : 1;
    if (q > 1 && *p % q) {
        if (!s->pad) {
            snprintf(why, sizeof why,
                     "a part of %llu entries cuts through the %u-element blocks of %s (parts "
                     "must fall on block boundaries)",
                     (unsigned long long)*p, q, hoist_dtype_name(ti->dtype));
            return cut_error(ti, s, why);
        }
        *p = hoist__align_up(*p, q);
    }
    return HOIST_OK;
}

int hoist__tp_cut(const hoist__tensor *ti, const hoist_tp_split *s, hoist__slice *out)
{
    hoist__tp_whole(ti, out);
    if (s->dim == HOIST_TP_REPLICATE || ti->nbytes == 0) return HOIST_OK;
    RETURN_IF(s->dim < 0 || (uint32_t)s->dim >= ti->ndim,
              HOIST_E_INVALID_ARG, "tensor '%s' has %u dimensions: it has no dimension %d to cut",
              ti->name, ti->ndim, s->dim);
    RETURN_IF(s->parts < 1 || s->parts > HOIST_TP_MAX_WORLD || s->index >= s->parts,
              HOIST_E_INVALID_ARG, "tensor '%s': part %u of %u (parts 1..%d, part below parts)",
              ti->name, s->index, s->parts, HOIST_TP_MAX_WORLD);
    uint32_t d = (uint32_t)s->dim;
    uint64_t n = (uint64_t)ti->shape[d], outer = 1, inner = 1, p = 0;
    for (uint32_t k = 0; k < d; k++) outer *= (uint64_t)ti->shape[k]; /* nbytes > 0 bounds them */
    for (uint32_t k = d + 1; k < ti->ndim; k++) inner *= (uint64_t)ti->shape[k];
    RETURN_IF_ERR(part_entries(ti, s, n, &p));
    uint64_t start = (uint64_t)s->index * p; /* p <= n + block, index < parts: no overflow */
    uint64_t r = start < n ? (n - start < p ? n - start : p) : 0;
    hoist__slice c = {.rows = outer, .dim = s->dim};
    bool ok = step_bytes(ti, d, inner, n, &c.src_stride) &&
              step_bytes(ti, d, inner, start < n ? start : 0, &c.src_off) &&
              step_bytes(ti, d, inner, r, &c.len) && step_bytes(ti, d, inner, p, &c.dst_stride) &&
              hoist__mul_u64(outer, c.dst_stride, &c.nbytes);
    if (!ok) return cut_error(ti, s, "its parts do not fall on byte boundaries");
    memcpy(c.shape, ti->shape, sizeof c.shape);
    c.shape[d] = (int64_t)p;
    c.padded = r < p;
    if (r == n && p == n) return HOIST_OK; /* one part: the whole tensor (already in *out) */
    if (c.len == c.src_stride && c.len == c.dst_stride) { /* whole rows end to end: one piece */
        c.len *= c.rows;
        c.src_stride = c.dst_stride = c.len;
        c.rows = 1;
    }
    *out = c;
    return HOIST_OK;
}

/* ---- every tensor ------------------------------------------------------------------------- */

static void tensor_info(const hoist__tensor *ti, hoist_tensor_info *out)
{
    *out = (hoist_tensor_info){.size = sizeof *out, .name = ti->name, .dtype = ti->dtype,
                               .ndim = ti->ndim, .nbytes = ti->nbytes, .file = ti->file,
                               .offset = ti->offset};
    memcpy(out->shape, ti->shape, sizeof out->shape);
}

/* The caller's rule for tensor i: 0 and *split filled, HOIST_TP_RULE_DEFAULT, or a failure. */
static int ask_rule(const hoist__table *t, size_t i, const hoist_tp_options *o,
                    hoist_tp_split *split)
{
    hoist_tensor_info info;
    tensor_info(&t->tensors[i], &info);
    *split = (hoist_tp_split){.dim = HOIST_TP_REPLICATE, .parts = (uint32_t)o->world,
                              .index = (uint32_t)o->rank, .pad = o->pad};
    int rc = o->rule(&info, o->rank, o->world, split, o->rule_user);
    if (rc == 0 || rc == HOIST_TP_RULE_DEFAULT) return rc;
    int known = rc < 0 && strcmp(hoist_status_name(rc), "HOIST_E_UNKNOWN") != 0;
    return hoist__err(known ? rc : HOIST_E_ABORTED,
                      "tensor '%s': the tensor-parallel rule refused it (returned %d)",
                      t->tensors[i].name, rc);
}

/* The geometry the default rules need for attention, asked once and only when they do. */
typedef struct geo_cache {
    int state; /* 0 not asked, 1 known, -1 unknown */
    int status; /* why it is unknown */
    hoist_geometry g;
    char why[256];
} geo_cache;

static const hoist_geometry *geometry(const hoist__table *t, geo_cache *c)
{
    if (!c->state) {
        c->g = (hoist_geometry)HOIST_GEOMETRY_INIT;
        c->status = hoist__geometry_of_table(t, &c->g);
        c->state = c->status == HOIST_OK ? 1 : -1;
        if (c->status < 0) snprintf(c->why, sizeof c->why, "%s", hoist_last_error());
    }
    return c->state > 0 ? &c->g : NULL;
}

/* A model without a configuration just has no head counts; failing to read one that exists
 * (memory, I/O) fails the load as such. */
static int geometry_failure(const geo_cache *c)
{
    if (c->state >= 0 || (c->status != HOIST_E_NOMEM && c->status != HOIST_E_IO)) return HOIST_OK;
    return hoist__err(c->status, "%s", c->why);
}

static int split_of(const hoist__table *t, size_t i, const hoist_tp_options *o, geo_cache *gc,
                    hoist_tp_split *split)
{
    int rc = o->rule ? ask_rule(t, i, o, split) : HOIST_TP_RULE_DEFAULT;
    if (rc != HOIST_TP_RULE_DEFAULT) return rc;
    if (!o->rules_default) {
        *split = (hoist_tp_split){.dim = HOIST_TP_REPLICATE, .parts = (uint32_t)o->world,
                                  .index = (uint32_t)o->rank};
        return HOIST_OK;
    }
    bool attention = o->world > 1 && (!o->heads || !o->kv_heads);
    const hoist_geometry *g = attention ? geometry(t, gc) : NULL;
    RETURN_IF_ERR(geometry_failure(gc));
    return hoist__tp_default_split(t, i, o, g, gc->why, split);
}

int hoist__tp_slices(const hoist__table *t, const hoist_tp_options *o, hoist__slice **out)
{
    *out = NULL;
    if (o->world == 1 && !o->cooperative) return HOIST_OK;
    hoist__slice *s = hoist__calloc(t->ntensors ? t->ntensors : 1, sizeof *s);
    RETURN_IF(!s, HOIST_E_NOMEM, "out of memory for %zu tensor slices", t->ntensors);
    geo_cache gc = {0};
    for (size_t i = 0; i < t->ntensors; i++) {
        hoist_tp_split split;
        int rc = split_of(t, i, o, &gc, &split);
        if (rc == HOIST_OK) rc = hoist__tp_cut(&t->tensors[i], &split, &s[i]);
        if (rc < 0) {
            hoist__free(s);
            return rc;
        }
    }
    *out = s;
    return HOIST_OK;
}

/* ---- public ------------------------------------------------------------------------------- */

int hoist_tp_default_rule(const hoist_model *model, size_t tensor, const hoist_tp_options *opts,
                          hoist_tp_split *split)
{
    RETURN_IF(!model || !split, HOIST_E_INVALID_ARG, "hoist_tp_default_rule: NULL argument");
    hoist_tp_options o;
    RETURN_IF_ERR(hoist__tp_options_in(opts, &o, "hoist_tp_default_rule"));
    const hoist__table *t = &model->table;
    RETURN_IF(tensor >= t->ntensors, HOIST_E_INVALID_ARG,
              "hoist_tp_default_rule: tensor %zu out of range (%zu tensors)", tensor, t->ntensors);
    geo_cache gc = {0};
    bool attention = o.world > 1 && (!o.heads || !o.kv_heads);
    const hoist_geometry *g = attention ? geometry(t, &gc) : NULL;
    RETURN_IF_ERR(geometry_failure(&gc));
    RETURN_IF_ERR(hoist__tp_default_split(t, tensor, &o, g, gc.why, split));
    hoist__err_clear();
    return HOIST_OK;
}
