/* hoist pack: write a model as a packed container (zstd frames per chunk, byte-grouped). */
#include "cli_util.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hoist pack MODEL OUT [options]\n\n"
            "Writes MODEL as one packed container at OUT: an independent zstd frame per chunk\n"
            "of each tensor, with its XXH3 hash, and the tensor table. hoist load, inspect and\n"
            "verify read it; loading decodes it on the worker threads.\n\n"
            "  --level N        zstd level 1-19 (default 1: higher levels gain nothing on weights)\n"
            "  --chunk SIZE     model bytes per frame, a power of two 4K-64M (default 256K)\n"
            "  --filter F       auto (default: exponent for floats, planes for integers),\n"
            "                   none, planes or exponent\n"
            "  --threads N      compression threads (default: online CPUs)\n"
            "  --force          replace OUT if it exists\n"
            "  --lenient        accept trailing bytes after a safetensors data section\n");
}

int cmd_pack(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    hoist_pack_options o = HOIST_PACK_OPTIONS_DEFAULT;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    uint64_t v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--level") == 0 && val && cli_parse_u64(val, &v) && v <= 100) {
            o.level = (int)v;
            i++;
        } else if (strcmp(a, "--chunk") == 0 && val && cli_parse_size(val, &v)) {
            o.chunk_bytes = v;
            i++;
        } else if (strcmp(a, "--filter") == 0 && val) {
            rc = hoist_filter_parse(val, &o.filter);
            i++;
        } else if (strcmp(a, "--threads") == 0 && val && cli_parse_u64(val, &v) && v <= 1024) {
            o.threads = (unsigned)v;
            i++;
        } else if (strcmp(a, "--force") == 0) {
            o.overwrite = 1;
        } else if (strcmp(a, "--lenient") == 0) {
            oo.strict = 0;
        } else if (a[0] != '-' && !in) {
            in = a;
        } else if (a[0] != '-' && !out) {
            out = a;
        } else {
            cli_error("pack", "bad or incomplete argument '%s'", a);
            usage(stderr);
            return 2;
        }
        if (rc < 0) {
            cli_fail("pack", rc);
            return 2;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    hoist_model *m;
    int rc = hoist_model_open(in, &oo, &m);
    if (rc < 0) return cli_fail("pack", rc);
    hoist_pack_stats st = HOIST_PACK_STATS_INIT;
    rc = hoist_pack(m, out, &o, &st);
    hoist_model_free(m);
    if (rc < 0) return cli_fail("pack", rc);
    printf("packed %s into %s: %.3f GB of tensors in %.3f GB (%.1f%%), %llu chunks (%llu stored "
           "raw), %.2f s, %.2f GB/s\n",
           in, out, (double)st.model_bytes / 1e9, (double)st.file_bytes / 1e9,
           st.model_bytes ? 100.0 * (double)st.file_bytes / (double)st.model_bytes : 0.0,
           (unsigned long long)st.chunks, (unsigned long long)st.raw_chunks, st.seconds,
           st.seconds > 0 ? (double)st.model_bytes / st.seconds / 1e9 : 0.0);
    return 0;
}
