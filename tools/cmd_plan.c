/* hoist plan: what fits where, before anything is read or allocated. */
#include "cli_util.h"
#include "plan_args.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hoist plan PATH [options]\n\n"
               "Places the model's layers, each with its KV cache, over the devices (filling each\n"
               "before the next), with the inference layer's workspace and each device's reserve,\n"
               "and prints what goes where; or, when it does not fit, which device lacks how much\n"
               "and what would fit. Reads headers only.\n\n" CLI_PLAN_USAGE
               "  --lenient         accept trailing bytes after a data section\n"
               "  --help            this text\n");
}

enum { OPT_LENIENT = 256 };

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    CLI_PLAN_OPTIONS,
    {0},
};

static int option(cli_parser *p, int c, cli_plan_args *pa, hoist_open_options *oo)
{
    if (cli_is_plan_option(c)) return cli_plan_option(p, c, pa);
    switch (c) {
    case 'h': usage(stdout); return CLI_EXIT_OK;
    case OPT_LENIENT: oo->strict = 0; return CLI_CONTINUE;
    default: return cli_bad_option(p, c);
    }
}

static int parse(int argc, char **argv, const char **path, cli_plan_args *pa,
                 hoist_open_options *oo)
{
    cli_parser p;
    cli_parser_init(&p, "plan", argc, argv, options, "h");
    int c, rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && (c = cli_next_option(&p)) != -1) rc = option(&p, c, pa, oo);
    if (rc == CLI_CONTINUE) rc = cli_operands(&p, 1, 1, (const char *const[]){"PATH"});
    if (rc == CLI_CONTINUE) rc = cli_plan_args_check("plan", pa, 0);
    *path = p.operand[0];
    return rc;
}

int cmd_plan(int argc, char **argv)
{
    const char *path = NULL;
    cli_plan_args pa;
    cli_plan_args_init(&pa);
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    int rc = parse(argc, argv, &path, &pa, &oo);
    if (rc != CLI_CONTINUE) return rc;
    hoist_model *m;
    rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail("plan", rc);
    char total[32];
    printf("model: %s (%zu tensors, %s)\n", path, hoist_model_tensor_count(m),
           cli_fmt_bytes(hoist_model_total_bytes(m), total, sizeof total));
    hoist_plan *p;
    rc = cli_plan_make("plan", m, &pa, &p);
    if (rc == 0) {
        cli_plan_print(stdout, p);
        hoist_plan_free(p); /* its reservation would shrink what fits */
        cli_fit_print(stdout, m, &pa);
    }
    hoist_model_free(m);
    return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
