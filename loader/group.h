/* The ranks of hoist_load_group (loader/group.c): one load per device on threads of one process,
 * meeting for the cooperative exchange. */
#ifndef HOIST_GROUP_H
#define HOIST_GROUP_H

#include "hoist.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hoist__group {
    int world;
    pthread_barrier_t barrier;
    void *comms[HOIST_PLAN_MAX_DEVICES]; /* NCCL's, when every device is a GPU; else NULL */
    /* what each rank posts before the first barrier of the exchange */
    int status[HOIST_PLAN_MAX_DEVICES];
    uint64_t share[HOIST_PLAN_MAX_DEVICES];
    uint8_t *base[HOIST_PLAN_MAX_DEVICES];
    char msg[HOIST_PLAN_MAX_DEVICES][512];
} hoist__group;

/* The exchange among the host ranks of g (no NCCL): every rank posts its outcome, its shared
 * region and arena; when all succeeded and agree, each copies the others' parts into its own
 * arena. status: this rank's outcome so far. Returns it, or HOIST_E_ABORTED naming the rank
 * that failed. *received: bytes copied in. */
int hoist__group_exchange(hoist__group *g, int rank, int status, uint8_t *base,
                          uint64_t share_bytes, uint64_t part, uint64_t *received);

#endif
