/* struct hoist_plan as the placement planner (loader/planner.c) leaves it, and the memory
 * coordinator (loader/coordinator.c): the reservations plans and weights hold. */
#ifndef HOIST_COORDINATOR_H
#define HOIST_COORDINATOR_H

#include "formats/table.h"
#include "core/core.h"

typedef struct hoist__reservation hoist__reservation;

struct hoist_plan {
    hoist_model *model; /* a reference */
    hoist_plan_info info;
    hoist_geometry geometry; /* what the plan was made for (hoist_plan_geometry) */
    hoist_plan_usage usage[HOIST_PLAN_MAX_DEVICES];
    uint8_t *tensor_dev; /* per tensor: index into usage */
    uint8_t *layer_dev;  /* per layer: index into usage */
    hoist__reservation *reservation;
};

/* ---- coordinator ------------------------------------------------------------------------ */

/* The coordinator's lock: a plan reads what is available and reserves under it, so that two
 * plans never promise the same bytes. NULL = the process-wide coordinator. */
hoist_coordinator *hoist__coord_resolve(hoist_coordinator *c);
void hoist__coord_lock(hoist_coordinator *c);
void hoist__coord_unlock(hoist_coordinator *c);

/* With the lock held: the bytes device has for a new plan. given > 0: the caller's figure for the
 * device, less what the coordinator has reserved on it. given == 0: the device is asked; the
 * answer is the smaller of its free memory now and the free memory it had when its first live
 * reservation was made, less the reservations (the reservations' own allocations are already
 * missing from "free now"). *queried receives the device's free bytes now (0 when given). */
int hoist__coord_available(hoist_coordinator *c, int device, uint64_t given, uint64_t *avail,
                           uint64_t *queried);

/* With the lock held: reserves bytes[i] on devices[i] (queried[i]: the free bytes asked of the
 * device for this plan, 0 when given) and returns a reservation with one reference. */
int hoist__coord_reserve(hoist_coordinator *c, size_t n, const int *devices,
                         const uint64_t *bytes, const uint64_t *queried,
                         hoist__reservation **out);

/* Drops a reference; the last one gives the bytes back. NULL is a no-op. Takes the lock. */
void hoist__reservation_put(hoist__reservation *r);
/* Binds the reservation to one set of weights (a reference and the "in use" mark):
 * HOIST_E_BUSY while weights loaded with it before are alive. unbind undoes it. */
int hoist__reservation_bind(hoist__reservation *r);
void hoist__reservation_unbind(hoist__reservation *r);

#endif
