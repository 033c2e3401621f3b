/* The planning flags shared by `hoist plan` and `hoist load`: devices with optional sizes,
 * reserves, cache length and encoding, batch, and a geometry given on the command line. */
#ifndef HOIST_PLAN_ARGS_H
#define HOIST_PLAN_ARGS_H

#include "cli_util.h"
#include "hoist.h"

#include <stdio.h>

typedef struct cli_plan_args {
    hoist_plan_device devices[HOIST_PLAN_MAX_DEVICES];
    size_t ndevices;
    uint64_t reserve[HOIST_PLAN_MAX_DEVICES];
    size_t nreserve;
    hoist_plan_options opts;
    hoist_tp_options tp;  /* --tp, --tp-pad: world 1 without */
    hoist_geometry geo;   /* fields given by flags */
    unsigned geo_given;   /* bit per geometry flag */
    int any;              /* some planning flag was given */
} cli_plan_args;

#define CLI_PLAN_USAGE                                                                            \
    "  --devices LIST    devices in split order, each DEVICE or DEVICE=FREE to plan with that\n"  \
    "                    much free memory instead of asking (cuda:0,cuda:1 or cuda:0=24G,...)\n"  \
    "  --reserve LIST    memory left unused on each device (one SIZE for all, or one each)\n"    \
    "  --max-seq-len N   KV-cache positions per sequence (default: the model's context)\n"       \
    "  --kv-dtype T      cache encoding: f16, bf16, f32, f8, q8, q4 (default f16)\n"             \
    "  --batch B         sequences, each with its own cache (default 1)\n"                       \
    "  --forward-tokens T  tokens per forward pass, the prefill chunk (default 256)\n"           \
    "  --layers N --hidden N --intermediate N --heads N --kv-heads N --head-dim N --vocab N\n"   \
    "  --max-position N --tie-embeddings\n"                                                      \
    "                    the model's geometry, over config.json's (or without one)\n"           \
    "  --tp N            tensor parallelism over N devices: each device (--devices, in rank\n"  \
    "                    order) holds its rank's slice of every layer (docs/TENSOR_PARALLEL.md)\n" \
    "  --tp-pad          pad dimensions that do not divide among the ranks with zeros\n"

/* Option values of the planning flags, clear of every subcommand's own. */
enum {
    CLI_PLAN_OPT_FIRST = 0x1000,
    CLI_PLAN_OPT_DEVICES = CLI_PLAN_OPT_FIRST,
    CLI_PLAN_OPT_RESERVE,
    CLI_PLAN_OPT_MAX_SEQ_LEN,
    CLI_PLAN_OPT_KV_DTYPE,
    CLI_PLAN_OPT_BATCH,
    CLI_PLAN_OPT_FORWARD_TOKENS,
    CLI_PLAN_OPT_LAYERS,
    CLI_PLAN_OPT_HIDDEN,
    CLI_PLAN_OPT_INTERMEDIATE,
    CLI_PLAN_OPT_HEADS,
    CLI_PLAN_OPT_KV_HEADS,
    CLI_PLAN_OPT_HEAD_DIM,
    CLI_PLAN_OPT_VOCAB,
    CLI_PLAN_OPT_MAX_POSITION,
    CLI_PLAN_OPT_TIE_EMBEDDINGS,
    CLI_PLAN_OPT_TP,
    CLI_PLAN_OPT_TP_PAD,
    CLI_PLAN_OPT_END
};

/* The planning flags' entries of a getopt_long table. */
#define CLI_PLAN_OPTIONS                                                                          \
    {"devices", required_argument, NULL, CLI_PLAN_OPT_DEVICES},                                   \
        {"reserve", required_argument, NULL, CLI_PLAN_OPT_RESERVE},                               \
        {"max-seq-len", required_argument, NULL, CLI_PLAN_OPT_MAX_SEQ_LEN},                       \
        {"kv-dtype", required_argument, NULL, CLI_PLAN_OPT_KV_DTYPE},                             \
        {"batch", required_argument, NULL, CLI_PLAN_OPT_BATCH},                                   \
        {"forward-tokens", required_argument, NULL, CLI_PLAN_OPT_FORWARD_TOKENS},                 \
        {"layers", required_argument, NULL, CLI_PLAN_OPT_LAYERS},                                 \
        {"hidden", required_argument, NULL, CLI_PLAN_OPT_HIDDEN},                                 \
        {"intermediate", required_argument, NULL, CLI_PLAN_OPT_INTERMEDIATE},                     \
        {"heads", required_argument, NULL, CLI_PLAN_OPT_HEADS},                                   \
        {"kv-heads", required_argument, NULL, CLI_PLAN_OPT_KV_HEADS},                             \
        {"head-dim", required_argument, NULL, CLI_PLAN_OPT_HEAD_DIM},                             \
        {"vocab", required_argument, NULL, CLI_PLAN_OPT_VOCAB},                                   \
        {"max-position", required_argument, NULL, CLI_PLAN_OPT_MAX_POSITION},                     \
        {"tie-embeddings", no_argument, NULL, CLI_PLAN_OPT_TIE_EMBEDDINGS},                       \
        {"tp", required_argument, NULL, CLI_PLAN_OPT_TP},                                         \
        {"tp-pad", no_argument, NULL, CLI_PLAN_OPT_TP_PAD}

static inline int cli_is_plan_option(int c)
{
    return c >= CLI_PLAN_OPT_FIRST && c < CLI_PLAN_OPT_END;
}

void cli_plan_args_init(cli_plan_args *pa);
/* Takes planning option c (cli_is_plan_option) with its value. CLI_CONTINUE, or the usage
 * error's exit status. */
int cli_plan_option(const cli_parser *p, int c, cli_plan_args *pa);
/* After the options: what takes more than one flag to check, --device (device_set) among them.
 * CLI_CONTINUE, or the usage error's exit status. */
int cli_plan_args_check(const char *cmd, const cli_plan_args *pa, int device_set);
/* Plans model with the flags; on failure prints the reason and what would fit. Returns a status. */
int cli_plan_make(const char *cmd, hoist_model *model, cli_plan_args *pa, hoist_plan **out);
/* The plan as a table: one line per device, totals, the cache per token. */
void cli_plan_print(FILE *f, const hoist_plan *plan);
/* "largest max_seq_len that fits: f16 N, ..." for these flags. */
void cli_fit_print(FILE *f, hoist_model *model, cli_plan_args *pa);

#endif
