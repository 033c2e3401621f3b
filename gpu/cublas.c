/* The CUDA backend's matrix products (gpu.h's hoist__gpu_blas_ops): a cuBLAS handle per stream
 * with a fixed workspace, and the row-major product as one cublasGemmEx. */
#include "gpu/gpu.h"
#include "gpu/cuda_native.h"
#include "core/core.h"

#include <cublas_v2.h>
#include <stdio.h>

struct hoist__blas {
    cublasHandle_t handle;
    hoist__stream *stream;
    void *workspace;
};

static int blas_fail(cublasStatus_t st, const char *call, int device)
{
    return hoist__cuda_report(st == CUBLAS_STATUS_ALLOC_FAILED ? HOIST_E_DEVICE_NOMEM
                                                               : HOIST_E_DEVICE,
                              device, call, cublasGetStatusString(st));
}

/* A handle belongs to the device current when it is made, and is torn down there. */
static void blas_release(hoist__blas *b)
{
    int device = b->stream->device;
    if (b->handle) {
        hoist__device_scope sc;
        const hoist__gpu_ops *g = hoist__gpu_cuda();
        if (g->scope_enter(&sc, device) == HOIST_OK) cublasDestroy(b->handle);
        g->scope_leave(&sc);
    }
    hoist__gpu_cuda()->mem_free(device, b->workspace);
    hoist__free(b);
}

/* The workspace is ours, not cuBLAS's own pool: a graph can only capture products whose
 * scratch memory exists before the capture. */
static int blas_setup(hoist__blas *b, size_t workspace_bytes)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    int device = b->stream->device;
    hoist__device_scope sc;
    RETURN_IF_ERR(g->scope_enter(&sc, device));
    cublasStatus_t st = cublasCreate(&b->handle);
    g->scope_leave(&sc);
    if (st != CUBLAS_STATUS_SUCCESS) {
        b->handle = NULL;
        return blas_fail(st, "cublasCreate", device);
    }
    RETURN_IF_ERR(g->mem_alloc(device, workspace_bytes, &b->workspace));
    st = cublasSetStream(b->handle, b->stream->stream);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetWorkspace(b->handle, b->workspace, workspace_bytes);
    if (st != CUBLAS_STATUS_SUCCESS) return blas_fail(st, "cuBLAS setup", device);
    return HOIST_OK;
}

static int cublas_create(hoist__stream *s, size_t workspace_bytes, hoist__blas **out)
{
    RETURN_IF_ERR(hoist__gpu_seam("cuda", s->device, HOIST_GPU_BLAS_CREATE, workspace_bytes));
    hoist__blas *b = hoist__calloc(1, sizeof *b);
    RETURN_IF(!b, HOIST_E_NOMEM, "out of memory for a cuBLAS handle");
    b->stream = s;
    int rc = blas_setup(b, workspace_bytes);
    if (rc < 0) {
        blas_release(b);
        return rc;
    }
    hoist__gpu_track(HOIST_GPU_RES_BLAS, 1);
    *out = b;
    return HOIST_OK;
}

static void cublas_destroy(hoist__blas *b)
{
    if (!b) return;
    hoist__gpu_track(HOIST_GPU_RES_BLAS, -1);
    blas_release(b);
}

static int data_type(hoist_dtype d, cudaDataType *out)
{
    switch (d) {
    case HOIST_DTYPE_BF16: *out = CUDA_R_16BF; return 1;
    case HOIST_DTYPE_F16: *out = CUDA_R_16F; return 1;
    case HOIST_DTYPE_F32: *out = CUDA_R_32F; return 1;
    default: return 0;
    }
}

/* cuBLAS is column-major, where a row-major matrix reads as its transpose: C = B . A^T in rows is
 * C^T = A . B^T, which in cuBLAS's view is its A transposed times its B as it is. The handle's
 * device must be current (the caller's scope). */
static int cublas_gemm(hoist__blas *b, const hoist__gemm *m)
{
    int device = b->stream->device;
    RETURN_IF_ERR(hoist__gpu_seam("cuda", device, HOIST_GPU_GEMM, 0));
    cudaDataType ab, c;
    RETURN_IF(!data_type(m->ab_dtype, &ab) || !data_type(m->c_dtype, &c) ||
                  (m->c_dtype != HOIST_DTYPE_F32 && m->c_dtype != m->ab_dtype),
              HOIST_E_UNSUPPORTED, "cuda:%d: no matrix product of %s operands into %s", device,
              hoist_dtype_name(m->ab_dtype), hoist_dtype_name(m->c_dtype));
    cublasStatus_t st = cublasGemmEx(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)m->m, (int)m->n,
                                     (int)m->k, &m->alpha, m->a, ab, (int)m->lda, m->b, ab,
                                     (int)m->ldb, &m->beta, m->c, c, (int)m->ldc,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st == CUBLAS_STATUS_SUCCESS) return HOIST_OK;
    char call[96];
    snprintf(call, sizeof call, "cublasGemmEx of a [%u, %u] matrix by %u rows", m->m, m->k, m->n);
    return blas_fail(st, call, device);
}

static const hoist__gpu_blas_ops cublas_ops = {
    .create = cublas_create,
    .destroy = cublas_destroy,
    .gemm = cublas_gemm,
};

const hoist__gpu_blas_ops *hoist__gpu_blas(const hoist__gpu_ops *g)
{
    return g == hoist__gpu_cuda() ? &cublas_ops : NULL;
}
