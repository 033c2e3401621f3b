/* loader/planner.c, coordinator.c, arenas.c: placement with device sizes given by the test (pure
 * computation, no GPU), the 34B example, autosplit, reserves, failures with their suggested fit,
 * several models in one coordinator (also from concurrent threads), and loads that follow a plan.
 *
 * Large models are real safetensors files whose data section is a hole (ftruncate): the planner
 * reads headers only, so a 64 GiB checkpoint costs a few KB of disk. */
#include "gpu/gpu.h"
#include "core/core.h"
#include "loader/plan.h"
#include "loader/coordinator.h"
#include "loader/weights.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* ---- models ------------------------------------------------------------------------------ */

typedef struct shape {
    uint32_t layers, hidden, inter, heads, kv_heads, head_dim, vocab;
    uint64_t max_pos;
    int tied;
} shape;

/* Yi-34B-200K: 60 layers, hidden 7168, 56 heads, 8 kv heads of 128, 200k positions. */
static const shape yi34b = {60, 7168, 20480, 56, 8, 128, 64000, 200000, 0};
static const shape small = {8, 256, 512, 8, 2, 32, 1000, 4096, 0};

typedef struct hdr {
    char *buf;
    size_t len, cap;
    uint64_t off;
} hdr;

static void add(hdr *h, const char *name, uint64_t rows, uint64_t cols)
{
    if (h->cap - h->len < 512) {
        h->cap = h->cap * 2 + 4096;
        h->buf = realloc(h->buf, h->cap);
        ck_assert_ptr_nonnull(h->buf);
    }
    uint64_t bytes = rows * (cols ? cols : 1) * 2;
    if (cols)
        h->len += (size_t)snprintf(h->buf + h->len, h->cap - h->len,
                                   "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%llu,%llu],"
                                   "\"data_offsets\":[%llu,%llu]}",
                                   h->len > 1 ? "," : "", name, (unsigned long long)rows,
                                   (unsigned long long)cols, (unsigned long long)h->off,
                                   (unsigned long long)(h->off + bytes));
    else
        h->len += (size_t)snprintf(h->buf + h->len, h->cap - h->len,
                                   "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%llu],"
                                   "\"data_offsets\":[%llu,%llu]}",
                                   h->len > 1 ? "," : "", name, (unsigned long long)rows,
                                   (unsigned long long)h->off, (unsigned long long)(h->off + bytes));
    h->off += bytes;
}

/* A Llama-shaped F16 model in sub/ with its config.json; the data is a hole unless fill. */
static hoist_model *llama(const char *sub, const shape *s, int fill)
{
    char *md = tu_path(dir, sub);
    ck_assert_int_eq(mkdir(md, 0755), 0);
    hdr h = {0};
    add(&h, "", 0, 0); /* grow the buffer */
    h.len = 0;
    h.off = 0;
    h.buf[h.len++] = '{';
    uint64_t q = (uint64_t)s->heads * s->head_dim, kv = (uint64_t)s->kv_heads * s->head_dim;
    add(&h, "model.embed_tokens.weight", s->vocab, s->hidden);
    char n[128];
    for (uint32_t l = 0; l < s->layers; l++) {
#define L(suffix, r, c)                                                                           \
    snprintf(n, sizeof n, "model.layers.%u.%s", l, suffix);                                       \
    add(&h, n, r, c)
        L("input_layernorm.weight", s->hidden, 0);
        L("self_attn.q_proj.weight", q, s->hidden);
        L("self_attn.k_proj.weight", kv, s->hidden);
        L("self_attn.v_proj.weight", kv, s->hidden);
        L("self_attn.o_proj.weight", s->hidden, q);
        L("post_attention_layernorm.weight", s->hidden, 0);
        L("mlp.gate_proj.weight", s->inter, s->hidden);
        L("mlp.up_proj.weight", s->inter, s->hidden);
        L("mlp.down_proj.weight", s->hidden, s->inter);
#undef L
    }
    add(&h, "model.norm.weight", s->hidden, 0);
    if (!s->tied) add(&h, "lm_head.weight", s->vocab, s->hidden);
    h.buf[h.len++] = '}';
    h.buf[h.len] = '\0';

    char *st = tu_path(md, "model.safetensors");
    FILE *f = fopen(st, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    ck_assert_uint_eq(fwrite(len8, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(h.buf, 1, h.len, f), h.len);
    if (fill) { /* small models only: real bytes, for loads */
        for (uint64_t i = 0; i < h.off; i++) fputc((int)((i * 2654435761u) >> 13) & 0xff, f);
    }
    ck_assert_int_eq(fclose(f), 0);
    if (!fill) ck_assert_int_eq(truncate(st, (off_t)(8 + h.len + h.off)), 0);
    free(h.buf);

    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"llama\",\"num_hidden_layers\":%u,\"hidden_size\":%u,"
             "\"intermediate_size\":%u,\"num_attention_heads\":%u,\"num_key_value_heads\":%u,"
             "\"head_dim\":%u,\"vocab_size\":%u,\"max_position_embeddings\":%llu,"
             "\"tie_word_embeddings\":%s,\"torch_dtype\":\"float16\"}",
             s->layers, s->hidden, s->inter, s->heads, s->kv_heads, s->head_dim, s->vocab,
             (unsigned long long)s->max_pos, s->tied ? "true" : "false");
    char *cp = tu_path(md, "config.json");
    tu_write(cp, cfg, strlen(cfg));
    free(cp);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(st, NULL, &m), HOIST_OK);
    free(st);
    free(md);
    return m;
}

