/* hoist load: load a model into a device and report seconds, GB/s and peak host RAM. */
#include "cli_util.h"
#include "group_report.h"
#include "plan_args.h"
#include "progress_bar.h"

#include "hoist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hoist load PATH [options]\n\n"
            "  --path P          I/O path: auto, mmap, uring, stream (default auto)\n"
            "  --device D        host, cuda or cuda:N (default: cuda:0 if present, else host)\n"
            "  --threads N       worker threads (default: chosen by the path)\n"
            "  --chunk SIZE      staging window, e.g. 16M (default: chosen by the path; 4M\n"
            "                    for a packed model decoded on the GPU)\n"
            "  --readahead SIZE  stream: ask the kernel to read SIZE ahead of the workers (default\n"
            "                    none; at most a quarter of --ram-budget)\n"
            "  --ram-budget SIZE host bytes the loader may take (default: no limit)\n"
            "  --register        mmap to GPU: register the mapping and DMA from it\n"
            "  --no-register     mmap to GPU: copy through pinned staging slots\n"
            "  --verify          hash every byte in staging against the manifest (hoist sum);\n"
            "                    a packed model's chunk hashes are checked on every load\n"
            "  --manifest FILE   the manifest for --verify (default: beside the model)\n"
            "  --verify-readback read every byte back from the device and compare with the file\n"
            "  --repeat N        load N times (freeing in between) and report each\n"
            "  --lenient         accept trailing bytes after a data section\n"
            "  --progress        draw a progress bar on stderr even when it is not a terminal\n"
            "  --no-progress     never draw one (default: when stderr is a terminal)\n"
            "  --csv             one line per run: path,device,threads,seconds,gb_per_s,bytes,\n"
            "                    loader_peak_bytes,process_peak_rss_bytes,file_bytes,\n"
            "                    read_seconds,copy_seconds,verify_seconds,decode_seconds\n"
            "                    (bytes: model bytes placed; file_bytes: bytes read; the\n"
            "                    stage seconds are summed over workers)\n"
            "  --help            this text\n\n"
            "Placing with a plan (instead of --device; see hoist plan): the load fails before\n"
            "allocating anything when the plan does not fit.\n" CLI_PLAN_USAGE
            "\nSeveral devices at once (one thread per device, rank i on the i-th of --devices):\n"
            "  --tp N            each device loads only its rank's slice of every tensor, reading\n"
            "                    only those bytes\n"
            "  --cooperative     each device reads 1/N of the bytes every device needs (the whole\n"
            "                    model, or with --tp the replicated tensors) and the devices\n"
            "                    exchange the rest (NCCL between GPUs)\n");
}

static void report_csv(const hoist_load_stats *s, const char *dev)
{
    double gbs = s->seconds > 0 ? (double)s->bytes / s->seconds / 1e9 : 0;
    printf("%s,%s,%u,%.4f,%.3f,%llu,%llu,%llu,%llu,%.4f,%.4f,%.4f,%.4f\n", s->path, dev,
           s->threads, s->seconds, gbs, (unsigned long long)s->bytes,
           (unsigned long long)s->peak_host_bytes, (unsigned long long)cli_peak_rss(),
           (unsigned long long)s->file_bytes, s->read_seconds, s->copy_seconds,
           s->verify_seconds, s->decode_seconds);
}

static void report(const hoist_load_stats *s, int run, int repeat)
{
    char pk[32], rss[32];
    double gbs = s->seconds > 0 ? (double)s->bytes / s->seconds / 1e9 : 0;
    if (repeat > 1) printf("run %d: ", run + 1);
    printf("path %s, %u threads: %.3f s, %.2f GB/s, %.3f GB; peak host RAM: loader %s, process "
           "RSS %s",
           s->path, s->threads, s->seconds, gbs, (double)s->bytes / 1e9,
           cli_fmt_bytes(s->peak_host_bytes, pk, sizeof pk),
           cli_fmt_bytes(cli_peak_rss(), rss, sizeof rss));
    if (s->file_bytes != s->bytes)
        printf("; read %.3f GB of file at %.2f GB/s", (double)s->file_bytes / 1e9,
               s->seconds > 0 ? (double)s->file_bytes / s->seconds / 1e9 : 0);
    if (s->decode_seconds > 0) printf("; decode %.3f s", s->decode_seconds);
    if (s->verify_seconds > 0) printf("; hashing %.3f s", s->verify_seconds);
    if (s->readback_seconds > 0) printf("; read back in %.3f s", s->readback_seconds);
    if (s->gpu_decoded_bytes)
        printf("; %.3f GB decoded on the GPU%s", (double)s->gpu_decoded_bytes / 1e9,
               s->unhashed_bytes ? " (codes checked, not hashed)" : " and hashed there");
    printf("\n");
}

