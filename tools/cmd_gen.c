/* hoist gen: write a deterministic Llama-shaped test/benchmark checkpoint. */
#include "gen_family.h"
#include "cli_util.h"
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "gen"

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
    "  --sliding-window N   attend to the last N positions (mistral, qwen2, qwen3;\n"
    "                       safetensors only)\n"
    "  --window-layers N    qwen's max_window_layers: layers below N attend over every\n"
    "                       position (default 0: every layer has the window)\n"
    "  --format F           safetensors (default) or gguf\n"
    "  --dtype T            bf16 (default), f16 or f32; q8_0 with --format gguf\n"
    "  --tie-embeddings     no lm_head.weight (tie_word_embeddings true)\n"
    "  --no-tie-embeddings  separate lm_head.weight\n"
    "  --shard-size SIZE    largest shard (default 5G; small: 256M)\n"
    "  --seed N             default 0\n"
    "  --threads N          default: online CPUs\n"
    "  --force              replace a checkpoint already in OUT_DIR (without it, gen\n"
    "                       refuses a directory holding any file it would write)\n"
    "  --sync               fsync the shards before finishing (timed)\n"
    "  --quiet, -q          print nothing but errors\n"
    "  --list-presets       print the presets with their sizes\n"
    "  --help, -h           this text\n"
    "\n"
    "Sizes take K, M, G, T suffixes (powers of 1024). The total is limited to 1 TiB.\n";

enum {
    /* the dimensions first, in gen_args.dims order */
    OPT_LAYERS = 256,
    OPT_HIDDEN,
    OPT_INTERMEDIATE,
    OPT_HEADS,
    OPT_KV_HEADS,
    OPT_HEAD_DIM,
    OPT_VOCAB,
    OPT_MAX_POSITION,
    OPT_PRESET,
    OPT_SIZE,
    OPT_FORMAT,
    OPT_DTYPE,
    OPT_TIE,
    OPT_NO_TIE,
    OPT_SHARD_SIZE,
    OPT_SEED,
    OPT_THREADS,
    OPT_FORCE,
    OPT_SYNC,
    OPT_LIST_PRESETS,
    OPT_FAMILY,
    OPT_ROPE_SCALING,
    OPT_ROPE_FACTOR,
    OPT_ROPE_ORIGINAL,
    OPT_SLIDING_WINDOW,
    OPT_WINDOW_LAYERS,
};
enum { DIM_LAYERS, DIM_HIDDEN, DIM_INTER, DIM_HEADS, DIM_KV, DIM_HEAD_DIM, DIM_VOCAB, DIM_MAX_POS,
       NDIMS };

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"quiet", no_argument, NULL, 'q'},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"intermediate", required_argument, NULL, OPT_INTERMEDIATE},
    {"heads", required_argument, NULL, OPT_HEADS},
    {"kv-heads", required_argument, NULL, OPT_KV_HEADS},
    {"head-dim", required_argument, NULL, OPT_HEAD_DIM},
    {"vocab", required_argument, NULL, OPT_VOCAB},
    {"max-position", required_argument, NULL, OPT_MAX_POSITION},
    {"preset", required_argument, NULL, OPT_PRESET},
    {"size", required_argument, NULL, OPT_SIZE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"tie-embeddings", no_argument, NULL, OPT_TIE},
    {"no-tie-embeddings", no_argument, NULL, OPT_NO_TIE},
    {"shard-size", required_argument, NULL, OPT_SHARD_SIZE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"sync", no_argument, NULL, OPT_SYNC},
    {"list-presets", no_argument, NULL, OPT_LIST_PRESETS},
    {"family", required_argument, NULL, OPT_FAMILY},
    {"rope-scaling", required_argument, NULL, OPT_ROPE_SCALING},
    {"rope-factor", required_argument, NULL, OPT_ROPE_FACTOR},
    {"rope-original", required_argument, NULL, OPT_ROPE_ORIGINAL},
    {"sliding-window", required_argument, NULL, OPT_SLIDING_WINDOW},
    {"window-layers", required_argument, NULL, OPT_WINDOW_LAYERS},
    {0},
};