static hoist_coordinator *coord(void)
{
    hoist_coordinator *c = NULL;
    ck_assert_int_eq(hoist_coordinator_create(&c), HOIST_OK);
    return c;
}

static hoist_plan_options opts_for(const hoist_plan_device *devs, size_t n, uint64_t seq,
                                   hoist_coordinator *c)
{
    hoist_plan_options o = HOIST_PLAN_OPTIONS_DEFAULT;
    o.devices = devs;
    o.ndevices = n;
    o.max_seq_len = seq;
    o.coordinator = c;
    return o;
}

static uint64_t used_of(const hoist_plan_usage *u)
{
    return u->weights_bytes + u->kv_bytes + u->workspace_bytes;
}

/* Every layer on exactly one device, in order; tensors follow their layer. */
static void check_layers(const hoist_plan *p, hoist_model *m)
{
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_plan_info_get(p, &in), HOIST_OK);
    ck_assert_int_eq(hoist_plan_geometry(p, &g), HOIST_OK);
    uint32_t next = 0;
    for (size_t d = 0; d < in.ndevices; d++) {
        hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
        ck_assert_int_eq(hoist_plan_usage_get(p, d, &u), HOIST_OK);
        if (!u.layers) continue;
        ck_assert_uint_eq(u.first_layer, next);
        next += u.layers;
        /* reserve honoured: what is placed stays within free - reserve, exactly accounted */
        ck_assert_uint_le(used_of(&u) + u.reserve_bytes, u.free_bytes);
        ck_assert_uint_eq(u.free_bytes - u.reserve_bytes - used_of(&u), u.headroom_bytes);
    }
    ck_assert_uint_eq(next, g.n_layers);
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
        const char *l = strstr(ti.name, "layers.");
        if (!l) continue;
        int td, ld;
        ck_assert_int_eq(hoist_plan_tensor_device(p, i, &td), HOIST_OK);
        ck_assert_int_eq(hoist_plan_layer_device(p, (uint32_t)atoi(l + 7), &ld), HOIST_OK);
        ck_assert_int_eq(td, ld);
    }
}

/* ---- the 34B example ---------------------------------------------------------------------- */

START_TEST(test_kv_cache_bytes)
{
    hoist_geometry g = {.size = sizeof g, .architecture = "llama", .n_layers = 60, .hidden = 7168,
                        .intermediate = 20480, .n_heads = 56, .n_kv_heads = 8, .head_dim = 128,
                        .vocab = 64000, .max_position = 200000, .rms_eps = 1e-5,
                        .rope_theta = 5e6, .dtype = HOIST_DTYPE_F16};
    uint64_t b;
    /* 128 x 8 x 60 x 2 x 2 bytes x 200k tokens = 49,152,000,000 bytes, about 46 GiB */
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_F16, 200000, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 49152000000ull);
    ck_assert(b > 45 * GiB && b < 46 * GiB);
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_F16, 200000, 3, &b), HOIST_OK);
    ck_assert_uint_eq(b, 3 * 49152000000ull);
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_F8, 200000, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 49152000000ull / 2);
    /* q8: 4 blocks of 32 per head at 34 bytes; q4: 18 bytes */
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_Q8, 200000, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 2ull * 60 * 8 * 136 * 200000);
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_Q4, 200000, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 2ull * 60 * 8 * 72 * 200000);
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_F32, 200000, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 2 * 49152000000ull);
    /* a head_dim that is not a multiple of 32 takes whole blocks */
    g.head_dim = 80;
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_Q4, 1, 1, &b), HOIST_OK);
    ck_assert_uint_eq(b, 2ull * 60 * 8 * 3 * 18);
    ck_assert_int_eq(hoist_kv_cache_bytes(&g, HOIST_KV_F16, UINT64_MAX / 2, 65535, &b),
                     HOIST_E_OVERFLOW);
    hoist_kv_dtype kv;
    ck_assert_int_eq(hoist_kv_dtype_parse("q4", &kv), HOIST_OK);
    ck_assert_int_eq(kv, HOIST_KV_Q4);
    ck_assert_str_eq(hoist_kv_dtype_name(HOIST_KV_Q8), "q8");
    ck_assert_int_eq(hoist_kv_dtype_parse("q3", &kv), HOIST_E_INVALID_ARG);
}
END_TEST

