/* The 0.1 ABI, kept for programs built against hoist 0.1 (docs/ABI.md). Shared library only.
 *
 * 0.1's structs had no size field, so the library cannot tell an 0.1 caller's struct from a 0.2
 * one by looking at it. Instead every function whose structs changed has two symbol versions
 * (loader/libhoist.map): name@@HOIST_0.2, the default that new links bind to, and name@HOIST_0,
 * defined here, which 0.1 binaries were linked against. Each shim turns the 0.1 structs into the
 * 0.2 ones, calls the 0.2 function, and copies the results back into exactly the bytes of the 0.1
 * struct. Functions whose structs did not change keep their one HOIST_0 symbol.
 *
 * A 0.2 struct is the 0.1 struct with `size_t size` put in front, every field keeping its order
 * and type, so every field sits sizeof(size_t) further on (every field's alignment divides 8).
 * The shims copy bytes across on that rule; the asserts below hold it against the 0.1 layouts
 * frozen here (copied from tests/abi/hoist_v0_1.h, which the ABI test compiles against). Three
 * structs differ by more and are converted by hand: hoist_plan_options (it points at 0.1 devices
 * and geometry), hoist_plan_info (it embedded a 0.1 geometry) and hoist_fit (its array grew to
 * HOIST_KV_DTYPE_MAX slots at its end: the 0.1 bytes keep their places, but 0.2's first layout,
 * the smallest size the library takes, is the whole array).
 *
 * The shims' own names are outside hoist_*, so only their versioned aliases are exported. */
#include "core/core.h"

#include <stddef.h>
#include <string.h>

/* ---- the 0.1 layouts (frozen) -------------------------------------------------------------- */

typedef struct v0_open_options {
    int strict;
} v0_open_options;

typedef struct v0_tensor_info {
    const char *name;
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t nbytes;
    uint32_t file;
    uint64_t offset;
} v0_tensor_info;

typedef struct v0_meta_value {
    hoist_meta_type type;
    hoist_meta_type elem_type;
    uint64_t count;
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num;
    const char *str;
    uint64_t str_len;
    const void *array;
    const uint64_t *str_lens;
    const char *text;
} v0_meta_value;

typedef struct v0_geometry {
    char architecture[32];
    uint32_t n_layers, hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab;
    uint64_t max_position;
    double rms_eps, rope_theta;
    int tied_embeddings;
    hoist_dtype dtype;
} v0_geometry;

typedef struct v0_device_info {
    int id;
    char name[128];
    uint64_t total_bytes;
    uint64_t free_bytes;
    int compute_major, compute_minor;
} v0_device_info;

typedef struct v0_plan_device {
    int device;
    uint64_t free_bytes;
    uint64_t reserve_bytes;
} v0_plan_device;

typedef struct v0_plan_options {
    const v0_plan_device *devices;
    size_t ndevices;
    uint64_t max_seq_len;
    uint32_t batch;
    uint32_t forward_tokens;
    hoist_kv_dtype kv_dtype;
    const v0_geometry *geometry;
    hoist_coordinator *coordinator;
} v0_plan_options;

typedef struct v0_plan_info {
    v0_geometry geometry;
    uint64_t max_seq_len;
    uint32_t batch, forward_tokens;
    hoist_kv_dtype kv_dtype;
    uint64_t kv_bytes_per_token;
    uint64_t weights_bytes;
    uint64_t kv_bytes;
    uint64_t workspace_bytes;
    size_t ndevices;
} v0_plan_info;

typedef struct v0_plan_usage {
    int device;
    uint64_t free_bytes;
    uint64_t reserve_bytes;
    uint64_t weights_bytes;
    uint64_t kv_bytes;
    uint64_t workspace_bytes;
    uint64_t headroom_bytes;
    uint32_t first_layer, layers;
    int embeddings, head;
} v0_plan_usage;

#define V0_KV_DTYPE_COUNT 6 /* HOIST_KV_DTYPE_COUNT in 0.1: f16 bf16 f32 f8 q8 q4 */

typedef struct v0_fit {
    int fits;
    uint64_t shortfall_bytes;
    uint64_t max_seq_len[V0_KV_DTYPE_COUNT];
} v0_fit;

typedef struct v0_load_options {
    hoist_path path;
    int device;
    uint64_t ram_budget;
    unsigned threads;
    uint64_t chunk_bytes;
    unsigned verify;
    int mmap_register;
    const hoist_plan *plan;
    hoist_progress_fn progress;
    void *progress_user;
    const char *manifest;
    int64_t readahead_bytes;
} v0_load_options;

