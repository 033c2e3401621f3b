/* A program built against hoist 0.1, run against this library (docs/ABI.md).
 *
 * It includes the frozen 0.1 header (tests/abi/hoist_v0_1.h: include/hoist.h as 0.1 shipped it,
 * byte for byte; never edit it) and not include/hoist.h, and binds every hoist function it calls
 * to symbol version HOIST_0, exactly what linking against the 0.1 libhoist.so recorded in 0.1
 * programs. It then drives the structs that grew in 0.2 through the compatibility shims: each
 * result struct sits in a buffer followed by guard bytes that must come back untouched (0.1's
 * hoist_weights_stats copied the whole, larger, struct over its caller's), and each result is
 * checked against the files or against another way of computing it.
 *
 * Plain C, no Check: Check's headers would not matter, but its helpers (tests/testutil.h) include
 * the current hoist.h. */
#include "hoist_v0_1.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HOIST_VERSION_MINOR
#error "hoist_v0_1.h is missing"
#endif
#if HOIST_VERSION_MAJOR != 0 || HOIST_VERSION_MINOR != 1
#error "this test must be compiled against the frozen 0.1 header"
#endif

/* Every hoist function called here, bound to its 0.1 version. */
#define BIND_V0(name) __asm__(".symver " #name "," #name "@HOIST_0")
BIND_V0(hoist_version_number);
BIND_V0(hoist_last_error);
BIND_V0(hoist_status_name);
BIND_V0(hoist_model_open);
BIND_V0(hoist_model_free);
BIND_V0(hoist_model_tensor_count);
BIND_V0(hoist_model_tensor);
BIND_V0(hoist_model_find);
BIND_V0(hoist_model_file_path);
BIND_V0(hoist_model_total_bytes);
BIND_V0(hoist_model_metadata_find);
BIND_V0(hoist_model_metadata_value);
BIND_V0(hoist_model_metadata_count);
BIND_V0(hoist_model_geometry);
BIND_V0(hoist_geometry_from_config);
BIND_V0(hoist_geometry_check);
BIND_V0(hoist_kv_cache_bytes);
BIND_V0(hoist_device_info_get);
BIND_V0(hoist_coordinator_create);
BIND_V0(hoist_coordinator_free);
BIND_V0(hoist_plan_create);
BIND_V0(hoist_plan_free);
BIND_V0(hoist_plan_fit);
BIND_V0(hoist_plan_info_get);
BIND_V0(hoist_plan_usage_get);
BIND_V0(hoist_load);
BIND_V0(hoist_load_sink);
BIND_V0(hoist_weights_free);
BIND_V0(hoist_weights_count);
BIND_V0(hoist_weights_view);
BIND_V0(hoist_weights_find);
BIND_V0(hoist_weights_stats);
BIND_V0(hoist_model_sum);
BIND_V0(hoist_model_verify);
BIND_V0(hoist_pack);
BIND_V0(hoist_model_packed_info);
BIND_V0(hoist_model_tensor_packing);
BIND_V0(hoist_read_ceiling);
BIND_V0(hoist_session_create);
BIND_V0(hoist_session_free);
BIND_V0(hoist_session_generate);
BIND_V0(hoist_session_stats_get);

static int failures;

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__,     \
                    #cond, hoist_last_error());                                                   \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)