/* 34B at 200k tokens on one 80 GiB device: 64 GiB of weights + 46 GiB of cache do not fit. The
 * failure names the device and the figures, and the largest max_seq_len it suggests is exactly
 * the largest that plans. */
START_TEST(test_34b_one_device_fails_with_fit)
{
    hoist_model *m = llama("yi", &yi34b, 0);
    ck_assert_uint_gt(hoist_model_total_bytes(m), 64 * GiB);
    hoist_coordinator *c = coord();
    hoist_plan_device dev = TU_PLAN_DEVICE(0, 80 * GiB, 0);
    hoist_plan_options o = opts_for(&dev, 1, 200000, c);
    hoist_plan *p = (hoist_plan *)1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_NO_FIT);
    ck_assert_ptr_null(p);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", hoist_last_error());
    ck_assert_msg(strstr(msg, "cuda:0 lacks") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "KV cache 45.78 GiB") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "has 80.00 GiB") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "max_seq_len <= ") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "another device with") != NULL, "%s", msg);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0); /* nothing reserved */

    hoist_fit fit = HOIST_FIT_INIT;
    ck_assert_int_eq(hoist_plan_fit(m, &o, &fit), HOIST_OK);
    ck_assert_int_eq(fit.fits, 0);
    ck_assert_uint_gt(fit.shortfall_bytes, 25 * GiB);
    ck_assert_uint_lt(fit.shortfall_bytes, 35 * GiB);
    uint64_t k = fit.max_seq_len[HOIST_KV_F16];
    ck_assert_uint_gt(k, 50000);
    ck_assert_uint_lt(k, 200000);
    char want[64];
    snprintf(want, sizeof want, "max_seq_len <= %llu", (unsigned long long)k);
    ck_assert_msg(strstr(msg, want) != NULL, "%s lacks %s", msg, want);
    /* smaller encodings fit longer: q4 about 3.5x the tokens of f16 */
    ck_assert_uint_gt(fit.max_seq_len[HOIST_KV_F8], k);
    ck_assert_uint_gt(fit.max_seq_len[HOIST_KV_Q4], fit.max_seq_len[HOIST_KV_Q8]);
    ck_assert_uint_lt(fit.max_seq_len[HOIST_KV_F32], k);
    ck_assert_uint_eq(fit.max_seq_len[HOIST_KV_BF16], k);

    o.max_seq_len = k;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
    ck_assert_int_eq(hoist_plan_usage_get(p, 0, &u), HOIST_OK);
    ck_assert_uint_eq(u.layers, 60);
    ck_assert(u.embeddings && u.head);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), used_of(&u));
    hoist_plan_free(p);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0);
    o.max_seq_len = k + 1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_NO_FIT);

    /* the cache encoding suggestion: q4 keeps 200k tokens on 80 GiB (64 + 13 GiB) */
    o.max_seq_len = 200000;
    ck_assert_uint_ge(fit.max_seq_len[HOIST_KV_Q4], 200000);
    ck_assert_msg(strstr(msg, "kv dtype q4 at max_seq_len 200000") != NULL, "%s", msg);
    o.kv_dtype = HOIST_KV_Q4;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_free(p);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* 34B at 200k on two 80 GiB devices: autosplit, layer by layer, each layer with its cache. */
START_TEST(test_34b_autosplit_two_devices)
{
    hoist_model *m = llama("yi", &yi34b, 0);
    hoist_coordinator *c = coord();
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, 80 * GiB, 0), TU_PLAN_DEVICE(1, 80 * GiB, 0)};
    hoist_plan_options o = opts_for(devs, 2, 200000, c);
    hoist_plan *p = NULL;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    ck_assert_int_eq(hoist_plan_info_get(p, &in), HOIST_OK);
    ck_assert_uint_eq(in.kv_bytes, 49152000000ull);
    ck_assert_uint_eq(in.kv_bytes_per_token, 245760);
    ck_assert_uint_eq(in.max_seq_len, 200000);
    ck_assert_uint_ge(in.weights_bytes, hoist_model_total_bytes(m));
    ck_assert_uint_lt(in.weights_bytes, hoist_model_total_bytes(m) + 1000 * 256);
    hoist_plan_usage u0 = HOIST_PLAN_USAGE_INIT, u1 = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u0);
    hoist_plan_usage_get(p, 1, &u1);
    /* device 0 is filled first: its headroom is less than one more layer */
    ck_assert_uint_gt(u0.layers, 30);
    ck_assert_uint_lt(u0.layers, 60);
    ck_assert_uint_lt(u0.headroom_bytes, (uint64_t)(1.9 * GiB));
    ck_assert_uint_eq(u0.kv_bytes, 49152000000ull / 60 * u0.layers);
    ck_assert_uint_eq(u1.kv_bytes, 49152000000ull / 60 * u1.layers);
    ck_assert(u0.embeddings && !u0.head);
    ck_assert(u1.head && !u1.embeddings);
    ck_assert_uint_gt(u1.workspace_bytes, 0);
    check_layers(p, m);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), used_of(&u0));
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 1), used_of(&u1));
    hoist_plan_free(p);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* ---- autosplit, reserve, tied heads on a small model -------------------------------------- */

