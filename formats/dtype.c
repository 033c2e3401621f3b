/* The dtype table (from HOIST_DTYPE_LIST), the metadata value types, and tensor byte sizes
 * computed without overflow. */
#include "formats/table.h"
#include "core/core.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned block_elems, block_bytes;
} dtypes[HOIST_DTYPE_COUNT] = {
#define X(id, value, str, elems, bytes) [value] = {str, elems, bytes},
    HOIST_DTYPE_LIST(X)
#undef X
};

const char *hoist_dtype_name(hoist_dtype dtype)
{
    return (unsigned)dtype < HOIST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

unsigned hoist_dtype_bits(hoist_dtype dtype)
{
    if ((unsigned)dtype >= HOIST_DTYPE_COUNT) return 0;
    unsigned bits = dtypes[dtype].block_bytes * 8;
    return bits % dtypes[dtype].block_elems ? 0 : bits / dtypes[dtype].block_elems;
}

unsigned hoist_dtype_block_elems(hoist_dtype dtype)
{
    return (unsigned)dtype < HOIST_DTYPE_COUNT ? dtypes[dtype].block_elems : 0;
}

unsigned hoist_dtype_block_bytes(hoist_dtype dtype)
{
    return (unsigned)dtype < HOIST_DTYPE_COUNT ? dtypes[dtype].block_bytes : 0;
}

int hoist__dtype_from_name(const char *name, size_t len)
{
    /* only the safetensors dtypes: a safetensors header naming "Q8_0" is not a valid file */
    for (int i = 0; i <= HOIST_DTYPE_LAST_SAFETENSORS; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) return i;
    return -1;
}

bool hoist__dtype_row_bytes(hoist_dtype dtype, uint64_t n, uint64_t *bytes)
{
    if ((unsigned)dtype >= HOIST_DTYPE_COUNT || n % dtypes[dtype].block_elems) return false;
    return hoist__mul_u64(n / dtypes[dtype].block_elems, dtypes[dtype].block_bytes, bytes);
}

int hoist__tensor_bytes(const char *name, hoist_dtype dtype, uint32_t ndim, const int64_t *shape,
                        uint64_t *nbytes)
{
    uint64_t elems = 1;
    RETURN_IF((unsigned)dtype >= HOIST_DTYPE_COUNT, HOIST_E_BAD_DTYPE,
              "tensor '%s': unknown dtype %d", name, (int)dtype);
    RETURN_IF(ndim > HOIST_MAX_DIMS, HOIST_E_BAD_TENSOR, "tensor '%s': %u dimensions (at most %d)",
              name, ndim, HOIST_MAX_DIMS);
    for (uint32_t i = 0; i < ndim; i++) {
        RETURN_IF(shape[i] < 0, HOIST_E_BAD_TENSOR, "tensor '%s': dimension %u is negative (%lld)",
                  name, i, (long long)shape[i]);
        RETURN_IF(!hoist__mul_u64(elems, (uint64_t)shape[i], &elems), HOIST_E_OVERFLOW,
                  "tensor '%s': element count overflows 64 bits at dimension %u", name, i);
    }
    unsigned bits_each = hoist_dtype_bits(dtype);
    if (bits_each == 0) {
        /* ggml block types: blocks run along the innermost dimension */
        uint64_t inner = ndim ? (uint64_t)shape[ndim - 1] : 1, rows = inner ? elems / inner : 0;
        uint64_t row_bytes;
        RETURN_IF(inner % dtypes[dtype].block_elems, HOIST_E_SIZE_MISMATCH,
                  "tensor '%s': innermost dimension %llu is not a multiple of %s's %u-element "
                  "block",
                  name, (unsigned long long)inner, dtypes[dtype].name,
                  dtypes[dtype].block_elems);
        RETURN_IF(!hoist__dtype_row_bytes(dtype, inner, &row_bytes) ||
                      !hoist__mul_u64(row_bytes, rows, nbytes),
                  HOIST_E_OVERFLOW, "tensor '%s': %llu elements of %s overflow 64 bits", name,
                  (unsigned long long)elems, dtypes[dtype].name);
        return HOIST_OK;
    }
    uint64_t bits;
    RETURN_IF(!hoist__mul_u64(elems, bits_each, &bits), HOIST_E_OVERFLOW,
              "tensor '%s': %llu elements of %s overflow 64 bits", name,
              (unsigned long long)elems, dtypes[dtype].name);
    RETURN_IF(bits % 8 != 0, HOIST_E_SIZE_MISMATCH,
              "tensor '%s': %llu elements of %s (%u bits each) are not a whole number of bytes",
              name, (unsigned long long)elems, dtypes[dtype].name, bits_each);
    *nbytes = bits / 8;
    return HOIST_OK;
}

/* ---- metadata value types ---- */

static const struct {
    const char *name;
    size_t size;
} meta_types[HOIST_META_TYPE_COUNT] = {
#define X(id, value, str, sz) [value] = {str, sz},
    HOIST_META_TYPE_LIST(X)
#undef X
};

const char *hoist_meta_type_name(hoist_meta_type type)
{
    return (unsigned)type < HOIST_META_TYPE_COUNT ? meta_types[type].name : "?";
}

size_t hoist_meta_type_size(hoist_meta_type type)
{
    return (unsigned)type < HOIST_META_TYPE_COUNT ? meta_types[type].size : 0;
}
