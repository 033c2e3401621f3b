/* The safetensors side of `hoist gen`: each shard's header and model.safetensors.index.json. */
#ifndef HOIST_GEN_SAFETENSORS_H
#define HOIST_GEN_SAFETENSORS_H

#include "gen_plan.h"

#include <stdio.h>

#define GEN_INDEX_FILE "model.safetensors.index.json"

/* Fills p's headers, file_start and file_data from its tensors: per file an 8-byte little-endian
 * length N, then the JSON header padded with spaces so that 8 + N is a multiple of 8. 0, or -1
 * when out of memory. */
int gen_st_plan_headers(gen_plan *p);

/* Writes the index of a sharded plan (total_size and the weight map, sorted by tensor name) to
 * f. 0, or -1 with errno ENOMEM; write errors are left in f. */
int gen_st_write_index(FILE *f, const gen_plan *p);

#endif
