/* tools/gen_gguf.c through the CLI (`hoist gen --format gguf`): the GGUF model and the
 * safetensors checkpoint of the same seed hold the same values, loaded through every path into
 * host memory (q and k rows permuted as llama.cpp's converter does); Q8_0 is ggml's quantization
 * of the f32 values; llama.cpp's metadata keys; the geometry hoist reads back; determinism. */
#include "gguf_test_common.h"

#include <sys/stat.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

typedef struct same_case {
    const char *args;
    uint64_t heads, kv_heads;
} same_case;

static const same_case SAME[] = {
    {"--preset tiny --dtype f32", 4, 2},
    {"--preset tiny --dtype f16 --tie-embeddings", 4, 2},
    {"--preset tiny --dtype bf16", 4, 2},
    /* q spans several work items whose heads start inside generator blocks; GQA 3 */
    {"--layers 1 --hidden 2304 --heads 24 --kv-heads 8 --intermediate 256 --vocab 512 "
     "--dtype bf16",
     24, 8},
};

/* Same seed, both formats, every path into host memory: identical bytes tensor for tensor. */
START_TEST(same_bytes_as_safetensors)
{
    const same_case *c = &SAME[_i];
    char args[512];
    snprintf(args, sizeof args, "%s --seed 11", c->args);
    gg_gen(dir, "st", args);
    snprintf(args, sizeof args, "%s --seed 11 --format gguf", c->args);
    gg_gen(dir, "gg", args);
    hoist_model *st = gg_open(dir, "st"), *gg = gg_open(dir, "gg/model.gguf");
    ck_assert_uint_eq(hoist_model_file_count(gg), 1);
    const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};
    for (int p = 0; p < 3; p++) {
        hoist_weights *ws = gg_load(st, paths[p], HOIST_DEVICE_HOST);
        hoist_weights *wg = gg_load(gg, paths[p], HOIST_DEVICE_HOST);
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(wg, &s), HOIST_OK);
        /* GGUF's vectors are F32 whatever the dtype, as llama.cpp's converter writes them */
        ck_assert_uint_eq(s.bytes, hoist_model_total_bytes(gg));
        if (strstr(c->args, "f32")) ck_assert_uint_eq(s.bytes, hoist_model_total_bytes(st));
        else ck_assert_uint_gt(s.bytes, hoist_model_total_bytes(st));
        tu_assert_weights_match_files(gg, wg);
        ck_assert_uint_eq(gg_compare(ws, wg, c->heads, c->kv_heads),
                          hoist_model_tensor_count(st));
        hoist_weights_free(ws);
        hoist_weights_free(wg);
    }
    hoist_model_free(st);
    hoist_model_free(gg);
}
END_TEST

/* Q8_0: 2-D tensors with rows of whole blocks are ggml's quantization of the f32 values (rows of
 * q and k permuted first), ffn_down's 172-wide rows fall back to F16, norms stay F32. */
