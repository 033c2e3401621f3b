/* hoist gen: write a deterministic Llama-shaped test/benchmark checkpoint. */
#include "cli_util.h"
#include "gen_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char gen_usage[] =
    "usage: hoist gen OUT_DIR [--preset NAME | --size SIZE] [options]\n"
    "\n"
    "Writes a deterministic Llama-shaped Hugging Face checkpoint (config.json and\n"
    "model.safetensors, or model-0000K-of-0000N.safetensors shards with\n"
    "model.safetensors.index.json) into OUT_DIR, or with --format gguf one\n"
    "model.gguf with llama.cpp's tensor names and metadata. Weights are N(0, 0.02),\n"
    "RMSNorm weights 1.0; the values depend only on the geometry and seed, whatever\n"
    "the format (GGUF's q/k rows are permuted as llama.cpp's converter does).\n"
    "\n"
    "  --preset NAME        tiny (default), small, llama-1b, llama-3b, llama-8b, llama-70b\n"
    "  --size SIZE          total size such as 8G: the layer count of the llama-8b\n"
    "                       geometry (or --preset's) that comes closest; smaller\n"
    "                       dimensions when one layer is already too big\n"
    "  --layers N           num_hidden_layers (not with --size)\n"
    "  --hidden N           hidden_size\n"
    "  --intermediate N     intermediate_size\n"
    "  --heads N            num_attention_heads\n"
    "  --kv-heads N         num_key_value_heads (divides --heads)\n"
    "  --head-dim N         head_dim (default hidden / heads)\n"
    "  --vocab N            vocab_size\n"
    "  --max-position N     max_position_embeddings (default 4096)\n"
    "  --family F           llama (default), llama3.1 (llama3 rope scaling, 131072\n"
    "                       positions), qwen2 (q/k/v biases), qwen3 (q/k norms), mistral\n"
    "  --rope-scaling T     none, linear, dynamic, yarn or llama3 (rope_scaling; GGUF:\n"
    "                       llama.cpp's keys, llama3 as rope_freqs.weight, no dynamic)\n"
    "  --rope-factor X      its factor (default linear/dynamic 2, yarn 4, llama3 8)\n"
    "  --rope-original N    original_max_position_embeddings of yarn and llama3\n"
    "                       (default max-position / factor; llama3.1: 8192)\n"
    "  --format F           safetensors (default) or gguf\n"
    "  --dtype T            bf16 (default), f16 or f32; q8_0 with --format gguf\n"
    "  --tie-embeddings     no lm_head.weight (tie_word_embeddings true)\n"
    "  --no-tie-embeddings  separate lm_head.weight\n"
    "  --shard-size SIZE    largest shard (default 5G; small: 256M)\n"
    "  --seed N             default 0\n"
    "  --threads N          default: online CPUs\n"
    "  --force              replace a checkpoint already in OUT_DIR\n"
    "  --sync               fsync the shards before finishing (timed)\n"
    "  --quiet              print nothing but errors\n"
    "  --list-presets       print the presets with their sizes\n"
    "  --help               this text\n"
    "\n"
    "Sizes take K, M, G, T suffixes (powers of 1024). The total is limited to 1 TiB.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hoist gen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", gen_usage);
    return 2;
}

typedef struct opt_u32 {
    bool set;
    uint32_t value;
} opt_u32;

static void list_presets(gen_dtype dtype)
{
    printf("%-10s %12s %16s  %s  (%s)\n", "preset", "size", "bytes", "files", gen_dtype_name(dtype));
    for (size_t i = 0; i < gen_preset_count(); i++) {
        const char *desc = NULL;
        const char *name = gen_preset_name(i, &desc);
        gen_config c = GEN_CONFIG_DEFAULT;
        gen_preset(name, &c);
        c.dtype = dtype;
        char b[32];
        uint64_t total = gen_total_bytes(&c);
        printf("%-10s %12s %16llu  %5u  %s; %u layers, hidden %u, intermediate %u, heads %u/%u, "
               "vocab %u\n",
               name, cli_fmt_bytes(total, b, sizeof b), (unsigned long long)total,
               gen_file_count(&c), desc, c.layers, c.hidden, c.intermediate, c.heads, c.kv_heads,
               c.vocab);
    }
}

