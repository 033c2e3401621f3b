/* Fuzz target: a manifest from memory (formats/manifest.c). One that parses must hold what the
 * loader relies on: chunk counts bounded by the file sizes, tensors inside their files. */
#include "formats/manifest.h"
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hoist__manifest m;
    int rc = hoist__manifest_read_buffer("fuzz.hoist-sum", (const char *)data, size, &m);
    fz_check_status(rc);
    if (rc != HOIST_OK) return 0;
    FZ_CHECK(m.chunk_bytes >= HOIST_MANIFEST_MIN_CHUNK && m.chunk_bytes <= HOIST_MANIFEST_MAX_CHUNK);
    FZ_CHECK((m.chunk_bytes & (m.chunk_bytes - 1)) == 0);
    for (uint32_t i = 0; i < m.nfiles; i++) {
        const hoist__manifest_file *f = &m.files[i];
        FZ_CHECK(f->name && f->name[0] && !strchr(f->name, '/'));
        FZ_CHECK(f->header_bytes <= f->size);
        FZ_CHECK(f->first_chunk + f->nchunks <= f->size / m.chunk_bytes + 1);
    }
    for (size_t i = 0; i < m.ntensors; i++) {
        const hoist__manifest_tensor *t = &m.tensors[i];
        FZ_CHECK(t->file < m.nfiles && t->name && t->name[0]);
        FZ_CHECK(t->nbytes <= m.files[t->file].size &&
                 t->offset <= m.files[t->file].size - t->nbytes);
    }
    hoist__manifest_free(&m);
    return 0;
}
