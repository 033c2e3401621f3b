/* The planning flags shared by `hoist plan` and `hoist load`. */
#include "plan_args.h"

#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

enum {
    G_LAYERS = 1u << 0,
    G_HIDDEN = 1u << 1,
    G_INTER = 1u << 2,
    G_HEADS = 1u << 3,
    G_KV = 1u << 4,
    G_HEAD_DIM = 1u << 5,
    G_VOCAB = 1u << 6,
    G_MAX_POS = 1u << 7,
    G_TIE = 1u << 8,
};

/* The geometry flags: their bit in geo_given and their largest value. */
static const struct {
    int opt;
    unsigned bit;
    uint64_t max;
} geo_flags[] = {
    {CLI_PLAN_OPT_LAYERS, G_LAYERS, 1u << 20},
    {CLI_PLAN_OPT_HIDDEN, G_HIDDEN, 1u << 30},
    {CLI_PLAN_OPT_INTERMEDIATE, G_INTER, 1u << 30},
    {CLI_PLAN_OPT_HEADS, G_HEADS, 1u << 20},
    {CLI_PLAN_OPT_KV_HEADS, G_KV, 1u << 20},
    {CLI_PLAN_OPT_HEAD_DIM, G_HEAD_DIM, 1u << 20},
    {CLI_PLAN_OPT_VOCAB, G_VOCAB, 1u << 30},
    {CLI_PLAN_OPT_MAX_POSITION, G_MAX_POS, 1ull << 40},
};

void cli_plan_args_init(cli_plan_args *pa)
{
    memset(pa, 0, sizeof *pa);
    hoist_plan_options def = HOIST_PLAN_OPTIONS_DEFAULT;
    pa->opts = def;
    for (size_t d = 0; d < HOIST_PLAN_MAX_DEVICES; d++)
        pa->devices[d] = (hoist_plan_device)HOIST_PLAN_DEVICE_DEFAULT;
    pa->geo = (hoist_geometry)HOIST_GEOMETRY_INIT;
    pa->tp = (hoist_tp_options)HOIST_TP_OPTIONS_DEFAULT;
}

static void set_geo(cli_plan_args *pa, unsigned bit, uint64_t v)
{
    hoist_geometry *g = &pa->geo;
    switch (bit) {
    case G_LAYERS: g->n_layers = (uint32_t)v; break;
    case G_HIDDEN: g->hidden = (uint32_t)v; break;
    case G_INTER: g->intermediate = (uint32_t)v; break;
    case G_HEADS: g->n_heads = pa->tp.heads = (uint32_t)v; break; /* --tp cuts by them too */
    case G_KV: g->n_kv_heads = pa->tp.kv_heads = (uint32_t)v; break;
    case G_HEAD_DIM: g->head_dim = (uint32_t)v; break;
    case G_VOCAB: g->vocab = (uint32_t)v; break;
    case G_MAX_POS: g->max_position = v; break;
    default: return;
    }
    pa->geo_given |= bit;
}

static int geometry_option(const cli_parser *p, int c, cli_plan_args *pa)
{
    for (size_t g = 0; g < sizeof geo_flags / sizeof *geo_flags; g++) {
        if (geo_flags[g].opt != c) continue;
        uint64_t v;
        int rc = cli_value_u64(p, 1, geo_flags[g].max, &v);
        if (rc == CLI_CONTINUE) set_geo(pa, geo_flags[g].bit, v);
        return rc;
    }
    return cli_bad_option(p, '?');
}

