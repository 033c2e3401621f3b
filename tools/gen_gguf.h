/* The GGUF side of `hoist gen`: llama.cpp's tensor names and metadata keys, the header bytes, the
 * rotary permutation llama.cpp's converter applies to the q and k projections, and Q8_0
 * quantization. Uses only libc and libm; does not use libhoist. */
#ifndef HOIST_GEN_GGUF_H
#define HOIST_GEN_GGUF_H

#include "gen.h"
#include "gen_names.h"

#include <stddef.h>
#include <stdint.h>

#define GEN_Q8_0_BLOCK 32u        /* elements per Q8_0 block */
#define GEN_Q8_0_BYTES 34u        /* an f16 scale and 32 int8 */

/* ggml type ids of the tensor types gen writes. */
enum { GEN_GGML_F32 = 0, GEN_GGML_F16 = 1, GEN_GGML_Q8_0 = 8, GEN_GGML_BF16 = 30 };

/* One tensor info: ne is innermost first (ne[0] = columns), offset from the data section. */
typedef struct gen_gguf_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[2];
    uint32_t type;
    uint64_t offset;
} gen_gguf_tensor;

/* The whole GGUF header for cfg and its n tensors: the metadata (general.*, llama.*, a
 * synthetic SentencePiece vocabulary of cfg->vocab tokens), the tensor infos, and zeros up to
 * GEN_GGUF_ALIGNMENT. *out is malloc'd (the caller frees it); 0, or -1 when out of memory. */
int gen_gguf_header(const gen_config *cfg, const gen_gguf_tensor *tensors, size_t n,
                    unsigned char **out, uint64_t *len);

struct gen_plan;
/* Fills the plan's one header (gen_gguf_header over its tensors) and its data size, padded to
 * GEN_GGUF_ALIGNMENT as llama.cpp's writer leaves it. 0, or -1 when out of memory. */
int gen_gguf_plan_header(struct gen_plan *p, const gen_config *cfg);

/* Row order of a [heads * head_dim, cols] q or k projection as llama.cpp's converter writes it:
 * within each head, Hugging Face's rotate-half layout (row h * head_dim/2 + i for half h) becomes
 * interleaved pairs (row 2i + h), which llama.cpp's rotary embedding of the llama architecture
 * expects. src and dst hold heads * head_dim rows of cols elements of esz bytes; they must not
 * overlap. */
void gen_rope_permute(const void *src, void *dst, uint64_t heads, uint64_t head_dim,
                      uint64_t cols, size_t esz);

/* Quantizes n floats (a multiple of GEN_Q8_0_BLOCK) into n / 32 Q8_0 blocks exactly as ggml's
 * quantize_row_q8_0_ref: d = max|x| / 127 stored as f16 (round to nearest even), q = round(x / d)
 * with halves away from zero. */
void gen_quantize_q8_0(const float *x, uint64_t n, void *out);

/* IEEE binary16 bits of f, rounded to nearest even (exposed for tests). */
uint16_t gen_f32_to_f16(float f);

#endif