/* Everything the model needs in host memory (seq 1024). */
static uint64_t total_of(hoist_model *m, hoist_coordinator *c)
{
    hoist_plan_device big = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 1000 * GiB, 0);
    hoist_plan_options o = opts_for(&big, 1, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u);
    hoist_plan_free(p);
    return used_of(&u);
}

/* The smallest first device (seq 1024, a huge second one) that takes k layers, found with the
 * planner itself: one byte less takes k - 1. */
static uint64_t room_for_layers(hoist_model *m, hoist_coordinator *c, uint32_t k)
{
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, 1, 0), TU_PLAN_DEVICE(1, 1000 * GiB, 0)};
    hoist_plan_options o = opts_for(devs, 2, 1024, c);
    uint64_t lo = 1, hi = 1000 * GiB; /* hi takes k */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        devs[0].free_bytes = mid;
        hoist_plan *p;
        ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
        hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
        hoist_plan_usage_get(p, 0, &u);
        hoist_plan_free(p);
        if (u.layers >= k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

START_TEST(test_autosplit_and_reserve)
{
    hoist_model *m = llama("s", &small, 0);
    hoist_coordinator *c = coord();
    hoist_plan_device devs[3] = {TU_PLAN_DEVICE(0, 0, 0), TU_PLAN_DEVICE(1, 0, 0),
                                 TU_PLAN_DEVICE(2, 1000 * GiB, 0)};
    /* device 0 gets 3 layers' worth of room (plus embeddings and workspace) */
    uint64_t room = room_for_layers(m, c, 3);
    devs[0].free_bytes = room;
    devs[1].free_bytes = room;
    hoist_plan_options o = opts_for(devs, 3, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    check_layers(p, m);
    hoist_plan_usage u[3] = {HOIST_PLAN_USAGE_INIT, HOIST_PLAN_USAGE_INIT, HOIST_PLAN_USAGE_INIT};
    for (int d = 0; d < 3; d++)
        ck_assert_int_eq(hoist_plan_usage_get(p, (size_t)d, &u[d]), HOIST_OK);
    uint32_t l0 = u[0].layers;
    ck_assert_uint_eq(l0, 3);
    ck_assert_uint_eq(u[1].first_layer, 3);
    ck_assert_uint_ge(u[1].layers, 3); /* no embeddings there: at least as much room */
    ck_assert_uint_eq(u[0].layers + u[1].layers + u[2].layers, small.layers);
    ck_assert(u[0].embeddings);
    ck_assert(u[2].head || (u[2].layers == 0 && u[1].head));
    hoist_plan_free(p);

    /* a reserve of one byte on device 0 moves a layer off it: the reserve is never touched */
    devs[0].reserve_bytes = 1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_usage r0 = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &r0);
    ck_assert_uint_eq(r0.layers, 2);
    ck_assert_uint_eq(r0.reserve_bytes, 1);
    check_layers(p, m);
    hoist_plan_free(p);

    /* a reserve larger than the device leaves it unused */
    devs[0].reserve_bytes = room + 1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_usage_get(p, 0, &r0);
    ck_assert_uint_eq(r0.layers, 0);
    ck_assert_uint_eq(used_of(&r0), 0);
    ck_assert(!r0.embeddings);
    check_layers(p, m);
    hoist_plan_free(p);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* With tied embeddings the logits come from the embedding matrix: the head stays with it. */
START_TEST(test_tied_head_with_embeddings)
{
    shape s = small;
    s.tied = 1;
    hoist_model *m = llama("t", &s, 0);
    hoist_coordinator *c = coord();
    uint64_t room = room_for_layers(m, c, 3);
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, room, 0), TU_PLAN_DEVICE(1, 1000 * GiB, 0)};
    hoist_plan_options o = opts_for(devs, 2, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_usage u0 = HOIST_PLAN_USAGE_INIT, u1 = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u0);
    hoist_plan_usage_get(p, 1, &u1);
    ck_assert(u0.embeddings && u0.head);
    ck_assert(!u1.head);
    ck_assert_uint_gt(u1.layers, 0);
    size_t norm;
    ck_assert_int_eq(hoist_model_find(m, "model.norm.weight", &norm), HOIST_OK);
    int d;
    ck_assert_int_eq(hoist_plan_tensor_device(p, norm, &d), HOIST_OK);
    ck_assert_int_eq(d, 0);
    hoist_plan_free(p);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* Two devices too small: the failure names the last device and what the rest needs. */
START_TEST(test_failure_names_device_and_suggests)
{
    hoist_model *m = llama("s", &small, 0);
    hoist_coordinator *c = coord();
    uint64_t room = room_for_layers(m, c, 3);
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(3, room, 0), TU_PLAN_DEVICE(5, room, 64 * MiB)};
    hoist_plan_options o = opts_for(devs, 2, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_NO_FIT);
    const char *msg = hoist_last_error();
    ck_assert_msg(strstr(msg, "cuda:5 lacks") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "64.00 MiB reserve") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "(layers 3..7 and what follows") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "another device with") != NULL, "%s", msg);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 3), 0);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 5), 0);
    /* the shortfall, given to a third device, is enough */
    hoist_fit fit = HOIST_FIT_INIT;
    ck_assert_int_eq(hoist_plan_fit(m, &o, &fit), HOIST_OK);
    ck_assert_int_eq(fit.fits, 0);
    devs[1].free_bytes += fit.shortfall_bytes;
    ck_assert_int_eq(hoist_plan_fit(m, &o, &fit), HOIST_OK);
    ck_assert_int_eq(fit.fits, 1);
    ck_assert_uint_eq(fit.shortfall_bytes, 0);
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_free(p);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* Option and model errors. */
START_TEST(test_bad_options)
{
    hoist_model *m = llama("s", &small, 0);
    hoist_coordinator *c = coord();
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, GiB, 0), TU_PLAN_DEVICE(0, GiB, 0)};
    hoist_plan_options o = opts_for(devs, 2, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "cuda:0 is listed twice"));
    o.ndevices = HOIST_PLAN_MAX_DEVICES + 1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_TOO_MANY);
    o.ndevices = 1;
    o.batch = 1u << 20;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_INVALID_ARG);
    o.batch = 1;
    o.max_seq_len = (1ull << 32) + 1;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_INVALID_ARG);
    o.max_seq_len = 1024;
    o.kv_dtype = HOIST_KV_DTYPE_COUNT;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_INVALID_ARG);
    o.kv_dtype = HOIST_KV_F16;
    devs[0].device = 5000;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_INVALID_ARG);
    devs[0].device = 0;
    /* a geometry with fewer layers than the tensors */
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    g.n_layers = 4;
    o.geometry = &g;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model.layers.4."));
    g.n_kv_heads = 3;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_BAD_CONFIG);
    ck_assert_int_eq(hoist_plan_create(m, NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_plan_create(NULL, &o, &p), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(p);
    hoist_plan_free(NULL);
    hoist_coordinator_free(NULL);
    hoist_coordinator_free(hoist_coordinator_default());
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* Geometry from options: a model without config.json, GGUF-style names. */
START_TEST(test_geometry_from_options_gguf_names)
{
    char *st = tu_path(dir, "g.safetensors");
    static unsigned char data[64 * 2 * 5 + 16 * 2 * 4];
    const char *h =
        "{\"token_embd.weight\":{\"dtype\":\"F16\",\"shape\":[64],\"data_offsets\":[0,128]},"
        "\"blk.0.attn_q.weight\":{\"dtype\":\"F16\",\"shape\":[64],\"data_offsets\":[128,256]},"
        "\"blk.1.attn_q.weight\":{\"dtype\":\"F16\",\"shape\":[64],\"data_offsets\":[256,384]},"
        "\"output_norm.weight\":{\"dtype\":\"F16\",\"shape\":[16],\"data_offsets\":[384,416]},"
        "\"output.weight\":{\"dtype\":\"F16\",\"shape\":[64],\"data_offsets\":[416,544]}}";
    tu_write_safetensors(st, h, data, 544);
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(st, NULL, &m), HOIST_OK);
    hoist_plan *p;
    hoist_plan_options o = HOIST_PLAN_OPTIONS_DEFAULT;
    hoist_coordinator *c = coord();
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 4 * GiB, 0);
    o.devices = &dev;
    o.ndevices = 1;
    o.coordinator = c;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_E_OPEN); /* no config.json */
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "config.json"));
    hoist_geometry g = {.size = sizeof g, .architecture = "llama", .n_layers = 2, .hidden = 16,
                        .intermediate = 32, .n_heads = 2, .n_kv_heads = 1, .head_dim = 8,
                        .vocab = 4, .max_position = 512, .rms_eps = 1e-5, .rope_theta = 1e4,
                        .dtype = HOIST_DTYPE_F16};
    o.geometry = &g;
    ck_assert_int_eq(hoist_plan_create(m, &o, &p), HOIST_OK);
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    ck_assert_int_eq(hoist_plan_info_get(p, &in), HOIST_OK);
    ck_assert_uint_eq(in.max_seq_len, 512);
    hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
    hoist_plan_usage_get(p, 0, &u);
    ck_assert_uint_eq(u.layers, 2);
    ck_assert(u.head && u.embeddings);
    ck_assert_uint_eq(u.kv_bytes, 2ull * 2 * 1 * 8 * 2 * 512);
    hoist_plan_free(p);
    hoist_coordinator_free(c);
    hoist_model_free(m);
    free(st);
}
END_TEST