int cli_plan_option(const cli_parser *p, int c, cli_plan_args *pa)
{
    uint64_t v = 0;
    int rc = CLI_CONTINUE;
    pa->any = 1;
    switch (c) {
    case CLI_PLAN_OPT_TIE_EMBEDDINGS:
        pa->geo.tied_embeddings = 1;
        pa->geo_given |= G_TIE;
        return CLI_CONTINUE;
    case CLI_PLAN_OPT_DEVICES:
        return cli_value_device_list(p, pa->devices, HOIST_PLAN_MAX_DEVICES, &pa->ndevices);
    case CLI_PLAN_OPT_RESERVE:
        return cli_value_size_list(p, pa->reserve, HOIST_PLAN_MAX_DEVICES, &pa->nreserve);
    case CLI_PLAN_OPT_KV_DTYPE:
        if (hoist_kv_dtype_parse(p->value, &pa->opts.kv_dtype) == HOIST_OK) return CLI_CONTINUE;
        return cli_bad_value(p, "%s", hoist_last_error());
    case CLI_PLAN_OPT_MAX_SEQ_LEN:
        rc = cli_value_u64(p, 1, 1ull << 32, &v);
        pa->opts.max_seq_len = v;
        return rc;
    case CLI_PLAN_OPT_BATCH:
        rc = cli_value_u64(p, 1, 65536, &v);
        pa->opts.batch = (uint32_t)v;
        return rc;
    case CLI_PLAN_OPT_FORWARD_TOKENS:
        rc = cli_value_u64(p, 1, 1u << 20, &v);
        pa->opts.forward_tokens = (uint32_t)v;
        return rc;
    case CLI_PLAN_OPT_TP:
        rc = cli_value_u64(p, 1, HOIST_PLAN_MAX_DEVICES, &v);
        pa->tp.world = (int)v;
        return rc;
    case CLI_PLAN_OPT_TP_PAD: pa->tp.pad = 1; return CLI_CONTINUE;
    default: return geometry_option(p, c, pa);
    }
}

int cli_plan_args_check(const char *cmd, const cli_plan_args *pa, int device_set)
{
    if (pa->any && device_set)
        return cli_usage_error(cmd, "--device places everything on one device; with a plan use "
                                    "--devices");
    if (pa->nreserve > 1 && pa->ndevices && pa->nreserve != pa->ndevices)
        return cli_usage_error(cmd, "--reserve lists %zu sizes for %zu devices (give one, or one "
                                    "each)",
                               pa->nreserve, pa->ndevices);
    if (pa->tp.world > 1 && pa->ndevices && pa->ndevices != (size_t)pa->tp.world)
        return cli_usage_error(cmd, "--tp %d needs one device per rank; --devices lists %zu",
                               pa->tp.world, pa->ndevices);
    return CLI_CONTINUE;
}

/* The dtype holding most of the model's bytes, for a geometry built from flags alone. */
static hoist_dtype majority_dtype(const hoist_model *m)
{
    uint64_t bytes[HOIST_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        if (hoist_model_tensor(m, i, &t) == 0) bytes[t.dtype] += t.nbytes;
    }
    int best = HOIST_DTYPE_F32;
    for (int d = 0; d < HOIST_DTYPE_COUNT; d++)
        if (bytes[d] > bytes[best]) best = d;
    return (hoist_dtype)best;
}

