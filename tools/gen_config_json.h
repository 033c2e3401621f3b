/* config.json of a generated safetensors checkpoint: what Hugging Face's LlamaConfig reads. */
#ifndef HOIST_GEN_CONFIG_JSON_H
#define HOIST_GEN_CONFIG_JSON_H

#include "gen.h"

#include <stdio.h>

#define GEN_CONFIG_FILE "config.json"

/* Writes cfg's config.json to f; write errors are left in f. */
void gen_write_config_json(FILE *f, const gen_config *cfg);

#endif
