/* The planning flags shared by `hoist plan` and `hoist load`: devices with optional sizes,
 * reserves, cache length and encoding, batch, and a geometry given on the command line. */
#ifndef HOIST_PLAN_ARGS_H
#define HOIST_PLAN_ARGS_H

#include "hoist.h"

#include <stdio.h>

typedef struct cli_plan_args {
    hoist_plan_device devices[HOIST_PLAN_MAX_DEVICES];
    size_t ndevices;
    uint64_t reserve[HOIST_PLAN_MAX_DEVICES];
    size_t nreserve;
    hoist_plan_options opts;
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
    "                    the model's geometry, over config.json's (or without one)\n"

void cli_plan_args_init(cli_plan_args *pa);
/* If argv[*i] is a planning flag, consumes it (and its value, advancing *i) and returns 1;
 * returns 0 for another argument, and -1 (message printed) for a bad value. */
int cli_plan_arg(const char *cmd, int argc, char **argv, int *i, cli_plan_args *pa);
/* Plans model with the flags; on failure prints the reason and what would fit. Returns a status. */
int cli_plan_make(const char *cmd, hoist_model *model, cli_plan_args *pa, hoist_plan **out);
/* The plan as a table: one line per device, totals, the cache per token. */
void cli_plan_print(FILE *f, const hoist_plan *plan);
/* "largest max_seq_len that fits: f16 N, ..." for these flags. */
void cli_fit_print(FILE *f, hoist_model *model, cli_plan_args *pa);

#endif
