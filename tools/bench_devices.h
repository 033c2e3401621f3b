/* hoist bench --devices: one model loaded onto several devices at once (tools/bench_devices.c). */
#ifndef HOIST_BENCH_DEVICES_H
#define HOIST_BENCH_DEVICES_H

#include "hoist.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bench_devices_opts {
    const char *model_path;
    int devices[HOIST_PLAN_MAX_DEVICES];
    size_t ndevices;
    int tp;          /* 1: every device loads its rank's slices (--tp) */
    int cooperative; /* --cooperative */
    hoist_path path;
    int repeat;
    unsigned threads;
    uint64_t chunk;
    int lenient;
    const char *csv; /* NULL: none */
} bench_devices_opts;

/* Measures each device's pinned host-to-device ceiling, then loads the model on every device at
 * once `repeat` times; prints each rank's throughput against its own link's ceiling and the
 * aggregate against their sum. The exit status. */
int bench_devices_run(const bench_devices_opts *o);

#endif
