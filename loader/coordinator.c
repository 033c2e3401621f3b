/* The memory coordinator: one budget per device for every plan of a process, so that a second
 * model (a draft model, say) is planned into what the first left. A plan reserves its bytes under
 * the coordinator's lock; the reservation lives while the plan or the weights loaded with it do.
 *
 * Asking the device is not enough on its own: the first model's KV cache and workspace are
 * reserved but not yet allocated (the engine allocates them after the load), so they are still
 * "free" to the driver. Counting reservations alone is not enough either: other processes and
 * allocations outside hoist take memory too. So a device's capacity is the free memory it had
 * when its first live reservation was made, and a new plan gets the smaller of that capacity less
 * the reservations, and what the device says is free now. */
#include "loader/coordinator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Distinct devices one coordinator tracks: the host and every CUDA ordinal hoist accepts. */
#define COORD_MAX_DEVICES 64

typedef struct coord_dev {
    int device;
    uint64_t reserved;   /* bytes of live reservations */
    unsigned holders;    /* live reservations on this device */
    uint64_t capacity;   /* free bytes when the first live reservation was made (queried) */
    int have_capacity;
} coord_dev;

struct hoist_coordinator {
    _Atomic int refs;
    int is_default;
    pthread_mutex_t lock;
    coord_dev dev[COORD_MAX_DEVICES];
    size_t ndev;
};

struct hoist__reservation {
    _Atomic int refs;
    atomic_int bound; /* weights loaded with it are alive */
    hoist_coordinator *c;
    size_t n;
    int device[HOIST_PLAN_MAX_DEVICES];
    uint64_t bytes[HOIST_PLAN_MAX_DEVICES];
};

static hoist_coordinator default_coordinator = {
    .refs = 1, .is_default = 1, .lock = PTHREAD_MUTEX_INITIALIZER};

hoist_coordinator *hoist_coordinator_default(void) { return &default_coordinator; }

hoist_coordinator *hoist__coord_resolve(hoist_coordinator *c)
{
    return c ? c : &default_coordinator;
}

int hoist_coordinator_create(hoist_coordinator **out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_coordinator_create: out is NULL");
    *out = NULL;
    hoist_coordinator *c = hoist__calloc(1, sizeof *c);
    RETURN_IF(!c, HOIST_E_NOMEM, "out of memory for a coordinator");
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    hoist__err_clear();
    return HOIST_OK;
}

static void coord_put(hoist_coordinator *c)
{
    if (!c || c->is_default || atomic_fetch_sub(&c->refs, 1) != 1) return;
    pthread_mutex_destroy(&c->lock);
    hoist__free(c);
}

void hoist_coordinator_free(hoist_coordinator *c) { coord_put(c); }

void hoist__coord_lock(hoist_coordinator *c) { pthread_mutex_lock(&hoist__coord_resolve(c)->lock); }
void hoist__coord_unlock(hoist_coordinator *c)
{
    pthread_mutex_unlock(&hoist__coord_resolve(c)->lock);
}

static coord_dev *find_dev(hoist_coordinator *c, int device)
{
    for (size_t i = 0; i < c->ndev; i++)
        if (c->dev[i].device == device) return &c->dev[i];
    return NULL;
}

uint64_t hoist_coordinator_reserved(const hoist_coordinator *cc, int device)
{
    hoist_coordinator *c = hoist__coord_resolve((hoist_coordinator *)cc);
    pthread_mutex_lock(&c->lock);
    coord_dev *d = find_dev(c, device);
    uint64_t r = d ? d->reserved : 0;
    pthread_mutex_unlock(&c->lock);
    return r;
}

int hoist__coord_available(hoist_coordinator *c, int device, uint64_t given, uint64_t *avail,
                           uint64_t *queried)
{
    c = hoist__coord_resolve(c);
    coord_dev *d = find_dev(c, device);
    uint64_t reserved = d ? d->reserved : 0;
    *queried = 0;
    if (given) {
        *avail = given > reserved ? given - reserved : 0;
        return HOIST_OK;
    }
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    RETURN_IF_ERR(hoist_device_info_get(device, &info));
    uint64_t now = info.free_bytes;
    *queried = now;
    /* without a recorded capacity (no live reservation, or only ones with given sizes), "free
     * now" is all there is; reservations made with given sizes are subtracted to stay safe */
    uint64_t cap = d && d->have_capacity ? d->capacity : now;
    uint64_t booked = cap > reserved ? cap - reserved : 0;
    if (!(d && d->have_capacity) && reserved) booked = now > reserved ? now - reserved : 0;
    *avail = booked < now ? booked : now;
    return HOIST_OK;
}

int hoist__coord_reserve(hoist_coordinator *c, size_t n, const int *devices,
                         const uint64_t *bytes, const uint64_t *queried,
                         hoist__reservation **out)
{
    c = hoist__coord_resolve(c);
    *out = NULL;
    RETURN_IF(n > HOIST_PLAN_MAX_DEVICES, HOIST_E_INTERNAL, "%zu devices to reserve on", n);
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) fresh += find_dev(c, devices[i]) == NULL;
    RETURN_IF(c->ndev + fresh > COORD_MAX_DEVICES, HOIST_E_TOO_MANY,
              "the coordinator tracks at most %d devices", COORD_MAX_DEVICES);
    hoist__reservation *r = hoist__calloc(1, sizeof *r);
    RETURN_IF(!r, HOIST_E_NOMEM, "out of memory for a reservation");
    atomic_init(&r->refs, 1);
    atomic_init(&r->bound, 0);
    r->c = c;
    if (!c->is_default) atomic_fetch_add(&c->refs, 1);
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        coord_dev *d = find_dev(c, devices[i]);
        if (!d) {
            d = &c->dev[c->ndev++];
            *d = (coord_dev){.device = devices[i]};
        }
        if (!d->holders) d->have_capacity = 0;
        if (queried[i] && !d->have_capacity && !d->holders) {
            d->capacity = queried[i];
            d->have_capacity = 1;
        }
        d->reserved += bytes[i];
        d->holders++;
        r->device[i] = devices[i];
        r->bytes[i] = bytes[i];
    }
    *out = r;
    return HOIST_OK;
}

void hoist__reservation_put(hoist__reservation *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    hoist_coordinator *c = r->c;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < r->n; i++) {
        coord_dev *d = find_dev(c, r->device[i]);
        if (!d) continue;
        d->reserved -= r->bytes[i];
        if (--d->holders == 0) {
            d->reserved = 0;
            d->have_capacity = 0; /* the next first reservation asks the device afresh */
        }
    }
    pthread_mutex_unlock(&c->lock);
    hoist__free(r);
    coord_put(c);
}

int hoist__reservation_bind(hoist__reservation *r)
{
    int expected = 0;
    RETURN_IF(!atomic_compare_exchange_strong(&r->bound, &expected, 1), HOIST_E_BUSY,
              "the plan's weights are still loaded: free them (hoist_weights_free) or make "
              "another plan before loading with it again");
    atomic_fetch_add(&r->refs, 1);
    return HOIST_OK;
}

void hoist__reservation_unbind(hoist__reservation *r)
{
    if (!r) return;
    atomic_store(&r->bound, 0);
    hoist__reservation_put(r);
}