/* ---- the coordinator ---------------------------------------------------------------------- */

/* A draft model is planned into what the main model left, and fits again once it is gone. */
START_TEST(test_second_model_into_what_is_left)
{
    hoist_model *main_m = llama("main", &small, 0), *draft = llama("draft", &small, 0);
    hoist_coordinator *c = coord();
    uint64_t one = total_of(main_m, c);
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 2 * one - 1, 0);
    hoist_plan_options o = opts_for(&dev, 1, 1024, c);
    hoist_plan *pm, *pd;
    ck_assert_int_eq(hoist_plan_create(main_m, &o, &pm), HOIST_OK);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), one);
    /* one byte short of a second copy: the failure counts the main model's reservation */
    ck_assert_int_eq(hoist_plan_create(draft, &o, &pd), HOIST_E_NO_FIT);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "host lacks 1 B:"));
    hoist_fit fit = HOIST_FIT_INIT;
    ck_assert_int_eq(hoist_plan_fit(draft, &o, &fit), HOIST_OK);
    ck_assert_int_eq(fit.fits, 0);
    ck_assert_uint_eq(fit.shortfall_bytes, 1);
    /* a shorter cache fits beside it */
    ck_assert_uint_gt(fit.max_seq_len[HOIST_KV_F16], 0);
    ck_assert_uint_lt(fit.max_seq_len[HOIST_KV_F16], 1024);
    o.max_seq_len = fit.max_seq_len[HOIST_KV_F16];
    ck_assert_int_eq(hoist_plan_create(draft, &o, &pd), HOIST_OK);
    hoist_plan_free(pd);
    hoist_plan_free(pm);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 0);
    o.max_seq_len = 1024;
    ck_assert_int_eq(hoist_plan_create(draft, &o, &pd), HOIST_OK);
    hoist_plan_free(pd);
    /* another coordinator does not see this one's reservations */
    ck_assert_int_eq(hoist_plan_create(main_m, &o, &pm), HOIST_OK);
    hoist_coordinator *c2 = coord();
    o.coordinator = c2;
    ck_assert_int_eq(hoist_plan_create(draft, &o, &pd), HOIST_OK);
    hoist_plan_free(pd);
    hoist_plan_free(pm);
    hoist_coordinator_free(c2);
    hoist_coordinator_free(c);
    hoist_model_free(main_m);
    hoist_model_free(draft);
}
END_TEST