START_TEST(q8_0_is_ggml_quantization)
{
    gg_gen(dir, "f32", "--preset tiny --dtype f32 --seed 5");
    gg_gen(dir, "f16", "--preset tiny --dtype f16 --seed 5");
    gg_gen(dir, "q8", "--preset tiny --dtype q8_0 --seed 5 --format gguf");
    hoist_model *mf = gg_open(dir, "f32"), *mh = gg_open(dir, "f16"), *mq = gg_open(dir, "q8");
    hoist_weights *wf = gg_load(mf, HOIST_PATH_STREAM, HOIST_DEVICE_HOST);
    hoist_weights *wh = gg_load(mh, HOIST_PATH_STREAM, HOIST_DEVICE_HOST);
    hoist_weights *wq = gg_load(mq, HOIST_PATH_URING, HOIST_DEVICE_HOST);
    int counts[3] = {0}; /* Q8_0, F16, F32 */
    for (size_t i = 0; i < hoist_weights_count(wf); i++) {
        hoist_view f = HOIST_VIEW_INIT, h = HOIST_VIEW_INIT, q = HOIST_VIEW_INIT;
        char name[64];
        ck_assert_int_eq(hoist_weights_view(wf, i, &f), HOIST_OK);
        ck_assert_int_eq(hoist_weights_view(wh, i, &h), HOIST_OK);
        ck_assert_str_eq(f.name, h.name);
        gg_name(f.name, name, sizeof name);
        ck_assert_int_eq(hoist_weights_find(wq, name, &q), HOIST_OK);
        size_t qi;
        ck_assert_int_eq(hoist_model_find(mq, name, &qi), HOIST_OK);
        for (uint32_t d = 0; d < f.ndim; d++) ck_assert_int_eq(q.shape[d], f.shape[d]);
        const hoist_view *src = q.dtype == HOIST_DTYPE_F16 ? &h : &f;
        const hoist_weights *srcw = q.dtype == HOIST_DTYPE_F16 ? wh : wf;
        unsigned char *x = gg_read(srcw, i, src->nbytes), *y = gg_read(wq, qi, q.nbytes);
        int is_k;
        if (gg_is_q_or_k(name, &is_k)) {
            unsigned char *p = malloc(src->nbytes);
            gg_permute(x, p, (uint64_t)f.shape[0], is_k ? 2 : 4, src->nbytes / (uint64_t)f.shape[0]);
            free(x);
            x = p;
        }
        if (f.ndim == 1) {
            ck_assert_msg(q.dtype == HOIST_DTYPE_F32, "%s: %s", name, hoist_dtype_name(q.dtype));
            counts[2]++;
            ck_assert_mem_eq(x, y, q.nbytes);
        } else if (f.shape[1] % 32 == 0) {
            ck_assert_msg(q.dtype == HOIST_DTYPE_Q8_0, "%s: %s", name, hoist_dtype_name(q.dtype));
            counts[0]++;
            uint64_t n = f.nbytes / 4;
            ck_assert_uint_eq(q.nbytes, n / 32 * 34);
            unsigned char *want = malloc(q.nbytes);
            gg_q8_0((const float *)x, n, want);
            ck_assert_msg(memcmp(want, y, q.nbytes) == 0, "%s: not ggml's Q8_0 of the f32 values",
                          name);
            free(want);
        } else {
            ck_assert_msg(q.dtype == HOIST_DTYPE_F16, "%s: %s", name, hoist_dtype_name(q.dtype));
            counts[1]++;
            ck_assert_mem_eq(x, y, q.nbytes);
        }
        free(x);
        free(y);
    }
    ck_assert_int_eq(counts[0], 2 + 2 * 6); /* embeddings, output, 6 per layer */
    ck_assert_int_eq(counts[1], 2);         /* ffn_down */
    ck_assert_int_eq(counts[2], 1 + 2 * 2); /* norms */
    hoist_meta_value v = HOIST_META_VALUE_INIT;
    ck_assert_int_eq(hoist_model_metadata_find(mq, "general.file_type", &v), HOIST_OK);
    ck_assert_uint_eq(v.num.u, 7); /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    hoist_weights_free(wf);
    hoist_weights_free(wh);
    hoist_weights_free(wq);
    hoist_model_free(mf);
    hoist_model_free(mh);
    hoist_model_free(mq);
}
END_TEST

static void expect_u32(const hoist_model *m, const char *key, uint64_t want)
{
    hoist_meta_value v = HOIST_META_VALUE_INIT;
    ck_assert_msg(hoist_model_metadata_find(m, key, &v) == HOIST_OK, "no %s", key);
    ck_assert_msg(v.type == HOIST_META_U32, "%s: %s", key, hoist_meta_type_name(v.type));
    ck_assert_msg(v.num.u == want, "%s: %llu, want %llu", key, (unsigned long long)v.num.u,
                  (unsigned long long)want);
}

