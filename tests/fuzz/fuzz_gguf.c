/* Fuzz target: a whole GGUF file from memory (header, key-values, tensor infos, data), strict and
 * lenient. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int strict = 1; strict >= 0; strict--) {
        hoist__table t;
        hoist__table_init(&t);
        int rc = hoist__gguf_parse_buffer(&t, "fuzz.gguf", data, size, strict);
        if (rc == HOIST_OK) rc = hoist__table_finish(&t);
        fz_check_status(rc);
        if (rc == HOIST_OK) {
            FZ_CHECK(t.nfiles == 1 && t.files[0].size == size);
            fz_check_table(&t);
            /* typed metadata: every array holds what its count says */
            for (size_t i = 0; i < t.nmeta; i++) {
                const hoist__meta *m = &t.meta[i];
                FZ_CHECK(m->type < HOIST_META_TYPE_COUNT);
                if (m->type == HOIST_META_ARRAY && m->count && m->elem_type == HOIST_META_STRING)
                    for (uint64_t k = 0; k < m->count; k++)
                        FZ_CHECK(strlen(((char **)m->array)[k]) <= m->str_lens[k]);
                if (m->type == HOIST_META_ARRAY && m->count) FZ_CHECK(m->array != NULL);
            }
        }
        hoist__table_free(&t);
    }
    return 0;
}