typedef struct racer {
    hoist_model *m;
    const hoist_plan_options *o;
    pthread_barrier_t *start;
    hoist_plan *plan;
    int rc;
} racer;

static void *race_plan(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    r->rc = hoist_plan_create(r->m, r->o, &r->plan);
    return NULL;
}

/* Eight threads plan at once into room for three: exactly three succeed, never more. */
START_TEST(test_concurrent_plans)
{
    hoist_model *m = llama("s", &small, 0);
    hoist_coordinator *c = coord();
    uint64_t one = total_of(m, c);
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 3 * one + one / 2, 0);
    hoist_plan_options o = opts_for(&dev, 1, 1024, c);
    enum { N = 8 };
    for (int round = 0; round < 20; round++) {
        racer r[N];
        pthread_t th[N];
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, N);
        for (int i = 0; i < N; i++) {
            r[i] = (racer){.m = m, .o = &o, .start = &b};
            ck_assert_int_eq(pthread_create(&th[i], NULL, race_plan, &r[i]), 0);
        }
        int ok = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc == HOIST_OK)
                ok++;
            else
                ck_assert_int_eq(r[i].rc, HOIST_E_NO_FIT);
        }
        pthread_barrier_destroy(&b);
        ck_assert_int_eq(ok, 3);
        ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 3 * one);
        for (int i = 0; i < N; i++) hoist_plan_free(r[i].plan);
        ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 0);
    }
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* ---- loads that follow a plan ------------------------------------------------------------- */