/* config.json's geometry with the flags over it; the flags alone when there is none. */
static int build_geometry(const char *cmd, hoist_model *m, cli_plan_args *pa, hoist_geometry *g)
{
    if (hoist_model_geometry(m, g) < 0) {
        const unsigned need = G_LAYERS | G_HIDDEN | G_INTER | G_HEADS | G_VOCAB;
        if ((pa->geo_given & need) != need) {
            cli_fail(cmd, HOIST_E_BAD_CONFIG);
            cli_error(cmd, "without a readable configuration, give at least --layers --hidden "
                           "--intermediate --heads --vocab");
            return HOIST_E_BAD_CONFIG;
        }
        *g = (hoist_geometry)HOIST_GEOMETRY_INIT;
        strcpy(g->architecture, "llama");
        g->rms_eps = 1e-5;
        g->rope_theta = 10000.0;
        g->dtype = majority_dtype(m);
        g->max_position = pa->opts.max_seq_len > 2048 ? pa->opts.max_seq_len : 2048;
    }
    const hoist_geometry *f = &pa->geo;
    if (pa->geo_given & G_LAYERS) g->n_layers = f->n_layers;
    if (pa->geo_given & G_HIDDEN) g->hidden = f->hidden;
    if (pa->geo_given & G_INTER) g->intermediate = f->intermediate;
    if (pa->geo_given & G_HEADS) g->n_heads = f->n_heads;
    if (pa->geo_given & G_VOCAB) g->vocab = f->vocab;
    if (pa->geo_given & G_MAX_POS) g->max_position = f->max_position;
    if (pa->geo_given & G_TIE) g->tied_embeddings = 1;
    if (pa->geo_given & G_KV)
        g->n_kv_heads = f->n_kv_heads;
    else if (pa->geo_given & G_HEADS)
        g->n_kv_heads = f->n_heads;
    if (pa->geo_given & G_HEAD_DIM)
        g->head_dim = f->head_dim;
    else if (pa->geo_given & (G_HIDDEN | G_HEADS))
        g->head_dim = g->n_heads ? g->hidden / g->n_heads : 0;
    int rc = hoist_geometry_check(g);
    if (rc < 0) cli_fail(cmd, rc);
    return rc;
}

/* Options from the flags; the geometry lives in *g. */
static int resolve(const char *cmd, hoist_model *m, cli_plan_args *pa, hoist_geometry *g)
{
    if (pa->nreserve > 1 && pa->nreserve != pa->ndevices) {
        cli_error(cmd, "--reserve lists %zu sizes for %zu devices (give one, or one each)",
                  pa->nreserve, pa->ndevices);
        return HOIST_E_INVALID_ARG;
    }
    if (pa->nreserve && !pa->ndevices) {
        /* reserves for the default device list: every CUDA device, or the host */
        int n = hoist_device_count();
        if (n > HOIST_PLAN_MAX_DEVICES) n = HOIST_PLAN_MAX_DEVICES;
        pa->ndevices = n > 0 ? (size_t)n : 1;
        for (size_t d = 0; d < pa->ndevices; d++)
            pa->devices[d] = (hoist_plan_device){.size = sizeof(hoist_plan_device),
                                                 .device = n > 0 ? (int)d : HOIST_DEVICE_HOST};
        if (pa->nreserve > 1 && pa->nreserve != pa->ndevices) {
            cli_error(cmd, "--reserve lists %zu sizes for %zu devices", pa->nreserve,
                      pa->ndevices);
            return HOIST_E_INVALID_ARG;
        }
    }
    for (size_t d = 0; d < pa->ndevices; d++)
        pa->devices[d].reserve_bytes = pa->nreserve ? pa->reserve[pa->nreserve > 1 ? d : 0] : 0;
    pa->opts.devices = pa->ndevices ? pa->devices : NULL;
    pa->opts.ndevices = pa->ndevices;
    pa->opts.geometry = NULL;
    pa->opts.tp = pa->tp.world > 1 ? &pa->tp : NULL;
    if (pa->geo_given) {
        int rc = build_geometry(cmd, m, pa, g);
        if (rc < 0) return rc;
        pa->opts.geometry = g;
    }
    return 0;
}

void cli_fit_print(FILE *f, hoist_model *model, cli_plan_args *pa)
{
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    hoist_fit fit = HOIST_FIT_INIT;
    if (resolve("plan", model, pa, &g) < 0 || hoist_plan_fit(model, &pa->opts, &fit) < 0) return;
    fprintf(f, "largest max_seq_len that fits (batch %u, searched up to the model's context or "
               "--max-seq-len):",
            pa->opts.batch ? pa->opts.batch : 1);
    for (int kv = 0; kv < HOIST_KV_DTYPE_COUNT; kv++)
        fprintf(f, "%s %s %llu", kv ? "," : "", hoist_kv_dtype_name((hoist_kv_dtype)kv),
                (unsigned long long)fit.max_seq_len[kv]);
    fprintf(f, "\n");
}

