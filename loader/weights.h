/* Loaded weights: an arena on each device and each tensor's place in one of them. */
#ifndef HOIST_WEIGHTS_H
#define HOIST_WEIGHTS_H

#include "formats/table.h"
#include "gpu/gpu.h"
#include "loader/load_ctx.h"
#include "loader/coordinator.h"

struct hoist_weights {
    _Atomic unsigned long refs; /* hoist_weights_retain / hoist_weights_free */
    hoist_model *model; /* a reference: the names and shapes live there */
    hoist__arena arenas[HOIST_PLAN_MAX_DEVICES];
    size_t narenas;
    uint8_t *tensor_arena; /* owned copy of the plan's; NULL = every tensor in arenas[0] */
    uint64_t *tensor_dst;
    hoist__reservation *reservation; /* the plan's, held until the weights are freed */
    hoist_load_stats stats;
    hoist__slice *slices;  /* tensor-parallel slices (owned); NULL = whole tensors */
    hoist_tp_share share;  /* a cooperative load's shared region (bytes 0 otherwise) */
};

void hoist__model_retain(hoist_model *m);

/* Verifies every byte of the arena against the files (reads them with pread); HOIST_E_INTEGRITY
 * naming the file, tensor and byte offset of the first difference. */
typedef struct hoist__load hoist__load;
int hoist__verify(hoist__load *ld);

#endif
