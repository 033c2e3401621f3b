/* Deterministic Llama-shaped checkpoint generator behind `hoist gen`.
 *
 * Writes config.json plus model.safetensors (or model-0000K-of-0000N.safetensors shards with
 * model.safetensors.index.json) into a directory, or one model.gguf with llama.cpp's names and
 * metadata keys (GEN_FORMAT_GGUF). Both formats hold the same values for the same seed: the GGUF
 * q and k projections have their rows permuted as llama.cpp's converter permutes them (see
 * gen_gguf.h), and a Q8_0 file holds the Q8_0 quantization of the f32 values. Every weight and
 * bias is N(0, 0.02), every RMSNorm weight of the residual stream exactly 1.0, Qwen3's q/k norm
 * weights 1 + N(0, 0.02) (so that their order matters); GGUF vectors are F32, as llama.cpp's
 * converter writes them; the family (gen_family.h) picks the tensors and keys. The bytes depend only on the config and
 * the seed: each 1 Mi-element block of each tensor is seeded from (seed, tensor index, block
 * index), so the thread count, the shard size and the CPU's vector unit never change a value.
 *
 * The files behind it: gen_config.c (dtypes, formats, gen_validate), gen_presets.c,
 * gen_geometry.c (sizes, gen_fit_size), gen_plan.c (tensors, shards, headers), gen_values.c (the
 * N(0, 0.02) stream), gen_safetensors.c and gen_gguf.c (the two formats), gen_config_json.c,
 * gen_outdir.c (the output directory), gen_workers.c (the writing threads) and gen_model.c
 * (gen_model_write over them).
 *
 * Uses only libc, pthread and libm; does not use libhoist. May print (progress, when asked). */
#ifndef HOIST_GEN_H
#define HOIST_GEN_H

#include "gen_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "bf16" / "f16" / "f32" / "q8_0"; the safetensors name "BF16" / "F16" / "F32" (Q8_0: "Q8_0");
 * the torch_dtype "bfloat16" / "float16" / "float32" (Q8_0: "float32", what it quantizes);
 * bytes per element (Q8_0: 0, it takes 34 bytes per 32). */
const char *gen_dtype_name(gen_dtype dtype);
const char *gen_dtype_st_name(gen_dtype dtype);
const char *gen_dtype_torch_name(gen_dtype dtype);
size_t gen_dtype_size(gen_dtype dtype);
/* Accepts bf16/bfloat16, f16/fp16/float16, f32/fp32/float32, q8_0. 0, or -1 if unknown. */
int gen_parse_dtype(const char *text, gen_dtype *out);
/* Accepts safetensors, gguf. 0, or -1 if unknown. */
int gen_parse_format(const char *text, gen_format *out);

/* Presets: "tiny", "small", "llama-1b", "llama-3b", "llama-8b", "llama-70b". gen_preset sets the
 * geometry, tie_embeddings and shard_size of *out (other fields are kept). 0, or -1 if unknown. */
int gen_preset(const char *name, gen_config *out);
size_t gen_preset_count(void);
/* The i-th preset's name and a one-line description (static storage); NULL past the end. */
const char *gen_preset_name(size_t i, const char **description);

/* Sum of tensor data bytes (saturates at UINT64_MAX); what index.json calls total_size. For GGUF
 * without the padding between tensors. */
uint64_t gen_total_bytes(const gen_config *cfg);
uint64_t gen_param_count(const gen_config *cfg);
/* Number of weight files gen_model_write produces (1 = model.safetensors or model.gguf); 0 if
 * invalid. */
uint32_t gen_file_count(const gen_config *cfg);
/* Name of file i of n: "model.safetensors" when n == 1, else "model-%05u-of-%05u.safetensors". */
void gen_file_name(uint32_t i, uint32_t n, char *buf, size_t len);
#define GEN_GGUF_FILE "model.gguf"

/* 0 if the config can be written (dimensions in range, heads divisible by kv_heads, total at most
 * GEN_MAX_TOTAL_BYTES, ...); else -1 with a message in err. Does not require
 * hidden == heads * head_dim. */
int gen_validate(const gen_config *cfg, char *err, size_t errlen);

/* Chooses the number of layers (at least 1) of cfg's geometry so that gen_total_bytes is as close
 * as possible to target_bytes. If even one layer is larger than the target, shrinks hidden
 * (a multiple of lcm(head_dim, 64), keeping head_dim), intermediate and vocab (multiples of 64)
 * proportionally with one layer, then grows vocab and intermediate back toward the target.
 * 0, or -1 if target_bytes is 0 or cfg is invalid (cfg unchanged). */
int gen_fit_size(uint64_t target_bytes, gen_config *cfg);

/* Writes the checkpoint into out_dir (created with its parents if missing), every file under a
 * temporary name first, renamed into place at the end; never writes through a symlink. Without
 * cfg->force, refuses a directory that already holds any file of a checkpoint of the format
 * (model*.safetensors, model.safetensors.index.json, config.json; GGUF: model.gguf) and replaces
 * or removes nothing; with it, replaces them, and removes those the new checkpoint does not have
 * (shards of another count, a stale index). On failure no file of the new checkpoint is left.
 * 0, or -1 with a message (naming the file and offset where there is one) in err. */
int gen_model_write(const char *out_dir, const gen_config *cfg, char *err, size_t errlen);

/* Fills dst with n (<= GEN_BLOCK_ELEMS) elements of the N(0, GEN_STD) stream that a block seeded
 * with key starts with, as dtype. Exposed for tests. The environment variable HOIST_GEN_SIMD
 * (generic | avx2 | avx512) forces a code path; every path yields the same bytes. */
void gen_fill_normal(uint64_t key, uint32_t n, gen_dtype dtype, void *dst);
/* The code path gen_fill_normal uses: "generic", "avx2" or "avx512". */
const char *gen_simd_name(void);
/* The key of block `block` of tensor `tensor` (its index in file order) for a seed. */
uint64_t gen_block_key(uint64_t seed, uint64_t tensor, uint64_t block);

#endif
