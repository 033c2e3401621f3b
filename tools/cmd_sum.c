/* hoist sum / hoist verify: write a model's manifest, and check its files against it. */
#include "cli_util.h"
#include "progress_bar.h"

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
               "  --lenient        accept trailing bytes after a safetensors data section\n"
               "  --help           this text\n");
}

enum { OPT_CHUNK = 256, OPT_MANIFEST, OPT_THREADS, OPT_LENIENT };

#define COMMON_OPTIONS                                                                            \
    {"help", no_argument, NULL, 'h'}, {"manifest", required_argument, NULL, OPT_MANIFEST},      \
        {"threads", required_argument, NULL, OPT_THREADS},                                        \
        {"lenient", no_argument, NULL, OPT_LENIENT}

static const struct option sum_options[] = {
    COMMON_OPTIONS,
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {0},
};
static const struct option verify_options[] = {COMMON_OPTIONS, {0}};

typedef struct sum_args {
    const char *path;
    hoist_sum_options o;
    hoist_open_options oo;
} sum_args;

static int option(cli_parser *p, int c, sum_args *a)
{
    switch (c) {
    case 'h': usage(stdout, p->cmd); return CLI_EXIT_OK;
    /* hoist_sum_options.chunk_bytes's bounds */
    case OPT_CHUNK: return cli_value_pow2_size(p, 4u << 10, 1u << 30, &a->o.chunk_bytes);
    case OPT_MANIFEST: a->o.manifest = p->value; return CLI_CONTINUE;
    case OPT_THREADS: return cli_value_unsigned(p, 0, 1024, &a->o.threads);
    case OPT_LENIENT: a->oo.strict = 0; return CLI_CONTINUE;
    default: return cli_bad_option(p, c);
    }
}

static int parse(int argc, char **argv, const char *cmd, sum_args *a)
{
    cli_parser p;
    cli_parser_init(&p, cmd, argc, argv, strcmp(cmd, "sum") == 0 ? sum_options : verify_options,
                    "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, a);
    if (rc == CLI_CONTINUE) rc = cli_operands(&p, 1, 1, (const char *const[]){"MODEL"});
    a->path = p.operand[0];
    return rc;
}

static int run(int argc, char **argv, const char *cmd)
{
    sum_args a = {.o = HOIST_SUM_OPTIONS_DEFAULT, .oo = HOIST_OPEN_OPTIONS_DEFAULT};
    int sum = strcmp(cmd, "sum") == 0;
    int rc = parse(argc, argv, cmd, &a);
    if (rc != CLI_CONTINUE) return rc;
    hoist_model *m;
    rc = hoist_model_open(a.path, &a.oo, &m);
    if (rc < 0) return cli_fail(cmd, rc);
    const char *manifest = a.o.manifest ? a.o.manifest : hoist_model_manifest_path(m);
    /* a bar where a person watches (stderr a terminal), none in logs and pipes */
    cli_progress bar;
    a.o.progress = cli_progress_cb;
    a.o.progress_user = &bar;
    cli_progress_begin(&bar, cli_progress_wanted(CLI_PROGRESS_AUTO), cmd);
    double t0 = cli_now();
    rc = sum ? hoist_model_sum(m, &a.o) : hoist_model_verify(m, &a.o);
    double dt = cli_now() - t0;
    cli_progress_end(&bar);
    uint64_t bytes = 0;
    for (size_t i = 0; i < hoist_model_file_count(m); i++) bytes += hoist_model_file_size(m, i);
    if (rc == 0 && sum)
        printf("wrote %s: %zu files, %zu tensors, %.3f GB read in %.2f s (%.2f GB/s)\n", manifest,
               hoist_model_file_count(m), hoist_model_tensor_count(m), (double)bytes / 1e9, dt,
               dt > 0 ? (double)bytes / dt / 1e9 : 0.0);
    else if (rc == 0)
        printf("%s: every byte matches %s (%.3f GB in %.2f s, %.2f GB/s)\n", a.path,
               hoist_model_format(m) == HOIST_FORMAT_PACKED ? "the container's hashes" : manifest,
               (double)bytes / 1e9, dt, dt > 0 ? (double)bytes / dt / 1e9 : 0.0);
    hoist_model_free(m);
    return rc < 0 ? cli_fail(cmd, rc) : CLI_EXIT_OK;
}

int cmd_sum(int argc, char **argv) { return run(argc, argv, "sum"); }

int cmd_verify(int argc, char **argv) { return run(argc, argv, "verify"); }