typedef struct v0_load_stats {
    const char *path;
    double seconds;
    double read_seconds;
    double copy_seconds;
    double verify_seconds;
    uint64_t bytes;
    uint64_t arena_bytes;
    uint64_t peak_host_bytes;
    unsigned threads;
    double decode_seconds;
    double readback_seconds;
    uint64_t file_bytes;
} v0_load_stats;

typedef struct v0_view {
    const char *name;
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t nbytes;
    int device;
    void *data;
} v0_view;

typedef struct v0_sum_options {
    const char *manifest;
    uint64_t chunk_bytes;
    unsigned threads;
} v0_sum_options;

typedef struct v0_pack_options {
    int level;
    uint64_t chunk_bytes;
    int filter;
    unsigned threads;
    int overwrite;
} v0_pack_options;

typedef struct v0_pack_stats {
    uint64_t model_bytes;
    uint64_t file_bytes;
    uint64_t chunks;
    uint64_t raw_chunks;
    double seconds;
} v0_pack_stats;

typedef struct v0_packed_info {
    uint32_t version;
    uint64_t chunk_bytes;
    uint64_t chunks;
    uint64_t stored_bytes;
} v0_packed_info;

typedef struct v0_tensor_packing {
    hoist_filter filter;
    uint64_t chunks;
    uint64_t stored_bytes;
    uint64_t xxh3;
} v0_tensor_packing;

typedef struct v0_ceiling_options {
    int device;
    unsigned threads;
    unsigned queue_depth;
    uint64_t block_bytes;
    hoist_progress_fn progress;
    void *progress_user;
} v0_ceiling_options;

typedef struct v0_ceiling {
    uint64_t bytes;
    double seconds;
    double gbps;
    unsigned threads;
    unsigned queue_depth;
    uint64_t block_bytes;
    int direct;
    int uring;
    int fixed_buffers;
    char note[256];
} v0_ceiling;

typedef struct v0_session_options {
    uint32_t max_tokens;
    uint32_t max_batch;
    int cuda_graphs;
} v0_session_options;

typedef struct v0_session_stats {
    const char *backend;
    uint32_t position;
    uint64_t prefill_tokens;
    double prefill_seconds;
    uint64_t decode_tokens;
    double decode_seconds;
    double first_token_seconds;
    uint64_t weight_bytes_per_token;
    uint64_t kv_cache_bytes;
    uint64_t device_bytes;
} v0_session_stats;

/* ---- the shift rule ------------------------------------------------------------------------ */

