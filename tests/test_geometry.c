/* formats/geometry.c: model geometry from config.json (as `hoist gen` writes it, and handcrafted
 * variants), from GGUF-style metadata (text in a safetensors __metadata__, and typed in GGUF
 * files), and one bad configuration per failure mode. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* A tiny model (one BF16 and one F32 tensor, BF16 holding most bytes) with config.json beside
 * it; config NULL writes none. */
static hoist_model *model_with_config(const char *config)
{
    char *st = tu_path(dir, "model.safetensors");
    static const unsigned char data[40] = {0};
    tu_write_safetensors(st,
                         "{\"a\":{\"dtype\":\"BF16\",\"shape\":[16],\"data_offsets\":[0,32]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
                         data, sizeof data);
    if (config) {
        char *cp = tu_path(dir, "config.json");
        tu_write(cp, config, strlen(config));
        free(cp);
    }
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(st, NULL, &m), HOIST_OK);
    free(st);
    return m;
}

/* hoist gen's config.json round-trips every field. */
START_TEST(test_gen_config)
{
    char args[512];
    snprintf(args, sizeof args,
             "gen '%s/m' --layers 3 --hidden 96 --intermediate 200 --heads 6 --kv-heads 2 "
             "--head-dim 24 --vocab 300 --tie-embeddings --dtype f16 --quiet",
             dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *md = tu_path(dir, "m");
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(md, NULL, &m), HOIST_OK);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    ck_assert_str_eq(hoist_last_error(), "");
    ck_assert_str_eq(g.architecture, "llama");
    ck_assert_uint_eq(g.n_layers, 3);
    ck_assert_uint_eq(g.hidden, 96);
    ck_assert_uint_eq(g.intermediate, 200);
    ck_assert_uint_eq(g.n_heads, 6);
    ck_assert_uint_eq(g.n_kv_heads, 2);
    ck_assert_uint_eq(g.head_dim, 24);
    ck_assert_uint_eq(g.vocab, 300);
    ck_assert_int_eq(g.tied_embeddings, 1);
    ck_assert_int_eq(g.dtype, HOIST_DTYPE_F16);
    ck_assert_double_eq_tol(g.rms_eps, 1e-5, 1e-12);
    ck_assert_double_eq_tol(g.rope_theta, 500000.0, 1e-6);
    ck_assert_uint_gt(g.max_position, 0);
    ck_assert_int_eq(hoist_geometry_check(&g), HOIST_OK);

    /* the same through the path-only entry point */
    char *cp = tu_path(md, "config.json");
    hoist_geometry g2 = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_geometry_from_config(cp, &g2), HOIST_OK);
    ck_assert_mem_eq(&g, &g2, sizeof g);
    free(cp);
    hoist_model_free(m);
    free(md);
}
END_TEST

/* Absent keys take the HF defaults; the dtype comes from the tensors' bytes. */
START_TEST(test_defaults)
{
    hoist_model *m = model_with_config("{\"model_type\":\"llama\",\"num_hidden_layers\":2,"
                                       "\"hidden_size\":64,\"intermediate_size\":128,"
                                       "\"num_attention_heads\":8,\"vocab_size\":100,"
                                       "\"head_dim\":null}");
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    ck_assert_uint_eq(g.n_kv_heads, 8);
    ck_assert_uint_eq(g.head_dim, 8);
    ck_assert_uint_eq(g.max_position, 2048);
    ck_assert_double_eq_tol(g.rms_eps, 1e-6, 1e-15);
    ck_assert_double_eq_tol(g.rope_theta, 10000.0, 1e-9);
    ck_assert_int_eq(g.tied_embeddings, 0);
    ck_assert_int_eq(g.dtype, HOIST_DTYPE_BF16); /* 32 of the 40 bytes */
    hoist_model_free(m);
}
END_TEST

