/* The dtype table (from HOIST_DTYPE_LIST) and tensor byte sizes computed without overflow. */
#include "formats/table.h"
#include "loader/internal.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} dtypes[HOIST_DTYPE_COUNT] = {
#define X(id, value, str, nbits) [value] = {str, nbits},
    HOIST_DTYPE_LIST(X)
#undef X
};

const char *hoist_dtype_name(hoist_dtype dtype)
{
    return (unsigned)dtype < HOIST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

unsigned hoist_dtype_bits(hoist_dtype dtype)
{
    return (unsigned)dtype < HOIST_DTYPE_COUNT ? dtypes[dtype].bits : 0;
}

int hoist__dtype_from_name(const char *name, size_t len)
{
    for (int i = 0; i < HOIST_DTYPE_COUNT; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) return i;
    return -1;
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
    uint64_t bits;
    RETURN_IF(!hoist__mul_u64(elems, dtypes[dtype].bits, &bits), HOIST_E_OVERFLOW,
              "tensor '%s': %llu elements of %s overflow 64 bits", name,
              (unsigned long long)elems, dtypes[dtype].name);
    RETURN_IF(bits % 8 != 0, HOIST_E_SIZE_MISMATCH,
              "tensor '%s': %llu elements of %s (%u bits each) are not a whole number of bytes",
              name, (unsigned long long)elems, dtypes[dtype].name, dtypes[dtype].bits);
    *nbytes = bits / 8;
    return HOIST_OK;
}
