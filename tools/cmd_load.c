/* hoist load: load a model into a device and report seconds, GB/s and peak host RAM. */
#include "cli_util.h"

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
            "  --ram-budget SIZE host bytes the loader may take (default: no limit)\n"
            "  --register        mmap to GPU: register the mapping and DMA from it\n"
            "  --no-register     mmap to GPU: copy through pinned staging slots\n"
            "  --verify          read every byte back from the device and compare with the file\n"
            "  --repeat N        load N times (freeing in between) and report each\n"
            "  --lenient         accept trailing bytes after a data section\n"
            "  --csv             one line per run: path,device,threads,seconds,gb_per_s,bytes,\n"
            "                    loader_peak_bytes,process_peak_rss_bytes\n");
}

static void report_csv(const hoist_load_stats *s, const char *dev)
{
    double gbs = s->seconds > 0 ? (double)s->bytes / s->seconds / 1e9 : 0;
    printf("%s,%s,%u,%.4f,%.3f,%llu,%llu,%llu\n", s->path, dev, s->threads, s->seconds, gbs,
           (unsigned long long)s->bytes, (unsigned long long)s->peak_host_bytes,
           (unsigned long long)cli_peak_rss());
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
    if (s->verify_seconds > 0) printf("; verified in %.3f s", s->verify_seconds);
    printf("\n");
}

int cmd_load(int argc, char **argv)
{
    const char *path = NULL;
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    int device_set = 0, csv = 0;
    uint64_t v, repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0) {
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
            o.verify = 1;
        } else if (strcmp(a, "--csv") == 0) {
            csv = 1;
        } else if (strcmp(a, "--lenient") == 0) {
            oo.strict = 0;
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
    if (!device_set) o.device = hoist_device_count() > 0 ? 0 : HOIST_DEVICE_HOST;

    hoist_model *m;
    int rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail("load", rc);
    /* bring the device up first: context creation is not part of a load's time */
    hoist_device_info info;
    rc = hoist_device_info_get(o.device, &info);
    if (rc < 0) {
        hoist_model_free(m);
        return cli_fail("load", rc);
    }
    char dev[16];
    snprintf(dev, sizeof dev, o.device < 0 ? "host" : "cuda:%d", o.device);
    if (!csv)
        printf("loading %s (%zu tensors, %zu files) into %s\n", path,
               hoist_model_tensor_count(m), hoist_model_file_count(m), dev);
    for (uint64_t r = 0; r < repeat; r++) {
        hoist_weights *w;
        rc = hoist_load(m, &o, &w);
        if (rc < 0) break;
        hoist_load_stats s;
        hoist_weights_stats(w, &s);
        if (csv)
            report_csv(&s, dev);
        else
            report(&s, (int)r, (int)repeat);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    return rc < 0 ? cli_fail("load", rc) : 0;
}
