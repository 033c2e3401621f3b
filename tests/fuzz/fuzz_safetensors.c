/* Fuzz target: a whole safetensors file from memory (header length, JSON header, data section),
 * strict and lenient. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int strict = 1; strict >= 0; strict--) {
        hoist__table t;
        hoist__table_init(&t);
        int rc = hoist__safetensors_parse_buffer(&t, "fuzz.safetensors", data, size, strict);
        if (rc == HOIST_OK) rc = hoist__table_finish(&t);
        fz_check_status(rc);
        if (rc == HOIST_OK) {
            FZ_CHECK(t.nfiles == 1 && t.files[0].size == size);
            fz_check_table(&t);
        }
        hoist__table_free(&t);
    }
    return 0;
}