/* The devices a plan put weights on, "cuda:0+cuda:1" (CSV-safe). */
static void plan_devices(const hoist_plan *p, char *buf, size_t n)
{
    hoist_plan_info in = HOIST_PLAN_INFO_INIT;
    hoist_plan_info_get(p, &in);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < in.ndevices && len < n; i++) {
        hoist_plan_usage u = HOIST_PLAN_USAGE_INIT;
        char dn[32];
        if (hoist_plan_usage_get(p, i, &u) < 0 || !u.weights_bytes) continue;
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "+" : "",
                                hoist_device_name(u.device, dn, sizeof dn));
    }
}

/* Where the views say each tensor is: tensors and bytes per device. */
static void report_placement(const hoist_weights *w)
{
    int devs[HOIST_PLAN_MAX_DEVICES];
    size_t count[HOIST_PLAN_MAX_DEVICES] = {0}, nd = 0;
    uint64_t bytes[HOIST_PLAN_MAX_DEVICES] = {0};
    for (size_t i = 0; i < hoist_weights_count(w); i++) {
        hoist_view v = HOIST_VIEW_INIT;
        if (hoist_weights_view(w, i, &v) < 0) continue;
        size_t d = 0;
        while (d < nd && devs[d] != v.device) d++;
        if (d == nd) {
            if (nd == HOIST_PLAN_MAX_DEVICES) continue;
            devs[nd++] = v.device;
        }
        count[d]++;
        bytes[d] += v.nbytes;
    }
    printf("views:");
    for (size_t d = 0; d < nd; d++) {
        char dn[32], b[32];
        printf("%s %s %zu tensors, %s", d ? ";" : "", hoist_device_name(devs[d], dn, sizeof dn),
               count[d], cli_fmt_bytes(bytes[d], b, sizeof b));
    }
    printf("\n");
}

enum {
    OPT_PATH = 256,
    OPT_DEVICE,
    OPT_THREADS,
    OPT_CHUNK,
    OPT_READAHEAD,
    OPT_RAM_BUDGET,
    OPT_REPEAT,
    OPT_REGISTER,
    OPT_NO_REGISTER,
    OPT_VERIFY,
    OPT_VERIFY_READBACK,
    OPT_MANIFEST,
    OPT_CSV,
    OPT_LENIENT,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_COOPERATIVE,
};

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"path", required_argument, NULL, OPT_PATH},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {"readahead", required_argument, NULL, OPT_READAHEAD},
    {"ram-budget", required_argument, NULL, OPT_RAM_BUDGET},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"register", no_argument, NULL, OPT_REGISTER},
    {"no-register", no_argument, NULL, OPT_NO_REGISTER},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"verify-readback", no_argument, NULL, OPT_VERIFY_READBACK},
    {"manifest", required_argument, NULL, OPT_MANIFEST},
    {"csv", no_argument, NULL, OPT_CSV},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"cooperative", no_argument, NULL, OPT_COOPERATIVE},
    CLI_PLAN_OPTIONS,
    {0},
};

typedef struct load_args {
    const char *path;
    hoist_load_options o;
    hoist_open_options oo;
    int device_set, csv, cooperative;
    cli_progress_mode progress;
    uint64_t repeat;
    cli_plan_args plan;
} load_args;

