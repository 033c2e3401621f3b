/* formats/variants.c and hoist_session_check: the Llama-family variants read from config.json
 * (transformers 4's rope_scaling and 5's rope_parameters, each model_type's biases, norms and
 * windows) and GGUF metadata, and one refusal per key that would change what the forward pass
 * computes: HOIST_E_BAD_CONFIG naming the key, while loading and planning still work. */
#include "testutil.h"

#include <math.h>
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

/* A config.json of a small model: the shape keys, then `extra` ("" or ", \"key\": value"). */
static hoist_geometry geometry_of(const char *model_type, const char *extra)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"%s\", \"hidden_size\": 64, \"intermediate_size\": 128, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
             "\"vocab_size\": 100, \"max_position_embeddings\": 1024, \"rope_theta\": 10000.0%s}",
             model_type, extra);
    char *p = tu_path(dir, "config.json");
    tu_write(p, cfg, strlen(cfg));
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    int rc = hoist_geometry_from_config(p, &g);
    ck_assert_msg(rc == HOIST_OK, "%s: %s", cfg, hoist_last_error());
    free(p);
    return g;
}

START_TEST(test_families)
{
    hoist_geometry g = geometry_of("llama", "");
    ck_assert_str_eq(g.unsupported, "");
    ck_assert_uint_eq(g.biases, 0);
    ck_assert_int_eq(g.qk_norm, 0);
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_DEFAULT);
    ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_OK);
    g = geometry_of("llama", ", \"attention_bias\": true, \"mlp_bias\": true");
    ck_assert_uint_eq(g.biases, HOIST_BIAS_QKV | HOIST_BIAS_O | HOIST_BIAS_MLP);
    /* Qwen2 has q/k/v biases without the key, and no o_proj bias */
    g = geometry_of("qwen2", "");
    ck_assert_uint_eq(g.biases, HOIST_BIAS_QKV);
    ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_OK);
    /* Qwen3: q/k norms, head_dim 128 when absent (Qwen3Config's default) */
    g = geometry_of("qwen3", "");
    ck_assert_int_eq(g.qk_norm, 1);
    ck_assert_uint_eq(g.head_dim, 128);
    ck_assert_uint_eq(g.biases, 0);
    g = geometry_of("qwen3", ", \"attention_bias\": true, \"head_dim\": 32");
    ck_assert_uint_eq(g.biases, HOIST_BIAS_QKV | HOIST_BIAS_O);
    ck_assert_uint_eq(g.head_dim, 32);
    /* Mistral: no biases whatever the keys say (transformers ignores them), a 4096 window by
     * default, none for null */
    g = geometry_of("mistral", ", \"attention_bias\": true");
    ck_assert_uint_eq(g.biases, 0);
    ck_assert_uint_eq(g.sliding_window, 4096);
    g = geometry_of("mistral", ", \"sliding_window\": null");
    ck_assert_uint_eq(g.sliding_window, 0);
    /* Qwen's window only with use_sliding_window */
    g = geometry_of("qwen2", ", \"sliding_window\": 8, \"use_sliding_window\": false");
    ck_assert_uint_eq(g.sliding_window, 0);
    g = geometry_of("qwen2", ", \"sliding_window\": 8, \"use_sliding_window\": true");
    ck_assert_uint_eq(g.sliding_window, 8);
}
END_TEST

