/* The GGUF side of `hoist gen` (see gen_gguf.h). */
#include "gen_family.h"
#include "gen_gguf.h"

#include "gen_plan.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hoist gen writes little-endian GGUF by storing host words; port the stores"
#endif

/* GGUF metadata value types */
enum { GT_U32 = 4, GT_I32 = 5, GT_F32 = 6, GT_STRING = 8, GT_ARRAY = 9 };
/* llama.cpp's token types and file types */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_BYTE = 6 };
enum { FTYPE_ALL_F32 = 0, FTYPE_MOSTLY_F16 = 1, FTYPE_MOSTLY_Q8_0 = 7, FTYPE_MOSTLY_BF16 = 32 };

/* ---- a growing byte buffer ------------------------------------------------------------------ */

typedef struct bbuf {
    unsigned char *p;
    uint64_t len, cap;
    bool oom;
} bbuf;

static void put(bbuf *b, const void *src, uint64_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        uint64_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bbuf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void kv_u32(bbuf *b, const char *key, uint32_t v)
{
    put_str(b, key);
    put_u32(b, GT_U32);
    put_u32(b, v);
}

static void kv_f32(bbuf *b, const char *key, float v)
{
    put_str(b, key);
    put_u32(b, GT_F32);
    put(b, &v, 4);
}

static void kv_str(bbuf *b, const char *key, const char *v)
{
    put_str(b, key);
    put_u32(b, GT_STRING);
    put_str(b, v);
}

static void kv_array(bbuf *b, const char *key, uint32_t type, uint64_t count)
{
    put_str(b, key);
    put_u32(b, GT_ARRAY);
    put_u32(b, type);
    put_u64(b, count);
}

/* ---- the header ----------------------------------------------------------------------------- */

/* A synthetic SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens as far as the
 * vocabulary reaches, then "t<id>". Weights are random, so no real tokenizer would mean more;
 * it is there so that llama.cpp, which needs one, can open the file. */
static void vocabulary(bbuf *b, uint32_t vocab)
{
    char tok[32];
    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_array(b, "tokenizer.ggml.tokens", GT_STRING, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        if (i < 3)
            snprintf(tok, sizeof tok, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 3 + 256)
            snprintf(tok, sizeof tok, "<0x%02X>", i - 3);
        else
            snprintf(tok, sizeof tok, "t%u", i);
        put_str(b, tok);
    }
    kv_array(b, "tokenizer.ggml.scores", GT_F32, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        float score = i < 3 + 256 ? 0.0f : -(float)(i - 3 - 256);
        put(b, &score, 4);
    }
    kv_array(b, "tokenizer.ggml.token_type", GT_I32, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        int32_t type = i == 0 ? TOK_UNKNOWN : i < 3 ? TOK_CONTROL : i < 3 + 256 ? TOK_BYTE
                                                                               : TOK_NORMAL;
        put(b, &type, 4);
    }
    kv_u32(b, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(b, "tokenizer.ggml.eos_token_id", 2);
    kv_u32(b, "tokenizer.ggml.unknown_token_id", 0);
}

static uint32_t file_type(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_F32: return FTYPE_ALL_F32;
    case GEN_DTYPE_F16: return FTYPE_MOSTLY_F16;
    case GEN_DTYPE_Q8_0: return FTYPE_MOSTLY_Q8_0;
    case GEN_DTYPE_BF16: break;
    }
    return FTYPE_MOSTLY_BF16;
}

/* The architecture's keys, "<arch>.*", as llama.cpp's converter writes them; returns how many. */
static uint64_t arch_keys(bbuf *b, const gen_config *c)
{
    const char *arch = gen_family_gguf_arch(c);
    char key[96];
    uint64_t n = 0;
#define ARCH_U32(k, v) (snprintf(key, sizeof key, "%s." k, arch), kv_u32(b, key, (v)), n++)
#define ARCH_F32(k, v) (snprintf(key, sizeof key, "%s." k, arch), kv_f32(b, key, (v)), n++)
    ARCH_U32("vocab_size", c->vocab);
    ARCH_U32("context_length", c->max_position);
    ARCH_U32("embedding_length", c->hidden);
    ARCH_U32("block_count", c->layers);
    ARCH_U32("feed_forward_length", c->intermediate);
    ARCH_U32("attention.head_count", c->heads);
    ARCH_U32("attention.head_count_kv", c->kv_heads);
    ARCH_U32("attention.key_length", c->head_dim);
    ARCH_U32("attention.value_length", c->head_dim);
    ARCH_U32("rope.dimension_count", c->head_dim);
    ARCH_F32("rope.freq_base", (float)gen_family_theta(c));
    ARCH_F32("attention.layer_norm_rms_epsilon", 1e-5f);
    /* llama3 travels as the rope_freqs.weight tensor; linear and yarn as metadata */
    if (c->rope.type == GEN_ROPE_LINEAR || c->rope.type == GEN_ROPE_YARN) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        kv_str(b, key, gen_rope_name(c->rope.type));
        n++;
        ARCH_F32("rope.scaling.factor", (float)c->rope.factor);
        if (c->rope.type == GEN_ROPE_YARN)
            ARCH_U32("rope.scaling.original_context_length", c->rope.original);
    }
#undef ARCH_U32
#undef ARCH_F32
    return n;
}

