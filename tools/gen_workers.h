/* The data of a generated checkpoint, written by a pool of threads: each takes the next work item
 * (a few Mi elements of one tensor), makes its bytes and pwrites them at their offset. */
#ifndef HOIST_GEN_WORKERS_H
#define HOIST_GEN_WORKERS_H

#include "gen_plan.h"

#include <stddef.h>

/* Writes every tensor's data into fds (one per plan file, already sized; names[f] names file f in
 * messages), on cfg->threads threads (0: online CPUs), with a progress line on stderr when
 * cfg->progress. 0, or -1 with the first failure in err. */
int gen_write_data(const gen_plan *plan, const gen_config *cfg, const int *fds,
                   char *const *names, char *err, size_t errlen);

#endif