START_TEST(test_rope_types)
{
    /* transformers 4: rope_scaling, "type" the old name of "rope_type" */
    hoist_geometry g = geometry_of("llama", ", \"rope_scaling\": {\"type\": \"linear\", "
                                            "\"factor\": 4.0}");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_LINEAR);
    ck_assert_double_eq(g.rope.factor, 4.0);
    g = geometry_of("llama", ", \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2}");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_DYNAMIC);
    ck_assert_double_eq(g.rope.factor, 2.0);
    /* Llama 3.1's; original_max_position_embeddings read from the dict */
    g = geometry_of("llama", ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                             "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                             "\"original_max_position_embeddings\": 256}");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_LLAMA3);
    ck_assert_double_eq(g.rope.factor, 8.0);
    ck_assert_double_eq(g.rope.low_freq_factor, 1.0);
    ck_assert_double_eq(g.rope.high_freq_factor, 4.0);
    ck_assert_uint_eq(g.rope.original_max_position, 256);
    /* transformers 5: rope_parameters, rope_theta inside winning over the top level's */
    g = geometry_of("qwen2", ", \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
                             "\"rope_theta\": 1000000.0}");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_YARN);
    ck_assert_double_eq(g.rope.factor, 4.0);
    ck_assert_double_eq(g.rope_theta, 1e6);
    ck_assert_uint_eq(g.rope.original_max_position, 1024); /* max_position_embeddings */
    ck_assert_double_eq_tol(g.rope.attention_factor, 0.1 * log(4.0) + 1, 1e-12);
    ck_assert_double_eq(g.rope.beta_fast, 32);
    ck_assert_double_eq(g.rope.beta_slow, 1);
    ck_assert_int_eq(g.rope.truncate, 1);
    /* yarn's options; mscale / mscale_all_dim set the attention factor; a null factor is the
     * ratio of the lengths; a top-level original_max_position_embeddings wins */
    g = geometry_of("llama", ", \"original_max_position_embeddings\": 128, \"rope_scaling\": "
                             "{\"rope_type\": \"yarn\", \"factor\": null, \"beta_fast\": 16, "
                             "\"beta_slow\": 2, \"mscale\": 0.707, \"mscale_all_dim\": 1.0, "
                             "\"truncate\": false, \"original_max_position_embeddings\": 64}");
    ck_assert_uint_eq(g.rope.original_max_position, 128);
    ck_assert_double_eq(g.rope.factor, 8.0);
    ck_assert_double_eq_tol(g.rope.attention_factor,
                            (0.1 * 0.707 * log(8.0) + 1) / (0.1 * log(8.0) + 1), 1e-12);
    ck_assert_double_eq(g.rope.beta_fast, 16);
    ck_assert_int_eq(g.rope.truncate, 0);
    g = geometry_of("llama", ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 2, "
                             "\"attention_factor\": 1.5}");
    ck_assert_double_eq(g.rope.attention_factor, 1.5);
    /* default and null are the plain rotation */
    g = geometry_of("llama", ", \"rope_scaling\": {\"rope_type\": \"default\"}");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_DEFAULT);
    g = geometry_of("llama", ", \"rope_scaling\": null");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_DEFAULT);
    ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_OK);
}
END_TEST

/* Each key that would change the computation: the geometry still loads (planning needs only the
 * shapes), hoist_session_check refuses it naming the key. */
static const struct {
    const char *model_type, *extra, *key;
} refusals[] = {
    {"gemma", "", "\"model_type\" is \"gemma\""},
    {"qwen2_moe", "", "model_type"},
    {"llama", ", \"hidden_act\": \"gelu\"", "\"hidden_act\" is \"gelu\""},
    {"qwen2", ", \"hidden_act\": \"relu\"", "hidden_act"},
    {"llama", ", \"pretraining_tp\": 2", "\"pretraining_tp\" is 2"},
    {"llama", ", \"partial_rotary_factor\": 0.5", "\"partial_rotary_factor\" is 0.5"},
    {"llama", ", \"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.25}",
     "rope_parameters.partial_rotary_factor"},
    {"llama", ", \"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2}",
     "\"rope_scaling.rope_type\" is \"longrope\""},
    {"llama", ", \"rope_parameters\": {\"rope_type\": \"su\"}", "rope_parameters.rope_type"},
    {"llama", ", \"rope_scaling\": {\"type\": \"linear\"}", "\"rope_scaling.factor\" is missing"},
    {"llama", ", \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": \"2\"}",
     "rope_scaling.factor"},
    {"llama", ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
              "\"high_freq_factor\": 4}",
     "rope_scaling.low_freq_factor"},
    {"llama", ", \"rope_scaling\": [1]", "\"rope_scaling\" is a JSON array"},
    {"llama", ", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}",
     "rope_parameters.full_attention"},
    {"llama", ", \"quantization_config\": {\"quant_method\": \"gptq\"}",
     "\"quantization_config\" is present, quant_method \"gptq\""},
    {"llama", ", \"attention_bias\": \"yes\"", "\"attention_bias\" is \"yes\""},
    {"llama", ", \"mlp_bias\": 1", "mlp_bias"},
    {"llama", ", \"layer_types\": [\"full_attention\", \"chunked_attention\"]",
     "layer_types[1]"},
    {"qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 0", "sliding_window"},
};

