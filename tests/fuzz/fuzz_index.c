/* Fuzz target: model.safetensors.index.json from memory. Its shards are looked up beside a fixed
 * index path, in a directory of real shard files: tests/data/safetensors/index_good (or
 * $HOIST_FUZZ_SHARDS), so that weight maps naming them get past the file system and on to the
 * cross-checks between the map and the shards. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

static char index_path[4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!index_path[0]) {
        const char *dir = getenv("HOIST_FUZZ_SHARDS");
        snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json",
                 dir && *dir ? dir : HOIST_TEST_DATA "/safetensors/index_good");
    }
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__safetensors_index_parse_buffer(&t, index_path, (const char *)data, size, 1);
    if (rc == HOIST_OK) rc = hoist__table_finish(&t);
    fz_check_status(rc);
    if (rc == HOIST_OK) fz_check_table(&t);
    hoist__table_free(&t);
    return 0;
}
