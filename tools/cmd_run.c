/* hoist run: load a model, generate tokens greedily, and report load time, time to first token,
 * prefill and decode speed, and decode's share of the memory-bandwidth roofline. */
#include "cli_util.h"
#include "plan_args.h"

#include "hoist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT (1u << 20)
#define MAX_NEW (1u << 24)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hoist run MODEL [options]\n\n"
            "Loads MODEL (a Llama-family checkpoint with its config.json), runs the prompt and\n"
            "generates tokens greedily, then reports load time, time to first token, prefill\n"
            "and decode tokens/s, and decode against the memory-bandwidth roofline: the weight\n"
            "bytes one decode step reads over the device's copy bandwidth, measured in the run.\n\n"
            "  --tokens LIST     prompt token ids, comma-separated (default 1)\n"
            "  --n N             tokens to generate (default 64)\n"
            "  --device D        host, cuda or cuda:N (default: cuda:0 if present, else host)\n"
            "  --path P          load path: auto, mmap, uring, stream (default auto)\n"
            "  --max-tokens N    KV-cache positions (default: prompt + N)\n"
            "  --no-graphs       launch each decode step's kernels instead of a CUDA graph\n"
            "  --warmup N        untimed runs of the prompt and 2 new tokens first, so that\n"
            "                    kernel loading and graph capture are not timed (default 1)\n"
            "  --csv             one line: device,load_s,prompt_tokens,new_tokens,ttft_s,\n"
            "                    prefill_tok_s,decode_tok_s,weight_bytes_per_token,\n"
            "                    mem_gb_s,roofline_tok_s,roofline_pct\n"
            "  --help            this text\n\n"
            "Spreading layers over several GPUs with a plan (instead of --device; see hoist plan;\n"
            "the roofline then uses the first device's bandwidth for every device):\n"
            CLI_PLAN_USAGE);
}

/* "1,2,3" into a malloc'd array; NULL on a malformed list. */
static int32_t *parse_tokens(const char *text, size_t *n)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    if (cap > MAX_PROMPT) return NULL;
    int32_t *t = malloc(cap * sizeof *t);
    if (!t) return NULL;
    const char *p = text;
    size_t k = 0;
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') break;
        long v = strtol(p, &end, 10);
        if (errno || v > INT32_MAX) break;
        t[k++] = (int32_t)v;
        if (*end == '\0') {
            *n = k;
            return t;
        }
        if (*end != ',') break;
        p = end + 1;
    }
    free(t);
    return NULL;
}

typedef struct run_args {
    const char *model;
    int32_t *tokens;
    size_t n_tokens;
    uint64_t n_new, max_tokens, warmup;
    hoist_load_options load;
    hoist_session_options sess;
    cli_plan_args plan;
    int device_set, csv;
} run_args;

enum {
    OPT_TOKENS = 256,
    OPT_N,
    OPT_DEVICE,
    OPT_PATH,
    OPT_MAX_TOKENS,
    OPT_WARMUP,
    OPT_NO_GRAPHS,
    OPT_CSV,
};

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"n", required_argument, NULL, OPT_N},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"path", required_argument, NULL, OPT_PATH},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"no-graphs", no_argument, NULL, OPT_NO_GRAPHS},
    {"csv", no_argument, NULL, OPT_CSV},
    CLI_PLAN_OPTIONS,
    {0},
};

static int option(cli_parser *p, int c, run_args *a)
{
    if (cli_is_plan_option(c)) return cli_plan_option(p, c, &a->plan);
    switch (c) {
    case 'h': usage(stdout); return CLI_EXIT_OK;
    case OPT_TOKENS:
        free(a->tokens);
        a->tokens = parse_tokens(p->value, &a->n_tokens);
        return a->tokens ? CLI_CONTINUE : cli_bad_value(p, "expected comma-separated token ids");
    case OPT_N: return cli_value_u64(p, 0, MAX_NEW, &a->n_new);
    case OPT_DEVICE: a->device_set = 1; return cli_value_device(p, &a->load.device);
    case OPT_PATH: return cli_value_path(p, &a->load.path);
    case OPT_MAX_TOKENS: return cli_value_u64(p, 0, UINT32_MAX, &a->max_tokens);
    case OPT_WARMUP: return cli_value_u64(p, 0, 100, &a->warmup);
    case OPT_NO_GRAPHS: a->sess.cuda_graphs = 0; return CLI_CONTINUE;
    case OPT_CSV: a->csv = 1; return CLI_CONTINUE;
    default: return cli_bad_option(p, c);
    }
}