/* hoist_T.field sits sizeof(size_t) after v0_T.field. */
#define SHIFTED(T, field)                                                                         \
    _Static_assert(offsetof(hoist_##T, field) == sizeof(size_t) + offsetof(v0_##T, field),        \
                   "hoist_" #T "." #field ": not at its 0.1 offset + sizeof(size_t)")
/* Every byte of the 0.1 struct has its place in the 0.2 one. */
#define WIDER(T)                                                                                  \
    _Static_assert(sizeof(size_t) + sizeof(v0_##T) <= sizeof(hoist_##T),                         \
                   "hoist_" #T ": smaller than its 0.1 layout + sizeof(size_t)")

SHIFTED(open_options, strict);
WIDER(open_options);
SHIFTED(tensor_info, name);
SHIFTED(tensor_info, dtype);
SHIFTED(tensor_info, ndim);
SHIFTED(tensor_info, shape);
SHIFTED(tensor_info, nbytes);
SHIFTED(tensor_info, file);
SHIFTED(tensor_info, offset);
WIDER(tensor_info);
SHIFTED(meta_value, type);
SHIFTED(meta_value, elem_type);
SHIFTED(meta_value, count);
SHIFTED(meta_value, num);
SHIFTED(meta_value, str);
SHIFTED(meta_value, str_len);
SHIFTED(meta_value, array);
SHIFTED(meta_value, str_lens);
SHIFTED(meta_value, text);
WIDER(meta_value);
SHIFTED(geometry, architecture);
SHIFTED(geometry, n_layers);
SHIFTED(geometry, vocab);
SHIFTED(geometry, max_position);
SHIFTED(geometry, rms_eps);
SHIFTED(geometry, rope_theta);
SHIFTED(geometry, tied_embeddings);
SHIFTED(geometry, dtype);
WIDER(geometry);
SHIFTED(device_info, id);
SHIFTED(device_info, name);
SHIFTED(device_info, total_bytes);
SHIFTED(device_info, free_bytes);
SHIFTED(device_info, compute_major);
SHIFTED(device_info, compute_minor);
WIDER(device_info);
SHIFTED(plan_usage, device);
SHIFTED(plan_usage, free_bytes);
SHIFTED(plan_usage, reserve_bytes);
SHIFTED(plan_usage, weights_bytes);
SHIFTED(plan_usage, kv_bytes);
SHIFTED(plan_usage, workspace_bytes);
SHIFTED(plan_usage, headroom_bytes);
SHIFTED(plan_usage, first_layer);
SHIFTED(plan_usage, layers);
SHIFTED(plan_usage, embeddings);
SHIFTED(plan_usage, head);
WIDER(plan_usage);
SHIFTED(fit, fits);
SHIFTED(fit, shortfall_bytes);
SHIFTED(fit, max_seq_len);
WIDER(fit);
SHIFTED(load_options, path);
SHIFTED(load_options, device);
SHIFTED(load_options, ram_budget);
SHIFTED(load_options, threads);
SHIFTED(load_options, chunk_bytes);
SHIFTED(load_options, verify);
SHIFTED(load_options, mmap_register);
SHIFTED(load_options, plan);
SHIFTED(load_options, progress);
SHIFTED(load_options, progress_user);
SHIFTED(load_options, manifest);
SHIFTED(load_options, readahead_bytes);
WIDER(load_options);
SHIFTED(load_stats, path);
SHIFTED(load_stats, seconds);
SHIFTED(load_stats, read_seconds);
SHIFTED(load_stats, copy_seconds);
SHIFTED(load_stats, verify_seconds);
SHIFTED(load_stats, bytes);
SHIFTED(load_stats, arena_bytes);
SHIFTED(load_stats, peak_host_bytes);
SHIFTED(load_stats, threads);
SHIFTED(load_stats, decode_seconds);
SHIFTED(load_stats, readback_seconds);
SHIFTED(load_stats, file_bytes);
WIDER(load_stats);
SHIFTED(view, name);
SHIFTED(view, dtype);
SHIFTED(view, ndim);
SHIFTED(view, shape);
SHIFTED(view, nbytes);
SHIFTED(view, device);
SHIFTED(view, data);
WIDER(view);
SHIFTED(sum_options, manifest);
SHIFTED(sum_options, chunk_bytes);
SHIFTED(sum_options, threads);
WIDER(sum_options);
SHIFTED(pack_options, level);
SHIFTED(pack_options, chunk_bytes);
SHIFTED(pack_options, filter);
SHIFTED(pack_options, threads);
SHIFTED(pack_options, overwrite);
WIDER(pack_options);
SHIFTED(pack_stats, model_bytes);
SHIFTED(pack_stats, file_bytes);
SHIFTED(pack_stats, chunks);
SHIFTED(pack_stats, raw_chunks);
SHIFTED(pack_stats, seconds);
WIDER(pack_stats);
SHIFTED(packed_info, version);
SHIFTED(packed_info, chunk_bytes);
SHIFTED(packed_info, chunks);
SHIFTED(packed_info, stored_bytes);
WIDER(packed_info);
SHIFTED(tensor_packing, filter);
SHIFTED(tensor_packing, chunks);
SHIFTED(tensor_packing, stored_bytes);
SHIFTED(tensor_packing, xxh3);
WIDER(tensor_packing);
SHIFTED(ceiling_options, device);
SHIFTED(ceiling_options, threads);
SHIFTED(ceiling_options, queue_depth);
SHIFTED(ceiling_options, block_bytes);
SHIFTED(ceiling_options, progress);
SHIFTED(ceiling_options, progress_user);
WIDER(ceiling_options);
SHIFTED(ceiling, bytes);
SHIFTED(ceiling, seconds);
SHIFTED(ceiling, gbps);
SHIFTED(ceiling, threads);
SHIFTED(ceiling, queue_depth);
SHIFTED(ceiling, block_bytes);
SHIFTED(ceiling, direct);
SHIFTED(ceiling, uring);
SHIFTED(ceiling, fixed_buffers);
SHIFTED(ceiling, note);
WIDER(ceiling);
SHIFTED(session_options, max_tokens);
SHIFTED(session_options, max_batch);
SHIFTED(session_options, cuda_graphs);
WIDER(session_options);
SHIFTED(session_stats, backend);
SHIFTED(session_stats, position);
SHIFTED(session_stats, prefill_tokens);
SHIFTED(session_stats, prefill_seconds);
SHIFTED(session_stats, decode_tokens);
SHIFTED(session_stats, decode_seconds);
SHIFTED(session_stats, first_token_seconds);
SHIFTED(session_stats, weight_bytes_per_token);
SHIFTED(session_stats, kv_cache_bytes);
SHIFTED(session_stats, device_bytes);
WIDER(session_stats);

/* The 0.2 struct at now (now_size bytes) from the 0.1 one at old: zeros, then the 0.1 bytes after
 * the size field, with size = sizeof(size_t) + old_size, so that the 0.2 function reads exactly
 * the 0.1 fields and takes defaults for the rest. For a result the 0.1 bytes go in too: what the
 * 0.2 function leaves alone (on a failure) comes back unchanged. NULL stays NULL. */
static void *widen(void *now, size_t now_size, const void *old, size_t old_size)
{
    if (!old) return NULL;
    memset(now, 0, now_size);
    size_t size = sizeof(size_t) + old_size;
    memcpy(now, &size, sizeof size);
    memcpy((char *)now + sizeof(size_t), old, old_size);
    return now;
}

/* The 0.1 bytes of a 0.2 result back into the caller's 0.1 struct (none for NULL). */
static void narrow(void *old, const void *now, size_t old_size)
{
    if (old) memcpy(old, (const char *)now + sizeof(size_t), old_size);
}

#define IN(T, now, old) ((const hoist_##T *)widen(&(now), sizeof(now), (old), sizeof(v0_##T)))
#define OUT(T, now, old) ((hoist_##T *)widen(&(now), sizeof(now), (old), sizeof(v0_##T)))
#define BACK(T, old, now) narrow((old), &(now), sizeof(v0_##T))

/* Exports v0_NAME as NAME@HOIST_0: what 0.1 binaries are bound to. */
#define V0(name) __asm__(".symver v0_" #name "," #name "@HOIST_0")
#define V0_API __attribute__((visibility("default")))

/* ---- models ------------------------------------------------------------------------------- */

V0(hoist_model_open);
V0_API int v0_hoist_model_open(const char *path, const v0_open_options *opts, hoist_model **out)
{
    hoist_open_options o;
    return hoist_model_open(path, IN(open_options, o, opts), out);
}

V0(hoist_model_tensor);
V0_API int v0_hoist_model_tensor(const hoist_model *m, size_t index, v0_tensor_info *out)
{
    hoist_tensor_info r;
    int rc = hoist_model_tensor(m, index, OUT(tensor_info, r, out));
    BACK(tensor_info, out, r);
    return rc;
}

V0(hoist_model_metadata_value);
V0_API int v0_hoist_model_metadata_value(const hoist_model *m, size_t index, const char **key,
                                         v0_meta_value *out)
{
    hoist_meta_value r;
    int rc = hoist_model_metadata_value(m, index, key, OUT(meta_value, r, out));
    BACK(meta_value, out, r);
    return rc;
}

V0(hoist_model_metadata_find);
V0_API int v0_hoist_model_metadata_find(const hoist_model *m, const char *key, v0_meta_value *out)
{
    hoist_meta_value r;
    int rc = hoist_model_metadata_find(m, key, OUT(meta_value, r, out));
    BACK(meta_value, out, r);
    return rc;
}

/* ---- geometry ----------------------------------------------------------------------------- */

V0(hoist_model_geometry);
V0_API int v0_hoist_model_geometry(const hoist_model *m, v0_geometry *out)
{
    hoist_geometry r;
    int rc = hoist_model_geometry(m, OUT(geometry, r, out));
    BACK(geometry, out, r);
    return rc;
}

V0(hoist_geometry_from_config);
V0_API int v0_hoist_geometry_from_config(const char *path, v0_geometry *out)
{
    hoist_geometry r;
    int rc = hoist_geometry_from_config(path, OUT(geometry, r, out));
    BACK(geometry, out, r);
    return rc;
}

V0(hoist_geometry_check);
V0_API int v0_hoist_geometry_check(const v0_geometry *g)
{
    hoist_geometry now;
    return hoist_geometry_check(IN(geometry, now, g));
}

V0(hoist_kv_cache_bytes);
V0_API int v0_hoist_kv_cache_bytes(const v0_geometry *g, hoist_kv_dtype kv, uint64_t max_seq_len,
                                   uint32_t batch, uint64_t *out)
{
    hoist_geometry now;
    return hoist_kv_cache_bytes(IN(geometry, now, g), kv, max_seq_len, batch, out);
}

/* ---- devices ------------------------------------------------------------------------------ */

V0(hoist_device_info_get);
V0_API int v0_hoist_device_info_get(int device, v0_device_info *out)
{
    hoist_device_info r;
    int rc = hoist_device_info_get(device, OUT(device_info, r, out));
    BACK(device_info, out, r);
    return rc;
}

/* ---- planning ----------------------------------------------------------------------------- */

/* The 0.2 options of 0.1 ones, their geometry and devices converted into g and devs. More than
 * HOIST_PLAN_MAX_DEVICES devices keep their count, which the 0.2 function refuses (before it
 * reads any) as the 0.1 one did. */
typedef struct plan_options_now {
    hoist_plan_options o;
    hoist_geometry g;
    hoist_plan_device devs[HOIST_PLAN_MAX_DEVICES];
} plan_options_now;

static const hoist_plan_options *plan_options_in(plan_options_now *now, const v0_plan_options *old)
{
    if (!old) return NULL;
    hoist_plan_options *o = &now->o;
    *o = (hoist_plan_options)HOIST_PLAN_OPTIONS_DEFAULT;
    o->ndevices = old->ndevices;
    o->max_seq_len = old->max_seq_len;
    o->batch = old->batch;
    o->forward_tokens = old->forward_tokens;
    o->kv_dtype = old->kv_dtype;
    o->coordinator = old->coordinator;
    o->geometry = IN(geometry, now->g, old->geometry);
    if (old->devices) {
        size_t n = old->ndevices < HOIST_PLAN_MAX_DEVICES ? old->ndevices : HOIST_PLAN_MAX_DEVICES;
        for (size_t i = 0; i < n; i++)
            now->devs[i] = (hoist_plan_device){.size = sizeof(hoist_plan_device),
                                               .device = old->devices[i].device,
                                               .free_bytes = old->devices[i].free_bytes,
                                               .reserve_bytes = old->devices[i].reserve_bytes};
        o->devices = now->devs;
    }
    return o;
}

V0(hoist_plan_create);
V0_API int v0_hoist_plan_create(hoist_model *model, const v0_plan_options *opts, hoist_plan **out)
{
    plan_options_now now;
    return hoist_plan_create(model, plan_options_in(&now, opts), out);
}

V0(hoist_plan_fit);
V0_API int v0_hoist_plan_fit(hoist_model *model, const v0_plan_options *opts, v0_fit *out)
{
    plan_options_now now;
    hoist_fit r;
    hoist_fit *rp = OUT(fit, r, out);
    if (rp) rp->size = sizeof r; /* the whole array: see the top of this file */
    int rc = hoist_plan_fit(model, plan_options_in(&now, opts), rp);
    BACK(fit, out, r);
    return rc;
}

/* 0.1: no status; NULL out is a no-op, a NULL plan zeroes *out. */
V0(hoist_plan_info_get);
V0_API void v0_hoist_plan_info_get(const hoist_plan *plan, v0_plan_info *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    if (!plan || hoist_plan_info_get(plan, &in) < 0 || hoist_plan_geometry(plan, &g) < 0) return;
    narrow(&out->geometry, &g, sizeof out->geometry);
    out->max_seq_len = in.max_seq_len;
    out->batch = in.batch;
    out->forward_tokens = in.forward_tokens;
    out->kv_dtype = in.kv_dtype;
    out->kv_bytes_per_token = in.kv_bytes_per_token;
    out->weights_bytes = in.weights_bytes;
    out->kv_bytes = in.kv_bytes;
    out->workspace_bytes = in.workspace_bytes;
    out->ndevices = in.ndevices;
}

V0(hoist_plan_usage_get);
V0_API int v0_hoist_plan_usage_get(const hoist_plan *plan, size_t index, v0_plan_usage *out)
{
    hoist_plan_usage r;
    int rc = hoist_plan_usage_get(plan, index, OUT(plan_usage, r, out));
    BACK(plan_usage, out, r);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

V0(hoist_load);
V0_API int v0_hoist_load(hoist_model *model, const v0_load_options *opts, hoist_weights **out)
{
    hoist_load_options o;
    return hoist_load(model, IN(load_options, o, opts), out);
}

V0(hoist_load_sink);
V0_API int v0_hoist_load_sink(hoist_model *model, const v0_load_options *opts, hoist_sink_fn fn,
                              void *user, v0_load_stats *stats)
{
    hoist_load_options o;
    hoist_load_stats r;
    int rc = hoist_load_sink(model, IN(load_options, o, opts), fn, user,
                             OUT(load_stats, r, stats));
    BACK(load_stats, stats, r);
    return rc;
}

V0(hoist_weights_view);
V0_API int v0_hoist_weights_view(const hoist_weights *w, size_t index, v0_view *out)
{
    hoist_view r;
    int rc = hoist_weights_view(w, index, OUT(view, r, out));
    BACK(view, out, r);
    return rc;
}

V0(hoist_weights_find);
V0_API int v0_hoist_weights_find(const hoist_weights *w, const char *name, v0_view *out)
{
    hoist_view r;
    int rc = hoist_weights_find(w, name, OUT(view, r, out));
    BACK(view, out, r);
    return rc;
}

/* 0.1: no status; a NULL argument is a no-op. */
V0(hoist_weights_stats);
V0_API void v0_hoist_weights_stats(const hoist_weights *w, v0_load_stats *out)
{
    if (!w || !out) return;
    hoist_load_stats r;
    if (hoist_weights_stats(w, OUT(load_stats, r, out)) == HOIST_OK) BACK(load_stats, out, r);
}

/* ---- integrity and packing ---------------------------------------------------------------- */

V0(hoist_model_sum);
V0_API int v0_hoist_model_sum(const hoist_model *model, const v0_sum_options *opts)
{
    hoist_sum_options o;
    return hoist_model_sum(model, IN(sum_options, o, opts));
}

V0(hoist_model_verify);
V0_API int v0_hoist_model_verify(const hoist_model *model, const v0_sum_options *opts)
{
    hoist_sum_options o;
    return hoist_model_verify(model, IN(sum_options, o, opts));
}

V0(hoist_pack);
V0_API int v0_hoist_pack(const hoist_model *model, const char *out_path,
                         const v0_pack_options *opts, v0_pack_stats *stats)
{
    hoist_pack_options o;
    hoist_pack_stats r;
    int rc = hoist_pack(model, out_path, IN(pack_options, o, opts), OUT(pack_stats, r, stats));
    BACK(pack_stats, stats, r);
    return rc;
}

V0(hoist_model_packed_info);
V0_API int v0_hoist_model_packed_info(const hoist_model *m, v0_packed_info *out)
{
    hoist_packed_info r;
    int rc = hoist_model_packed_info(m, OUT(packed_info, r, out));
    BACK(packed_info, out, r);
    return rc;
}

V0(hoist_model_tensor_packing);
V0_API int v0_hoist_model_tensor_packing(const hoist_model *m, size_t index,
                                         v0_tensor_packing *out)
{
    hoist_tensor_packing r;
    int rc = hoist_model_tensor_packing(m, index, OUT(tensor_packing, r, out));
    BACK(tensor_packing, out, r);
    return rc;
}

/* ---- ceilings ----------------------------------------------------------------------------- */

V0(hoist_read_ceiling);
V0_API int v0_hoist_read_ceiling(const hoist_model *model, const v0_ceiling_options *opts,
                                 v0_ceiling *out)
{
    hoist_ceiling_options o;
    hoist_ceiling r;
    int rc = hoist_read_ceiling(model, IN(ceiling_options, o, opts), OUT(ceiling, r, out));
    BACK(ceiling, out, r);
    return rc;
}

V0(hoist_staging_ceiling);
V0_API int v0_hoist_staging_ceiling(const hoist_model *model, const v0_ceiling_options *opts,
                                    v0_ceiling *out)
{
    hoist_ceiling_options o;
    hoist_ceiling r;
    int rc = hoist_staging_ceiling(model, IN(ceiling_options, o, opts), OUT(ceiling, r, out));
    BACK(ceiling, out, r);
    return rc;
}

/* ---- inference ---------------------------------------------------------------------------- */

V0(hoist_session_create);
V0_API int v0_hoist_session_create(const hoist_weights *weights, const v0_geometry *g,
                                   const v0_session_options *opts, hoist_session **out)
{
    hoist_geometry gn;
    hoist_session_options o;
    return hoist_session_create(weights, IN(geometry, gn, g), IN(session_options, o, opts), out);
}

/* 0.1: no status; NULL out is a no-op, a NULL session zeroes *out. */
V0(hoist_session_stats_get);
V0_API void v0_hoist_session_stats_get(const hoist_session *s, v0_session_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    hoist_session_stats r;
    if (s && hoist_session_stats_get(s, OUT(session_stats, r, out)) == HOIST_OK)
        BACK(session_stats, out, r);
}
