/* Shared by the fuzz targets: the invariants every table a parser accepts must hold. A violation
 * aborts, which the fuzzer reports like a crash (and the replay test as a failure). */
#ifndef HOIST_FUZZ_COMMON_H
#define HOIST_FUZZ_COMMON_H

#include "formats/table.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A parser's status: a hoist_status it declares, with a message when it is a failure. */
static inline void fz_check_status(int rc)
{
    FZ_CHECK(rc <= 0);
    FZ_CHECK(strcmp(hoist_status_name(rc), "HOIST_E_UNKNOWN") != 0);
    if (rc < 0) FZ_CHECK(hoist_last_error()[0] != '\0');
}

/* Tensors inside their files, sized by dtype and shape, in (file, offset) order without overlap,
 * names found by the index, total bytes summed. For tables after hoist__table_finish. */
static inline void fz_check_table(const hoist__table *t)
{
    uint64_t total = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *ti = &t->tensors[i];
        FZ_CHECK(ti->file < t->nfiles);
        const hoist__file *f = &t->files[ti->file];
        FZ_CHECK(ti->offset >= f->data_start);
        FZ_CHECK(ti->nbytes <= f->size && ti->offset <= f->size - ti->nbytes);
        FZ_CHECK(ti->ndim <= HOIST_MAX_DIMS);
        uint64_t n = 0;
        FZ_CHECK(hoist__tensor_bytes(ti->name, ti->dtype, ti->ndim, ti->shape, &n) == HOIST_OK);
        FZ_CHECK(n == ti->nbytes);
        if (i > 0 && t->tensors[i - 1].file == ti->file && ti->nbytes)
            FZ_CHECK(t->tensors[i - 1].offset + t->tensors[i - 1].nbytes <= ti->offset);
        FZ_CHECK(hoist__table_find(t, ti->name) == (long)i);
        total += ti->nbytes;
    }
    FZ_CHECK(total == t->total_bytes);
    for (size_t i = 0; i < t->nmeta; i++) FZ_CHECK(t->meta[i].key && t->meta[i].value);
}

#endif
