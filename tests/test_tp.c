/* Tensor-parallel slices (loader/tp.c, the plan's strided extents, the sources' sparse reads):
 * every rank's bytes equal the tests' own cut of the file's tensor, through every path and both
 * formats; every rank reads only its slice, counted through the I/O seam; GGUF block types split
 * on block boundaries; shapes that do not divide are refused naming the tensor, or padded with
 * zeros; the default Llama rules decide as documented. */
#include "tp_test_common.h"

static char *dir;
static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(dir); }

static hoist_tp_options tp_opts(int rank, int world)
{
    hoist_tp_options t = HOIST_TP_OPTIONS_DEFAULT;
    t.rank = rank;
    t.world = world;
    return t;
}

/* ---- a rule that cuts every tensor along one dimension ---------------------------------- */

typedef struct dim_rule {
    int dim;
    int pad;
    int calls;
} dim_rule;

static int cut_dim(const hoist_tensor_info *t, int rank, int world, hoist_tp_split *s, void *user)
{
    dim_rule *r = user;
    r->calls++;
    ck_assert_int_eq(s->dim, HOIST_TP_REPLICATE); /* what a rule starts from */
    ck_assert_uint_eq(s->parts, (uint32_t)world);
    ck_assert_uint_eq(s->index, (uint32_t)rank);
    ck_assert_uint_eq(t->size, sizeof *t);
    s->dim = r->dim < (int)t->ndim ? r->dim : HOIST_TP_REPLICATE;
    s->pad = r->pad;
    return 0;
}

/* Every safetensors dtype, [8, 16] and [4, 8, 8], cut along dim 0 and dim 1 into 2 and 4 parts
 * through every path: each rank's slice equals the tests' cut, and the ranks' slices together
 * are the tensor. */
