/* The values `hoist gen` is configured with (gen_config, and the dtypes, formats, families and
 * rope scalings it names), apart from the functions over them, so that gen_family.c and
 * gen_model.c can both use them without including each other. */
#ifndef HOIST_GEN_TYPES_H
#define HOIST_GEN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Q8_0 is GGUF only: 2-D tensors whose rows are whole 32-element blocks are quantized, others
 * fall back to F16 (as llama.cpp's converter does), and the RMSNorm weights stay F32. */
typedef enum gen_dtype {
    GEN_DTYPE_BF16 = 0,
    GEN_DTYPE_F16 = 1,
    GEN_DTYPE_F32 = 2,
    GEN_DTYPE_Q8_0 = 3
} gen_dtype;

typedef enum gen_format { GEN_FORMAT_SAFETENSORS = 0, GEN_FORMAT_GGUF = 1 } gen_format;

#define GEN_DEFAULT_SHARD_SIZE (5ull << 30)   /* like Hugging Face's max_shard_size="5GB" */
#define GEN_MAX_TOTAL_BYTES (1ull << 40)      /* 1 TiB: refuse anything larger */
#define GEN_MAX_LAYERS 10000u
#define GEN_MAX_DIM (1u << 24)                /* any single dimension, and heads * head_dim */
#define GEN_MAX_THREADS 1024u
#define GEN_STD 0.02f                         /* standard deviation of every non-norm weight */
#define GEN_BLOCK_ELEMS (1u << 20)            /* elements per independently seeded block */

typedef struct gen_config {
    uint32_t layers;         /* num_hidden_layers */
    uint32_t hidden;         /* hidden_size */
    uint32_t intermediate;   /* intermediate_size */
    uint32_t heads;          /* num_attention_heads */
    uint32_t kv_heads;       /* num_key_value_heads; divides heads */
    uint32_t head_dim;       /* q/k/v projections are heads*head_dim (kv_heads*head_dim) wide */
    uint32_t vocab;          /* vocab_size */
    uint32_t max_position;   /* max_position_embeddings (config.json only) */
    gen_dtype dtype;
    gen_format format;
    bool tie_embeddings;     /* no lm_head.weight; tie_word_embeddings true */
    uint64_t shard_size;     /* data bytes per shard at most (a larger tensor gets its own shard);
                                GGUF is always one file */
    uint64_t seed;
    unsigned threads;        /* 0 = online CPUs */
    bool force;              /* replace a checkpoint already in out_dir */
    bool progress;           /* print a progress line to stderr while writing */
    bool sync;               /* fsync every shard before returning */
    gen_family family;       /* config.json keys, extra tensors, GGUF architecture */
    gen_rope rope;           /* rope_scaling (resolved with gen_family_resolve) */
    uint32_t sliding_window; /* attention window (mistral, qwen2, qwen3); 0: none */
    uint32_t window_layers;  /* qwen's max_window_layers: the layers before it attend over
                                every position */
} gen_config;

/* The "tiny" geometry, bf16, 5 GiB shards, seed 0, all CPUs. */
#define GEN_CONFIG_DEFAULT                                                                        \
    {                                                                                             \
        .layers = 2, .hidden = 64, .intermediate = 172, .heads = 4, .kv_heads = 2,                \
        .head_dim = 16, .vocab = 256, .max_position = 4096, .dtype = GEN_DTYPE_BF16,              \
        .format = GEN_FORMAT_SAFETENSORS, .tie_embeddings = false,                                \
        .shard_size = GEN_DEFAULT_SHARD_SIZE, .seed = 0, .threads = 0, .force = false,            \
        .progress = false, .sync = false                                                          \
    }

#endif
