/* hoist load: load a model into a device and report seconds, GB/s and peak host RAM. */
#include "cli_util.h"
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
            "  --chunk SIZE      staging window, e.g. 16M (default: chosen by the path)\n"
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
            "                    stage seconds are summed over workers)\n\n"
            "Placing with a plan (instead of --device; see hoist plan): the load fails before\n"
            "allocating anything when the plan does not fit.\n" CLI_PLAN_USAGE);
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

int cmd_load(int argc, char **argv)
{
    const char *path = NULL;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    int device_set = 0, csv = 0;
    cli_progress_mode progress = CLI_PROGRESS_AUTO;
    uint64_t v, repeat = 1;
    cli_plan_args pa;
    cli_plan_args_init(&pa);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0, planning = cli_plan_arg("load", argc, argv, &i, &pa);
        if (planning < 0) return 2;
        if (planning > 0) {
            continue;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--path") == 0 && val) {
            rc = hoist_path_parse(val, &o.path);
            i++;
        } else if (strcmp(a, "--device") == 0 && val) {
            rc = hoist_device_parse(val, &o.device);
            device_set = 1;
            i++;
        } else if (strcmp(a, "--threads") == 0 && val && cli_parse_u64(val, &v) && v <= 256) {
            o.threads = (unsigned)v;
            i++;
        } else if (strcmp(a, "--chunk") == 0 && val && cli_parse_size(val, &v)) {
            o.chunk_bytes = v;
            i++;
        } else if (strcmp(a, "--readahead") == 0 && val && cli_parse_size(val, &v) &&
                   v <= INT64_MAX) {
            o.readahead_bytes = (int64_t)v;
            i++;
        } else if (strcmp(a, "--ram-budget") == 0 && val && cli_parse_size(val, &v)) {
            o.ram_budget = v;
            i++;
        } else if (strcmp(a, "--repeat") == 0 && val && cli_parse_u64(val, &repeat) &&
                   repeat >= 1 && repeat <= 1000) {
            i++;
        } else if (strcmp(a, "--register") == 0) {
            o.mmap_register = 1;
        } else if (strcmp(a, "--no-register") == 0) {
            o.mmap_register = 0;
        } else if (strcmp(a, "--verify") == 0) {
            o.verify |= HOIST_VERIFY_MANIFEST;
        } else if (strcmp(a, "--verify-readback") == 0) {
            o.verify |= HOIST_VERIFY_READBACK;
        } else if (strcmp(a, "--manifest") == 0 && val) {
            o.manifest = val;
            i++;
        } else if (strcmp(a, "--csv") == 0) {
            csv = 1;
        } else if (strcmp(a, "--lenient") == 0) {
            oo.strict = 0;
        } else if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
            progress = a[2] == 'n' ? CLI_PROGRESS_NEVER : CLI_PROGRESS_ALWAYS;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            cli_error("load", "bad or incomplete argument '%s'", a);
            usage(stderr);
            return 2;
        }
        if (rc < 0) {
            cli_fail("load", rc);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    if (pa.any && device_set) {
        cli_error("load", "--device places everything on one device; with a plan use --devices");
        return 2;
    }
    if (!device_set) o.device = hoist_device_count() > 0 ? 0 : HOIST_DEVICE_HOST;

    hoist_model *m;
    int rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail("load", rc);
    char dev[160];
    hoist_plan *plan = NULL;
    if (pa.any) {
        /* planning asks the devices, which brings them up before the timed load */
        if (cli_plan_make("load", m, &pa, &plan) < 0) {
            hoist_model_free(m);
            return 1;
        }
        if (!csv) cli_plan_print(stdout, plan);
        o.plan = plan;
        plan_devices(plan, dev, sizeof dev);
    } else {
        /* bring the device up first: context creation is not part of a load's time */
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        rc = hoist_device_info_get(o.device, &info);
        if (rc < 0) {
            hoist_model_free(m);
            return cli_fail("load", rc);
        }
        hoist_device_name(o.device, dev, sizeof dev);
    }
    if (!csv)
        printf("loading %s (%zu tensors, %zu files) into %s\n", path,
               hoist_model_tensor_count(m), hoist_model_file_count(m), dev);
    cli_progress bar;
    o.progress = cli_progress_cb;
    o.progress_user = &bar;
    for (uint64_t r = 0; r < repeat; r++) {
        hoist_weights *w;
        char label[sizeof dev + 8];
        snprintf(label, sizeof label, "load %s", dev);
        cli_progress_begin(&bar, cli_progress_wanted(progress), label);
        rc = hoist_load(m, &o, &w);
        cli_progress_end(&bar);
        if (rc < 0) break;
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        hoist_weights_stats(w, &s);
        if (csv)
            report_csv(&s, dev);
        else
            report(&s, (int)r, (int)repeat);
        if (!csv && plan && r == 0) report_placement(w);
        hoist_weights_free(w);
    }
    hoist_plan_free(plan);
    hoist_model_free(m);
    return rc < 0 ? cli_fail("load", rc) : 0;
}