START_TEST(test_every_dtype_every_path)
{
    char *path = tu_path(dir, "zoo.safetensors");
    tp_write_zoo(path);
    hoist_model *m = st_open(path);
    size_t n = hoist_model_tensor_count(m);
    ck_assert_uint_eq(n, (HOIST_DTYPE_U64 + 1) * TP_ZOO_SHAPES);
    int worlds[] = {2, 4};
    for (int wi = 0; wi < 2; wi++)
        for (int dim = 0; dim < 2; dim++)
            for (int p = 0; p < 3; p++) {
                int world = worlds[wi];
                uint64_t placed[HOIST_DTYPE_U64 * TP_ZOO_SHAPES + 2] = {0};
                for (int rank = 0; rank < world; rank++) {
                    dim_rule r = {.dim = dim};
                    hoist_tp_options t = tp_opts(rank, world);
                    t.rule = cut_dim;
                    t.rule_user = &r;
                    t.rules_default = 0;
                    hoist_weights *w = tp_load_ok(m, paths[p], &t);
                    ck_assert_int_eq(r.calls, (int)n);
                    for (size_t i = 0; i < n; i++) {
                        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
                        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
                        tp_ref c;
                        ck_assert_msg(tp_ref_cut(&ti, dim, (uint32_t)world, (uint32_t)rank, false,
                                                 &c),
                                      "%s", ti.name);
                        char what[128];
                        snprintf(what, sizeof what, "dim %d, rank %d of %d, %s", dim, rank,
                                 world, hoist_path_name(paths[p]));
                        tp_assert_slice(m, w, i, &c, what);
                        placed[i] += tp_ref_read(&c);
                    }
                    hoist_weights_free(w);
                }
                for (size_t i = 0; i < n; i++) {
                    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
                    ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
                    ck_assert_uint_eq(placed[i], ti.nbytes); /* the slices make the tensor */
                }
            }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Each rank asks storage for exactly its slices' bytes: counted by the I/O seam for stream and
 * for uring with O_DIRECT refused (so that it reads no whole units), and reported by the stats.
 * mmap populates whole pages: it may read up to a page around each run, never the rest. */
START_TEST(test_reads_only_its_slice)
{
    char *model = tp_gen(dir, "llama", "--layers 2 --hidden 128 --intermediate 512 --heads 4 "
                                       "--kv-heads 4 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    size_t n = hoist_model_tensor_count(m);
    uint64_t total = hoist_model_total_bytes(m);
    for (int p = 0; p < 3; p++)
        for (int rank = 0; rank < 2; rank++) {
            hoist_tp_options t = tp_opts(rank, 2);
            t.heads = t.kv_heads = 4; /* else config.json is read (and counted) for them */
            uint64_t want = 0, pieces = 0;
            for (size_t i = 0; i < n; i++) {
                hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
                hoist_tp_split s;
                ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
                ck_assert_int_eq(hoist_tp_default_rule(m, i, &t, &s), HOIST_OK);
                tp_ref c;
                ck_assert(tp_ref_cut(&ti, s.dim, s.parts, s.index, false, &c));
                want += tp_ref_read(&c);
                pieces += c.outer;
            }
            ck_assert_uint_lt(want, total * 6 / 10); /* about half: norms are replicated */
            tp_count_start(true);
            hoist_weights *w = tp_load_ok(m, paths[p], &t);
            tp_count_stop();
            hoist_load_stats s = tp_stats(w);
            ck_assert_uint_eq(s.bytes, want);
            if (paths[p] == HOIST_PATH_MMAP) {
                uint64_t got = atomic_load(&tp_mapped_count);
                ck_assert_uint_eq(s.read_bytes, got);
                ck_assert_uint_ge(got, want);
                ck_assert_uint_le(got, want + pieces * 2 * 4096);
            } else {
                ck_assert_msg(atomic_load(&tp_read_count) == want,
                              "%s rank %d read %llu bytes, its slices are %llu",
                              hoist_path_name(paths[p]), rank,
                              (unsigned long long)atomic_load(&tp_read_count),
                              (unsigned long long)want);
                ck_assert_uint_eq(s.read_bytes, want);
            }
            hoist_weights_free(w);
        }
    /* an ordinary load reports what it read too */
    tp_count_start(false);
    hoist_weights *w = tp_load_ok(m, HOIST_PATH_STREAM, NULL);
    tp_count_stop();
    ck_assert_uint_eq(tp_stats(w).read_bytes, atomic_load(&tp_read_count));
    ck_assert_uint_ge(tp_stats(w).read_bytes, total);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* uring with O_DIRECT where the filesystem takes it: reads are whole units around each run, and
 * the stats say how many bytes that was. */
START_TEST(test_uring_direct_units)
{
    char *model = tp_gen(dir, "llama", "--layers 1 --hidden 128 --intermediate 512 --heads 4 "
                                       "--kv-heads 4 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    hoist_tp_options t = tp_opts(1, 2);
    t.heads = t.kv_heads = 4;
    tp_count_start(false);
    hoist_weights *w = tp_load_ok(m, HOIST_PATH_URING, &t);
    tp_count_stop();
    hoist_load_stats s = tp_stats(w);
    /* asked for whole units; the last one may find the end of the file first */
    uint64_t got = atomic_load(&tp_read_count);
    ck_assert_uint_ge(s.read_bytes, got);
    ck_assert_uint_lt(s.read_bytes - got, 4096);
    ck_assert_uint_ge(got, s.bytes);
    ck_assert_uint_lt(s.read_bytes, hoist_model_total_bytes(m));
    hoist_weights_free(w);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* stream on a cold model reads each rank's slices with O_DIRECT, every range widened to whole
 * 4096-byte blocks: the bytes are the slices', no page of the file stays cached, and storage was
 * asked for at least the slices and less than the model. */
START_TEST(test_stream_cold_slices)
{
    char *model = tp_gen(dir, "cold", "--layers 2 --hidden 256 --intermediate 1024 --heads 4 "
                                      "--kv-heads 2 --vocab 512 --dtype bf16");
    hoist_model *m = st_open(model);
    const char *file = hoist_model_file_path(m, 0);
    size_t n = hoist_model_tensor_count(m);
    for (int rank = 0; rank < 2; rank++) {
        st_uncache(file);
        if (st_cached_fraction(file) > 0) { /* a filesystem that keeps it (tmpfs) */
            fprintf(stderr, "skipped: %s stays in the page cache\n", file);
            break;
        }
        hoist_tp_options t = tp_opts(rank, 2);
        st_log_start();
        hoist_weights *w = tp_load_ok(m, HOIST_PATH_STREAM, &t);
        hoist_set_log_callback(NULL, NULL, HOIST_LOG_ERROR);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "reading what is not cached with O_DIRECT"), 1);
        ck_assert_msg(st_cached_fraction(file) == 0, "rank %d left %.2f%% of the file cached",
                      rank, st_cached_fraction(file) * 100);
        hoist_load_stats s = tp_stats(w);
        ck_assert_uint_ge(s.read_bytes, s.bytes);
        ck_assert_uint_lt(s.read_bytes, hoist_model_total_bytes(m));
        for (size_t i = 0; i < n; i++) {
            hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
            hoist_tp_split sp;
            ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
            ck_assert_int_eq(hoist_tp_default_rule(m, i, &t, &sp), HOIST_OK);
            tp_ref c;
            ck_assert(tp_ref_cut(&ti, sp.dim, sp.parts, sp.index, false, &c));
            tp_assert_slice(m, w, i, &c, "stream, cold");
        }
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    free(model);
}
END_TEST

/* The default rules' decision for a Llama checkpoint's names, HF and GGUF alike. */
static void check_decision(const char *name, const hoist_tp_split *s, int rank, int world,
                           uint32_t kv_heads)
{
    bool kv = strstr(name, "k_proj") || strstr(name, "v_proj") || strstr(name, "attn_k.") ||
              strstr(name, "attn_v.");
    bool row = strstr(name, "o_proj") || strstr(name, "down_proj") ||
               strstr(name, "attn_output") || strstr(name, "ffn_down");
    bool norm = strstr(name, "norm") != NULL;
    if (norm) {
        ck_assert_msg(s->dim == HOIST_TP_REPLICATE, "%s is not replicated", name);
    } else if (row) {
        ck_assert_msg(s->dim == 1, "%s: dim %d, expected 1", name, s->dim);
    } else {
        ck_assert_msg(s->dim == 0, "%s: dim %d, expected 0", name, s->dim);
    }
    if (kv && (uint32_t)world > kv_heads) { /* a kv head per group of world / kv ranks */
        ck_assert_uint_eq(s->parts, kv_heads);
        ck_assert_uint_eq(s->index, (uint32_t)rank / ((uint32_t)world / kv_heads));
    } else if (!norm) {
        ck_assert_uint_eq(s->parts, (uint32_t)world);
        ck_assert_uint_eq(s->index, (uint32_t)rank);
    }
}

/* Every rank of a model under the default rules, through one path: decisions, bytes, shapes. */
static void check_default_rules(hoist_model *m, int world, uint32_t kv_heads, hoist_path path)
{
    size_t n = hoist_model_tensor_count(m);
    for (int rank = 0; rank < world; rank++) {
        hoist_tp_options t = tp_opts(rank, world);
        hoist_weights *w = tp_load_ok(m, path, &t);
        for (size_t i = 0; i < n; i++) {
            hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
            hoist_tp_split s;
            ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
            ck_assert_int_eq(hoist_tp_default_rule(m, i, &t, &s), HOIST_OK);
            check_decision(ti.name, &s, rank, world, kv_heads);
            tp_ref c;
            ck_assert(tp_ref_cut(&ti, s.dim, s.parts, s.index, false, &c));
            tp_assert_slice(m, w, i, &c, hoist_path_name(path));
        }
        hoist_weights_free(w);
    }
}

START_TEST(test_default_rules_safetensors)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    check_default_rules(m, 2, 2, HOIST_PATH_STREAM);
    check_default_rules(m, 4, 2, HOIST_PATH_URING); /* kv heads replicated in pairs */
    check_default_rules(m, 4, 2, HOIST_PATH_MMAP);
    /* an explicit head count overrides config.json's, and must divide too */
    hoist_tp_options t = tp_opts(0, 4);
    t.heads = 6;
    t.kv_heads = 2;
    hoist_weights *w = NULL;
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "6 attention heads do not divide among 4"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "q_proj"));
    hoist_model_free(m);
    free(model);
}
END_TEST

/* A GGUF Q8_0 model: the same decisions by llama.cpp's names, and dim-1 parts of whole blocks. */
START_TEST(test_default_rules_gguf_q8_0)
{
    char *model = tp_gen(dir, "gg", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --format gguf --dtype q8_0");
    hoist_model *m = st_open(model);
    check_default_rules(m, 2, 2, HOIST_PATH_MMAP);
    check_default_rules(m, 4, 2, HOIST_PATH_STREAM);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* A dim-1 part that would cut a Q8_0 block is refused naming the tensor; with pad the part is
 * rounded up to whole blocks and the rest zero-filled. */
START_TEST(test_gguf_block_boundaries)
{
    char *model = tp_gen(dir, "gg", "--layers 1 --hidden 64 --intermediate 96 --heads 4 "
                                    "--kv-heads 2 --vocab 128 --format gguf --dtype q8_0");
    hoist_model *m = st_open(model);
    hoist_tp_options t = tp_opts(1, 2);
    hoist_weights *w = NULL;
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(w);
    const char *e = hoist_last_error();
    ck_assert_msg(strstr(e, "blk.0.ffn_down.weight") && strstr(e, "32-element blocks of Q8_0"),
                  "%s", e);
    size_t down;
    ck_assert_int_eq(hoist_model_find(m, "blk.0.ffn_down.weight", &down), HOIST_OK);
    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_tensor(m, down, &ti), HOIST_OK);
    for (int rank = 0; rank < 2; rank++) {
        t = tp_opts(rank, 2);
        t.pad = 1;
        w = tp_load_ok(m, paths[rank], &t);
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_weights_view(w, down, &v), HOIST_OK);
        ck_assert_int_eq(v.shape[1], 64); /* 96 / 2 = 48, in whole blocks of 32 */
        tp_ref c; /* in blocks: 3 per row, parts of 2 */
        ck_assert(tp_ref_cut(&ti, 1, 2, (uint32_t)rank, true, &c));
        ck_assert_uint_eq(c.p, 2);
        tp_assert_slice(m, w, down, &c, "padded Q8_0");
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    free(model);
}
END_TEST

/* Q4_K (256-element blocks) and F16 in a handwritten GGUF: dim 0 and dim 1 through every path;
 * 8 parts of a 1024-wide Q4_K row would cut its blocks: refused, or padded so that ranks 4-7 get
 * only zeros. */
START_TEST(test_gguf_q4_k)
{
    tp_gguf_tensor ts[] = {
        {"a.q4k", 12, HOIST_DTYPE_Q4_K, 2, {1024, 8}},
        {"b.q8", 8, HOIST_DTYPE_Q8_0, 2, {128, 6}},
        {"c.f16", 1, HOIST_DTYPE_F16, 2, {16, 4}},
    };
    char *path = tu_path(dir, "k.gguf");
    tp_write_gguf(path, ts, 3);
    hoist_model *m = st_open(path);
    for (int dim = 0; dim < 2; dim++)
        for (int rank = 0; rank < 2; rank++) {
            dim_rule r = {.dim = dim};
            hoist_tp_options t = tp_opts(rank, 2);
            t.rule = cut_dim;
            t.rule_user = &r;
            hoist_weights *w = tp_load_ok(m, paths[(dim + rank) % 3], &t);
            for (size_t i = 0; i < 3; i++) {
                hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
                ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
                tp_ref c;
                ck_assert(tp_ref_cut(&ti, dim, 2, (uint32_t)rank, false, &c));
                tp_assert_slice(m, w, i, &c, "gguf");
            }
            hoist_weights_free(w);
        }
    size_t q4;
    ck_assert_int_eq(hoist_model_find(m, "a.q4k", &q4), HOIST_OK);
    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_tensor(m, q4, &ti), HOIST_OK);
    for (int pad = 0; pad < 2; pad++)
        for (int rank = 0; rank < 8; rank += 3) {
            dim_rule r = {.dim = 1, .pad = pad};
            hoist_tp_options t = tp_opts(rank, 8);
            t.rule = cut_dim;
            t.rule_user = &r;
            hoist_weights *w = NULL;
            int rc = tp_load(m, HOIST_PATH_STREAM, &t, &w);
            if (!pad) {
                ck_assert_int_eq(rc, HOIST_E_INVALID_ARG); /* 128 of a 256-element block */
                ck_assert_ptr_nonnull(strstr(hoist_last_error(), "a.q4k"));
                continue;
            }
            ck_assert_int_eq(rc, HOIST_OK);
            tp_ref c;
            ck_assert(tp_ref_cut(&ti, 1, 8, (uint32_t)rank, true, &c));
            ck_assert_uint_eq(c.p, 1); /* one block each: ranks 4..7 past the end */
            tp_assert_slice(m, w, q4, &c, "padded Q4_K");
            hoist_weights_free(w);
        }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* What a rule may return, and what a split may not say. */
typedef struct bad_rule {
    int ret;
    hoist_tp_split split;
} bad_rule;

static int answer(const hoist_tensor_info *t, int rank, int world, hoist_tp_split *s, void *user)
{
    (void)t, (void)rank, (void)world;
    const bad_rule *b = user;
    *s = b->split;
    return b->ret;
}

/* The answer for the tensor called "f6"; every other is replicated. */
static int answer_f6(const hoist_tensor_info *t, int rank, int world, hoist_tp_split *s,
                     void *user)
{
    return strcmp(t->name, "f6") == 0 ? answer(t, rank, world, s, user) : 0;
}

/* A dimension that does not divide is refused naming the tensor and the fix; pad gives each
 * part the ceiling, the last rank's rows past the end zeros (rank 3 of [10, 6] by rows: row 9
 * then two zero rows; by columns: nothing at all). A part of a sub-byte dtype must be whole
 * bytes. */
START_TEST(test_non_dividing_and_padding)
{
    char *path = tu_path(dir, "odd.safetensors");
    uint8_t data[60 + 24];
    tp_fill(data, sizeof data, 5);
    tu_write_safetensors(path,
                         "{\"odd\": {\"dtype\": \"U8\", \"shape\": [10, 6], \"data_offsets\": "
                         "[0, 60]}, \"f6\": {\"dtype\": \"F6_E2M3\", \"shape\": [2, 16], "
                         "\"data_offsets\": [60, 84]}}",
                         data, sizeof data);
    hoist_model *m = st_open(path);
    size_t odd, f6;
    ck_assert_int_eq(hoist_model_find(m, "odd", &odd), HOIST_OK);
    ck_assert_int_eq(hoist_model_find(m, "f6", &f6), HOIST_OK);
    for (int dim = 0; dim < 2; dim++) {
        dim_rule r = {.dim = dim};
        hoist_tp_options t = tp_opts(3, 4);
        t.rule = cut_dim;
        t.rule_user = &r;
        hoist_weights *w = NULL;
        ck_assert_int_eq(tp_load(m, HOIST_PATH_MMAP, &t, &w), HOIST_E_INVALID_ARG);
        ck_assert_ptr_null(w);
        const char *e = hoist_last_error();
        ck_assert_msg(strstr(e, "'odd'") && strstr(e, "does not divide into 4 equal parts") &&
                          strstr(e, "pad"),
                      "%s", e);
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, odd, &ti), HOIST_OK);
        for (int rank = 0; rank < 4; rank++) {
            r.pad = 1;
            t.rank = rank;
            w = tp_load_ok(m, paths[rank % 3], &t);
            tp_ref c;
            ck_assert(tp_ref_cut(&ti, dim, 4, (uint32_t)rank, true, &c));
            tp_assert_slice(m, w, odd, &c, "padded");
            if (rank == 3 && dim == 1) ck_assert_uint_eq(c.r, 0);
            hoist_weights_free(w);
        }
    }
    /* F6: 16 / 8 = 2 elements, 12 bits: not a whole byte */
    bad_rule f6_by_columns = {0, {.dim = 1, .parts = 8, .index = 0}};
    hoist_tp_options t = tp_opts(0, 8);
    t.rule = answer_f6;
    t.rule_user = &f6_by_columns;
    hoist_weights *w = NULL;
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "'f6'"));
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_rule_answers)
{
    char *path = tu_path(dir, "zoo.safetensors");
    tp_write_zoo(path);
    hoist_model *m = st_open(path);
    struct {
        bad_rule rule;
        int status;
        const char *message;
    } cases[] = {
        {{HOIST_E_NOT_FOUND, {0}}, HOIST_E_NOT_FOUND, "refused it (returned -23)"},
        {{-12345, {0}}, HOIST_E_ABORTED, "refused it (returned -12345)"},
        {{7, {0}}, HOIST_E_ABORTED, "returned 7"},
        {{0, {.dim = 3, .parts = 2, .index = 0}}, HOIST_E_INVALID_ARG, "no dimension 3"},
        {{0, {.dim = 0, .parts = 2, .index = 2}}, HOIST_E_INVALID_ARG, "part 2 of 2"},
        {{0, {.dim = 0, .parts = 0, .index = 0}}, HOIST_E_INVALID_ARG, "part 0 of 0"},
        {{0, {.dim = -7, .parts = 2, .index = 0}}, HOIST_E_INVALID_ARG, "no dimension -7"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        hoist_tp_options t = tp_opts(0, 2);
        t.rule = answer;
        t.rule_user = &cases[k].rule;
        int64_t live = hoist__alloc_live_bytes();
        hoist_weights *w = NULL;
        ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), cases[k].status);
        ck_assert_ptr_null(w);
        ck_assert_msg(strstr(hoist_last_error(), cases[k].message) &&
                          strstr(hoist_last_error(), "zoo.BOOL.2d"),
                      "case %zu: %s", k, hoist_last_error());
        ck_assert_int_eq(hoist__alloc_live_bytes(), live);
    }
    /* HOIST_TP_RULE_DEFAULT hands the tensor to the default rules (here: replicated) */
    bad_rule dflt = {HOIST_TP_RULE_DEFAULT, {.dim = 0, .parts = 2}};
    hoist_tp_options t = tp_opts(1, 2);
    t.rule = answer;
    t.rule_user = &dflt;
    hoist_weights *w = tp_load_ok(m, HOIST_PATH_MMAP, &t);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