/* A call that must succeed; the rest of the test depends on it. */
#define MUST(call)                                                                                \
    do {                                                                                          \
        int must_rc = (call);                                                                     \
        if (must_rc != HOIST_OK) {                                                                \
            fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call,                     \
                    hoist_status_name(must_rc), hoist_last_error());                              \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* ---- guarded result structs ---------------------------------------------------------------- */

#define GUARD_BYTES 256
#define GUARD 0xA5

/* A 0.1 result struct T followed by GUARD_BYTES of GUARD. 0.1 structs are at most 8-aligned. */
#define GUARDED(T, name)                                                                          \
    _Alignas(16) unsigned char name##_buf[sizeof(T) + GUARD_BYTES];                               \
    memset(name##_buf, GUARD, sizeof name##_buf);                                                 \
    T *name = (T *)(void *)name##_buf
#define GUARD_INTACT(name) guard_intact(name##_buf + sizeof *name, #name, __LINE__)

static void guard_intact(const unsigned char *g, const char *what, int line)
{
    for (size_t i = 0; i < GUARD_BYTES; i++) {
        if (g[i] != GUARD) {
            fprintf(stderr, "%s:%d: %s: byte %zu past the 0.1 struct was written (0x%02x)\n",
                    __FILE__, line, what, i, g[i]);
            failures++;
            return;
        }
    }
}

/* ---- helpers ------------------------------------------------------------------------------ */

static char tmp[256];

static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        exit(1);
    }
}

static char *path_in(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

/* n bytes of path at off, or NULL. */
static void *read_range(const char *path, uint64_t off, uint64_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    void *p = malloc(n ? n : 1);
    ssize_t got = p ? pread(fd, p, n, (off_t)off) : -1;
    close(fd);
    if (got != (ssize_t)n) {
        free(p);
        return NULL;
    }
    return p;
}

/* Every tensor of w holds its file bytes, through views found both ways. */
static void check_weights(hoist_model *m, hoist_weights *w)
{
    CHECK(hoist_weights_count(w) == hoist_model_tensor_count(m));
    uint64_t total = 0;
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        GUARDED(hoist_tensor_info, t);
        MUST(hoist_model_tensor(m, i, t));
        GUARD_INTACT(t);
        CHECK(t->name && t->ndim >= 1 && t->ndim <= HOIST_MAX_DIMS && t->nbytes > 0);
        total += t->nbytes;
        GUARDED(hoist_view, v);
        MUST(hoist_weights_view(w, i, v));
        GUARD_INTACT(v);
        CHECK(v->name == t->name && v->dtype == t->dtype && v->ndim == t->ndim);
        CHECK(v->nbytes == t->nbytes && v->device == HOIST_DEVICE_HOST && v->data);
        CHECK(memcmp(v->shape, t->shape, sizeof v->shape) == 0);
        void *want = read_range(hoist_model_file_path(m, t->file), t->offset, t->nbytes);
        CHECK(want && memcmp(want, v->data, t->nbytes) == 0);
        free(want);
        GUARDED(hoist_view, f);
        MUST(hoist_weights_find(w, t->name, f));
        GUARD_INTACT(f);
        CHECK(f->data == v->data && f->nbytes == v->nbytes);
    }
    CHECK(total == hoist_model_total_bytes(m));
}

static void check_stats(const hoist_load_stats *s, const hoist_model *m)
{
    CHECK(s->path && (!strcmp(s->path, "mmap") || !strcmp(s->path, "uring") ||
                      !strcmp(s->path, "stream")));
    CHECK(s->bytes == hoist_model_total_bytes(m));
    CHECK(s->file_bytes == s->bytes); /* its last 0.1 field */
    CHECK(s->arena_bytes >= s->bytes);
    CHECK(s->seconds > 0 && s->threads >= 1);
}

/* ---- the checks --------------------------------------------------------------------------- */

