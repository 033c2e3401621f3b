/* The layout of a generated checkpoint (see gen_plan.h). */
#include "gen_family.h"
#include "gen_plan.h"

#include "gen_names.h"
#include "gen_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gen_plan_free(gen_plan *p)
{
    if (p->headers)
        for (uint32_t i = 0; i < p->nfiles; i++) free(p->headers[i]);
    free(p->headers);
    free(p->t);
    free(p->file_data);
    free(p->file_start);
    memset(p, 0, sizeof *p);
}

static gen_tensor *add_tensor(gen_plan *p, const gen_config *c, const char *name,
                              uint64_t rows, uint64_t cols, bool ones)
{
    gen_tensor *t = &p->t[p->nt++];
    if (c->format != GEN_FORMAT_GGUF || gen_gguf_name(name, t->name, sizeof t->name) != 0)
        snprintf(t->name, sizeof t->name, "%s", name);
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->ndim = cols ? 2 : 1;
    t->numel = cols ? rows * cols : rows;
    t->dtype = gen_tensor_dtype(c, cols, ones);
    t->nbytes = gen_tensor_bytes(c, rows, cols, ones);
    t->ones = ones;
    if (c->format == GEN_FORMAT_GGUF && gen_family_permutes(c)) {
        size_t n = strlen(name);
        if (n > 19 && strcmp(name + n - 19, "self_attn.q_proj.weight" + 4) == 0)
            t->rope_heads = c->heads;
        else if (n > 19 && strcmp(name + n - 19, "self_attn.k_proj.weight" + 4) == 0)
            t->rope_heads = c->kv_heads;
    }
    return t;
}

/* Tensor list in Hugging Face order plus shard assignment. Config must be valid. */
static int plan_tensors(gen_plan *p, const gen_config *c)
{
    memset(p, 0, sizeof *p);
    size_t cap = 3 + 14 * (size_t)c->layers + (c->tie_embeddings ? 0 : 1);
    p->t = calloc(cap, sizeof *p->t);
    if (!p->t) return -1;
    uint64_t h = c->hidden, q = (uint64_t)c->heads * c->head_dim,
             kv = (uint64_t)c->kv_heads * c->head_dim, in = c->intermediate;
    char name[64];
    add_tensor(p, c, "model.embed_tokens.weight", c->vocab, h, false);
    for (uint32_t l = 0; l < c->layers; l++) {
#define LAYER(suffix, rows, cols, ones)                                                           \
    do {                                                                                          \
        snprintf(name, sizeof name, "model.layers.%u." suffix, l);                                \
        add_tensor(p, c, name, rows, cols, ones);                                                 \
    } while (0)
        LAYER("input_layernorm.weight", h, 0, true);
        LAYER("self_attn.q_proj.weight", q, h, false);
        LAYER("self_attn.k_proj.weight", kv, h, false);
        LAYER("self_attn.v_proj.weight", kv, h, false);
        if (gen_family_qkv_bias(c)) {
            LAYER("self_attn.q_proj.bias", q, 0, false);
            LAYER("self_attn.k_proj.bias", kv, 0, false);
            LAYER("self_attn.v_proj.bias", kv, 0, false);
        }
        if (gen_family_qk_norm(c)) {
            LAYER("self_attn.q_norm.weight", c->head_dim, 0, true);
            p->t[p->nt - 1].ones = false;
            p->t[p->nt - 1].jitter = true;
            LAYER("self_attn.k_norm.weight", c->head_dim, 0, true);
            p->t[p->nt - 1].ones = false;
            p->t[p->nt - 1].jitter = true;
        }
        LAYER("self_attn.o_proj.weight", h, q, false);
        LAYER("post_attention_layernorm.weight", h, 0, true);
        LAYER("mlp.gate_proj.weight", in, h, false);
        LAYER("mlp.up_proj.weight", in, h, false);
        LAYER("mlp.down_proj.weight", h, in, false);
#undef LAYER
    }
    add_tensor(p, c, "model.norm.weight", h, 0, true);
    if (!c->tie_embeddings) add_tensor(p, c, "lm_head.weight", c->vocab, h, false);
    if (gen_family_rope_freqs(c)) {
        gen_tensor *t = add_tensor(p, c, "rope_freqs.weight", c->head_dim / 2, 0, true);
        t->ones = false;
        t->factors = true;
    }

    uint32_t file = 0;
    uint64_t cur = 0;
    for (size_t i = 0; i < p->nt; i++) {
        gen_tensor *t = &p->t[i];
        if (c->format == GEN_FORMAT_GGUF) { /* one file, each tensor aligned */
            t->file = 0;
            t->offset = (cur + GEN_GGUF_ALIGNMENT - 1) / GEN_GGUF_ALIGNMENT * GEN_GGUF_ALIGNMENT;
            cur = t->offset + t->nbytes;
            continue;
        }
        if (cur > 0 && (cur + t->nbytes > c->shard_size || cur + t->nbytes < cur)) {
            file++;
            cur = 0;
        }
        t->file = file;
        t->offset = cur;
        cur += t->nbytes;
    }
    p->nfiles = file + 1;
    return 0;
}

uint32_t gen_file_count(const gen_config *cfg)
{
    if (gen_validate(cfg, NULL, 0) != 0) return 0;
    gen_plan p;
    if (plan_tensors(&p, cfg) != 0) return 0;
    uint32_t n = p.nfiles;
    gen_plan_free(&p);
    return n;
}

void gen_file_name(uint32_t i, uint32_t n, char *buf, size_t len)
{
    if (n <= 1)
        snprintf(buf, len, "model.safetensors");
    else
        snprintf(buf, len, "model-%05u-of-%05u.safetensors", i + 1, n);
}

void gen_plan_file_name(const gen_plan *p, const gen_config *cfg, uint32_t i, char *buf,
                        size_t len)
{
    if (cfg->format == GEN_FORMAT_GGUF)
        snprintf(buf, len, "%s", GEN_GGUF_FILE);
    else
        gen_file_name(i, p->nfiles, buf, len);
}

int gen_plan_build(gen_plan *p, const gen_config *c)
{
    if (plan_tensors(p, c) != 0) return -1;
    p->file_data = calloc(p->nfiles, sizeof *p->file_data);
    p->file_start = calloc(p->nfiles, sizeof *p->file_start);
    p->headers = calloc(p->nfiles, sizeof *p->headers);
    if (p->file_data && p->file_start && p->headers) return 0;
    gen_plan_free(p);
    return -1;
}
