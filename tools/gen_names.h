/* How `hoist gen` names and aligns what it writes in a GGUF file: shared by the plan (which lays
 * the tensors out) and the GGUF writer, so that neither includes the other. */
#ifndef HOIST_GEN_NAMES_H
#define HOIST_GEN_NAMES_H

#include <stddef.h>

/* llama.cpp's writer aligns tensor data to this (general.alignment left at its default). */
#define GEN_GGUF_ALIGNMENT 32u

/* llama.cpp's name of a Hugging Face Llama tensor ("model.layers.3.self_attn.q_proj.weight" ->
 * "blk.3.attn_q.weight"); 0, or -1 when the name is not one gen writes. */
int gen_gguf_name(const char *hf_name, char *out, size_t len);

#endif
