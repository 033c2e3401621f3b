/* hoist pack: write a model as a packed container (zstd frames per chunk, byte-grouped). */
#include "cli_util.h"
#include "progress_bar.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

#define CMD "pack"
/* zstd's ZSTD_maxCLevel(), which the library checks against; the CLI sees only hoist.h */
#define MAX_LEVEL 22

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hoist pack MODEL OUT [options]\n\n"
            "Writes MODEL as one packed container at OUT: each chunk of each tensor coded on\n"
            "its own, with its XXH3 hash, and the tensor table. hoist load, inspect and verify\n"
            "read it.\n\n"
            "  --codec C        zstd (default): a zstd frame per chunk, decoded on the CPU\n"
            "                   worker threads; every hoist reads it\n"
            "                   gpu: bf16/f16 exponents Huffman-coded in small blocks, the\n"
            "                   sign+mantissa byte raw; a GPU load decodes on the GPU into\n"
            "                   the arena, a host load on the CPU; other dtypes take zstd\n"
            "  --level N        zstd level 1-22 (default 1: higher levels gain nothing on weights)\n"
            "  --chunk SIZE     model bytes per frame, a power of two 4K-64M (default 256K)\n"
            "  --filter F       auto (default: exponent for floats, planes for integers),\n"
            "                   none, planes or exponent (zstd chunks only)\n"
            "  --threads N      compression threads (default: online CPUs)\n"
            "  --force          replace OUT if it exists\n"
            "  --lenient        accept trailing bytes after a safetensors data section\n"
            "  --help           this text\n");
}

enum { OPT_LEVEL = 256, OPT_CHUNK, OPT_FILTER, OPT_THREADS, OPT_FORCE, OPT_LENIENT, OPT_CODEC };

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"level", required_argument, NULL, OPT_LEVEL},
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {"filter", required_argument, NULL, OPT_FILTER},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    {"codec", required_argument, NULL, OPT_CODEC},
    {0},
};

typedef struct pack_args {
    const char *in, *out;
    hoist_pack_options o;
    hoist_open_options oo;
} pack_args;

static int option(cli_parser *p, int c, pack_args *a)
{
    unsigned level = 0;
    int rc;
    switch (c) {
    case 'h': usage(stdout); return CLI_EXIT_OK;
    case OPT_LEVEL:
        rc = cli_value_unsigned(p, 1, MAX_LEVEL, &level);
        a->o.level = (int)level;
        return rc;
    /* hoist_pack_options.chunk_bytes's bounds */
    case OPT_CHUNK: return cli_value_pow2_size(p, 4u << 10, 64u << 20, &a->o.chunk_bytes);
    case OPT_FILTER:
        if (hoist_filter_parse(p->value, &a->o.filter) == HOIST_OK) return CLI_CONTINUE;
        return cli_bad_value(p, "%s", hoist_last_error());
    case OPT_CODEC:
        if (strcmp(p->value, "zstd") == 0) {
            a->o.codec = HOIST_PACK_CODEC_ZSTD;
        } else if (strcmp(p->value, "gpu") == 0) {
            a->o.codec = HOIST_PACK_CODEC_GPU;
        } else {
            return cli_bad_value(p, "unknown codec '%s' (expected zstd or gpu)", p->value);
        }
        return CLI_CONTINUE;
    case OPT_THREADS: return cli_value_unsigned(p, 0, 1024, &a->o.threads);
    case OPT_FORCE: a->o.overwrite = 1; return CLI_CONTINUE;
    case OPT_LENIENT: a->oo.strict = 0; return CLI_CONTINUE;
    default: return cli_bad_option(p, c);
    }
}

static int parse(int argc, char **argv, pack_args *a)
{
    cli_parser p;
    cli_parser_init(&p, CMD, argc, argv, options, "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, a);
    if (rc == CLI_CONTINUE) rc = cli_operands(&p, 2, 2, (const char *const[]){"MODEL", "OUT"});
    a->in = p.operand[0];
    a->out = p.operand[1];
    return rc;
}

int cmd_pack(int argc, char **argv)
{
    pack_args a = {.o = HOIST_PACK_OPTIONS_DEFAULT, .oo = HOIST_OPEN_OPTIONS_DEFAULT};
    int rc = parse(argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    hoist_model *m;
    rc = hoist_model_open(a.in, &a.oo, &m);
    if (rc < 0) return cli_fail(CMD, rc);
    hoist_pack_stats st = HOIST_PACK_STATS_INIT;
    /* a bar where a person watches (stderr a terminal), none in logs and pipes */
    cli_progress bar;
    a.o.progress = cli_progress_cb;
    a.o.progress_user = &bar;
    cli_progress_begin(&bar, cli_progress_wanted(CLI_PROGRESS_AUTO), "pack");
    rc = hoist_pack(m, a.out, &a.o, &st);
    cli_progress_end(&bar);
    hoist_model_free(m);
    if (rc < 0) return cli_fail(CMD, rc);
    printf("packed %s into %s: %.3f GB of tensors in %.3f GB (%.1f%%), %llu chunks (%llu stored "
           "raw), %.2f s, %.2f GB/s\n",
           a.in, a.out, (double)st.model_bytes / 1e9, (double)st.file_bytes / 1e9,
           st.model_bytes ? 100.0 * (double)st.file_bytes / (double)st.model_bytes : 0.0,
           (unsigned long long)st.chunks, (unsigned long long)st.raw_chunks, st.seconds,
           st.seconds > 0 ? (double)st.model_bytes / st.seconds / 1e9 : 0.0);
    return CLI_EXIT_OK;
}