static void models_and_geometry(hoist_model *m, hoist_geometry *geo)
{
    /* tensor info: in range, and out of range (the struct is left alone) */
    GUARDED(hoist_tensor_info, t);
    MUST(hoist_model_tensor(m, 0, t));
    hoist_tensor_info before = *t;
    CHECK(hoist_model_tensor(m, 1u << 30, t) == HOIST_E_INVALID_ARG);
    CHECK(memcmp(&before, t, sizeof before) == 0);
    GUARD_INTACT(t);

    /* geometry from the model and from its config.json agree with `hoist gen --preset tiny` */
    GUARDED(hoist_geometry, g);
    MUST(hoist_model_geometry(m, g));
    GUARD_INTACT(g);
    CHECK(!strcmp(g->architecture, "llama") && g->n_layers == 2 && g->hidden == 64);
    CHECK(g->intermediate == 172 && g->n_heads == 4 && g->n_kv_heads == 2 && g->head_dim == 16);
    CHECK(g->vocab == 256 && g->max_position == 4096 && g->rope_theta == 500000.0);
    CHECK(g->tied_embeddings == 0 && g->dtype == HOIST_DTYPE_BF16); /* its last fields */
    GUARDED(hoist_geometry, c);
    MUST(hoist_geometry_from_config(path_in("st/config.json"), c));
    GUARD_INTACT(c);
    CHECK(!strcmp(c->architecture, g->architecture) && c->n_layers == g->n_layers);
    CHECK(c->hidden == g->hidden && c->intermediate == g->intermediate);
    CHECK(c->n_heads == g->n_heads && c->n_kv_heads == g->n_kv_heads);
    CHECK(c->head_dim == g->head_dim && c->vocab == g->vocab);
    CHECK(c->max_position == g->max_position && c->rms_eps == g->rms_eps);
    CHECK(c->rope_theta == g->rope_theta && c->tied_embeddings == g->tied_embeddings);
    CHECK(c->dtype == g->dtype);
    CHECK(hoist_geometry_check(g) == HOIST_OK);
    hoist_geometry bad = *g;
    bad.n_kv_heads = 3;
    CHECK(hoist_geometry_check(&bad) == HOIST_E_BAD_CONFIG);
    /* a failure zeroes the 0.1 struct, and only it */
    GUARDED(hoist_geometry, z);
    CHECK(hoist_geometry_from_config(path_in("missing.json"), z) == HOIST_E_OPEN);
    GUARD_INTACT(z);
    CHECK(z->n_layers == 0 && z->dtype == 0 && z->architecture[0] == '\0');
    *geo = *g;

    uint64_t kv = 0;
    MUST(hoist_kv_cache_bytes(g, HOIST_KV_F16, 100, 3, &kv));
    CHECK(kv == 2ull * 2 /* layers */ * 2 /* kv heads */ * 16 * 2 /* f16 */ * 100 * 3);

    GUARDED(hoist_device_info, d);
    MUST(hoist_device_info_get(HOIST_DEVICE_HOST, d));
    GUARD_INTACT(d);
    CHECK(d->id == HOIST_DEVICE_HOST && d->name[0] && d->total_bytes > 0);
    CHECK(d->free_bytes > 0 && d->free_bytes <= d->total_bytes);
}

static int count_pieces(const hoist_piece *p, void *user)
{
    uint64_t *bytes = user;
    *bytes += p->nbytes;
    return 0;
}

static void loading(hoist_model *m)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.threads = 2;
    o.chunk_bytes = 65536;
    o.readahead_bytes = 0; /* its last 0.1 field */
    hoist_weights *w = NULL;
    MUST(hoist_load(m, &o, &w));
    GUARDED(hoist_load_stats, s);
    hoist_weights_stats(w, s);
    GUARD_INTACT(s);
    check_stats(s, m);
    CHECK(!strcmp(s->path, "stream") && s->threads == 2);
    check_weights(m, w);
    hoist_weights_free(w);

    /* defaults (NULL options) */
    MUST(hoist_load(m, NULL, &w));
    check_weights(m, w);
    hoist_weights_free(w);

    /* an option the 0.1 caller set past the middle of the struct is honoured */
    o = (hoist_load_options)HOIST_LOAD_OPTIONS_DEFAULT;
    o.chunk_bytes = 1000; /* not a multiple of 4096 */
    CHECK(hoist_load(m, &o, &w) == HOIST_E_INVALID_ARG && w == NULL);

    /* the sink, with its stats */
    uint64_t bytes = 0;
    o = (hoist_load_options)HOIST_LOAD_OPTIONS_DEFAULT;
    GUARDED(hoist_load_stats, ss);
    MUST(hoist_load_sink(m, &o, count_pieces, &bytes, ss));
    GUARD_INTACT(ss);
    CHECK(bytes == hoist_model_total_bytes(m));
    CHECK(ss->bytes == bytes && ss->arena_bytes == 0 && ss->file_bytes == bytes);
}