static int no_sink(const hoist_piece *p, void *user)
{
    (void)p, (void)user;
    return -1;
}

/* Options the load refuses before reading anything, each naming what is wrong. */
START_TEST(test_refused_options)
{
    char *model = tp_gen(dir, "st", "--layers 1 --hidden 64 --intermediate 128 --heads 4 "
                                    "--kv-heads 2 --vocab 128 --dtype bf16");
    hoist_model *m = st_open(model);
    hoist_weights *w = NULL;
    hoist_tp_options t = tp_opts(2, 2);
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "rank 2 outside 0..1"));
    t = tp_opts(0, 0);
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    t = tp_opts(0, 2);
    t.size = 0;
    ck_assert_int_eq(tp_load(m, HOIST_PATH_STREAM, &t, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist_tp_options.size is 0"));
    t = tp_opts(0, 2);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.tp = &t;
    o.verify = HOIST_VERIFY_MANIFEST;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "manifest"));
    o.verify = 0;
    ck_assert_int_eq(hoist_load_sink(m, &o, no_sink, NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "opts->tp"));
    t.nccl_comm = (void *)1; /* not cooperative: refused before NCCL is asked anything */
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "nccl_comm serves only a cooperative"));
    ck_assert_ptr_null(w);
    /* world 1: an ordinary load, whatever the rules */
    t = tp_opts(0, 1);
    w = tp_load_ok(m, HOIST_PATH_STREAM, &t);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* HOIST_VERIFY_READBACK reads each rank's slices back and compares them with the files. */