typedef struct opt_u32 {
    bool set;
    uint32_t value;
} opt_u32;

typedef struct gen_args {
    const char *out_dir, *preset;
    opt_u32 dims[NDIMS];
    bool has_size, has_shard, has_dtype, has_seed;
    bool quiet, force, list, sync;
    int tie; /* -1: the preset's */
    uint64_t size, shard, seed, threads;
    gen_dtype dtype;
    gen_format format;
    gen_family family;
    gen_rope rope;
    uint64_t sliding_window, window_layers;
} gen_args;

static void list_presets(gen_dtype dtype)
{
    printf("%-10s %12s %16s  %s  (%s)\n", "preset", "size", "bytes", "files",
           gen_dtype_name(dtype));
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

static int dimension(const cli_parser *p, opt_u32 *dim)
{
    uint64_t v = 0;
    int rc = cli_value_u64(p, 1, UINT32_MAX, &v);
    dim->set = rc == CLI_CONTINUE;
    dim->value = (uint32_t)v;
    return rc;
}

static int option(cli_parser *p, int c, gen_args *a)
{
    gen_config probe = GEN_CONFIG_DEFAULT;
    if (c >= OPT_LAYERS && c <= OPT_MAX_POSITION) return dimension(p, &a->dims[c - OPT_LAYERS]);
    switch (c) {
    case 'h': fputs(gen_usage, stdout); return CLI_EXIT_OK;
    case 'q': a->quiet = true; return CLI_CONTINUE;
    case OPT_PRESET:
        a->preset = p->value;
        if (gen_preset(a->preset, &probe) == 0) return CLI_CONTINUE;
        return cli_bad_value(p, "unknown preset (see --list-presets)");
    case OPT_SIZE:
        a->has_size = true;
        return cli_value_size(p, 1, GEN_MAX_TOTAL_BYTES, &a->size);
    case OPT_SHARD_SIZE:
        a->has_shard = true;
        return cli_value_size(p, 1, UINT64_MAX, &a->shard);
    case OPT_FORMAT:
        if (gen_parse_format(p->value, &a->format) == 0) return CLI_CONTINUE;
        return cli_bad_value(p, "expected safetensors or gguf");
    case OPT_DTYPE:
        a->has_dtype = true;
        if (gen_parse_dtype(p->value, &a->dtype) == 0) return CLI_CONTINUE;
        return cli_bad_value(p, "expected bf16, f16, f32 or q8_0");
    case OPT_SEED: a->has_seed = true; return cli_value_u64(p, 0, UINT64_MAX, &a->seed);
    case OPT_THREADS: return cli_value_u64(p, 1, GEN_MAX_THREADS, &a->threads);
    case OPT_TIE: case OPT_NO_TIE: a->tie = c == OPT_TIE; return CLI_CONTINUE;
    case OPT_FORCE: a->force = true; return CLI_CONTINUE;
    case OPT_SYNC: a->sync = true; return CLI_CONTINUE;
    case OPT_LIST_PRESETS: a->list = true; return CLI_CONTINUE;
    case OPT_FAMILY:
        if (gen_parse_family(p->value, &a->family) == 0) return CLI_CONTINUE;
        return cli_bad_value(p, "expected llama, llama3.1, qwen2, qwen3 or mistral");
    case OPT_ROPE_SCALING:
        if (gen_parse_rope(p->value, &a->rope.type) == 0) return CLI_CONTINUE;
        return cli_bad_value(p, "expected none, linear, dynamic, yarn or llama3");
    case OPT_ROPE_FACTOR: {
        char *end;
        a->rope.factor = strtod(p->value, &end);
        if (*p->value && !*end && a->rope.factor >= 1 && a->rope.factor <= 1e6)
            return CLI_CONTINUE;
        return cli_bad_value(p, "expected a number from 1 to 1e6");
    }
    case OPT_ROPE_ORIGINAL: {
        uint64_t v = 0;
        int rc = cli_value_u64(p, 1, UINT32_MAX, &v);
        a->rope.original = (uint32_t)v;
        return rc;
    }
    case OPT_SLIDING_WINDOW: return cli_value_u64(p, 1, UINT32_MAX, &a->sliding_window);
    case OPT_WINDOW_LAYERS: return cli_value_u64(p, 0, GEN_MAX_LAYERS, &a->window_layers);
    default: return cli_bad_option(p, c);
    }
}

static int parse(int argc, char **argv, gen_args *a)
{
    cli_parser p;
    cli_parser_init(&p, CMD, argc, argv, options, "hq");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, a);
    if (rc != CLI_CONTINUE) return rc;
    a->out_dir = p.operand[0];
    if (a->list) return cli_operands(&p, 0, 1, NULL);
    rc = cli_operands(&p, 1, 1, (const char *const[]){"OUT_DIR"});
    if (rc == CLI_CONTINUE && a->has_size && a->dims[DIM_LAYERS].set)
        rc = cli_usage_error(CMD, "--size chooses the layer count: give --size or --layers");
    if (rc == CLI_CONTINUE && a->has_shard && a->format == GEN_FORMAT_GGUF)
        rc = cli_usage_error(CMD, "--shard-size: GGUF is written as one file");
    return rc;
}

