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
               "  --lenient         accept trailing bytes after a data section\n");
}

int cmd_plan(int argc, char **argv)
{
    const char *path = NULL;
    cli_plan_args pa;
    cli_plan_args_init(&pa);
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        int r = cli_plan_arg("plan", argc, argv, &i, &pa);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(a, "--lenient") == 0) {
            oo.strict = 0;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            cli_error("plan", "bad or incomplete argument '%s'", a);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    hoist_model *m;
    int rc = hoist_model_open(path, &oo, &m);
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
    return rc < 0 ? 1 : 0;
}
