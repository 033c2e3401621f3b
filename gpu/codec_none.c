/* Built in place of codec.cu when the CUDA toolkit is absent: only the host twin decodes. */
#include "gpu/codec.h"
#include "core/core.h"

int hoist__gpu_codec_cuda(int device, hoist__stream *s, const uint8_t *staged,
                          hoist__gpu_codec_chunk *chunks, uint32_t n, uint32_t groups,
                          uint32_t *err)
{
    return hoist__err(HOIST_E_UNSUPPORTED, "cuda:%d: this build has no CUDA codec", device);
}