static const char *base_preset(const gen_args *a)
{
    return a->preset ? a->preset : a->has_size ? "llama-8b" : "tiny";
}

static bool geometry_modified(const gen_args *a)
{
    for (int d = 0; d < NDIMS; d++)
        if (d != DIM_MAX_POS && a->dims[d].set) return true;
    return a->tie >= 0;
}

/* The preset with the options over it; CLI_CONTINUE, or the usage error. */
static int build_config(const gen_args *a, gen_config *cfg)
{
    const opt_u32 *d = a->dims;
    uint32_t *fields[NDIMS] = {&cfg->layers, &cfg->hidden,   &cfg->intermediate, &cfg->heads,
                               &cfg->kv_heads, &cfg->head_dim, &cfg->vocab, &cfg->max_position};
    gen_preset(base_preset(a), cfg);
    for (int i = 0; i < NDIMS; i++)
        if (d[i].set) *fields[i] = d[i].value;
    if (a->tie >= 0) cfg->tie_embeddings = a->tie != 0;
    if (a->has_shard) cfg->shard_size = a->shard;
    if (a->has_seed) cfg->seed = a->seed;
    if (a->has_dtype) cfg->dtype = a->dtype;
    cfg->format = a->format;
    cfg->family = a->family;
    cfg->rope = a->rope;
    cfg->sliding_window = (uint32_t)a->sliding_window;
    cfg->window_layers = (uint32_t)a->window_layers;
    gen_family_resolve(cfg, d[DIM_MAX_POS].set);
    cfg->threads = (unsigned)a->threads;
    cfg->force = a->force;
    cfg->sync = a->sync;
    /* head_dim follows hidden / heads unless given: one of them changed means a new head size */
    if (!d[DIM_HEAD_DIM].set && (d[DIM_HIDDEN].set || d[DIM_HEADS].set)) {
        if (cfg->hidden % cfg->heads != 0)
            return cli_usage_error(CMD, "hidden (%u) is not a multiple of heads (%u); give "
                                        "--head-dim to decouple them",
                                   cfg->hidden, cfg->heads);
        cfg->head_dim = cfg->hidden / cfg->heads;
    }
    char err[1024];
    if (gen_validate(cfg, err, sizeof err) != 0) return cli_usage_error(CMD, "%s", err);
    if (a->has_size && (gen_fit_size(a->size, cfg) != 0 || gen_validate(cfg, err, sizeof err) != 0))
        return cli_usage_error(CMD, "cannot fit a model to --size %llu",
                               (unsigned long long)a->size);
    return CLI_CONTINUE;
}