/* The weights keep the reservation after the plan is freed; a plan loads one set at a time. */
START_TEST(test_load_with_plan_host)
{
    hoist_model *m = llama("s", &small, 1);
    hoist_coordinator *c = coord();
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 8 * GiB, 0);
    hoist_plan_options po = opts_for(&dev, 1, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK);
    uint64_t reserved = hoist_coordinator_reserved(c, HOIST_DEVICE_HOST);
    ck_assert_uint_gt(reserved, hoist_model_total_bytes(m));
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    lo.device = 7; /* ignored: the plan decides */
    lo.verify = HOIST_VERIFY_READBACK;
    hoist_weights *w, *w2 = NULL;
    ck_assert_int_eq(hoist_load(m, &lo, &w), HOIST_OK);
    tu_assert_weights_match_files(m, w);
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_find(w, "model.layers.3.mlp.up_proj.weight", &v), HOIST_OK);
    ck_assert_int_eq(v.device, HOIST_DEVICE_HOST);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    ck_assert_int_eq(hoist_plan_info_get(p, &in), HOIST_OK);
    ck_assert_uint_eq(s.arena_bytes, in.weights_bytes);
    /* loading again while the weights live would double the placed bytes */
    ck_assert_int_eq(hoist_load(m, &lo, &w2), HOIST_E_BUSY);
    ck_assert_ptr_null(w2);
    hoist_plan_free(p);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), reserved);
    hoist_weights_free(w);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 0);

    /* a plan of another model is refused before anything is read */
    hoist_model *other = llama("o", &small, 0);
    ck_assert_int_eq(hoist_plan_create(other, &po, &p), HOIST_OK);
    lo.plan = p;
    ck_assert_int_eq(hoist_load(m, &lo, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "another model"));
    hoist_plan_free(p);
    hoist_model_free(other);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* A plan onto GPUs that are not there fails before anything is allocated or reserved for good. */
START_TEST(test_load_plan_absent_devices)
{
    if (hoist_device_count() >= 2) return; /* the device machine runs test_gpu_plan instead */
    hoist_model *m = llama("s", &small, 1);
    hoist_coordinator *c = coord();
    uint64_t room = room_for_layers(m, c, 3);
    hoist_plan_device devs[2] = {TU_PLAN_DEVICE(0, room, 0), TU_PLAN_DEVICE(1, 8 * GiB, 0)};
    hoist_plan_options po = opts_for(devs, 2, 1024, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK); /* given sizes: no GPU needed */
    int64_t live = hoist__alloc_live_bytes();
    int64_t dev_live = hoist__gpu_live(HOIST_GPU_RES_DEVICE);
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    hoist_weights *w;
    ck_assert_int_eq(hoist_load(m, &lo, &w), HOIST_E_NO_DEVICE);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(hoist__alloc_live_bytes(), live);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), dev_live);
    /* the reservation is the plan's, not the failed load's */
    hoist_plan_free(p);
    ck_assert_uint_eq(hoist_coordinator_reserved(c, 0), 0);
    hoist_coordinator_free(c);
    hoist_model_free(m);
}
END_TEST

/* The multi-arena loader on the host: a plan whose tensors alternate between two arenas (both
 * host memory, as two GPUs would be), through the direct host path and through the device
 * pipeline (host_as_device: streams and events per arena), with verification. */
static void load_two_arenas(hoist_model *m, int as_device, hoist_path path)
{
    hoist_coordinator *c = coord();
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 8 * GiB, 0);
    hoist_plan_options po = opts_for(&dev, 1, 256, c);
    hoist_plan *p;
    ck_assert_int_eq(hoist_plan_create(m, &po, &p), HOIST_OK);
    size_t n = hoist_model_tensor_count(m);
    for (size_t i = 0; i < n; i++) p->tensor_dev[i] = (uint8_t)((i / 3) % 2);
    p->usage[1] = p->usage[0];
    p->info.ndevices = 2;
    uint64_t sizes[2];
    hoist__plan_arena_sizes(&m->table, p->tensor_dev, 2, sizes);
    p->usage[0].weights_bytes = sizes[0];
    p->usage[1].weights_bytes = sizes[1];

    hoist__gpu_hooks hooks = {.host_as_device = as_device != 0};
    hoist__gpu_set_hooks(&hooks);
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    lo.verify = HOIST_VERIFY_READBACK;
    lo.path = path;
    lo.threads = 3;
    lo.chunk_bytes = 64 << 10; /* windows that span both arenas */
    hoist_weights *w;
    ck_assert_int_eq(hoist_load(m, &lo, &w), HOIST_OK);
    hoist__gpu_set_hooks(NULL);
    tu_assert_weights_match_files(m, w);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert_uint_eq(s.arena_bytes, sizes[0] + sizes[1]);
    /* each view lies inside its own arena */
    for (size_t i = 0; i < n; i++) {
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
        const hoist__arena *a = &w->arenas[p->tensor_dev[i]];
        ck_assert((uint8_t *)v.data >= a->base);
        ck_assert((uint8_t *)v.data + v.nbytes <= a->base + a->bytes);
    }
    hoist_weights_free(w);
    hoist_plan_free(p);
    hoist_coordinator_free(c);
}

START_TEST(test_load_two_arenas)
{
    shape s = small;
    s.layers = 3;
    hoist_model *m = llama("s", &s, 1);
    load_two_arenas(m, 0, HOIST_PATH_MMAP);
    load_two_arenas(m, 1, HOIST_PATH_MMAP);
    load_two_arenas(m, 1, HOIST_PATH_STREAM);
    load_two_arenas(m, 0, HOIST_PATH_STREAM);
    hoist_model_free(m);
}
END_TEST

