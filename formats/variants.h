/* The variants of the Llama block a configuration describes (rope scaling, biases, q/k norms,
 * sliding windows) and what in it the forward pass would not compute. Neither reader fails: a
 * key inference cannot honour is recorded in hoist_geometry.unsupported, naming it and its value,
 * so that loading and planning, which need only the shapes, still work. */
#ifndef HOIST_FORMATS_VARIANTS_H
#define HOIST_FORMATS_VARIANTS_H

#include "formats/table.h"

#include <jansson.h>

/* The architectures the forward pass runs: transformers' model_type, or llama.cpp's
 * general.architecture (which names Mistral models "llama"). */
int hoist__arch_supported(const char *arch);

/* config.json: obj is the object the keys are read from (root, or its text_config), prefix ""
 * or "text_config." for messages. g's shape and architecture are already read. */
void hoist__variants_from_json(const char *path, const json_t *root, const json_t *obj,
                               const char *prefix, hoist_geometry *g);

/* GGUF metadata ("<arch>.rope.scaling.*", "<arch>.attention.*") and the tensor table's layer 0
 * (biases and q/k norms, which llama.cpp announces by their presence). */
void hoist__variants_from_meta(const hoist__table *t, const char *arch, hoist_geometry *g);

/* Fills g->rope.attention_factor as transformers' yarn does when the configuration gives none:
 * from factor, and mscale / mscale_all_dim when both are non-zero. */
double hoist__yarn_attention_factor(double factor, double mscale, double mscale_all_dim);

#endif
