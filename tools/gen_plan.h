/* The layout of a generated checkpoint, decided before a byte is written: every tensor in file
 * order with its dtype, file and offset, and every file's header. */
#ifndef HOIST_GEN_PLAN_H
#define HOIST_GEN_PLAN_H

#include "gen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gen_tensor {
    char name[64];       /* the Hugging Face name (GGUF: llama.cpp's) */
    uint64_t shape[2];
    int ndim;
    uint64_t numel;
    uint64_t nbytes;
    gen_dtype dtype;     /* as written (see gen_tensor_dtype) */
    bool ones;           /* RMSNorm weight: all 1.0 */
    bool jitter;         /* q/k norm weight: 1 + N(0, 0.02) */
    bool factors;        /* rope_freqs.weight: gen_rope_factors */
    uint32_t rope_heads; /* GGUF q/k projection: rows permuted over this many heads; else 0 */
    uint32_t file;
    uint64_t offset;     /* within the file's data section */
} gen_tensor;

typedef struct gen_plan {
    gen_tensor *t;
    size_t nt;
    uint32_t nfiles;
    uint64_t *file_data;  /* data bytes per file */
    uint64_t *file_start; /* header bytes per file */
    char **headers;       /* per file: the safetensors or GGUF header, file_start bytes */
} gen_plan;

/* Tensors and shards for a valid cfg (the headers are the format writers': gen_model.c asks them). 0, or -1 when out of memory (p is then empty). */
int gen_plan_build(gen_plan *p, const gen_config *cfg);
void gen_plan_free(gen_plan *p);
/* The name of file i of the plan: gen_file_name's, or GEN_GGUF_FILE. */
void gen_plan_file_name(const gen_plan *p, const gen_config *cfg, uint32_t i, char *buf,
                        size_t len);

#endif