static void planning(hoist_model *m, const hoist_geometry *geo)
{
    hoist_coordinator *c = NULL;
    MUST(hoist_coordinator_create(&c));
    hoist_plan_device dev = {.device = HOIST_DEVICE_HOST, .free_bytes = 1ull << 30,
                             .reserve_bytes = 4096};
    hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
    po.devices = &dev;
    po.ndevices = 1;
    po.max_seq_len = 256;
    po.batch = 2;
    po.coordinator = c;
    hoist_plan *p = NULL;
    MUST(hoist_plan_create(m, &po, &p));

    GUARDED(hoist_plan_info, in);
    hoist_plan_info_get(p, in);
    GUARD_INTACT(in);
    /* 0.1 embedded the geometry */
    CHECK(!strcmp(in->geometry.architecture, geo->architecture));
    CHECK(in->geometry.n_layers == geo->n_layers && in->geometry.vocab == geo->vocab);
    CHECK(in->geometry.rope_theta == geo->rope_theta && in->geometry.dtype == geo->dtype);
    CHECK(in->max_seq_len == 256 && in->batch == 2 && in->kv_dtype == HOIST_KV_F16);
    CHECK(in->weights_bytes >= hoist_model_total_bytes(m) && in->ndevices == 1);
    uint64_t kv = 0;
    MUST(hoist_kv_cache_bytes(geo, HOIST_KV_F16, 256, 2, &kv));
    CHECK(in->kv_bytes == kv && in->kv_bytes_per_token * 256 * 2 == kv);

    GUARDED(hoist_plan_usage, u);
    MUST(hoist_plan_usage_get(p, 0, u));
    GUARD_INTACT(u);
    CHECK(u->device == HOIST_DEVICE_HOST && u->free_bytes == 1ull << 30);
    CHECK(u->reserve_bytes == 4096 && u->weights_bytes == in->weights_bytes);
    CHECK(u->first_layer == 0 && u->layers == geo->n_layers && u->embeddings && u->head);
    CHECK(u->headroom_bytes == u->free_bytes - u->reserve_bytes - u->weights_bytes -
                                   u->kv_bytes - u->workspace_bytes);
    CHECK(hoist_plan_usage_get(p, 1, u) == HOIST_E_INVALID_ARG);

    /* loading with the plan */
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.plan = p;
    hoist_weights *w = NULL;
    MUST(hoist_load(m, &o, &w));
    check_weights(m, w);
    GUARDED(hoist_load_stats, s);
    hoist_weights_stats(w, s);
    GUARD_INTACT(s);
    check_stats(s, m);
    CHECK(s->arena_bytes == in->weights_bytes);
    hoist_weights_free(w);
    hoist_plan_free(p);

    /* fit, with the geometry given in the options */
    po.geometry = geo;
    GUARDED(hoist_fit, fit);
    MUST(hoist_plan_fit(m, &po, fit));
    GUARD_INTACT(fit);
    CHECK(fit->fits == 1 && fit->shortfall_bytes == 0);
    for (int k = 0; k < 6; k++) CHECK(fit->max_seq_len[k] >= 256); /* 0.1's six kv dtypes */
    CHECK(fit->max_seq_len[HOIST_KV_Q4] >= fit->max_seq_len[HOIST_KV_F32]);
    dev.free_bytes = 4096; /* not even the weights */
    MUST(hoist_plan_fit(m, &po, fit));
    GUARD_INTACT(fit);
    CHECK(fit->fits == 0 && fit->shortfall_bytes > 0 && fit->max_seq_len[HOIST_KV_F16] == 0);
    CHECK(hoist_plan_create(m, &po, &p) == HOIST_E_NO_FIT && p == NULL);
    hoist_plan_device two[2] = {dev, dev};
    po.devices = two;
    po.ndevices = 2;
    CHECK(hoist_plan_create(m, &po, &p) == HOIST_E_INVALID_ARG); /* listed twice */
    hoist_coordinator_free(c);
}

