/* Loaded weights: the arena on its device and each tensor's place in it. */
#ifndef HOIST_WEIGHTS_H
#define HOIST_WEIGHTS_H

#include "formats/table.h"
#include "gpu/gpu.h"

struct hoist_weights {
    _Atomic unsigned long refs; /* hoist_weights_retain / hoist_weights_free */
    hoist_model *model; /* a reference: the names and shapes live there */
    const hoist__gpu_ops *gpu;
    int device;
    uint8_t *arena;
    uint64_t arena_bytes;
    uint64_t *tensor_dst;
    hoist_load_stats stats;
};

void hoist__model_retain(hoist_model *m);

/* Verifies every byte of the arena against the files (reads them with pread); HOIST_E_INTEGRITY
 * naming the file, tensor and byte offset of the first difference. */
typedef struct hoist__load hoist__load;
int hoist__verify(hoist__load *ld);

#endif
