/* Helpers shared by the tests that compare a GGUF model written by `hoist gen --format gguf` with
 * the safetensors checkpoint of the same seed (test_gen_gguf.c on the host, test_gpu_gguf.c on
 * cuda:0). The name map, the rotary row permutation and the Q8_0 quantizer are written here
 * independently of tools/gen_gguf.c, so that the tests check it rather than repeat it. */
#ifndef HOIST_GGUF_TEST_COMMON_H
#define HOIST_GGUF_TEST_COMMON_H

#include "testutil.h"
#include "infer/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `hoist gen DIR/SUB ARGS --quiet`; fails the test when it fails. */
static inline void gg_gen(const char *dir, const char *sub, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gen '%s/%s' %s --quiet", dir, sub, args);
    ck_assert_msg(tu_run_cli(cmd) == 0, "hoist %s failed", cmd);
}

static inline hoist_model *gg_open(const char *dir, const char *sub)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(path, NULL, &m) == HOIST_OK, "%s: %s", path,
                  hoist_last_error());
    return m;
}

static inline hoist_weights *gg_load(hoist_model *m, hoist_path path, int device)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.device = device;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "load through %s: %s", hoist_path_name(path),
                  hoist_last_error());
    return w;
}

/* llama.cpp's name for a Hugging Face Llama tensor name. */
static inline void gg_name(const char *hf, char *out, size_t len)
{
    static const char *const map[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    unsigned layer;
    int at = 0;
    const char *tail = hf;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &at) == 1 && at > 0) tail = hf + at;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (strcmp(tail, map[i][0]) != 0) continue;
        if (tail == hf)
            snprintf(out, len, "%s", map[i][1]);
        else
            snprintf(out, len, "blk.%u.%s", layer, map[i][1]);
        return;
    }
    ck_abort_msg("no GGUF name for %s", hf);
}

/* The rows of a q/k projection in the order llama.cpp's converter writes: in each head of hd
 * rows, row half * hd/2 + i goes to 2i + half. */
static inline void gg_permute(const unsigned char *src, unsigned char *dst, uint64_t rows,
                              uint64_t heads, uint64_t row_bytes)
{
    uint64_t hd = rows / heads;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t h = r / hd, in = r % hd, half = in / (hd / 2), i = in % (hd / 2);
        memcpy(dst + (h * hd + 2 * i + half) * row_bytes, src + r * row_bytes, row_bytes);
    }
}

/* ggml's quantize_row_q8_0_ref, with the compiler's own float-to-half conversion. */
static inline void gg_q8_0(const float *x, uint64_t n, unsigned char *y)
{
    for (uint64_t b = 0; b < n / 32; b++, x += 32, y += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        _Float16 h = (_Float16)d;
        memcpy(y, &h, 2);
        for (int j = 0; j < 32; j++) y[2 + j] = (unsigned char)(signed char)roundf(x[j] * id);
    }
}

static inline unsigned char *gg_read(const hoist_weights *w, size_t i, uint64_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(hoist_weights_read(w, i, 0, b, n), HOIST_OK);
    return b;
}

static inline int gg_is_q_or_k(const char *name, int *is_k)
{
    size_t n = strlen(name);
    *is_k = n >= 13 && strcmp(name + n - 13, "attn_k.weight") == 0;
    return *is_k || (n >= 13 && strcmp(name + n - 13, "attn_q.weight") == 0);
}

/* Every tensor of the safetensors weights `st` has its GGUF twin in `gg` with the same dtype,
 * shape and bytes, but for q and k, whose rows are permuted over heads / kv_heads. Returns the
 * number of tensors compared. */
static inline size_t gg_compare(const hoist_weights *st, const hoist_weights *gg, uint64_t heads,
                                uint64_t kv_heads)
{
    size_t n = hoist_weights_count(st);
    ck_assert_uint_eq(hoist_weights_count(gg), n);
    for (size_t i = 0; i < n; i++) {
        hoist_view a = HOIST_VIEW_INIT, b = HOIST_VIEW_INIT;
        char name[64];
        ck_assert_int_eq(hoist_weights_view(st, i, &a), HOIST_OK);
        gg_name(a.name, name, sizeof name);
        ck_assert_msg(hoist_weights_find(gg, name, &b) == HOIST_OK, "%s: no %s", a.name, name);
        ck_assert_uint_eq(a.ndim, b.ndim);
        for (uint32_t d = 0; d < a.ndim; d++) ck_assert_int_eq(a.shape[d], b.shape[d]);
        size_t j = 0;
        while (j < hoist_weights_count(gg)) {
            hoist_view v = HOIST_VIEW_INIT;
            hoist_weights_view(gg, j, &v);
            if (strcmp(v.name, name) == 0) break;
            j++;
        }
        unsigned char *x = gg_read(st, i, a.nbytes), *y = gg_read(gg, j, b.nbytes);
        if (a.ndim == 1) { /* F32 in GGUF: the same values */
            ck_assert_msg(b.dtype == HOIST_DTYPE_F32, "%s: %s", name, hoist_dtype_name(b.dtype));
            for (int64_t e = 0; e < a.shape[0]; e++)
                ck_assert_float_eq(hoist__load_f32(x, a.dtype, (size_t)e),
                                   hoist__load_f32(y, b.dtype, (size_t)e));
            free(x);
            free(y);
            continue;
        }
        ck_assert_msg(a.dtype == b.dtype, "%s: %s vs %s", name, hoist_dtype_name(a.dtype),
                      hoist_dtype_name(b.dtype));
        ck_assert_uint_eq(a.nbytes, b.nbytes);
        int is_k;
        if (gg_is_q_or_k(name, &is_k)) {
            unsigned char *p = malloc(a.nbytes);
            ck_assert_ptr_nonnull(p);
            gg_permute(x, p, (uint64_t)a.shape[0], is_k ? kv_heads : heads,
                       a.nbytes / (uint64_t)a.shape[0]);
            ck_assert_msg(memcmp(x, y, a.nbytes) != 0, "%s: rows were not permuted", name);
            free(x);
            x = p;
        }
        ck_assert_msg(memcmp(x, y, a.nbytes) == 0, "%s: bytes differ from %s", name, a.name);
        free(x);
        free(y);
    }
    return n;
}

#endif