static void print_plan(const gen_args *a, const gen_config *cfg)
{
    uint64_t total = gen_total_bytes(cfg);
    uint32_t nfiles = gen_file_count(cfg);
    char b1[32], b2[32];
    if (a->has_size)
        printf("geometry  %s fitted to %s\n", base_preset(a),
               cli_fmt_bytes(a->size, b1, sizeof b1));
    else
        printf("geometry  %s%s\n", base_preset(a), geometry_modified(a) ? " (modified)" : "");
    printf("          layers %u, hidden %u, intermediate %u, heads %u, kv_heads %u, "
           "head_dim %u, vocab %u, %s embeddings\n",
           cfg->layers, cfg->hidden, cfg->intermediate, cfg->heads, cfg->kv_heads, cfg->head_dim,
           cfg->vocab, cfg->tie_embeddings ? "tied" : "untied");
    printf("family    %s, rope scaling %s", gen_family_name(cfg->family),
           gen_rope_name(cfg->rope.type));
    if (cfg->rope.type != GEN_ROPE_NONE) printf(" (factor %g)", cfg->rope.factor);
    if (cfg->sliding_window)
        printf(", sliding window %u from layer %u", cfg->sliding_window, cfg->window_layers);
    printf("\n");
    printf("dtype     %s, seed %llu%s\n", gen_dtype_name(cfg->dtype), (unsigned long long)cfg->seed,
           cfg->dtype == GEN_DTYPE_Q8_0 ? " (norms f32; rows not a multiple of 32: f16)" : "");
    double params = (double)gen_param_count(cfg);
    printf("total     %s (%llu bytes, %.2f %s params)\n", cli_fmt_bytes(total, b1, sizeof b1),
           (unsigned long long)total, params >= 1e9 ? params / 1e9 : params / 1e6,
           params >= 1e9 ? "B" : "M");
    char first[64], last[64];
    gen_file_name(0, nfiles, first, sizeof first);
    gen_file_name(nfiles - 1, nfiles, last, sizeof last);
    if (cfg->format == GEN_FORMAT_GGUF)
        printf("files     %s (GGUF v3, llama.cpp names and keys)\n", GEN_GGUF_FILE);
    else if (nfiles == 1)
        printf("files     config.json, %s (shard size %s)\n", first,
               cli_fmt_bytes(cfg->shard_size, b2, sizeof b2));
    else
        printf("files     config.json, model.safetensors.index.json, %s .. %s (shard size %s)\n",
               first, last, cli_fmt_bytes(cfg->shard_size, b2, sizeof b2));
    fflush(stdout);
}

int cmd_gen(int argc, char **argv)
{
    gen_args a = {.tie = -1, .dtype = GEN_DTYPE_BF16, .format = GEN_FORMAT_SAFETENSORS};
    int rc = parse(argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (a.list) {
        list_presets(a.dtype);
        return CLI_EXIT_OK;
    }
    gen_config cfg = GEN_CONFIG_DEFAULT;
    rc = build_config(&a, &cfg);
    if (rc != CLI_CONTINUE) return rc;
    if (!a.quiet) {
        print_plan(&a, &cfg);
        cfg.progress = isatty(STDERR_FILENO) != 0;
    }
    double t0 = cli_now();
    char err[1024];
    if (gen_model_write(a.out_dir, &cfg, err, sizeof err) != 0) {
        cli_error(CMD, "%s", err);
        return CLI_EXIT_FAILURE;
    }
    double secs = cli_now() - t0;
    if (!a.quiet) {
        unsigned nthreads = cfg.threads;
        if (!nthreads) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            nthreads = n > 0 ? (unsigned)n : 1;
        }
        printf("wrote     %s in %.2f s: %.2f GB/s (%u threads, %s)\n", a.out_dir, secs,
               secs > 0 ? (double)gen_total_bytes(&cfg) / secs / 1e9 : 0.0, nthreads,
               gen_simd_name());
    }
    return CLI_EXIT_OK;
}