static int option(cli_parser *p, int c, load_args *a)
{
    uint64_t v = 0;
    int rc;
    if (cli_is_plan_option(c)) return cli_plan_option(p, c, &a->plan);
    switch (c) {
    case 'h': usage(stdout); return CLI_EXIT_OK;
    case OPT_PATH: return cli_value_path(p, &a->o.path);
    case OPT_DEVICE: a->device_set = 1; return cli_value_device(p, &a->o.device);
    case OPT_THREADS: return cli_value_unsigned(p, 0, 256, &a->o.threads);
    case OPT_CHUNK: return cli_value_size(p, 0, UINT64_MAX, &a->o.chunk_bytes);
    case OPT_READAHEAD:
        rc = cli_value_size(p, 0, INT64_MAX, &v);
        a->o.readahead_bytes = (int64_t)v;
        return rc;
    case OPT_RAM_BUDGET: return cli_value_size(p, 0, UINT64_MAX, &a->o.ram_budget);
    case OPT_REPEAT: return cli_value_u64(p, 1, 1000, &a->repeat);
    case OPT_REGISTER: a->o.mmap_register = 1; return CLI_CONTINUE;
    case OPT_NO_REGISTER: a->o.mmap_register = 0; return CLI_CONTINUE;
    case OPT_VERIFY: a->o.verify |= HOIST_VERIFY_MANIFEST; return CLI_CONTINUE;
    case OPT_VERIFY_READBACK: a->o.verify |= HOIST_VERIFY_READBACK; return CLI_CONTINUE;
    case OPT_MANIFEST: a->o.manifest = p->value; return CLI_CONTINUE;
    case OPT_CSV: a->csv = 1; return CLI_CONTINUE;
    case OPT_LENIENT: a->oo.strict = 0; return CLI_CONTINUE;
    case OPT_PROGRESS: a->progress = CLI_PROGRESS_ALWAYS; return CLI_CONTINUE;
    case OPT_NO_PROGRESS: a->progress = CLI_PROGRESS_NEVER; return CLI_CONTINUE;
    case OPT_COOPERATIVE: a->cooperative = 1; return CLI_CONTINUE;
    default: return cli_bad_option(p, c);
    }
}

