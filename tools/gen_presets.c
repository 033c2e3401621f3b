/* The named geometries of `hoist gen --preset`. */
#include "gen.h"

#include <string.h>

typedef struct gen_preset_def {
    const char *name;
    const char *description;
    uint32_t layers, hidden, intermediate, heads, kv_heads, head_dim, vocab;
    bool tied;
    uint64_t shard_size;
} gen_preset_def;

static const gen_preset_def presets[] = {
    {"tiny", "smoke tests, a few hundred KiB", 2, 64, 172, 4, 2, 16, 256, false,
     GEN_DEFAULT_SHARD_SIZE},
    {"small", "about 1 GiB, 256 MiB shards", 9, 2048, 5632, 16, 4, 128, 32000, false,
     256ull << 20},
    {"llama-1b", "Llama-3.2-1B geometry, tied embeddings", 16, 2048, 8192, 32, 8, 64, 128256,
     true, GEN_DEFAULT_SHARD_SIZE},
    {"llama-3b", "Llama-3.2-3B geometry, tied embeddings", 28, 3072, 8192, 24, 8, 128, 128256,
     true, GEN_DEFAULT_SHARD_SIZE},
    {"llama-8b", "Llama-3-8B geometry", 32, 4096, 14336, 32, 8, 128, 128256, false,
     GEN_DEFAULT_SHARD_SIZE},
    {"llama-70b", "Llama-3-70B geometry", 80, 8192, 28672, 64, 8, 128, 128256, false,
     GEN_DEFAULT_SHARD_SIZE},
};

size_t gen_preset_count(void)
{
    return sizeof presets / sizeof presets[0];
}

const char *gen_preset_name(size_t i, const char **description)
{
    if (i >= gen_preset_count()) return NULL;
    if (description) *description = presets[i].description;
    return presets[i].name;
}

int gen_preset(const char *name, gen_config *out)
{
    if (!name || !out) return -1;
    for (size_t i = 0; i < gen_preset_count(); i++) {
        const gen_preset_def *p = &presets[i];
        if (strcmp(name, p->name) != 0) continue;
        out->layers = p->layers;
        out->hidden = p->hidden;
        out->intermediate = p->intermediate;
        out->heads = p->heads;
        out->kv_heads = p->kv_heads;
        out->head_dim = p->head_dim;
        out->vocab = p->vocab;
        out->tie_embeddings = p->tied;
        out->shard_size = p->shard_size;
        return 0;
    }
    return -1;
}
