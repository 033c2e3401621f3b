/* hoist devices: what hoist can load into. */
#include "cli_util.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

/* Pinned and pageable host-to-device copy bandwidth: the ceiling of every load path. */
static int print_bandwidth(int n)
{
    for (int d = 0; d < n; d++) {
        double pinned = 0, pageable = 0;
        int rc = hoist_device_copy_bandwidth(d, 1u << 30, 1, 5, &pinned);
        if (rc == 0) rc = hoist_device_copy_bandwidth(d, 1u << 30, 0, 3, &pageable);
        if (rc < 0) return cli_fail("devices", rc);
        printf("cuda:%d host-to-device copy (1 GiB, median): pinned %.1f GB/s, pageable %.1f GB/s\n",
               d, pinned, pageable);
        double mem = 0;
        rc = hoist_device_memory_bandwidth(d, 1u << 30, 5, &mem);
        if (rc < 0) return cli_fail("devices", rc);
        printf("cuda:%d memory bandwidth (1 GiB device-to-device copy, read + write, median): "
               "%.1f GB/s\n", d, mem);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hoist devices [--bandwidth]\n\n"
               "Lists the host and every CUDA device with its memory.\n"
               "  --bandwidth  also measure host-to-device copy and device memory bandwidth\n"
               "  --help       this text\n");
}

enum { OPT_BANDWIDTH = 256 };

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"bandwidth", no_argument, NULL, OPT_BANDWIDTH},
    {0},
};

static int parse(int argc, char **argv, int *bandwidth)
{
    cli_parser p;
    cli_parser_init(&p, "devices", argc, argv, options, "h");
    for (int c; (c = cli_next_option(&p)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c != OPT_BANDWIDTH) return cli_bad_option(&p, c);
        *bandwidth = 1;
    }
    return cli_operands(&p, 0, 0, NULL);
}

int cmd_devices(int argc, char **argv)
{
    int bandwidth = 0;
    int rc = parse(argc, argv, &bandwidth);
    if (rc != CLI_CONTINUE) return rc;
    char total[32], avail[32];
    int n = hoist_device_count();
    printf("%-8s %-32s %12s %12s %s\n", "device", "name", "total", "free", "compute");
    for (int d = -1; d < n; d++) {
        hoist_device_info info = HOIST_DEVICE_INFO_INIT;
        rc = hoist_device_info_get(d, &info);
        if (rc < 0) return cli_fail("devices", rc);
        char id[HOIST_DEVICE_NAME_MAX], cc[16] = "-";
        hoist_device_name(d, id, sizeof id);
        if (d >= 0) snprintf(cc, sizeof cc, "%d.%d", info.compute_major, info.compute_minor);
        printf("%-8s %-32s %12s %12s %s\n", id, info.name,
               cli_fmt_bytes(info.total_bytes, total, sizeof total),
               cli_fmt_bytes(info.free_bytes, avail, sizeof avail), cc);
    }
    if (n == 0) printf("(no CUDA device found)\n");
    return bandwidth ? print_bandwidth(n) : 0;
}