START_TEST(test_readback)
{
    char *model = tp_gen(dir, "st", "--layers 1 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    hoist_tp_options t = tp_opts(1, 2);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.tp = &t;
    o.verify = HOIST_VERIFY_READBACK;
    o.chunk_bytes = 8192;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    ck_assert_double_gt(tp_stats(w).readback_seconds, 0);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(model);
}
END_TEST

/* A packed container sliced: the chunks its slices touch are read whole and decoded, the slices
 * equal those of the checkpoint it was packed from. */
START_TEST(test_packed)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    char *packed = tu_path(dir, "m.hoist");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "pack '%s' '%s' --chunk 4096 > /dev/null", model, packed);
    ck_assert_int_eq(tu_run_cli(cmd), 0);
    hoist_model *st = st_open(model), *pk = st_open(packed);
    size_t n = hoist_model_tensor_count(st);
    for (int rank = 0; rank < 2; rank++) {
        hoist_tp_options t = tp_opts(rank, 2);
        t.heads = 4; /* the container has no config.json beside it */
        t.kv_heads = 2;
        hoist_weights *w = tp_load_ok(pk, paths[rank], &t);
        hoist_load_stats s = tp_stats(w);
        ck_assert_uint_lt(s.file_bytes, hoist_model_file_size(pk, 0)); /* chunks skipped */
        for (size_t i = 0; i < n; i++) {
            hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
            hoist_tp_split sp;
            ck_assert_int_eq(hoist_model_tensor(st, i, &ti), HOIST_OK);
            ck_assert_int_eq(hoist_tp_default_rule(st, i, &t, &sp), HOIST_OK);
            tp_ref c;
            ck_assert(tp_ref_cut(&ti, sp.dim, sp.parts, sp.index, false, &c));
            size_t j;
            ck_assert_int_eq(hoist_model_find(pk, ti.name, &j), HOIST_OK);
            hoist_view v = HOIST_VIEW_INIT;
            ck_assert_int_eq(hoist_weights_view(w, j, &v), HOIST_OK);
            ck_assert_uint_eq(v.nbytes, c.nbytes);
            uint8_t *full = tp_file_bytes(st, i), *want = tp_ref_bytes(&c, full);
            uint8_t *got = malloc(c.nbytes + 1);
            ck_assert_int_eq(hoist_weights_read(w, j, 0, got, c.nbytes), HOIST_OK);
            ck_assert_msg(memcmp(got, want, c.nbytes) == 0, "packed %s differs", ti.name);
            free(got);
            free(want);
            free(full);
        }
        hoist_weights_free(w);
    }
    hoist_model_free(st);
    hoist_model_free(pk);
    free(model);
    free(packed);
}
END_TEST