static void integrity_and_packing(hoist_model *m)
{
    hoist_sum_options so = HOIST_SUM_OPTIONS_DEFAULT;
    so.manifest = path_in("model.sum");
    so.chunk_bytes = 4096;
    so.threads = 2; /* its last 0.1 field */
    MUST(hoist_model_sum(m, &so));
    struct stat st;
    CHECK(stat(so.manifest, &st) == 0);
    MUST(hoist_model_verify(m, &so));
    so.chunk_bytes = 1000;
    CHECK(hoist_model_sum(m, &so) == HOIST_E_INVALID_ARG);

    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.chunk_bytes = 8192;
    po.overwrite = 1;
    GUARDED(hoist_pack_stats, ps);
    const char *packed = path_in("model.hoist");
    MUST(hoist_pack(m, packed, &po, ps));
    GUARD_INTACT(ps);
    CHECK(stat(packed, &st) == 0 && ps->file_bytes == (uint64_t)st.st_size);
    CHECK(ps->model_bytes == hoist_model_total_bytes(m) && ps->chunks > 0);
    CHECK(ps->seconds > 0);

    hoist_model *pm = NULL;
    MUST(hoist_model_open(packed, NULL, &pm));
    GUARDED(hoist_packed_info, pi);
    MUST(hoist_model_packed_info(pm, pi));
    GUARD_INTACT(pi);
    CHECK(pi->chunk_bytes == 8192 && pi->chunks == ps->chunks && pi->stored_bytes > 0);
    CHECK(pi->stored_bytes < ps->file_bytes);
    uint64_t chunks = 0;
    for (size_t i = 0; i < hoist_model_tensor_count(pm); i++) {
        GUARDED(hoist_tensor_packing, tp);
        MUST(hoist_model_tensor_packing(pm, i, tp));
        GUARD_INTACT(tp);
        CHECK(tp->xxh3 != 0); /* its last 0.1 field */
        chunks += tp->chunks;
    }
    CHECK(chunks == pi->chunks);
    /* the packed model loads to the same bytes */
    hoist_weights *w = NULL;
    MUST(hoist_load(pm, NULL, &w));
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        GUARDED(hoist_tensor_info, t);
        GUARDED(hoist_view, v);
        MUST(hoist_model_tensor(m, i, t));
        MUST(hoist_weights_find(w, t->name, v));
        void *want = read_range(hoist_model_file_path(m, t->file), t->offset, t->nbytes);
        CHECK(want && v->nbytes == t->nbytes && memcmp(want, v->data, t->nbytes) == 0);
        free(want);
    }
    hoist_weights_free(w);
    hoist_model_free(pm);

    GUARDED(hoist_ceiling, ce);
    hoist_ceiling_options co = HOIST_CEILING_OPTIONS_DEFAULT;
    co.threads = 2;
    co.queue_depth = 2;
    co.block_bytes = 65536;
    MUST(hoist_read_ceiling(m, &co, ce));
    GUARD_INTACT(ce);
    struct stat fs;
    CHECK(stat(path_in("st/model.safetensors"), &fs) == 0 && ce->bytes == (uint64_t)fs.st_size);
    CHECK(ce->threads == 2 && ce->queue_depth == 2 && ce->block_bytes == 65536);
    CHECK(ce->gbps > 0 && memchr(ce->note, '\0', sizeof ce->note)); /* note: its last field */
}

