/* Built in place of gpu_cuda.c and cublas.c when the CUDA toolkit is absent. */
#include "gpu/gpu.h"

#include <stddef.h>

const hoist__gpu_ops *hoist__gpu_cuda(void) { return NULL; }

const hoist__gpu_blas_ops *hoist__gpu_blas(const hoist__gpu_ops *g) { return NULL; }