START_TEST(test_refusals)
{
    for (size_t i = 0; i < sizeof refusals / sizeof *refusals; i++) {
        hoist_geometry g = geometry_of(refusals[i].model_type, refusals[i].extra);
        ck_assert_msg(strstr(g.unsupported, refusals[i].key), "case %zu: '%s'", i,
                      g.unsupported);
        ck_assert_int_eq(hoist_geometry_check(&g), HOIST_OK); /* planning still works */
        ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_E_BAD_CONFIG);
        ck_assert_msg(strstr(hoist_last_error(), refusals[i].key), "case %zu: '%s'", i,
                      hoist_last_error());
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "config.json"));
    }
}
END_TEST

/* The layers that attend over the window, as transformers marks them: Mistral every layer,
 * Qwen from max_window_layers (28 when absent) or from the first "sliding_attention" of
 * layer_types; sessions of any length run them. */
START_TEST(test_sliding_window)
{
    hoist_geometry g = geometry_of("mistral", ", \"sliding_window\": 512");
    ck_assert_uint_eq(g.sliding_window, 512);
    ck_assert_uint_eq(g.window_from_layer, 0);
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = 4096;
    ck_assert_int_eq(hoist_session_check(&g, &o), HOIST_OK);
    g = geometry_of("mistral", ", \"sliding_window\": 16, "
                               "\"layer_types\": [\"sliding_attention\", \"sliding_attention\"]");
    ck_assert_str_eq(g.unsupported, "");
    g = geometry_of("qwen3", ", \"use_sliding_window\": true, \"sliding_window\": 64");
    ck_assert_uint_eq(g.sliding_window, 64);
    ck_assert_uint_eq(g.window_from_layer, 28);
    ck_assert_int_eq(hoist_session_check(&g, &o), HOIST_OK);
    g = geometry_of("qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 64, "
                             "\"max_window_layers\": 1");
    ck_assert_uint_eq(g.window_from_layer, 1);
    /* layer_types wins over max_window_layers, as in transformers */
    g = geometry_of("qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 64, "
                             "\"max_window_layers\": 0, "
                             "\"layer_types\": [\"full_attention\", \"sliding_attention\"]");
    ck_assert_str_eq(g.unsupported, "");
    ck_assert_uint_eq(g.window_from_layer, 1);
    g = geometry_of("qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 64, "
                             "\"layer_types\": [\"full_attention\", \"full_attention\"]");
    ck_assert_uint_eq(g.window_from_layer, 2);
    /* without use_sliding_window, Qwen has no window and layer_types of full attention are fine */
    g = geometry_of("qwen2", ", \"sliding_window\": 64, "
                             "\"layer_types\": [\"full_attention\", \"full_attention\"]");
    ck_assert_uint_eq(g.sliding_window, 0);
    ck_assert_str_eq(g.unsupported, "");
}
END_TEST