static void metadata(void)
{
    hoist_model *g = NULL;
    MUST(hoist_model_open(path_in("gg"), NULL, &g));
    GUARDED(hoist_meta_value, v);
    MUST(hoist_model_metadata_find(g, "general.architecture", v));
    GUARD_INTACT(v);
    CHECK(v->type == HOIST_META_STRING && v->count == 1 && v->str_len == 5);
    CHECK(!strcmp(v->str, "llama") && !strcmp(v->text, "llama")); /* text: its last field */
    MUST(hoist_model_metadata_find(g, "llama.block_count", v));
    GUARD_INTACT(v);
    CHECK(v->num.u == 2 && v->count == 1);
    size_t n = 0;
    for (size_t i = 0; i < hoist_model_metadata_count(g); i++) {
        const char *key = NULL;
        MUST(hoist_model_metadata_value(g, i, &key, v));
        GUARD_INTACT(v);
        n += key && v->text;
    }
    CHECK(n == hoist_model_metadata_count(g) && n > 5);
    CHECK(hoist_model_metadata_find(g, "no.such.key", v) == HOIST_E_NOT_FOUND);
    hoist_model_free(g);
}

static void inference(hoist_model *m, const hoist_geometry *geo)
{
    hoist_weights *w = NULL;
    MUST(hoist_load(m, NULL, &w));
    hoist_session_options so = HOIST_SESSION_OPTIONS_DEFAULT;
    so.max_tokens = 16;
    so.cuda_graphs = 0; /* its last 0.1 field */
    hoist_session *s = NULL;
    MUST(hoist_session_create(w, geo, &so, &s));
    int32_t prompt[3] = {1, 7, 42}, out[4];
    MUST(hoist_session_generate(s, prompt, 3, 4, out));
    GUARDED(hoist_session_stats, st);
    hoist_session_stats_get(s, st);
    GUARD_INTACT(st);
    CHECK(st->backend && !strcmp(st->backend, "cpu") && st->position == 3 + 4 - 1);
    CHECK(st->prefill_tokens == 3 && st->decode_tokens == 3);
    /* K and V, 2 layers, 2 kv heads of 16, f32 on the host, 16 positions */
    CHECK(st->kv_cache_bytes == 2ull * 2 * 2 * 16 * 4 * 16);
    CHECK(st->weight_bytes_per_token > 0);
    for (int i = 0; i < 4; i++) CHECK(out[i] >= 0 && (uint32_t)out[i] < geo->vocab);
    /* the options reach the session: a 2-position cache refuses a 3-token prompt */
    hoist_session_free(s);
    so.max_tokens = 2;
    CHECK(hoist_session_create(w, geo, &so, &s) == HOIST_OK);
    CHECK(s && hoist_session_generate(s, prompt, 3, 4, out) == HOIST_E_TOO_MANY);
    hoist_session_free(s);
    hoist_weights_free(w);
}

int main(void)
{
    /* the library is newer than this program's header, of the same major version */
    CHECK(hoist_version_number() / 10000 == HOIST_VERSION_MAJOR);
    CHECK(hoist_version_number() > HOIST_VERSION_NUMBER);

    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/hoist-abi-v0-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    const char *cli = getenv("HOIST_CLI") ? getenv("HOIST_CLI") : HOIST_CLI;
    run("'%s' gen '%s' --preset tiny --seed 3 --quiet", cli, path_in("st"));
    run("'%s' gen '%s' --preset tiny --format gguf --seed 4 --quiet", cli, path_in("gg"));

    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    oo.strict = 0;
    hoist_model *m = NULL;
    MUST(hoist_model_open(path_in("st"), &oo, &m));
    hoist_geometry geo;
    models_and_geometry(m, &geo);
    loading(m);
    planning(m, &geo);
    integrity_and_packing(m);
    metadata();
    inference(m, &geo);
    hoist_model_free(m);

    run("rm -rf '%s'", tmp);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("0.1 program against libhoist %u: every check passed\n", hoist_version_number());
    return 0;
}
