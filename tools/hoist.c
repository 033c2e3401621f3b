/* hoist: the command-line front end. Uses only the public API. */
#include "cli_util.h"

#include "hoist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"inspect", cmd_inspect, "list a model's tensors, shards, dtypes and totals"},
    {"load", cmd_load, "load a model into a device and report time, GB/s and peak host RAM"},
    {"plan", cmd_plan, "what fits where: weights, KV cache and workspace over the devices"},
    {"gen", cmd_gen, "generate a deterministic Llama-shaped checkpoint"},
    {"devices", cmd_devices, "list the devices hoist can load into"},
    {"bench", cmd_bench, "load time against host RAM, every path, with the ceilings"},
    {"run", cmd_run, "load a Llama model, generate greedily, report tokens/s and the roofline"},
    {"pack", cmd_pack, "write a model as a packed container (zstd frames, byte-grouped)"},
    {"sum", cmd_sum, "write a model's manifest of XXH3 hashes beside it"},
    {"verify", cmd_verify, "check every byte of a model against its manifest or container"},
    {"version", cmd_version, "print the library version"},
};

static void usage(FILE *f)
{
    fprintf(f, "hoist %s: load LLM weights into GPU memory, fast, inside a host-RAM budget\n\n",
            hoist_version());
    fprintf(f, "usage: hoist COMMAND [ARGS]   (hoist COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nExit status: 0 success, 1 failure, 2 usage error.\n");
}

static const struct option version_options[] = {{"help", no_argument, NULL, 'h'}, {0}};

int cmd_version(int argc, char **argv)
{
    cli_parser p;
    cli_parser_init(&p, "version", argc, argv, version_options, "h");
    for (int c; (c = cli_next_option(&p)) != -1;) {
        if (c != 'h') return cli_bad_option(&p, c);
        printf("usage: hoist version\n\nPrints the version of the hoist library.\n"
               "  --help  this text\n");
        return CLI_EXIT_OK;
    }
    int rc = cli_operands(&p, 0, 0, NULL);
    if (rc != CLI_CONTINUE) return rc;
    printf("hoist %s\n", hoist_version());
    return CLI_EXIT_OK;
}

static void log_to_stderr(hoist_log_level level, const char *message, void *user)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "hoist: %s: %s\n", names[level <= HOIST_LOG_DEBUG ? level : 0], message);
}

int main(int argc, char **argv)
{
    /* a library of another major version would not mean what this CLI thinks it means */
    if (hoist_version_number() / 10000 != HOIST_VERSION_MAJOR) {
        fprintf(stderr, "hoist: library version %s does not match this tool's major version %d\n",
                hoist_version(), HOIST_VERSION_MAJOR);
        return 1;
    }
    const char *verbose = getenv("HOIST_LOG");
    hoist_set_log_callback(log_to_stderr, NULL,
                           verbose && strcmp(verbose, "debug") == 0 ? HOIST_LOG_DEBUG
                                                                    : HOIST_LOG_INFO);
    if (argc < 2) {
        fprintf(stderr, "hoist: missing command. Try 'hoist --help'.\n");
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hoist: unknown command '%s'. Try 'hoist --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}