static int parse_args(int argc, char **argv, run_args *a)
{
    cli_parser p;
    cli_parser_init(&p, "run", argc, argv, options, "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, a);
    if (rc == CLI_CONTINUE) rc = cli_operands(&p, 1, 1, (const char *const[]){"MODEL"});
    if (rc == CLI_CONTINUE) rc = cli_plan_args_check("run", &a->plan, a->device_set);
    if (rc == CLI_CONTINUE && !a->tokens) {
        a->tokens = parse_tokens("1", &a->n_tokens);
        if (!a->tokens) {
            cli_error("run", "out of memory");
            rc = CLI_EXIT_FAILURE;
        }
    }
    a->model = p.operand[0];
    return rc;
}

static void print_tokens(const int32_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", t[i]);
    printf("\n");
}

/* The devices a plan put weights on ("cuda:0+cuda:1"), and the first of them. */
static int plan_devices(const hoist_plan *p, char *buf, size_t n)
{
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    hoist_plan_info_get(p, &in);
    size_t len = 0;
    int first = HOIST_DEVICE_HOST, any = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < in.ndevices && len + 1 < n; i++) {
        hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
        char name[32];
        if (hoist_plan_usage_get(p, i, &u) < 0 || !u.weights_bytes) continue;
        if (!any) first = u.device;
        len += (size_t)snprintf(buf + len, n - len, "%s%s", any++ ? "+" : "",
                                hoist_device_name(u.device, name, sizeof name));
    }
    return first;
}

