/* The model families `hoist gen` writes: Llama (and Llama 3.1, its llama3 rope scaling), Qwen2
 * (q/k/v biases), Qwen3 (q/k norms) and Mistral, each with the config.json keys transformers
 * reads for it and the GGUF architecture and metadata llama.cpp's converter writes for it; and
 * rope scaling of any type on top. Uses only libc and libm. */
#ifndef HOIST_GEN_FAMILY_H
#define HOIST_GEN_FAMILY_H

#include "gen_types.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>


/* "llama", "llama3.1", "qwen2", "qwen3", "mistral"; 0, or -1 if unknown. */
int gen_parse_family(const char *text, gen_family *out);
const char *gen_family_name(gen_family family);
/* "none", "linear", "dynamic", "yarn", "llama3"; 0, or -1 if unknown. */
int gen_parse_rope(const char *text, gen_rope_type *out);
const char *gen_rope_name(gen_rope_type type);

/* The family's defaults (Llama 3.1: llama3 scaling and 131072 positions) where the config does
 * not say otherwise (rope type none, max_position_set false), then the rope's defaults. */
void gen_family_resolve(gen_config *c, bool max_position_set);
/* 0, or -1 with a message: a rope the format cannot express, a bad factor. */
int gen_family_validate(const gen_config *c, char *err, size_t errlen);

/* model_type / llama.cpp architecture / rope_theta / q,k,v biases / q,k norms. */
const char *gen_family_model_type(const gen_config *c);
const char *gen_family_gguf_arch(const gen_config *c);
double gen_family_theta(const gen_config *c);
bool gen_family_qkv_bias(const gen_config *c);
bool gen_family_qk_norm(const gen_config *c);
/* llama.cpp's converter permutes q/k rows for its llama architecture only. */
bool gen_family_permutes(const gen_config *c);
/* GGUF llama3 scaling: llama.cpp's converter writes the frequency divisors as rope_freqs.weight
 * (head_dim / 2 floats) instead of metadata. */
bool gen_family_rope_freqs(const gen_config *c);
void gen_rope_factors(const gen_config *c, float *out);

/* The whole config.json. 0, or -1 on a write error (ferror). */
int gen_family_config_json(FILE *f, const gen_config *c, const char *torch_dtype);

#endif
