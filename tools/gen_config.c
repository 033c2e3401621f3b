/* A gen_config's vocabulary and rules: dtype and format names, and what gen_validate accepts. */
#include "gen_family.h"
#include "gen_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gen_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *gen_dtype_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "bf16";
    case GEN_DTYPE_F16: return "f16";
    case GEN_DTYPE_F32: return "f32";
    case GEN_DTYPE_Q8_0: return "q8_0";
    }
    return "?";
}

const char *gen_dtype_st_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "BF16";
    case GEN_DTYPE_F16: return "F16";
    case GEN_DTYPE_F32: return "F32";
    case GEN_DTYPE_Q8_0: return "Q8_0";
    }
    return "?";
}

const char *gen_dtype_torch_name(gen_dtype dtype)
{
    switch (dtype) {
    case GEN_DTYPE_BF16: return "bfloat16";
    case GEN_DTYPE_F16: return "float16";
    case GEN_DTYPE_F32:
    case GEN_DTYPE_Q8_0: return "float32";
    }
    return "?";
}

size_t gen_dtype_size(gen_dtype dtype)
{
    return dtype == GEN_DTYPE_Q8_0 ? 0 : dtype == GEN_DTYPE_F32 ? 4 : 2;
}

int gen_parse_dtype(const char *text, gen_dtype *out)
{
    static const struct {
        const char *name;
        gen_dtype dtype;
    } names[] = {
        {"bf16", GEN_DTYPE_BF16},    {"bfloat16", GEN_DTYPE_BF16}, {"f16", GEN_DTYPE_F16},
        {"fp16", GEN_DTYPE_F16},     {"float16", GEN_DTYPE_F16},   {"half", GEN_DTYPE_F16},
        {"f32", GEN_DTYPE_F32},      {"fp32", GEN_DTYPE_F32},      {"float32", GEN_DTYPE_F32},
        {"float", GEN_DTYPE_F32},    {"q8_0", GEN_DTYPE_Q8_0},     {"Q8_0", GEN_DTYPE_Q8_0},
    };
    if (!text) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].dtype;
            return 0;
        }
    }
    return -1;
}

int gen_parse_format(const char *text, gen_format *out)
{
    if (text && strcmp(text, "safetensors") == 0) *out = GEN_FORMAT_SAFETENSORS;
    else if (text && strcmp(text, "gguf") == 0) *out = GEN_FORMAT_GGUF;
    else return -1;
    return 0;
}

int gen_validate(const gen_config *c, char *err, size_t errlen)
{
    if (!c) {
        gen_set_err(err, errlen, "no config");
        return -1;
    }
    const struct {
        const char *name;
        uint32_t value, max;
    } dims[] = {
        {"layers", c->layers, GEN_MAX_LAYERS},
        {"hidden", c->hidden, GEN_MAX_DIM},
        {"intermediate", c->intermediate, GEN_MAX_DIM},
        {"heads", c->heads, GEN_MAX_DIM},
        {"kv-heads", c->kv_heads, GEN_MAX_DIM},
        {"head-dim", c->head_dim, GEN_MAX_DIM},
        {"vocab", c->vocab, GEN_MAX_DIM},
        {"max-position", c->max_position, 1u << 30},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i].value == 0 || dims[i].value > dims[i].max) {
            gen_set_err(err, errlen, "%s must be between 1 and %u (got %u)", dims[i].name,
                        dims[i].max, dims[i].value);
            return -1;
        }
    }
    if (c->dtype != GEN_DTYPE_BF16 && c->dtype != GEN_DTYPE_F16 && c->dtype != GEN_DTYPE_F32 &&
        c->dtype != GEN_DTYPE_Q8_0) {
        gen_set_err(err, errlen, "unknown dtype %d", (int)c->dtype);
        return -1;
    }
    if (c->format != GEN_FORMAT_SAFETENSORS && c->format != GEN_FORMAT_GGUF) {
        gen_set_err(err, errlen, "unknown format %d", (int)c->format);
        return -1;
    }
    if (c->dtype == GEN_DTYPE_Q8_0 && c->format != GEN_FORMAT_GGUF) {
        gen_set_err(err, errlen, "q8_0 is a GGUF type: give --format gguf");
        return -1;
    }
    if (c->format == GEN_FORMAT_GGUF && c->head_dim % 2 != 0) {
        gen_set_err(err, errlen, "head-dim (%u) must be even for GGUF's rotary layout",
                    c->head_dim);
        return -1;
    }
    if (c->heads % c->kv_heads != 0) {
        gen_set_err(err, errlen, "heads (%u) must be a multiple of kv-heads (%u)", c->heads,
                    c->kv_heads);
        return -1;
    }
    if ((uint64_t)c->heads * c->head_dim > GEN_MAX_DIM) {
        gen_set_err(err, errlen, "heads * head-dim (%llu) above %u",
                    (unsigned long long)c->heads * c->head_dim, GEN_MAX_DIM);
        return -1;
    }
    if (c->shard_size == 0) {
        gen_set_err(err, errlen, "shard size must be positive");
        return -1;
    }
    if (c->threads > GEN_MAX_THREADS) {
        gen_set_err(err, errlen, "threads must be at most %u", GEN_MAX_THREADS);
        return -1;
    }
    if (gen_family_validate(c, err, errlen) != 0) return -1;
    uint64_t total = gen_total_bytes(c);
    if (total > GEN_MAX_TOTAL_BYTES) {
        gen_set_err(err, errlen, "model of %llu bytes is above the 1 TiB limit",
                    (unsigned long long)total);
        return -1;
    }
    return 0;
}