/* Multimodal layout (text_config), "dtype" with a torch. prefix, rope_parameters. */
START_TEST(test_text_config_and_new_keys)
{
    hoist_model *m = model_with_config(
        "{\"model_type\":\"llava\",\"dtype\":\"torch.float16\",\"tie_word_embeddings\":true,"
        "\"text_config\":{\"model_type\":\"llama\",\"num_hidden_layers\":4,\"hidden_size\":32,"
        "\"intermediate_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":1,"
        "\"vocab_size\":50,\"max_position_embeddings\":131072,"
        "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000000}}}");
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    ck_assert_str_eq(g.architecture, "llama");
    ck_assert_uint_eq(g.n_layers, 4);
    ck_assert_uint_eq(g.n_kv_heads, 1);
    ck_assert_uint_eq(g.head_dim, 8);
    ck_assert_uint_eq(g.max_position, 131072);
    ck_assert_double_eq_tol(g.rope_theta, 1e6, 1e-6);
    ck_assert_int_eq(g.tied_embeddings, 1);
    ck_assert_int_eq(g.dtype, HOIST_DTYPE_F16);
    hoist_model_free(m);
}
END_TEST

#define GOOD_TAIL "\"intermediate_size\":128,\"num_attention_heads\":8,\"vocab_size\":100"

/* One bad configuration per failure mode: status, and a message naming the file and key. */
static const struct {
    const char *config; /* NULL: no config.json at all */
    int status;
    const char *key; /* must appear in the message */
} bad[] = {
    {NULL, HOIST_E_OPEN, "config.json"},
    {"{\"model_type\":\"llama\",", HOIST_E_BAD_JSON, "malformed JSON"},
    {"{\"model_type\":\"llama\",\"model_type\":\"x\"}", HOIST_E_DUPLICATE_KEY, "duplicate"},
    {"[1,2]", HOIST_E_BAD_CONFIG, "array"},
    {"{\"num_hidden_layers\":2,\"hidden_size\":64," GOOD_TAIL "}", HOIST_E_BAD_CONFIG,
     "\"model_type\""},
    {"{\"model_type\":\"a-model-type-name-of-40-bytes-long-xx\",\"num_hidden_layers\":2,"
     "\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"model_type\""},
    {"{\"model_type\":7,\"num_hidden_layers\":2,\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"model_type\""},
    {"{\"model_type\":\"llama\",\"hidden_size\":64," GOOD_TAIL "}", HOIST_E_BAD_CONFIG,
     "\"num_hidden_layers\" is missing"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":\"2\",\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_hidden_layers\" is a JSON string"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2.0,\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_hidden_layers\" is a JSON real"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":0,\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_hidden_layers\" is 0"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":-3,\"hidden_size\":64," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_hidden_layers\" is -3"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":9223372036854775807,\"hidden_size\":64,"
     GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_hidden_layers\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":4294967296," GOOD_TAIL
     "}",
     HOIST_E_BAD_CONFIG, "\"hidden_size\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"num_key_value_heads\":16," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"num_key_value_heads\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"num_key_value_heads\":3," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "num_key_value_heads"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":60," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"head_dim\" is missing"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,\"head_dim\":0,"
     GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"head_dim\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"intermediate_size\":128,\"num_attention_heads\":8}",
     HOIST_E_BAD_CONFIG, "\"vocab_size\" is missing"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"max_position_embeddings\":18446744073709551615," GOOD_TAIL "}",
     HOIST_E_BAD_JSON, "too big integer"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"max_position_embeddings\":8589934592," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"max_position_embeddings\" is 8589934592"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,\"rms_norm_eps\":-1,"
     GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"rms_norm_eps\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"rope_theta\":\"big\"," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"rope_theta\" is a JSON string"},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,\"rope_theta\":0,"
     GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"rope_theta\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"tie_word_embeddings\":\"yes\"," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"tie_word_embeddings\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"torch_dtype\":\"float13\"," GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"torch_dtype\" is \"float13\""},
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":64,\"torch_dtype\":16,"
     GOOD_TAIL "}",
     HOIST_E_BAD_CONFIG, "\"torch_dtype\""},
    {"{\"model_type\":\"llava\",\"text_config\":{\"num_hidden_layers\":2,\"hidden_size\":64,"
     "\"intermediate_size\":128,\"num_attention_heads\":8}}",
     HOIST_E_BAD_CONFIG, "\"text_config.vocab_size\" is missing"},
};