typedef struct loader_arg {
    hoist_model *m;
    hoist_coordinator *c;
    int rc;
} loader_arg;

static void *plan_and_load(void *arg)
{
    loader_arg *a = arg;
    hoist_plan_device dev = TU_PLAN_DEVICE(HOIST_DEVICE_HOST, 8 * GiB, 0);
    hoist_plan_options po = opts_for(&dev, 1, 512, a->c);
    hoist_plan *p;
    a->rc = hoist_plan_create(a->m, &po, &p);
    if (a->rc < 0) return NULL;
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.plan = p;
    lo.threads = 2;
    hoist_weights *w;
    a->rc = hoist_load(a->m, &lo, &w);
    hoist_plan_free(p);
    if (a->rc == HOIST_OK) {
        hoist_view v = HOIST_VIEW_INIT;
        a->rc = hoist_weights_find(w, "lm_head.weight", &v);
        hoist_weights_free(w);
    }
    return NULL;
}

/* A main and a draft model planned and loaded from two threads into one coordinator. */
START_TEST(test_concurrent_loads)
{
    hoist_model *a = llama("a", &small, 1), *b = llama("b", &small, 1);
    hoist_coordinator *c = coord();
    for (int round = 0; round < 5; round++) {
        loader_arg x = {a, c, -1}, y = {b, c, -1};
        pthread_t tx, ty;
        ck_assert_int_eq(pthread_create(&tx, NULL, plan_and_load, &x), 0);
        ck_assert_int_eq(pthread_create(&ty, NULL, plan_and_load, &y), 0);
        pthread_join(tx, NULL);
        pthread_join(ty, NULL);
        ck_assert_int_eq(x.rc, HOIST_OK);
        ck_assert_int_eq(y.rc, HOIST_OK);
        ck_assert_uint_eq(hoist_coordinator_reserved(c, HOIST_DEVICE_HOST), 0);
    }
    hoist_coordinator_free(c);
    hoist_model_free(a);
    hoist_model_free(b);
}
END_TEST

/* ---- hoist plan ---------------------------------------------------------------------------- */

START_TEST(test_cli_plan)
{
    hoist_model *m = llama("yi", &yi34b, 0);
    hoist_model_free(m);
    char args[1024], *out = tu_path(dir, "out.txt");
    snprintf(args, sizeof args,
             "plan '%s/yi' --devices cuda:0=80G,cuda:1=80G --reserve 1G,1G --max-seq-len 200000 "
             "> '%s' 2>&1",
             dir, out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    size_t len;
    char *text = tu_read(out, &len);
    ck_assert_ptr_nonnull(text);
    text = realloc(text, len + 1);
    text[len] = '\0';
    ck_assert_msg(strstr(text, "cuda:1") && strstr(text, "45.78 GiB"), "%s", text);
    ck_assert_msg(strstr(text, "largest max_seq_len"), "%s", text);
    free(text);

    snprintf(args, sizeof args,
             "plan '%s/yi' --devices cuda:0=80G --max-seq-len 200000 > '%s' 2>&1", dir, out);
    ck_assert_int_eq(tu_run_cli(args), 1);
    text = tu_read(out, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    ck_assert_msg(strstr(text, "HOIST_E_NO_FIT") && strstr(text, "max_seq_len <="), "%s", text);
    free(text);

    /* geometry from flags, without config.json */
    char cp[512];
    snprintf(cp, sizeof cp, "%s/yi/config.json", dir);
    ck_assert_int_eq(unlink(cp), 0);
    snprintf(args, sizeof args,
             "plan '%s/yi' --devices cuda:0=80G,cuda:1=80G --layers 60 --hidden 7168 "
             "--intermediate 20480 --heads 56 --kv-heads 8 --head-dim 128 --vocab 64000 "
             "--max-seq-len 200000 --kv-dtype q4 > '%s' 2>&1",
             dir, out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "plan '%s/yi' --devices cuda:0=80G,cuda:0=1G > '%s' 2>&1", dir,
             out);
    ck_assert_int_ne(tu_run_cli(args), 0);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("planner");
    TCase *tc = tcase_create("planner");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_kv_cache_bytes);
    tcase_add_test(tc, test_34b_one_device_fails_with_fit);
    tcase_add_test(tc, test_34b_autosplit_two_devices);
    tcase_add_test(tc, test_autosplit_and_reserve);
    tcase_add_test(tc, test_tied_head_with_embeddings);
    tcase_add_test(tc, test_failure_names_device_and_suggests);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_geometry_from_options_gguf_names);
    tcase_add_test(tc, test_second_model_into_what_is_left);
    tcase_add_test(tc, test_concurrent_plans);
    tcase_add_test(tc, test_load_with_plan_host);
    tcase_add_test(tc, test_load_plan_absent_devices);
    tcase_add_test(tc, test_load_two_arenas);
    tcase_add_test(tc, test_concurrent_loads);
    tcase_add_test(tc, test_cli_plan);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
