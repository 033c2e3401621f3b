/* The report of a load on several devices at once (hoist load --tp/--cooperative, hoist bench
 * --devices): each rank's time, throughput, what it read and what it received, and the
 * aggregate over the devices. */
#ifndef HOIST_GROUP_REPORT_H
#define HOIST_GROUP_REPORT_H

#include "hoist.h"

#include <stdio.h>

/* One line per rank and one for the aggregate (wall: the group's wall time), as text or CSV
 * (rank,device,seconds,gb_per_s,bytes,read_bytes,exchange_seconds,exchange_bytes; the aggregate
 * row's rank is "all"). run and repeat number the runs of a --repeat. */
void cli_group_report(FILE *f, hoist_weights *const *w, const int *devices, size_t n,
                      double wall, int csv, int run, int repeat);

#endif