START_TEST(test_bad_config)
{
    hoist_model *m = model_with_config(bad[_i].config);
    hoist_geometry g;
    memset(&g, 0x5a, sizeof g);
    g.size = sizeof g;
    int rc = hoist_model_geometry(m, &g);
    ck_assert_msg(rc == bad[_i].status, "case %d: status %s (%s), want %s", _i,
                  hoist_status_name(rc), hoist_last_error(), hoist_status_name(bad[_i].status));
    const char *msg = hoist_last_error();
    ck_assert_msg(strstr(msg, "config.json") != NULL, "case %d: message '%s' names no file", _i,
                  msg);
    ck_assert_msg(strstr(msg, bad[_i].key) != NULL, "case %d: message '%s' lacks '%s'", _i, msg,
                  bad[_i].key);
    /* nothing half-filled reaches the caller, and its size stays */
    hoist_geometry zero;
    memset(&zero, 0, sizeof zero);
    zero.size = sizeof zero;
    ck_assert_mem_eq(&g, &zero, sizeof g);
    hoist_model_free(m);
}
END_TEST

/* GGUF-style metadata ("general.architecture", "<arch>.*") describes the model without a
 * config.json; here it rides in a safetensors __metadata__, the same table GGUF fills. */
static hoist_model *model_with_meta(const char *meta)
{
    char *st = tu_path(dir, "meta.safetensors");
    char header[2048];
    snprintf(header, sizeof header,
             "{\"__metadata__\":{%s},"
             "\"token_embd.weight\":{\"dtype\":\"F16\",\"shape\":[70,16],\"data_offsets\":[0,2240]}}",
             meta);
    static unsigned char data[2240];
    tu_write_safetensors(st, header, data, sizeof data);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(st, NULL, &m), HOIST_OK);
    free(st);
    return m;
}

#define GGUF_META                                                                                 \
    "\"general.architecture\":\"llama\",\"llama.block_count\":\"5\","                             \
    "\"llama.embedding_length\":\"16\",\"llama.feed_forward_length\":\"48\","                     \
    "\"llama.attention.head_count\":\"4\",\"llama.attention.head_count_kv\":\"2\","               \
    "\"llama.context_length\":\"8192\",\"llama.rope.freq_base\":\"500000\","                      \
    "\"llama.attention.layer_norm_rms_epsilon\":\"1e-05\""

START_TEST(test_gguf_metadata)
{
    hoist_model *m = model_with_meta(GGUF_META);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    ck_assert_str_eq(g.architecture, "llama");
    ck_assert_uint_eq(g.n_layers, 5);
    ck_assert_uint_eq(g.hidden, 16);
    ck_assert_uint_eq(g.intermediate, 48);
    ck_assert_uint_eq(g.n_heads, 4);
    ck_assert_uint_eq(g.n_kv_heads, 2);
    ck_assert_uint_eq(g.head_dim, 4);
    ck_assert_uint_eq(g.vocab, 70); /* from token_embd.weight: no llama.vocab_size */
    ck_assert_uint_eq(g.max_position, 8192);
    ck_assert_double_eq_tol(g.rope_theta, 5e5, 1e-6);
    ck_assert_double_eq_tol(g.rms_eps, 1e-5, 1e-12);
    ck_assert_int_eq(g.tied_embeddings, 1); /* no output.weight */
    ck_assert_int_eq(g.dtype, HOIST_DTYPE_F16);
    hoist_model_free(m);
}
END_TEST

START_TEST(test_gguf_metadata_bad)
{
    static const struct {
        const char *meta, *key;
    } cases[] = {
        {"\"general.architecture\":\"llama\"", "\"llama.block_count\" is missing"},
        {GGUF_META ",\"llama.vocab_size\":\"-70\"", "\"llama.vocab_size\""},
        {"\"general.architecture\":\"llama\",\"llama.block_count\":\"5x\"",
         "\"llama.block_count\" is \"5x\""},
        {"\"general.architecture\":\"llama\",\"llama.block_count\":\"99999\"",
         "\"llama.block_count\" is 99999"},
        {"\"general.architecture\":\"\"", "general.architecture"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hoist_model *m = model_with_meta(cases[i].meta);
        hoist_geometry g = HOIST_GEOMETRY_INIT;
        ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_E_BAD_CONFIG);
        ck_assert_msg(strstr(hoist_last_error(), cases[i].key) != NULL, "case %zu: '%s'", i,
                      hoist_last_error());
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "meta.safetensors"));
        hoist_model_free(m);
    }
}
END_TEST

