/* hoist bench --devices: the group load of hoist load --tp/--cooperative, measured against the
 * ceiling of each device's own link in the same run. A device that reads its 1/N of a model
 * over its own PCIe link is bound by that link; the aggregate by the sum of the links (or by the
 * storage under them, which the single-device bench measures). Runs in this process: the group
 * needs every device at once, and nothing here forks. */
#include "bench_devices.h"
#include "cli_util.h"
#include "group_report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The pinned copy is measured with this much per device (the model's share, within bounds). */
#define LINK_MIN (64ull << 20)
#define LINK_MAX (1ull << 30)

static double gbps_of(uint64_t bytes, double s) { return s > 0 ? (double)bytes / s / 1e9 : 0; }

/* Each GPU's pinned host-to-device ceiling (0 for the host, which has no link). */
static int link_ceilings(const bench_devices_opts *o, uint64_t share, double *ceiling)
{
    uint64_t bytes = share < LINK_MIN ? LINK_MIN : share > LINK_MAX ? LINK_MAX : share;
    for (size_t i = 0; i < o->ndevices; i++) {
        ceiling[i] = 0;
        if (o->devices[i] == HOIST_DEVICE_HOST) continue;
        int rc = hoist_device_copy_bandwidth(o->devices[i], bytes, 1, 5, &ceiling[i]);
        if (rc < 0) return cli_fail("bench", rc);
    }
    return 0;
}

typedef struct run_result {
    double wall;
    double seconds[HOIST_PLAN_MAX_DEVICES], exchange[HOIST_PLAN_MAX_DEVICES];
    uint64_t bytes[HOIST_PLAN_MAX_DEVICES], read[HOIST_PLAN_MAX_DEVICES];
} run_result;

static int one_run(const bench_devices_opts *o, hoist_model *m, run_result *r)
{
    hoist_tp_options tp = HOIST_TP_OPTIONS_DEFAULT;
    tp.world = (int)o->ndevices;
    tp.rules_default = o->tp;
    tp.cooperative = o->cooperative;
    hoist_load_options lo = HOIST_LOAD_OPTIONS_DEFAULT;
    lo.path = o->path;
    lo.threads = o->threads;
    lo.chunk_bytes = o->chunk;
    lo.tp = &tp;
    hoist_weights *w[HOIST_PLAN_MAX_DEVICES];
    double t0 = cli_now();
    int rc = hoist_load_group(m, &lo, o->devices, o->ndevices, w);
    r->wall = cli_now() - t0;
    if (rc < 0) return rc;
    for (size_t i = 0; i < o->ndevices; i++) {
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        hoist_weights_stats(w[i], &s);
        r->seconds[i] = s.seconds;
        r->exchange[i] = s.exchange_seconds;
        r->bytes[i] = s.bytes;
        r->read[i] = s.read_bytes;
        hoist_weights_free(w[i]);
    }
    return 0;
}

static void print_run(FILE *f, const bench_devices_opts *o, const run_result *r,
                      const double *ceiling, int run, int csv)
{
    uint64_t placed = 0;
    double links = 0;
    for (size_t i = 0; i < o->ndevices; i++) {
        char dn[HOIST_DEVICE_NAME_MAX];
        hoist_device_name(o->devices[i], dn, sizeof dn);
        double g = gbps_of(r->bytes[i], r->seconds[i]);
        placed += r->bytes[i];
        links += ceiling[i];
        if (csv) {
            fprintf(f, "%d,%zu,%s,%.4f,%.3f,%.3f,%llu,%llu,%.4f\n", run + 1, i, dn, r->seconds[i],
                    g, ceiling[i], (unsigned long long)r->bytes[i],
                    (unsigned long long)r->read[i], r->exchange[i]);
            continue;
        }
        fprintf(f, "  run %d rank %zu %-8s %7.3f s %8.2f GB/s", run + 1, i, dn, r->seconds[i], g);
        if (ceiling[i] > 0)
            fprintf(f, "  link %.2f GB/s (%.0f%%)", ceiling[i], 100 * g / ceiling[i]);
        if (r->exchange[i] > 0) fprintf(f, "  exchange %.3f s", r->exchange[i]);
        fprintf(f, "\n");
    }
    double g = gbps_of(placed, r->wall);
    if (csv) {
        fprintf(f, "%d,all,%zu devices,%.4f,%.3f,%.3f,%llu,,\n", run + 1, o->ndevices, r->wall, g,
                links, (unsigned long long)placed);
        return;
    }
    fprintf(f, "  run %d all %zu devices %7.3f s %8.2f GB/s", run + 1, o->ndevices, r->wall, g);
    if (links > 0) fprintf(f, "  links %.2f GB/s together (%.0f%%)", links, 100 * g / links);
    fprintf(f, "\n");
}

int bench_devices_run(const bench_devices_opts *o)
{
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    oo.strict = !o->lenient;
    hoist_model *m;
    int rc = hoist_model_open(o->model_path, &oo, &m);
    if (rc < 0) return cli_fail("bench", rc);
    FILE *csv = o->csv ? fopen(o->csv, "w") : NULL;
    if (o->csv && !csv) {
        cli_error("bench", "%s: %s", o->csv, strerror(errno));
        hoist_model_free(m);
        return CLI_EXIT_FAILURE;
    }
    double ceiling[HOIST_PLAN_MAX_DEVICES];
    uint64_t share = hoist_model_total_bytes(m) / o->ndevices;
    int status = link_ceilings(o, share, ceiling) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    if (status == CLI_EXIT_OK)
        printf("%s on %zu devices (%s%s), path %s, %d runs; link: pinned host-to-device copy of "
               "the same run\n",
               o->model_path, o->ndevices, o->tp ? "tensor-parallel slices" : "whole model each",
               o->cooperative ? ", cooperative" : "", hoist_path_name(o->path), o->repeat);
    if (csv)
        fprintf(csv, "run,rank,device,seconds,gb_per_s,link_gb_per_s,bytes,read_bytes,"
                     "exchange_seconds\n");
    for (int r = 0; status == CLI_EXIT_OK && r < o->repeat; r++) {
        run_result res;
        memset(&res, 0, sizeof res);
        rc = one_run(o, m, &res);
        if (rc < 0) {
            status = cli_fail("bench", rc);
            break;
        }
        print_run(stdout, o, &res, ceiling, r, 0);
        if (csv) print_run(csv, o, &res, ceiling, r, 1);
    }
    if (csv && fclose(csv) != 0) status = CLI_EXIT_FAILURE;
    hoist_trim();
    hoist_model_free(m);
    return status;
}
