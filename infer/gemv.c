/* What the decode step's matrix-vector kernel (kernels.cu, hoist__k_gemv) takes, decided from
 * shapes, dtypes and addresses alone: the session asks at creation and sends whatever it refuses
 * through cuBLAS, as a prompt's products go, so no shape is ever run by the wrong kernel. */
#include "infer/kernels.h"
#include "core/core.h"

/* Shared memory a block may take on Hopper (227 KiB), less the kernel's own reduction scratch. */
#define GEMV_MAX_SMEM (226u * 1024u)

static int half_dtype(hoist_dtype d) { return d == HOIST_DTYPE_BF16 || d == HOIST_DTYPE_F16; }

static int check_rows(const hoist__gemv *g, const char *wd, uint64_t *units)
{
    RETURN_IF(g->nseg < 1 || g->nseg > 3, HOIST_E_UNSUPPORTED,
              "decode product: %u matrices (1 to 3)", g->nseg);
    RETURN_IF(g->act && (g->nseg != 2 || g->rows[0] != g->rows[1]), HOIST_E_UNSUPPORTED,
              "decode product: SwiGLU takes gate and up matrices of equal rows");
    *units = 0;
    for (uint32_t i = 0; i < g->nseg; i++) {
        RETURN_IF(!g->w[i] || g->rows[i] == 0, HOIST_E_UNSUPPORTED,
                  "decode product: matrix %u of %u is empty", i, g->nseg);
        RETURN_IF((uintptr_t)g->w[i] % 16 != 0, HOIST_E_UNSUPPORTED,
                  "decode product of a %s matrix: its data is not 16-byte aligned", wd);
        *units += g->rows[i];
    }
    if (g->act) *units = g->rows[0];
    RETURN_IF(*units > (1u << 31), HOIST_E_UNSUPPORTED, "decode product: %llu rows",
              (unsigned long long)*units);
    return HOIST_OK;
}

int hoist__k_gemv_check(const hoist__gemv *g)
{
    const char *wd = hoist_dtype_name(g->wdtype);
    int q8 = g->wdtype == HOIST_DTYPE_Q8_0;
    RETURN_IF(!q8 && !half_dtype(g->wdtype), HOIST_E_UNSUPPORTED,
              "decode product: %s weights (the kernel reads BF16, F16 and Q8_0)", wd);
    RETURN_IF(!half_dtype(g->xdtype) || (!q8 && g->xdtype != g->wdtype), HOIST_E_UNSUPPORTED,
              "decode product: %s activations for %s weights", hoist_dtype_name(g->xdtype), wd);
    uint64_t units = 0; /* set by check_rows; -O3 cannot tell */
    RETURN_IF_ERR(check_rows(g, wd, &units));
    uint32_t vec = q8 ? 256 : 8;
    RETURN_IF(g->cols == 0 || g->cols % vec != 0, HOIST_E_UNSUPPORTED,
              "decode product of a [%llu, %u] %s matrix: %u columns are not a multiple of %u "
              "(%s)",
              (unsigned long long)units, g->cols, wd, g->cols, vec,
              q8 ? "rows of whole 272-byte groups of 8 blocks" : "rows of 16-byte loads");
    uint64_t smem = (uint64_t)g->cols * (q8 ? 4 : 2);
    RETURN_IF(smem > GEMV_MAX_SMEM, HOIST_E_UNSUPPORTED,
              "decode product of a [%llu, %u] %s matrix: its input (%llu bytes) does not fit in "
              "shared memory",
              (unsigned long long)units, g->cols, wd, (unsigned long long)smem);
    RETURN_IF(!g->x || (uintptr_t)g->x % 16 != 0, HOIST_E_UNSUPPORTED,
              "decode product: its input is not 16-byte aligned");
    RETURN_IF(g->norm && !half_dtype(g->norm_dtype) && g->norm_dtype != HOIST_DTYPE_F32,
              HOIST_E_UNSUPPORTED, "decode product: a %s norm weight",
              hoist_dtype_name(g->norm_dtype));
    RETURN_IF(!g->act && !g->y, HOIST_E_UNSUPPORTED, "decode product: no output");
    return HOIST_OK;
}