/* Window layouts that transformers computes and hoist does not, or that transformers refuses. */
static const struct {
    const char *model_type, *extra, *key;
} window_refusals[] = {
    {"qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 8, "
              "\"layer_types\": [\"sliding_attention\", \"full_attention\"]",
     "layer_types[1]"},
    {"qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 8, "
              "\"layer_types\": [\"sliding_attention\"]",
     "layer_types\" is an array of 1 entries for 2 layers"},
    {"qwen3", ", \"sliding_window\": 8, "
              "\"layer_types\": [\"full_attention\", \"sliding_attention\"]",
     "layer_types[1]\" is \"sliding_attention\" (use_sliding_window is false"},
    {"qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 8, "
              "\"max_window_layers\": -1",
     "max_window_layers"},
    {"mistral", ", \"sliding_window\": 8, "
                "\"layer_types\": [\"full_attention\", \"sliding_attention\"]",
     "layer_types[0]"},
};

START_TEST(test_window_refusals)
{
    for (size_t i = 0; i < sizeof window_refusals / sizeof *window_refusals; i++) {
        hoist_geometry g = geometry_of(window_refusals[i].model_type, window_refusals[i].extra);
        ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_E_BAD_CONFIG);
        ck_assert_msg(strstr(hoist_last_error(), window_refusals[i].key), "case %zu: '%s'", i,
                      hoist_last_error());
    }
}
END_TEST

/* Caller-built geometries are checked too. */
START_TEST(test_caller_built)
{
    hoist_geometry g = geometry_of("llama", "");
    hoist_geometry b = g;
    strcpy(b.architecture, "phi3");
    ck_assert_int_eq(hoist_session_check(&b, NULL), HOIST_E_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "phi3"));
    b = g;
    b.rope.type = HOIST_ROPE_YARN;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG); /* no factor */
    b.rope.factor = 2;
    b.rope.original_max_position = 512;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG); /* no attention factor */
    b.rope.attention_factor = 1;
    b.rope.beta_fast = 32;
    b.rope.beta_slow = 1;
    ck_assert_int_eq(hoist_session_check(&b, NULL), HOIST_OK);
    b = g;
    b.biases = 8;
    ck_assert_int_eq(hoist_geometry_check(&b), HOIST_E_BAD_CONFIG);
    b = g;
    strcpy(b.unsupported, "because");
    ck_assert_int_eq(hoist_session_check(&b, NULL), HOIST_E_BAD_CONFIG);
    ck_assert_str_eq(hoist_last_error(), "because");
}
END_TEST

/* ---- GGUF-style metadata ------------------------------------------------------------------ */

static hoist_geometry geometry_of_meta(const char *arch, const char *extra)
{
    char *st = tu_path(dir, "meta.safetensors");
    char header[4096];
    snprintf(header, sizeof header,
             "{\"__metadata__\":{\"general.architecture\":\"%s\",\"%s.block_count\":\"2\","
             "\"%s.embedding_length\":\"16\",\"%s.feed_forward_length\":\"48\","
             "\"%s.attention.head_count\":\"4\",\"%s.context_length\":\"4096\"%s},"
             "\"token_embd.weight\":{\"dtype\":\"F16\",\"shape\":[70,16],"
             "\"data_offsets\":[0,2240]}}",
             arch, arch, arch, arch, arch, arch, extra);
    static unsigned char data[2240];
    tu_write_safetensors(st, header, data, sizeof data);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(st, NULL, &m), HOIST_OK);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_msg(hoist_model_geometry(m, &g) == HOIST_OK, "%s", hoist_last_error());
    hoist_model_free(m);
    free(st);
    return g;
}

