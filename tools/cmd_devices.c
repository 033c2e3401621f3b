/* hoist devices: what hoist can load into. */
#include "cli_util.h"

#include "hoist.h"

#include <stdio.h>
#include <string.h>

int cmd_devices(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0) {
            printf("usage: hoist devices\n\nLists the host and every CUDA device with its memory.\n");
            return 0;
        }
        cli_error("devices", "unexpected argument '%s'", argv[1]);
        return 2;
    }
    char total[32], avail[32];
    int n = hoist_device_count();
    printf("%-8s %-32s %12s %12s %s\n", "device", "name", "total", "free", "compute");
    for (int d = -1; d < n; d++) {
        hoist_device_info info;
        int rc = hoist_device_info_get(d, &info);
        if (rc < 0) return cli_fail("devices", rc);
        char id[16], cc[16] = "-";
        if (d < 0)
            snprintf(id, sizeof id, "host");
        else {
            snprintf(id, sizeof id, "cuda:%d", d);
            snprintf(cc, sizeof cc, "%d.%d", info.compute_major, info.compute_minor);
        }
        printf("%-8s %-32s %12s %12s %s\n", id, info.name,
               cli_fmt_bytes(info.total_bytes, total, sizeof total),
               cli_fmt_bytes(info.free_bytes, avail, sizeof avail), cc);
    }
    if (n == 0) printf("(no CUDA device found)\n");
    return 0;
}
