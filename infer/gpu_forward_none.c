/* Built in place of infer/gpu_forward.c and kernels.cu when the CUDA toolkit is absent. */
#include "infer/infer.h"
#include "infer/kernels.h"
#include "core/core.h"

const hoist__infer_ops *hoist__infer_gpu(void) { return NULL; }

/* The decode kernels' entry points, for the tests that link them: nothing runs without CUDA. */
int hoist__k_gemv_prepare(hoist__stream *stream, hoist__gemv *g, const hoist__gemv_tune *tune)
{
    (void)stream;
    (void)tune;
    RETURN_IF_ERR(hoist__k_gemv_check(g));
    return hoist__err(HOIST_E_UNSUPPORTED, "this build of hoist has no CUDA kernels");
}

int hoist__k_gemv(hoist__stream *stream, const hoist__gemv *g, const hoist__gemv_tune *tune)
{
    hoist__gemv local = *g;
    return hoist__k_gemv_prepare(stream, &local, tune);
}