START_TEST(test_gguf_meta)
{
    hoist_geometry g = geometry_of_meta("qwen2", "");
    ck_assert_str_eq(g.unsupported, "");
    ck_assert_uint_eq(g.biases, HOIST_BIAS_QKV);
    g = geometry_of_meta("qwen3", "");
    ck_assert_int_eq(g.qk_norm, 1);
    g = geometry_of_meta("llama", ",\"llama.rope.scaling.type\":\"linear\","
                                  "\"llama.rope.scaling.factor\":\"4\"");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_LINEAR);
    ck_assert_double_eq(g.rope.factor, 4);
    g = geometry_of_meta("qwen2", ",\"qwen2.rope.scaling.type\":\"yarn\","
                                  "\"qwen2.rope.scaling.factor\":\"4\","
                                  "\"qwen2.rope.scaling.original_context_length\":\"1024\"");
    ck_assert_int_eq(g.rope.type, HOIST_ROPE_YARN);
    ck_assert_uint_eq(g.rope.original_max_position, 1024);
    ck_assert_double_eq_tol(g.rope.attention_factor, 0.1 * log(4.0) + 1, 1e-6);
    g = geometry_of_meta("llama", ",\"llama.attention.sliding_window\":\"256\"");
    ck_assert_uint_eq(g.sliding_window, 256);
    static const struct {
        const char *arch, *extra, *key;
    } bad[] = {
        {"gemma2", "", "\"general.architecture\" is \"gemma2\""},
        {"llama", ",\"llama.rope.dimension_count\":\"2\"", "llama.rope.dimension_count"},
        {"llama", ",\"llama.attention.value_length\":\"8\"", "llama.attention.value_length"},
        {"llama", ",\"llama.expert_count\":\"8\"", "llama.expert_count"},
        {"llama", ",\"llama.rope.scaling.type\":\"longrope\"", "llama.rope.scaling.type"},
        {"qwen2", ",\"qwen2.rope.scaling.type\":\"linear\",\"qwen2.rope.scaling.factor\":\"x\"",
         "qwen2.rope.scaling.factor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        g = geometry_of_meta(bad[i].arch, bad[i].extra);
        ck_assert_int_eq(hoist_session_check(&g, NULL), HOIST_E_BAD_CONFIG);
        ck_assert_msg(strstr(hoist_last_error(), bad[i].key), "case %zu: '%s'", i,
                      hoist_last_error());
    }
}
END_TEST

/* hoist gen's families read back as what they are, in both formats. */
START_TEST(test_gen_families)
{
    static const struct {
        const char *flags;
        uint32_t biases;
        int qk_norm;
        hoist_rope_type rope;
    } cases[] = {
        {"--family qwen2", HOIST_BIAS_QKV, 0, HOIST_ROPE_DEFAULT},
        {"--family qwen3 --head-dim 32", 0, 1, HOIST_ROPE_DEFAULT},
        {"--family mistral", 0, 0, HOIST_ROPE_DEFAULT},
        {"--rope-scaling linear", 0, 0, HOIST_ROPE_LINEAR},
        {"--family qwen2 --rope-scaling yarn", HOIST_BIAS_QKV, 0, HOIST_ROPE_YARN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int gguf = 0; gguf <= 1; gguf++) {
            char args[512];
            snprintf(args, sizeof args, "gen '%s/m%zu%d' --preset tiny %s %s --quiet", dir, i,
                     gguf, cases[i].flags, gguf ? "--format gguf" : "");
            ck_assert_int_eq(tu_run_cli(args), 0);
            snprintf(args, sizeof args, "%s/m%zu%d", dir, i, gguf);
            hoist_model *m = NULL;
            ck_assert_int_eq(hoist_model_open(args, NULL, &m), HOIST_OK);
            hoist_geometry g = HOIST_GEOMETRY_INIT;
            ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
            ck_assert_msg(g.unsupported[0] == 0, "%s: %s", cases[i].flags, g.unsupported);
            ck_assert_uint_eq(g.biases, cases[i].biases);
            ck_assert_int_eq(g.qk_norm, cases[i].qk_norm);
            ck_assert_int_eq(g.rope.type, cases[i].rope);
            ck_assert_msg(hoist_session_check_model(m, &g, NULL) == HOIST_OK, "%s: %s",
                          cases[i].flags, hoist_last_error());
            hoist_model_free(m);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("variants");
    TCase *tc = tcase_create("variants");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_families);
    tcase_add_test(tc, test_rope_types);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_sliding_window);
    tcase_add_test(tc, test_window_refusals);
    tcase_add_test(tc, test_caller_built);
    tcase_add_test(tc, test_gguf_meta);
    tcase_add_test(tc, test_gen_families);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
