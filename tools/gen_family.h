/* The model families `hoist gen` writes: Llama (and Llama 3.1, its llama3 rope scaling), Qwen2
 * (q/k/v biases), Qwen3 (q/k norms) and Mistral, each with the config.json keys transformers
 * reads for it and the GGUF architecture and metadata llama.cpp's converter writes for it; and
 * rope scaling of any type on top. Uses only libc and libm. */
#ifndef HOIST_GEN_FAMILY_H
#define HOIST_GEN_FAMILY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum gen_family {
    GEN_FAMILY_LLAMA = 0,
    GEN_FAMILY_LLAMA31 = 1, /* llama with Llama 3.1's rope scaling and context */
    GEN_FAMILY_QWEN2 = 2,
    GEN_FAMILY_QWEN3 = 3,
    GEN_FAMILY_MISTRAL = 4
} gen_family;

typedef enum gen_rope_type {
    GEN_ROPE_NONE = 0,
    GEN_ROPE_LINEAR = 1,
    GEN_ROPE_DYNAMIC = 2,
    GEN_ROPE_YARN = 3,
    GEN_ROPE_LLAMA3 = 4
} gen_rope_type;

typedef struct gen_rope {
    gen_rope_type type;
    double factor;     /* 0: the type's default (linear, dynamic 2; yarn 4; llama3 8) */
    uint32_t original; /* original_max_position_embeddings of yarn and llama3; 0: max_position /
                          factor (Llama 3.1: 8192) */
} gen_rope;

struct gen_config;

/* "llama", "llama3.1", "qwen2", "qwen3", "mistral"; 0, or -1 if unknown. */
int gen_parse_family(const char *text, gen_family *out);
const char *gen_family_name(gen_family family);
/* "none", "linear", "dynamic", "yarn", "llama3"; 0, or -1 if unknown. */
int gen_parse_rope(const char *text, gen_rope_type *out);
const char *gen_rope_name(gen_rope_type type);

/* The family's defaults (Llama 3.1: llama3 scaling and 131072 positions) where the config does
 * not say otherwise (rope type none, max_position_set false), then the rope's defaults. */
void gen_family_resolve(struct gen_config *c, bool max_position_set);
/* 0, or -1 with a message: a rope the format cannot express, a bad factor. */
int gen_family_validate(const struct gen_config *c, char *err, size_t errlen);

/* model_type / llama.cpp architecture / rope_theta / q,k,v biases / q,k norms. */
const char *gen_family_model_type(const struct gen_config *c);
const char *gen_family_gguf_arch(const struct gen_config *c);
double gen_family_theta(const struct gen_config *c);
bool gen_family_qkv_bias(const struct gen_config *c);
bool gen_family_qk_norm(const struct gen_config *c);
/* llama.cpp's converter permutes q/k rows for its llama architecture only. */
bool gen_family_permutes(const struct gen_config *c);
/* GGUF llama3 scaling: llama.cpp's converter writes the frequency divisors as rope_freqs.weight
 * (head_dim / 2 floats) instead of metadata. */
bool gen_family_rope_freqs(const struct gen_config *c);
void gen_rope_factors(const struct gen_config *c, float *out);

/* The whole config.json. 0, or -1 on a write error (ferror). */
int gen_family_config_json(FILE *f, const struct gen_config *c, const char *torch_dtype);

#endif