/* Loads, generates and reports; everything it takes is released by the caller's cleanup. */
static int run(run_args *a, hoist_model **m, hoist_plan **plan, hoist_weights **w,
               hoist_session **s, int32_t **out)
{
    int rc = hoist_model_open(a->model, NULL, m);
    if (rc < 0) return cli_fail("run", rc);
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    char dev[160];
    int bw_device = a->load.device;
    if (a->plan.any) {
        /* planning asks the devices, which brings them up before the timed load */
        if (cli_plan_make("run", *m, &a->plan, plan) < 0) return 1;
        if (!a->csv) cli_plan_print(stdout, *plan);
        hoist_plan_geometry(*plan, &g);
        a->load.plan = *plan;
        bw_device = plan_devices(*plan, dev, sizeof dev);
    } else {
        rc = hoist_model_geometry(*m, &g);
        if (rc < 0) return cli_fail("run", rc);
        hoist_device_name(a->load.device, dev, sizeof dev);
    }
    /* what the forward pass would not compute is refused before a byte is read */
    uint64_t need = a->n_tokens + (a->n_new ? a->n_new - 1 : 0);
    a->sess.max_tokens = (uint32_t)(a->max_tokens ? a->max_tokens : need ? need : 1);
    rc = hoist_session_check_model(*m, &g, &a->sess);
    if (rc < 0) return cli_fail("run", rc);
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    rc = hoist_device_info_get(bw_device, &info); /* context creation is not load time */
    if (rc < 0) return cli_fail("run", rc);

    rc = hoist_load(*m, &a->load, w);
    if (rc < 0) return cli_fail("run", rc);
    hoist_load_stats ls = HOIST_LOAD_STATS_INIT;
    hoist_weights_stats(*w, &ls);

    rc = hoist_session_create(*w, &g, &a->sess, s);
    if (rc < 0) return cli_fail("run", rc);
    /* the ceiling, measured in this run on the same device */
    double mem_gbs = 0;
    uint64_t probe = bw_device < 0 ? 256u << 20 : 1u << 30;
    rc = hoist_device_memory_bandwidth(bw_device, probe, 5, &mem_gbs);
    if (rc < 0) return cli_fail("run", rc);

    *out = calloc(a->n_new ? a->n_new : 1, sizeof **out);
    if (!*out) {
        cli_error("run", "out of memory");
        return 1;
    }
    for (uint64_t i = 0; i < a->warmup && rc == 0; i++) {
        rc = hoist_session_generate(*s, a->tokens, a->n_tokens, a->n_new < 2 ? a->n_new : 2, *out);
        if (rc == 0) rc = hoist_session_reset(*s);
    }
    if (rc < 0) return cli_fail("run", rc);
    hoist_session_stats st0 = HOIST_SESSION_STATS_INIT, st = HOIST_SESSION_STATS_INIT;
    hoist_session_stats_get(*s, &st0);
    rc = hoist_session_generate(*s, a->tokens, a->n_tokens, a->n_new, *out);
    if (rc < 0) return cli_fail("run", rc);
    hoist_session_stats_get(*s, &st);
    /* the timed run only: the statistics add up over the session's life */
    st.prefill_tokens -= st0.prefill_tokens;
    st.prefill_seconds -= st0.prefill_seconds;
    st.decode_tokens -= st0.decode_tokens;
    st.decode_seconds -= st0.decode_seconds;

    double prefill_tps = st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0;
    double decode_tps = st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0;
    double roof_tps = mem_gbs * 1e9 / (double)st.weight_bytes_per_token;
    double pct = roof_tps > 0 ? 100.0 * decode_tps / roof_tps : 0;
    if (a->csv) {
        printf("%s,%.4f,%zu,%llu,%.6f,%.2f,%.3f,%llu,%.1f,%.3f,%.1f\n", dev, ls.seconds,
               a->n_tokens, (unsigned long long)a->n_new, st.first_token_seconds, prefill_tps,
               decode_tps, (unsigned long long)st.weight_bytes_per_token, mem_gbs, roof_tps, pct);
        return 0;
    }
    char b1[32], b2[32];
    printf("model %s: %s, %u layers, hidden %u, heads %u/%u, vocab %u, %s%s\n", a->model,
           g.architecture[0] ? g.architecture : "?", g.n_layers, g.hidden, g.n_heads,
           g.n_kv_heads, g.vocab, hoist_dtype_name(g.dtype), g.tied_embeddings ? ", tied" : "");
    printf("device %s (%s), backend %s; KV cache %s for %u positions\n", dev, info.name,
           st.backend, cli_fmt_bytes(st.kv_cache_bytes, b1, sizeof b1), a->sess.max_tokens);
    printf("prompt (%zu): ", a->n_tokens);
    print_tokens(a->tokens, a->n_tokens);
    printf("generated (%llu): ", (unsigned long long)a->n_new);
    print_tokens(*out, a->n_new);
    printf("load:                %.3f s (%s, %.2f GB/s, path %s)\n", ls.seconds,
           cli_fmt_bytes(ls.bytes, b2, sizeof b2),
           ls.seconds > 0 ? (double)ls.bytes / ls.seconds / 1e9 : 0, ls.path);
    printf("time to first token: %.2f ms\n", st.first_token_seconds * 1e3);
    printf("prefill:             %.1f tokens/s (%llu tokens in %.2f ms)\n", prefill_tps,
           (unsigned long long)st.prefill_tokens, st.prefill_seconds * 1e3);
    printf("decode:              %.2f tokens/s (%llu tokens in %.3f s, %.3f ms/token)\n",
           decode_tps, (unsigned long long)st.decode_tokens, st.decode_seconds,
           st.decode_tokens ? st.decode_seconds * 1e3 / st.decode_tokens : 0);
    printf("roofline:            %.1f%% of %.2f tokens/s (%.3f GB of weights per token over "
           "%.1f GB/s device memory bandwidth, copy measured in this run)\n",
           pct, roof_tps, st.weight_bytes_per_token / 1e9, mem_gbs);
    return 0;
}

int cmd_run(int argc, char **argv)
{
    run_args a = {.n_new = 64, .warmup = 1};
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_session_options so = HOIST_SESSION_OPTIONS_DEFAULT;
    a.load = lo;
    a.sess = so;
    cli_plan_args_init(&a.plan);
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_CONTINUE) {
        free(a.tokens);
        return rc;
    }
    if (!a.device_set) a.load.device = hoist_device_count() > 0 ? 0 : HOIST_DEVICE_HOST;
    hoist_model *m = NULL;
    hoist_plan *plan = NULL;
    hoist_weights *w = NULL;
    hoist_session *s = NULL;
    int32_t *out = NULL;
    rc = run(&a, &m, &plan, &w, &s, &out);
    hoist_session_free(s);
    hoist_weights_free(w);
    hoist_plan_free(plan);
    hoist_model_free(m);
    free(out);
    free(a.tokens);
    return rc;
}
