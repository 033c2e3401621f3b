/* Model families of `hoist gen` (see gen_family.h). */
#include "gen_family.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define GEN_PI 3.14159265358979323846

static const char *const family_names[] = {"llama", "llama3.1", "qwen2", "qwen3", "mistral"};
static const char *const rope_names[] = {"none", "linear", "dynamic", "yarn", "llama3"};

int gen_parse_family(const char *text, gen_family *out)
{
    for (int i = 0; text && i < (int)(sizeof family_names / sizeof *family_names); i++)
        if (strcmp(text, family_names[i]) == 0) {
            *out = (gen_family)i;
            return 0;
        }
    return -1;
}

const char *gen_family_name(gen_family family)
{
    return (unsigned)family < sizeof family_names / sizeof *family_names ? family_names[family]
                                                                          : "?";
}

int gen_parse_rope(const char *text, gen_rope_type *out)
{
    for (int i = 0; text && i < (int)(sizeof rope_names / sizeof *rope_names); i++)
        if (strcmp(text, rope_names[i]) == 0) {
            *out = (gen_rope_type)i;
            return 0;
        }
    return -1;
}

const char *gen_rope_name(gen_rope_type type)
{
    return (unsigned)type < sizeof rope_names / sizeof *rope_names ? rope_names[type] : "?";
}