/* hoist_plan_options.tp: each device holds one rank, its weights exactly the arena a load of
 * that rank takes, its cache its kv heads (one replicated head when there are fewer than ranks);
 * a device list that does not match the ranks is refused, and a rank that does not fit is named. */
START_TEST(test_plan)
{
    char *model = tp_gen(dir, "st", "--layers 2 --hidden 128 --intermediate 256 --heads 4 "
                                    "--kv-heads 2 --vocab 256 --dtype bf16");
    hoist_model *m = st_open(model);
    for (int world = 2; world <= 4; world += 2) {
        hoist_plan_device devs[4];
        for (int d = 0; d < world; d++)
            devs[d] = (hoist_plan_device)TU_PLAN_DEVICE(d, 1ull << 30, 0);
        hoist_tp_options t = tp_opts(0, world);
        hoist_plan_options po = HOIST_PLAN_OPTIONS_DEFAULT;
        po.devices = devs;
        po.ndevices = (size_t)world;
        po.max_seq_len = 1000;
        po.tp = &t;
        hoist_plan *plan = NULL;
        ck_assert_msg(hoist_plan_create(m, &po, &plan) == HOIST_OK, "%s", hoist_last_error());
        hoist_plan_info in = HOIST_PLAN_INFO_INIT;
        ck_assert_int_eq(hoist_plan_info_get(plan, &in), HOIST_OK);
        ck_assert_uint_eq(in.tp_world, (size_t)world);
        /* 2 kv heads: 2 / 2 = one per rank over 2 ranks, one replicated head over 4 */
        uint32_t kv_rank = world <= 2 ? 2 / (uint32_t)world : 1;
        uint64_t kv = 2ull * 2 * kv_rank * 32 * 2 * 1000; /* K,V x layers x heads x dim x f16 */
        for (int d = 0; d < world; d++) {
            hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
            ck_assert_int_eq(hoist_plan_usage_get(plan, (size_t)d, &u), HOIST_OK);
            t.rank = d;
            hoist_weights *w = tp_load_ok(m, HOIST_PATH_STREAM, &t);
            ck_assert_uint_eq(u.weights_bytes, tp_stats(w).arena_bytes);
            ck_assert_uint_eq(u.kv_bytes, kv);
            ck_assert_uint_eq(u.layers, 2);
            ck_assert(u.embeddings && u.head);
            hoist_weights_free(w);
        }
        /* not for hoist_load: each rank loads with opts.tp */
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.plan = plan;
        hoist_weights *w = NULL;
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor-parallel over"));
        hoist_plan_free(plan);
        /* a rank that does not fit is named */
        for (int d = 0; d < world; d++) devs[d].free_bytes = 1u << 20;
        ck_assert_int_eq(hoist_plan_create(m, &po, &plan), HOIST_E_NO_FIT);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor-parallel rank 0 of"));
        /* one device per rank */
        po.ndevices = (size_t)world - 1;
        ck_assert_int_eq(hoist_plan_create(m, &po, &plan), HOIST_E_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "one per rank"));
    }
    hoist_model_free(m);
    free(model);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tp");
    TCase *tc = tcase_create("slices");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_every_dtype_every_path);
    tcase_add_test(tc, test_reads_only_its_slice);
    tcase_add_test(tc, test_uring_direct_units);
    tcase_add_test(tc, test_stream_cold_slices);
    tcase_add_test(tc, test_default_rules_safetensors);
    tcase_add_test(tc, test_default_rules_gguf_q8_0);
    tcase_add_test(tc, test_gguf_block_boundaries);
    tcase_add_test(tc, test_gguf_q4_k);
    tcase_add_test(tc, test_non_dividing_and_padding);
    tcase_add_test(tc, test_rule_answers);
    tcase_add_test(tc, test_refused_options);
    tcase_add_test(tc, test_readback);
    tcase_add_test(tc, test_packed);
    tcase_add_test(tc, test_plan);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
