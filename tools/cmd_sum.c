/* hoist sum / hoist verify: write a model's manifest, and check its files against it. */
#include "cli_util.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "sum") == 0)
        fprintf(f, "usage: hoist sum MODEL [options]\n\n"
                   "Writes MODEL's manifest: the XXH3 hash of every file's header, of every chunk\n"
                   "of its tensor data and of every tensor, with the file sizes, beside the model\n"
                   "(MODEL's .safetensors file or index, plus .hoist-sum). hoist verify and\n"
                   "hoist load --verify check against it.\n\n"
                   "  --chunk SIZE     bytes per hashed chunk, a power of two 4K-1G (default 1M)\n");
    else
        fprintf(f, "usage: hoist verify MODEL [options]\n\n"
                   "Reads every byte of MODEL and checks it against its manifest; a packed model\n"
                   "is decoded and checked against the hashes in its container.\n\n");
    fprintf(f, "  --manifest FILE  the manifest (default: beside the model)\n"
               "  --threads N      reading threads (default: online CPUs, at most 16)\n"
               "  --lenient        accept trailing bytes after a safetensors data section\n");
}

static int run(int argc, char **argv, const char *cmd)
{
    const char *path = NULL;
    hoist_sum_options o = HOIST_SUM_OPTIONS_DEFAULT;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    int sum = strcmp(cmd, "sum") == 0;
    uint64_t v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout, cmd);
            return 0;
        } else if (sum && strcmp(a, "--chunk") == 0 && val && cli_parse_size(val, &v)) {
            o.chunk_bytes = v;
            i++;
        } else if (strcmp(a, "--manifest") == 0 && val) {
            o.manifest = val;
            i++;
        } else if (strcmp(a, "--threads") == 0 && val && cli_parse_u64(val, &v) && v <= 1024) {
            o.threads = (unsigned)v;
            i++;
        } else if (strcmp(a, "--lenient") == 0) {
            oo.strict = 0;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            cli_error(cmd, "bad or incomplete argument '%s'", a);
            usage(stderr, cmd);
            return 2;
        }
    }
    if (!path) {
        usage(stderr, cmd);
        return 2;
    }
    hoist_model *m;
    int rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail(cmd, rc);
    const char *manifest = o.manifest ? o.manifest : hoist_model_manifest_path(m);
    double t0 = cli_now();
    rc = sum ? hoist_model_sum(m, &o) : hoist_model_verify(m, &o);
    double dt = cli_now() - t0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < hoist_model_file_count(m); i++) bytes += hoist_model_file_size(m, i);
    if (rc == 0 && sum)
        printf("wrote %s: %zu files, %zu tensors, %.3f GB read in %.2f s (%.2f GB/s)\n", manifest,
               hoist_model_file_count(m), hoist_model_tensor_count(m), (double)bytes / 1e9, dt,
               dt > 0 ? (double)bytes / dt / 1e9 : 0.0);
    else if (rc == 0)
        printf("%s: every byte matches %s (%.3f GB in %.2f s, %.2f GB/s)\n", path,
               hoist_model_format(m) == HOIST_FORMAT_PACKED ? "the container's hashes" : manifest,
               (double)bytes / 1e9, dt, dt > 0 ? (double)bytes / dt / 1e9 : 0.0);
    hoist_model_free(m);
    return rc < 0 ? cli_fail(cmd, rc) : 0;
}

int cmd_sum(int argc, char **argv) { return run(argc, argv, "sum"); }

int cmd_verify(int argc, char **argv) { return run(argc, argv, "verify"); }