int gen_gguf_header(const gen_config *c, const gen_gguf_tensor *t, size_t n, unsigned char **out,
                    uint64_t *len)
{
    /* the keys first, counted, then the header that announces how many */
    bbuf kv = {0};
    char name[64];
    snprintf(name, sizeof name, "hoist gen, seed %llu", (unsigned long long)c->seed);
    kv_str(&kv, "general.architecture", gen_family_gguf_arch(c));
    kv_str(&kv, "general.name", name);
    kv_u32(&kv, "general.file_type", file_type(c->dtype));
    kv_u32(&kv, "general.quantization_version", 2);
    kv_u32(&kv, "general.alignment", GEN_GGUF_ALIGNMENT);
    uint64_t nkv = 5 + arch_keys(&kv, c) + 7;
    vocabulary(&kv, c->vocab); /* 7 tokenizer keys */
    bbuf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, n);
    put_u64(&b, nkv);
    if (!kv.oom) put(&b, kv.p, kv.len);
    b.oom |= kv.oom;
    free(kv.p);
    for (size_t i = 0; i < n; i++) {
        put_str(&b, t[i].name);
        put_u32(&b, t[i].n_dims);
        for (uint32_t d = 0; d < t[i].n_dims; d++) put_u64(&b, t[i].ne[d]);
        put_u32(&b, t[i].type);
        put_u64(&b, t[i].offset);
    }
    static const unsigned char zeros[GEN_GGUF_ALIGNMENT];
    put(&b, zeros, (GEN_GGUF_ALIGNMENT - b.len % GEN_GGUF_ALIGNMENT) % GEN_GGUF_ALIGNMENT);
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int gen_gguf_plan_header(gen_plan *p, const gen_config *c)
{
    static const uint32_t types[] = {[GEN_DTYPE_BF16] = GEN_GGML_BF16,
                                     [GEN_DTYPE_F16] = GEN_GGML_F16,
                                     [GEN_DTYPE_F32] = GEN_GGML_F32,
                                     [GEN_DTYPE_Q8_0] = GEN_GGML_Q8_0};
    gen_gguf_tensor *infos = calloc(p->nt ? p->nt : 1, sizeof *infos);
    if (!infos) return -1;
    for (size_t i = 0; i < p->nt; i++) {
        const gen_tensor *t = &p->t[i];
        /* ne is innermost first: [cols, rows] */
        infos[i] = (gen_gguf_tensor){.name = t->name,
                                     .n_dims = (uint32_t)t->ndim,
                                     .ne = {t->ndim == 2 ? t->shape[1] : t->shape[0],
                                            t->shape[0]},
                                     .type = types[t->dtype],
                                     .offset = t->offset};
        p->file_data[0] = t->offset + t->nbytes;
    }
    p->file_data[0] = (p->file_data[0] + GEN_GGUF_ALIGNMENT - 1) / GEN_GGUF_ALIGNMENT *
                      GEN_GGUF_ALIGNMENT;
    unsigned char *head;
    uint64_t len;
    int rc = gen_gguf_header(c, infos, p->nt, &head, &len);
    free(infos);
    if (rc != 0) return -1;
    p->headers[0] = (char *)head;
    p->file_start[0] = len;
    return 0;
}

/* ---- rotary permutation and Q8_0 ------------------------------------------------------------ */

void gen_rope_permute(const void *src, void *dst, uint64_t heads, uint64_t head_dim,
                      uint64_t cols, size_t esz)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    const uint64_t half = head_dim / 2, row = cols * esz;
    for (uint64_t h = 0; h < heads; h++)
        for (uint64_t part = 0; part < 2; part++)
            for (uint64_t i = 0; i < half; i++)
                memcpy(d + (h * head_dim + 2 * i + part) * row,
                       s + (h * head_dim + part * half + i) * row, row);
}

uint16_t gen_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);    /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* 65520 and up: infinity */
    uint32_t q, rem, halfway;
    if (a < 0x38800000u) {                                     /* below 2^-14: subnormal */
        uint32_t e = a >> 23;
        if (e < 102) return (uint16_t)sign;                    /* below 2^-25 */
        uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
        q = m >> shift;
        rem = m & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
    } else {
        q = (a >> 13) - (112u << 10);
        rem = a & 0x1fffu;
        halfway = 0x1000u;
    }
    if (rem > halfway || (rem == halfway && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

void gen_quantize_q8_0(const float *x, uint64_t n, void *out)
{
    unsigned char *y = out;
    for (uint64_t i = 0; i < n / GEN_Q8_0_BLOCK; i++, x += GEN_Q8_0_BLOCK, y += GEN_Q8_0_BYTES) {
        float amax = 0.0f;
        for (unsigned j = 0; j < GEN_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = gen_f32_to_f16(d);
        memcpy(y, &dh, 2);
        for (unsigned j = 0; j < GEN_Q8_0_BLOCK; j++) y[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
    }
}