/* llama.cpp's keys and names, a vocabulary llama.cpp can open, and the geometry read back. */
START_TEST(llama_cpp_metadata_and_geometry)
{
    const char *args = "--layers 3 --hidden 256 --heads 8 --kv-heads 2 --head-dim 48 "
                       "--intermediate 512 --vocab 300 --max-position 1024 --seed 3";
    char a[512];
    snprintf(a, sizeof a, "%s --format gguf", args);
    gg_gen(dir, "gg", a);
    gg_gen(dir, "st", args);
    hoist_model *gg = gg_open(dir, "gg"), *st = gg_open(dir, "st");
    ck_assert_str_eq(hoist_model_metadata_get(gg, "general.architecture"), "llama");
    expect_u32(gg, "general.alignment", 32);
    expect_u32(gg, "general.file_type", 32); /* LLAMA_FTYPE_MOSTLY_BF16 */
    expect_u32(gg, "llama.block_count", 3);
    expect_u32(gg, "llama.embedding_length", 256);
    expect_u32(gg, "llama.feed_forward_length", 512);
    expect_u32(gg, "llama.attention.head_count", 8);
    expect_u32(gg, "llama.attention.head_count_kv", 2);
    expect_u32(gg, "llama.attention.key_length", 48);
    expect_u32(gg, "llama.attention.value_length", 48);
    expect_u32(gg, "llama.rope.dimension_count", 48);
    expect_u32(gg, "llama.context_length", 1024);
    expect_u32(gg, "llama.vocab_size", 300);
    hoist_meta_value v = HOIST_META_VALUE_INIT;
    ck_assert_int_eq(hoist_model_metadata_find(gg, "llama.rope.freq_base", &v), HOIST_OK);
    ck_assert(v.type == HOIST_META_F32 && v.num.f == 500000.0);
    ck_assert_int_eq(hoist_model_metadata_find(gg, "llama.attention.layer_norm_rms_epsilon", &v),
                     HOIST_OK);
    ck_assert(v.type == HOIST_META_F32 && v.num.f == (double)1e-5f);
    ck_assert_str_eq(hoist_model_metadata_get(gg, "tokenizer.ggml.model"), "llama");
    ck_assert_int_eq(hoist_model_metadata_find(gg, "tokenizer.ggml.tokens", &v), HOIST_OK);
    ck_assert(v.type == HOIST_META_ARRAY && v.elem_type == HOIST_META_STRING && v.count == 300);
    const char *const *tok = v.array;
    ck_assert_str_eq(tok[0], "<unk>");
    ck_assert_str_eq(tok[1], "<s>");
    ck_assert_str_eq(tok[3], "<0x00>");
    ck_assert_str_eq(tok[258], "<0xFF>");
    ck_assert_int_eq(hoist_model_metadata_find(gg, "tokenizer.ggml.scores", &v), HOIST_OK);
    ck_assert(v.elem_type == HOIST_META_F32 && v.count == 300);
    ck_assert_int_eq(hoist_model_metadata_find(gg, "tokenizer.ggml.token_type", &v), HOIST_OK);
    ck_assert(v.elem_type == HOIST_META_I32 && v.count == 300);
    ck_assert_int_eq(((const int32_t *)v.array)[0], 2);   /* unknown */
    ck_assert_int_eq(((const int32_t *)v.array)[3], 6);   /* byte */
    ck_assert_int_eq(((const int32_t *)v.array)[299], 1); /* normal */
    expect_u32(gg, "tokenizer.ggml.bos_token_id", 1);
    expect_u32(gg, "tokenizer.ggml.eos_token_id", 2);

    /* names: llama.cpp's, in Hugging Face's order; shapes outermost first */
    ck_assert_uint_eq(hoist_model_tensor_count(gg), 2 + 9 * 3 + 1);
    const char *want[] = {"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                          "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
                          "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
                          "blk.0.ffn_down.weight"};
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        ck_assert_int_eq(hoist_model_tensor(gg, i, &t), HOIST_OK);
        ck_assert_str_eq(t.name, want[i]);
        ck_assert_uint_eq(t.offset % 32, 0);
    }
    ck_assert_int_eq(hoist_model_tensor(gg, 2, &t), HOIST_OK);
    ck_assert(t.ndim == 2 && t.shape[0] == 8 * 48 && t.shape[1] == 256);
    ck_assert_int_eq(hoist_model_tensor(gg, hoist_model_tensor_count(gg) - 1, &t), HOIST_OK);
    ck_assert_str_eq(t.name, "output.weight");
    ck_assert(t.shape[0] == 300 && t.shape[1] == 256);
    ck_assert_int_eq(hoist_model_tensor(gg, hoist_model_tensor_count(gg) - 2, &t), HOIST_OK);
    ck_assert_str_eq(t.name, "output_norm.weight");

    /* the geometry from GGUF metadata is the one from config.json */
    hoist_geometry a_ = HOIST_GEOMETRY_INIT, b_ = HOIST_GEOMETRY_INIT;
    ck_assert_msg(hoist_model_geometry(gg, &a_) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_msg(hoist_model_geometry(st, &b_) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_str_eq(a_.architecture, "llama");
    ck_assert_str_eq(b_.architecture, "llama");
    ck_assert_uint_eq(a_.n_layers, b_.n_layers);
    ck_assert_uint_eq(a_.hidden, b_.hidden);
    ck_assert_uint_eq(a_.intermediate, b_.intermediate);
    ck_assert_uint_eq(a_.n_heads, b_.n_heads);
    ck_assert_uint_eq(a_.n_kv_heads, b_.n_kv_heads);
    ck_assert_uint_eq(a_.head_dim, 48);
    ck_assert_uint_eq(b_.head_dim, 48);
    ck_assert_uint_eq(a_.vocab, b_.vocab);
    ck_assert_uint_eq(a_.max_position, b_.max_position);
    ck_assert(fabs(a_.rms_eps - b_.rms_eps) < 1e-12);
    ck_assert(a_.rope_theta == b_.rope_theta);
    ck_assert_int_eq(a_.tied_embeddings, b_.tied_embeddings);
    ck_assert_int_eq(a_.dtype, b_.dtype);
    hoist_model_free(gg);
    hoist_model_free(st);
}
END_TEST

/* The same bytes whatever the thread count; tied embeddings leave output.weight out. */
START_TEST(deterministic_and_tied)
{
    const char *args = "--layers 1 --hidden 2304 --heads 24 --kv-heads 8 --intermediate 256 "
                       "--vocab 512 --dtype q8_0 --format gguf --seed 9";
    char a[512];
    snprintf(a, sizeof a, "%s --threads 1", args);
    gg_gen(dir, "t1", a);
    snprintf(a, sizeof a, "%s --threads 3", args);
    gg_gen(dir, "t3", a);
    char p1[512], p3[512];
    snprintf(p1, sizeof p1, "%s/t1/model.gguf", dir);
    snprintf(p3, sizeof p3, "%s/t3/model.gguf", dir);
    size_t n1, n3;
    unsigned char *b1 = tu_read(p1, &n1), *b3 = tu_read(p3, &n3);
    ck_assert_ptr_nonnull(b1);
    ck_assert_ptr_nonnull(b3);
    ck_assert_uint_eq(n1, n3);
    ck_assert_uint_eq(n1 % 32, 0); /* the last tensor padded, as llama.cpp writes it */
    ck_assert(memcmp(b1, b3, n1) == 0);
    free(b1);
    free(b3);

    gg_gen(dir, "tied", "--preset tiny --tie-embeddings --format gguf");
    hoist_model *m = gg_open(dir, "tied");
    size_t i;
    ck_assert_int_eq(hoist_model_find(m, "output.weight", &i), HOIST_E_NOT_FOUND);
    ck_assert_int_eq(hoist_model_find(m, "token_embd.weight", &i), HOIST_OK);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    ck_assert_int_eq(g.tied_embeddings, 1);
    hoist_model_free(m);
}
END_TEST

START_TEST(refusals)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gen '%s/x' --dtype q8_0 --quiet 2>/dev/null", dir);
    ck_assert_int_eq(tu_run_cli(cmd), 2); /* Q8_0 is GGUF only */
    snprintf(cmd, sizeof cmd, "gen '%s/x' --format gguf --shard-size 1M --quiet 2>/dev/null", dir);
    ck_assert_int_eq(tu_run_cli(cmd), 2);
    snprintf(cmd, sizeof cmd, "gen '%s/x' --format onnx --quiet 2>/dev/null", dir);
    ck_assert_int_eq(tu_run_cli(cmd), 2);
    gg_gen(dir, "x", "--format gguf");
    snprintf(cmd, sizeof cmd, "gen '%s/x' --format gguf --quiet 2>/dev/null", dir);
    ck_assert_int_eq(tu_run_cli(cmd), 1); /* model.gguf is there */
    gg_gen(dir, "x", "--format gguf --force --seed 2");
    /* GGUF writes no config.json: its metadata is the configuration */
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/x/config.json", dir);
    ck_assert_int_ne(stat(path, &st), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gen_gguf");
    TCase *tc = tcase_create("gen");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, same_bytes_as_safetensors, 0, (int)(sizeof SAME / sizeof *SAME));
    tcase_add_test(tc, q8_0_is_ggml_quantization);
    tcase_add_test(tc, llama_cpp_metadata_and_geometry);
    tcase_add_test(tc, deterministic_and_tied);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
