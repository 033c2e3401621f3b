/* The CUDA objects behind gpu.h's opaque handles and the one formatter of CUDA errors, for the
 * CUDA code that must reach them: the CUDA backend's own files (gpu_cuda.c, cublas.c) and the
 * kernel launchers of infer/kernels.cu, which hand a stream to the runtime themselves. Host C
 * code outside gpu/ never includes this: it sees only the handles. */
#ifndef HOIST_GPU_CUDA_NATIVE_H
#define HOIST_GPU_CUDA_NATIVE_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hoist__stream hoist__stream;

struct hoist__stream {
    cudaStream_t stream;
    int device;
};

/* Records "cuda:<device>: <call> failed: <detail>" as the thread's error and returns status
 * (device < 0: a call that names none). Every CUDA and cuBLAS failure is reported through here. */
int hoist__cuda_report(int status, int device, const char *call, const char *detail);
/* HOIST_OK for cudaSuccess; else clears the runtime's last error, so that later calls are not
 * blamed for it, and reports e (HOIST_E_DEVICE_NOMEM when it is an allocation failure, else
 * HOIST_E_DEVICE). */
int hoist__cuda_check(cudaError_t e, const char *call, int device);

#ifdef __cplusplus
}
#endif
#endif