int cmd_gen(int argc, char **argv)
{
    const char *out_dir = NULL, *preset = NULL;
    opt_u32 layers = {0}, hidden = {0}, inter = {0}, heads = {0}, kv = {0}, head_dim = {0},
            vocab = {0}, max_pos = {0};
    bool has_size = false, has_shard = false, has_dtype = false, has_seed = false;
    bool quiet = false, force = false, list = false, do_sync = false;
    int tie = -1;
    uint64_t size = 0, shard = 0, seed = 0, threads = 0;
    gen_dtype dtype = GEN_DTYPE_BF16;
    gen_format format = GEN_FORMAT_SAFETENSORS;
    gen_family family = GEN_FAMILY_LLAMA;
    gen_rope rope = {GEN_ROPE_NONE, 0, 0};

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (out_dir) return usage_error("unexpected argument '%s'", arg);
            out_dir = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            if (i + 1 < argc && !out_dir) out_dir = argv[++i];
            if (i + 1 < argc) return usage_error("unexpected argument '%s'", argv[i + 1]);
            break;
        }
        /* --name=value or --name value */
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof name) return usage_error("unknown option '%s'", arg);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (eq) value = eq + 1;

        /* flags without a value */
        bool *flag = NULL;
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(gen_usage, stdout);
            return 0;
        }
        if (strcmp(name, "--quiet") == 0 || strcmp(name, "-q") == 0) flag = &quiet;
        else if (strcmp(name, "--force") == 0) flag = &force;
        else if (strcmp(name, "--sync") == 0) flag = &do_sync;
        else if (strcmp(name, "--list-presets") == 0) flag = &list;
        if (flag || strcmp(name, "--tie-embeddings") == 0 ||
            strcmp(name, "--no-tie-embeddings") == 0) {
            if (value) return usage_error("option '%s' takes no value", name);
            if (flag) *flag = true;
            else tie = strcmp(name, "--tie-embeddings") == 0;
            continue;
        }

        /* options with a value */
        static const char *const valued[] = {
            "--preset", "--size", "--layers", "--hidden", "--intermediate", "--heads",
            "--kv-heads", "--head-dim", "--vocab", "--max-position", "--dtype", "--shard-size",
            "--seed", "--threads", "--format", "--family", "--rope-scaling", "--rope-factor",
            "--rope-original",
        };
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            if (strcmp(name, valued[k]) == 0) known = true;
        if (!known) return usage_error("unknown option '%s'", arg);
        if (!value) {
            if (i + 1 >= argc) return usage_error("option '%s' needs a value", name);
            value = argv[++i];
        }

        struct {
            const char *name;
            opt_u32 *dst;
        } dims[] = {
            {"--layers", &layers}, {"--hidden", &hidden},     {"--intermediate", &inter},
            {"--heads", &heads},   {"--kv-heads", &kv},       {"--head-dim", &head_dim},
            {"--vocab", &vocab},   {"--max-position", &max_pos},
        };
        bool done = false;
        for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
            if (strcmp(name, dims[k].name) != 0) continue;
            uint64_t v;
            if (!cli_parse_u64(value, &v) || v == 0 || v > UINT32_MAX)
                return usage_error("bad value for a dimension: '%s' (a positive integer)", value);
            dims[k].dst->set = true;
            dims[k].dst->value = (uint32_t)v;
            done = true;
        }
        if (done) continue;
        if (strcmp(name, "--preset") == 0) {
            preset = value;
        } else if (strcmp(name, "--size") == 0) {
            if (!cli_parse_size(value, &size) || size == 0)
                return usage_error("bad size '%s' (e.g. 8G, 512M)", value);
            has_size = true;
        } else if (strcmp(name, "--shard-size") == 0) {
            if (!cli_parse_size(value, &shard) || shard == 0)
                return usage_error("bad shard size '%s' (e.g. 5G, 256M)", value);
            has_shard = true;
        } else if (strcmp(name, "--dtype") == 0) {
            if (gen_parse_dtype(value, &dtype) != 0)
                return usage_error("unknown dtype '%s' (bf16, f16, f32 or q8_0)", value);
            has_dtype = true;
        } else if (strcmp(name, "--format") == 0) {
            if (gen_parse_format(value, &format) != 0)
                return usage_error("unknown format '%s' (safetensors or gguf)", value);
        } else if (strcmp(name, "--family") == 0) {
            if (gen_parse_family(value, &family) != 0)
                return usage_error("unknown family '%s' (llama, llama3.1, qwen2, qwen3, mistral)",
                                   value);
        } else if (strcmp(name, "--rope-scaling") == 0) {
            if (gen_parse_rope(value, &rope.type) != 0)
                return usage_error("unknown rope scaling '%s' (none, linear, dynamic, yarn, "
                                   "llama3)", value);
        } else if (strcmp(name, "--rope-factor") == 0) {
            char *end;
            rope.factor = strtod(value, &end);
            if (*end || !(rope.factor >= 1 && rope.factor <= 1e6))
                return usage_error("bad rope factor '%s' (1 to 1e6)", value);
        } else if (strcmp(name, "--rope-original") == 0) {
            uint64_t v;
            if (!cli_parse_u64(value, &v) || v == 0 || v > UINT32_MAX)
                return usage_error("bad --rope-original '%s' (a positive integer)", value);
            rope.original = (uint32_t)v;
        } else if (strcmp(name, "--seed") == 0) {
            if (!cli_parse_u64(value, &seed)) return usage_error("bad seed '%s'", value);
            has_seed = true;
        } else if (strcmp(name, "--threads") == 0) {
            if (!cli_parse_u64(value, &threads) || threads == 0 || threads > GEN_MAX_THREADS)
                return usage_error("bad thread count '%s' (1 to 1024)", value);
        }
    }

    if (list) {
        list_presets(dtype);
        return 0;
    }
    if (!out_dir) return usage_error("%s", "missing OUT_DIR");
    if (has_size && layers.set)
        return usage_error("%s", "--size chooses the layer count: give --size or --layers");
    if (has_size && size > GEN_MAX_TOTAL_BYTES)
        return usage_error("%s", "--size is above the 1 TiB limit");
    if (has_shard && format == GEN_FORMAT_GGUF)
        return usage_error("%s", "--shard-size: GGUF is written as one file");

    gen_config cfg = GEN_CONFIG_DEFAULT;
    const char *base = preset ? preset : has_size ? "llama-8b" : "tiny";
    if (gen_preset(base, &cfg) != 0)
        return usage_error("unknown preset '%s' (see --list-presets)", base);
    if (layers.set) cfg.layers = layers.value;
    if (hidden.set) cfg.hidden = hidden.value;
    if (inter.set) cfg.intermediate = inter.value;
    if (heads.set) cfg.heads = heads.value;
    if (kv.set) cfg.kv_heads = kv.value;
    if (vocab.set) cfg.vocab = vocab.value;
    if (max_pos.set) cfg.max_position = max_pos.value;
    if (tie >= 0) cfg.tie_embeddings = tie != 0;
    if (has_shard) cfg.shard_size = shard;
    if (has_seed) cfg.seed = seed;
    if (has_dtype) cfg.dtype = dtype;
    cfg.format = format;
    cfg.family = family;
    cfg.rope = rope;
    gen_family_resolve(&cfg, max_pos.set);
    cfg.threads = (unsigned)threads;
    cfg.force = force;
    cfg.sync = do_sync;
    if (head_dim.set) {
        cfg.head_dim = head_dim.value;
    } else if (hidden.set || heads.set) {
        if (cfg.hidden % cfg.heads != 0) {
            cli_error("gen", "hidden (%u) is not a multiple of heads (%u); give --head-dim to "
                      "decouple them", cfg.hidden, cfg.heads);
            fprintf(stderr, "\n%s", gen_usage);
            return 2;
        }
        cfg.head_dim = cfg.hidden / cfg.heads;
    }

    char err[1024];
    if (gen_validate(&cfg, err, sizeof err) != 0) return usage_error("%s", err);
    if (has_size) {
        if (gen_fit_size(size, &cfg) != 0 || gen_validate(&cfg, err, sizeof err) != 0)
            return usage_error("%s", "cannot fit a model to that --size");
    }

    uint64_t total = gen_total_bytes(&cfg);
    uint32_t nfiles = gen_file_count(&cfg);
    char b1[32], b2[32];
    if (!quiet) {
        if (has_size)
            printf("geometry  %s fitted to %s\n", base, cli_fmt_bytes(size, b1, sizeof b1));
        else
            printf("geometry  %s%s\n", base,
                   (layers.set || hidden.set || inter.set || heads.set || kv.set || head_dim.set ||
                    vocab.set || tie >= 0)
                       ? " (modified)"
                       : "");
        printf("          layers %u, hidden %u, intermediate %u, heads %u, kv_heads %u, "
               "head_dim %u, vocab %u, %s embeddings\n",
               cfg.layers, cfg.hidden, cfg.intermediate, cfg.heads, cfg.kv_heads, cfg.head_dim,
               cfg.vocab, cfg.tie_embeddings ? "tied" : "untied");
        printf("family    %s, rope scaling %s", gen_family_name(cfg.family),
               gen_rope_name(cfg.rope.type));
        if (cfg.rope.type != GEN_ROPE_NONE) printf(" (factor %g)", cfg.rope.factor);
        printf("\n");
        printf("dtype     %s, seed %llu%s\n", gen_dtype_name(cfg.dtype),
               (unsigned long long)cfg.seed,
               cfg.dtype == GEN_DTYPE_Q8_0 ? " (norms f32; rows not a multiple of 32: f16)" : "");
        double params = (double)gen_param_count(&cfg);
        printf("total     %s (%llu bytes, %.2f %s params)\n", cli_fmt_bytes(total, b1, sizeof b1),
               (unsigned long long)total, params >= 1e9 ? params / 1e9 : params / 1e6,
               params >= 1e9 ? "B" : "M");
        char first[64], last[64];
        gen_file_name(0, nfiles, first, sizeof first);
        gen_file_name(nfiles - 1, nfiles, last, sizeof last);
        if (cfg.format == GEN_FORMAT_GGUF)
            printf("files     %s (GGUF v3, llama.cpp names and keys)\n", GEN_GGUF_FILE);
        else if (nfiles == 1)
            printf("files     config.json, %s (shard size %s)\n", first,
                   cli_fmt_bytes(cfg.shard_size, b2, sizeof b2));
        else
            printf("files     config.json, model.safetensors.index.json, %s .. %s (shard size "
                   "%s)\n",
                   first, last, cli_fmt_bytes(cfg.shard_size, b2, sizeof b2));
        fflush(stdout);
        cfg.progress = isatty(STDERR_FILENO) != 0;
    }

    double t0 = cli_now();
    if (gen_model_write(out_dir, &cfg, err, sizeof err) != 0) {
        cli_error("gen", "%s", err);
        return 1;
    }
    double secs = cli_now() - t0;
    if (!quiet) {
        unsigned nthreads = cfg.threads;
        if (!nthreads) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            nthreads = n > 0 ? (unsigned)n : 1;
        }
        printf("wrote     %s in %.2f s: %.2f GB/s (%u threads, %s)\n", out_dir, secs,
               secs > 0 ? (double)total / secs / 1e9 : 0.0, nthreads, gen_simd_name());
    }
    return 0;
}
