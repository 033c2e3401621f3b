/* Fuzz target: config.json from memory, as hoist_model_geometry reads it, then the checks and
 * the KV-cache arithmetic the planner runs on an accepted geometry. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    int rc = hoist__geometry_from_config_text("config.json", (const char *)data, size,
                                              HOIST_DTYPE_BF16, &g);
    fz_check_status(rc);
    if (rc != HOIST_OK) return 0;
    FZ_CHECK(memchr(g.architecture, '\0', sizeof g.architecture) != NULL);
    rc = hoist_geometry_check(&g);
    fz_check_status(rc);
    if (rc != HOIST_OK) return 0;
    FZ_CHECK(g.n_layers && g.n_heads && g.n_kv_heads && g.head_dim);
    for (int kv = 0; kv < HOIST_KV_DTYPE_COUNT; kv++) {
        uint64_t bytes = 0;
        rc = hoist_kv_cache_bytes(&g, (hoist_kv_dtype)kv, g.max_position ? g.max_position : 1, 1,
                                  &bytes);
        FZ_CHECK(rc == HOIST_OK || rc == HOIST_E_OVERFLOW);
        rc = hoist_kv_cache_bytes(&g, (hoist_kv_dtype)kv, UINT64_MAX, UINT32_MAX, &bytes);
        FZ_CHECK(rc == HOIST_OK || rc == HOIST_E_OVERFLOW);
    }
    return 0;
}