int cli_plan_make(const char *cmd, hoist_model *model, cli_plan_args *pa, hoist_plan **out)
{
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    int rc = resolve(cmd, model, pa, &g);
    if (rc < 0) return rc;
    rc = hoist_plan_create(model, &pa->opts, out);
    if (rc < 0) {
        cli_fail(cmd, rc);
        if (rc == HOIST_E_NO_FIT) cli_fit_print(stderr, model, pa);
    }
    return rc;
}

void cli_plan_print(FILE *f, const hoist_plan *p)
{
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    hoist_geometry geo = HOIST_GEOMETRY_INIT;
    if (hoist_plan_info_get(p, &in) < 0 || hoist_plan_geometry(p, &geo) < 0) return;
    const hoist_geometry *g = &geo;
    char a[32], b[32], c[32], d[32], e[32], h[32], dn[HOIST_DEVICE_NAME_MAX];
    fprintf(f, "geometry: %s, %u layers, hidden %u, intermediate %u, %u heads / %u kv heads of "
               "%u, vocab %u, context %llu, %s%s\n",
            g->architecture, g->n_layers, g->hidden, g->intermediate, g->n_heads, g->n_kv_heads,
            g->head_dim, g->vocab, (unsigned long long)g->max_position, hoist_dtype_name(g->dtype),
            g->tied_embeddings ? ", tied embeddings" : "");
    fprintf(f, "cache: %s, max_seq_len %llu, batch %u: %s per token, %s; forward pass of %u "
               "tokens\n",
            hoist_kv_dtype_name(in.kv_dtype), (unsigned long long)in.max_seq_len, in.batch,
            cli_fmt_bytes(in.kv_bytes_per_token, a, sizeof a),
            cli_fmt_bytes(in.kv_bytes, b, sizeof b), in.forward_tokens);
    fprintf(f, "%-8s %12s %12s %12s %12s %12s %12s  %s\n", "device", "free", "reserve",
            "weights", "kv cache", "workspace", "headroom", "holds");
    for (size_t i = 0; i < in.ndevices; i++) {
        hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
        if (hoist_plan_usage_get(p, i, &u) < 0) continue;
        char holds[96] = "-";
        size_t n = 0;
        if (in.tp_world > 1)
            n += (size_t)snprintf(holds + n, sizeof holds - n, "rank %zu of %zu: slices of ", i,
                                  in.tp_world);
        if (u.layers)
            n += (size_t)snprintf(holds + n, sizeof holds - n, "layers %u-%u", u.first_layer,
                                  u.first_layer + u.layers - 1);
        if (u.embeddings)
            n += (size_t)snprintf(holds + n, sizeof holds - n, "%sembeddings", n ? ", " : "");
        if (u.head) n += (size_t)snprintf(holds + n, sizeof holds - n, "%shead", n ? ", " : "");
        fprintf(f, "%-8s %12s %12s %12s %12s %12s %12s  %s\n",
                hoist_device_name(u.device, dn, sizeof dn),
                cli_fmt_bytes(u.free_bytes, a, sizeof a),
                cli_fmt_bytes(u.reserve_bytes, b, sizeof b),
                cli_fmt_bytes(u.weights_bytes, c, sizeof c), cli_fmt_bytes(u.kv_bytes, d, sizeof d),
                cli_fmt_bytes(u.workspace_bytes, e, sizeof e),
                cli_fmt_bytes(u.headroom_bytes, h, sizeof h), holds);
    }
    fprintf(f, "%-8s %12s %12s %12s %12s %12s\n", "total", "", "",
            cli_fmt_bytes(in.weights_bytes, a, sizeof a), cli_fmt_bytes(in.kv_bytes, b, sizeof b),
            cli_fmt_bytes(in.workspace_bytes, c, sizeof c));
}