static int parse(int argc, char **argv, load_args *a)
{
    cli_parser p;
    cli_parser_init(&p, "load", argc, argv, options, "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, a);
    if (rc == CLI_CONTINUE) rc = cli_operands(&p, 1, 1, (const char *const[]){"PATH"});
    if (rc == CLI_CONTINUE) rc = cli_plan_args_check("load", &a->plan, a->device_set);
    if (rc == CLI_CONTINUE && (a->cooperative || a->plan.tp.world > 1) && !a->plan.ndevices)
        rc = cli_usage_error("load", "--tp and --cooperative load one rank per device: name "
                                     "them with --devices");
    a->path = p.operand[0];
    return rc;
}

/* Plans, or brings the one device up (context creation is not part of a load's time); dev
 * receives what the load goes into. An exit status, or CLI_CONTINUE. */
static int prepare(load_args *a, hoist_model *m, hoist_plan **plan, char *dev, size_t n)
{
    if (!a->device_set) a->o.device = hoist_device_count() > 0 ? 0 : HOIST_DEVICE_HOST;
    if (a->plan.any) {
        /* planning asks the devices, which brings them up before the timed load too */
        if (cli_plan_make("load", m, &a->plan, plan) < 0) return CLI_EXIT_FAILURE;
        if (!a->csv) cli_plan_print(stdout, *plan);
        a->o.plan = *plan;
        plan_devices(*plan, dev, n);
        return CLI_CONTINUE;
    }
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    int rc = hoist_device_info_get(a->o.device, &info);
    if (rc < 0) return cli_fail("load", rc);
    hoist_device_name(a->o.device, dev, n);
    return CLI_CONTINUE;
}

/* The --repeat loads, each reported; the first failure's status, or 0. */
static int load_runs(const load_args *a, hoist_model *m, const hoist_plan *plan, const char *dev)
{
    cli_progress bar;
    hoist_load_options o = a->o;
    o.progress = cli_progress_cb;
    o.progress_user = &bar;
    for (uint64_t r = 0; r < a->repeat; r++) {
        hoist_weights *w;
        char label[200];
        snprintf(label, sizeof label, "load %s", dev);
        cli_progress_begin(&bar, cli_progress_wanted(a->progress), label);
        int rc = hoist_load(m, &o, &w);
        cli_progress_end(&bar);
        if (rc < 0) return rc;
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        hoist_weights_stats(w, &s);
        if (a->csv)
            report_csv(&s, dev);
        else
            report(&s, (int)r, (int)a->repeat);
        if (!a->csv && plan && r == 0) report_placement(w);
        hoist_weights_free(w);
    }
    return 0;
}

/* ---- several devices: hoist_load_group --------------------------------------------------- */

static int group_runs(load_args *a, hoist_model *m)
{
    size_t n = a->plan.ndevices;
    int devices[HOIST_PLAN_MAX_DEVICES];
    for (size_t i = 0; i < n; i++) devices[i] = a->plan.devices[i].device;
    hoist_tp_options tp = a->plan.tp;
    tp.world = (int)n;
    tp.rules_default = a->plan.tp.world > 1; /* without --tp every device gets every tensor */
    tp.cooperative = a->cooperative;
    hoist_load_options o = a->o;
    o.tp = &tp; /* no progress bar: each rank would draw its own */
    for (uint64_t r = 0; r < a->repeat; r++) {
        hoist_weights *w[HOIST_PLAN_MAX_DEVICES];
        double t0 = cli_now();
        int rc = hoist_load_group(m, &o, devices, n, w);
        double wall = cli_now() - t0;
        if (rc < 0) return rc;
        cli_group_report(stdout, w, devices, n, wall, a->csv, (int)r, (int)a->repeat);
        for (size_t i = 0; i < n; i++) hoist_weights_free(w[i]);
    }
    return 0;
}

static int any_host(const cli_plan_args *pa)
{
    for (size_t i = 0; i < pa->ndevices; i++)
        if (pa->devices[i].device == HOIST_DEVICE_HOST) return 1;
    return 0;
}

/* --tp on GPUs: the plan of the ranks first, which says what fits per device before anything
 * loads (the host has no memory of its own to plan: ranks there share it). */
static int group_load(load_args *a, hoist_model *m)
{
    a->plan.tp.cooperative = a->cooperative; /* its NCCL buffers are planned for */
    if (a->plan.tp.world > 1 && !any_host(&a->plan)) {
        hoist_plan *plan = NULL;
        if (cli_plan_make("load", m, &a->plan, &plan) < 0) return CLI_EXIT_FAILURE;
        if (!a->csv) cli_plan_print(stdout, plan);
        hoist_plan_free(plan);
    }
    if (!a->csv)
        printf("loading %s (%zu tensors) on %zu devices%s%s\n", a->path,
               hoist_model_tensor_count(m), a->plan.ndevices,
               a->plan.tp.world > 1 ? ", tensor-parallel" : "",
               a->cooperative ? ", cooperatively" : "");
    int rc = group_runs(a, m);
    return rc < 0 ? cli_fail("load", rc) : CLI_EXIT_OK;
}

int cmd_load(int argc, char **argv)
{
    load_args a = {.o = HOIST_LOAD_OPTIONS_DEFAULT, .oo = HOIST_OPEN_OPTIONS_DEFAULT,
                   .progress = CLI_PROGRESS_AUTO, .repeat = 1};
    cli_plan_args_init(&a.plan);
    int rc = parse(argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    hoist_model *m;
    rc = hoist_model_open(a.path, &a.oo, &m);
    if (rc < 0) return cli_fail("load", rc);
    if (a.cooperative || a.plan.tp.world > 1) {
        rc = group_load(&a, m);
        hoist_model_free(m);
        return rc;
    }
    char dev[160];
    hoist_plan *plan = NULL;
    rc = prepare(&a, m, &plan, dev, sizeof dev);
    if (rc == CLI_CONTINUE) {
        if (!a.csv)
            printf("loading %s (%zu tensors, %zu files) into %s\n", a.path,
                   hoist_model_tensor_count(m), hoist_model_file_count(m), dev);
        rc = load_runs(&a, m, plan, dev);
        rc = rc < 0 ? cli_fail("load", rc) : CLI_EXIT_OK;
    }
    hoist_plan_free(plan);
    hoist_model_free(m);
    return rc;
}