void gen_family_resolve(gen_config *c, bool max_position_set)
{
    gen_rope *r = &c->rope;
    if (c->family == GEN_FAMILY_LLAMA31) {
        if (r->type == GEN_ROPE_NONE) {
            r->type = GEN_ROPE_LLAMA3;
            if (r->original == 0) r->original = 8192;
        }
        if (!max_position_set) c->max_position = 131072;
    }
    if (r->factor == 0)
        r->factor = r->type == GEN_ROPE_LLAMA3 ? 8 : r->type == GEN_ROPE_YARN ? 4 : 2;
    if (r->original == 0 && (r->type == GEN_ROPE_LLAMA3 || r->type == GEN_ROPE_YARN)) {
        double o = c->max_position / r->factor;
        r->original = o < 1 ? 1 : (uint32_t)o;
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* LlamaConfig has no window; llama.cpp's converter writes none for these architectures, so a
 * GGUF file with one would run differently there. */
static int validate_window(const gen_config *c, char *err, size_t errlen)
{
    bool qwen = c->family == GEN_FAMILY_QWEN2 || c->family == GEN_FAMILY_QWEN3;
    if (c->sliding_window && !qwen && c->family != GEN_FAMILY_MISTRAL) {
        set_err(err, errlen, "a sliding window is mistral's, qwen2's or qwen3's");
        return -1;
    }
    if (c->sliding_window && c->format == GEN_FORMAT_GGUF) {
        set_err(err, errlen, "a sliding window has no GGUF form that llama.cpp runs");
        return -1;
    }
    if (c->window_layers && (!qwen || !c->sliding_window)) {
        set_err(err, errlen, "window layers are qwen2's and qwen3's, with a sliding window");
        return -1;
    }
    return 0;
}

int gen_family_validate(const gen_config *c, char *err, size_t errlen)
{
    const gen_rope *r = &c->rope;
    if ((unsigned)c->family > GEN_FAMILY_MISTRAL || (unsigned)r->type > GEN_ROPE_LLAMA3) {
        set_err(err, errlen, "unknown family %d or rope type %d", (int)c->family, (int)r->type);
        return -1;
    }
    if (r->type != GEN_ROPE_NONE && !(r->factor >= 1 && r->factor <= 1e6)) {
        set_err(err, errlen, "rope factor %g (expected 1 to 1e6)", r->factor);
        return -1;
    }
    if (c->format == GEN_FORMAT_GGUF && r->type == GEN_ROPE_DYNAMIC) {
        set_err(err, errlen, "dynamic rope scaling has no GGUF form (llama.cpp has no dynamic NTK)");
        return -1;
    }
    if (c->format == GEN_FORMAT_GGUF && r->type == GEN_ROPE_LLAMA3 && !gen_family_permutes(c)) {
        set_err(err, errlen, "llama3 rope scaling in GGUF is the llama architecture's");
        return -1;
    }
    if (r->type == GEN_ROPE_LLAMA3 && c->head_dim < 4) {
        set_err(err, errlen, "llama3 rope scaling needs head-dim of 4 or more");
        return -1;
    }
    return validate_window(c, err, errlen);
}

const char *gen_family_model_type(const gen_config *c)
{
    switch (c->family) {
    case GEN_FAMILY_QWEN2: return "qwen2";
    case GEN_FAMILY_QWEN3: return "qwen3";
    case GEN_FAMILY_MISTRAL: return "mistral";
    default: return "llama";
    }
}

const char *gen_family_gguf_arch(const gen_config *c)
{
    /* llama.cpp's converter writes Mistral as its llama architecture */
    return c->family == GEN_FAMILY_QWEN2 || c->family == GEN_FAMILY_QWEN3
               ? gen_family_model_type(c)
               : "llama";
}

double gen_family_theta(const gen_config *c)
{
    return c->family == GEN_FAMILY_LLAMA || c->family == GEN_FAMILY_LLAMA31 ? 500000.0 : 1000000.0;
}

bool gen_family_qkv_bias(const gen_config *c) { return c->family == GEN_FAMILY_QWEN2; }
bool gen_family_qk_norm(const gen_config *c) { return c->family == GEN_FAMILY_QWEN3; }

bool gen_family_permutes(const gen_config *c)
{
    return strcmp(gen_family_gguf_arch(c), "llama") == 0;
}

bool gen_family_rope_freqs(const gen_config *c)
{
    return c->format == GEN_FORMAT_GGUF && c->rope.type == GEN_ROPE_LLAMA3;
}

/* convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors, low_freq_factor 1 and
 * high_freq_factor 4 as gen writes them. */
void gen_rope_factors(const gen_config *c, float *out)
{
    const double factor = c->rope.factor, low = 1.0, high = 4.0, old = c->rope.original;
    const double low_wl = old / low, high_wl = old / high;
    uint32_t dim = c->head_dim;
    for (uint32_t i = 0; i < dim / 2; i++) {
        float freq = 1.0f / powf((float)gen_family_theta(c), (float)(2 * i) / (float)dim);
        double wavelen = 2 * GEN_PI / freq;
        if (wavelen < high_wl) {
            out[i] = 1.0f;
        } else if (wavelen > low_wl) {
            out[i] = (float)factor;
        } else {
            double smooth = (old / wavelen - low) / (high - low);
            out[i] = (float)(1 / ((1 - smooth) / factor + smooth));
        }
    }
}

static void rope_json(FILE *f, const gen_config *c)
{
    const gen_rope *r = &c->rope;
    switch (r->type) {
    case GEN_ROPE_NONE: fprintf(f, "null"); break;
    case GEN_ROPE_LINEAR:
    case GEN_ROPE_DYNAMIC:
        fprintf(f, "{\"rope_type\": \"%s\", \"factor\": %.17g}", gen_rope_name(r->type), r->factor);
        break;
    case GEN_ROPE_YARN:
        fprintf(f,
                "{\"rope_type\": \"yarn\", \"factor\": %.17g, "
                "\"original_max_position_embeddings\": %u}",
                r->factor, r->original);
        break;
    case GEN_ROPE_LLAMA3:
        fprintf(f,
                "{\"rope_type\": \"llama3\", \"factor\": %.17g, \"low_freq_factor\": 1.0, "
                "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": %u}",
                r->factor, r->original);
        break;
    }
}

/* Keys of each configuration class that the model's own config.json carries. */
static void family_keys(FILE *f, const gen_config *c)
{
    switch (c->family) {
    case GEN_FAMILY_QWEN2:
    case GEN_FAMILY_QWEN3:
        if (c->sliding_window)
            fprintf(f,
                    "  \"use_sliding_window\": true,\n"
                    "  \"sliding_window\": %u,\n"
                    "  \"max_window_layers\": %u,\n",
                    c->sliding_window, c->window_layers);
        else
            fprintf(f,
                    "  \"use_sliding_window\": false,\n"
                    "  \"sliding_window\": null,\n"
                    "  \"max_window_layers\": %u,\n",
                    c->layers);
        if (c->family == GEN_FAMILY_QWEN3) fprintf(f, "  \"attention_bias\": false,\n");
        break;
    case GEN_FAMILY_MISTRAL:
        if (c->sliding_window)
            fprintf(f, "  \"sliding_window\": %u,\n", c->sliding_window);
        else
            fprintf(f, "  \"sliding_window\": null,\n");
        break;
    default:
        fprintf(f,
                "  \"attention_bias\": false,\n"
                "  \"mlp_bias\": false,\n"
                "  \"pretraining_tp\": 1,\n");
    }
}

int gen_family_config_json(FILE *f, const gen_config *c, const char *torch_dtype)
{
    static const char *const classes[] = {"LlamaForCausalLM", "LlamaForCausalLM",
                                          "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                          "MistralForCausalLM"};
    fprintf(f,
            "{\n"
            "  \"architectures\": [\"%s\"],\n"
            "  \"model_type\": \"%s\",\n"
            "  \"hidden_size\": %u,\n"
            "  \"intermediate_size\": %u,\n"
            "  \"num_hidden_layers\": %u,\n"
            "  \"num_attention_heads\": %u,\n"
            "  \"num_key_value_heads\": %u,\n"
            "  \"head_dim\": %u,\n"
            "  \"vocab_size\": %u,\n"
            "  \"max_position_embeddings\": %u,\n"
            "  \"rms_norm_eps\": 1e-05,\n"
            "  \"rope_theta\": %.1f,\n"
            "  \"rope_scaling\": ",
            classes[c->family], gen_family_model_type(c), c->hidden, c->intermediate, c->layers,
            c->heads, c->kv_heads, c->head_dim, c->vocab, c->max_position, gen_family_theta(c));
    rope_json(f, c);
    fprintf(f, ",\n");
    family_keys(f, c);
    fprintf(f,
            "  \"tie_word_embeddings\": %s,\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"hidden_act\": \"silu\",\n"
            "  \"attention_dropout\": 0.0,\n"
            "  \"bos_token_id\": 1,\n"
            "  \"eos_token_id\": 2,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"use_cache\": true\n"
            "}\n",
            c->tie_embeddings ? "true" : "false", torch_dtype);
    return ferror(f) ? -1 : 0;
}