/* A real GGUF (tests/data/gguf, see its README): typed metadata, each integer type accepted for
 * an integer key and each float type for a float key. */
static hoist_model *gguf_data(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "gguf/%s", name);
    char *path = tu_data(rel);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    free(path);
    return m;
}

START_TEST(test_gguf_typed)
{
    hoist_model *m = gguf_data("g_typed.gguf");
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_msg(hoist_model_geometry(m, &g) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_str_eq(g.architecture, "llama");
    ck_assert_uint_eq(g.n_layers, 2);      /* u64 */
    ck_assert_uint_eq(g.hidden, 64);       /* i32 */
    ck_assert_uint_eq(g.intermediate, 128); /* u16 */
    ck_assert_uint_eq(g.n_heads, 4);       /* u8 */
    ck_assert_uint_eq(g.n_kv_heads, 2);
    ck_assert_uint_eq(g.head_dim, 16);
    ck_assert_uint_eq(g.vocab, 100);
    ck_assert_uint_eq(g.max_position, 2048);
    ck_assert(g.rope_theta == 10000.0);   /* f64 */
    ck_assert(g.rms_eps == (double)1e-6f); /* f32, as stored */
    ck_assert_int_eq(g.dtype, HOIST_DTYPE_F32);
    hoist_model_free(m);
}
END_TEST

/* A number of the wrong type is refused, not read as text. */
START_TEST(test_gguf_wrong_types)
{
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"g_block_count_f32.gguf", "\"llama.block_count\" has type f32"},
        {"g_heads_negative.gguf", "\"llama.attention.head_count\" is -4"},
        {"g_eps_array.gguf", "\"llama.attention.layer_norm_rms_epsilon\" has type array"},
        {"g_ffn_bool.gguf", "\"llama.feed_forward_length\" has type bool"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hoist_model *m = gguf_data(cases[i].file);
        hoist_geometry g = HOIST_GEOMETRY_INIT;
        ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_E_BAD_CONFIG);
        ck_assert_msg(strstr(hoist_last_error(), cases[i].want) != NULL, "%s: '%s'",
                      cases[i].file, hoist_last_error());
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), cases[i].file));
        hoist_model_free(m);
    }
}
END_TEST

/* Caller-built geometries (hoist plan's options) go through the same bounds. */
START_TEST(test_check)
{
    hoist_geometry g = {.size = sizeof g, .architecture = "llama", .n_layers = 60, .hidden = 7168,
                        .intermediate = 20480, .n_heads = 56, .n_kv_heads = 8, .head_dim = 128,
                        .vocab = 64000, .max_position = 200000, .rms_eps = 1e-5,
                        .rope_theta = 5e6, .dtype = HOIST_DTYPE_F16};
    ck_assert_int_eq(hoist_geometry_check(&g), HOIST_OK);
    hoist_geometry b = g;
    b.n_kv_heads = 5;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "key-value heads"));
    b = g;
    b.n_layers = 0;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "n_layers"));
    b = g;
    b.rope_theta = -1;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    b = g;
    memset(b.architecture, 'x', sizeof b.architecture);
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    b = g;
    b.dtype = HOIST_DTYPE_COUNT;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    ck_assert_int_eq(hoist_geometry_check(NULL), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_model_geometry(NULL, &g), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_geometry_from_config(NULL, &g), HOIST_E_INVALID_ARG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("geometry");
    TCase *tc = tcase_create("geometry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_gen_config);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_text_config_and_new_keys);
    tcase_add_loop_test(tc, test_bad_config, 0, (int)(sizeof bad / sizeof *bad));
    tcase_add_test(tc, test_gguf_metadata);
    tcase_add_test(tc, test_gguf_metadata_bad);
    tcase_add_test(tc, test_gguf_typed);
    tcase_add_test(tc, test_gguf_wrong_types);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
