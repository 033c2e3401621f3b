/* Picking a load's transform and fitting the windows to it (see transform.h). */
#include "loader/transform.h"
#include "loader/source.h"

#include <unistd.h>

#define DECODE_MIN_THREADS 8u
#define DECODE_MAX_THREADS 16u

void hoist__transform_defaults(hoist__load *ld)
{
    if (!ld->table->packed || ld->opts.threads) return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cpus > 0 ? (unsigned)cpus : 1;
    if (n < DECODE_MIN_THREADS) n = DECODE_MIN_THREADS;
    if (n > DECODE_MAX_THREADS) n = DECODE_MAX_THREADS;
    ld->opts.threads = n;
}

int hoist__transform_prepare(hoist__load *ld)
{
    const hoist__transform_ops *tf = NULL;
    if (ld->table->packed)
        tf = &hoist__transform_decode; /* its chunk hashes are the manifest */
    else if (ld->opts.verify & HOIST_VERIFY_MANIFEST)
        tf = &hoist__transform_manifest;
    if (!tf) return HOIST_OK;
    RETURN_IF_ERR(tf->prepare(ld, &ld->transform_state));
    ld->transform = tf;
    uint64_t w = ld->opts.chunk_bytes, fit = w;
    uint64_t min = ld->transform_needs.window_min, q = ld->transform_needs.window_quantum;
    if (fit < min) fit = min;
    if (q) fit = hoist__align_up(fit, q);
    if (fit != w) {
        hoist__log(HOIST_LOG_INFO, "%s: %llu-byte windows instead of %llu, as the %s needs",
                   ld->table->origin, (unsigned long long)fit, (unsigned long long)w, tf->name);
        ld->opts.chunk_bytes = fit;
    }
    return HOIST_OK;
}

int hoist__transform_start(hoist__load *ld)
{
    if (!ld->transform) return HOIST_OK;
    return ld->transform->start(ld->transform_state, ld->opts.threads);
}

void hoist__transform_close(hoist__load *ld)
{
    if (ld->transform) ld->transform->close(ld->transform_state);
    ld->transform = NULL;
    ld->transform_state = NULL;
}
