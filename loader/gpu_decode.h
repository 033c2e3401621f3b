/* Decoding a packed model's codec 2 chunks on the GPU (gpu/codec.h): each worker copies the
 * stored bytes of its window into device staging and queues the decoder kernel, which writes
 * straight into the arena; the window's other chunks (zstd, raw) are decoded on the CPU by the
 * decode transform as before and copied chunk by chunk. Each slot of a worker has its own
 * buffers and stream, so the copy of one window overlaps the kernels of the one before. What
 * this checks, and what it leaves to HOIST_VERIFY_*, is in docs/PACKED.md ("What a GPU-decoded
 * load checks"). */
#ifndef HOIST_GPU_DECODE_H
#define HOIST_GPU_DECODE_H

#include "loader/load_ctx.h"

/* Before the source is opened: whether this load decodes on the GPU (a packed model with codec
 * 2 chunks, one CUDA arena, whole tensors, the backend's decoder present, HOIST_GPU_DECODE not
 * "0"); sets ld->gpu_decode, which gives each slot of the pipeline a read buffer of its own. */
void hoist__gdec_decide(hoist__load *ld);
/* The window the source is asked for where the caller chose none: 4 MiB for a GPU-decoded load,
 * else 0 (the source's own choice). */
uint64_t hoist__gdec_window_hint(const hoist__load *ld);
/* After the plan: the device staging a GPU-decoded load takes beside the arena. */
void hoist__gdec_plan(hoist__load *ld);
/* Before the pipeline (ld->gpu_decode): every slot's device staging and chunk list, taken
 * through the device seam and the budget. */
int hoist__gdec_open(hoist__load *ld, unsigned workers);
/* Worker `worker`'s window wi in its slot `slot`: `in` holds the window's stored bytes in pinned
 * memory, `decoded` (pinned) the CPU-decoded bytes of its other chunks at their model offsets.
 * Queues on s (the slot's stream) the copies of those chunks and the staging copy, then the
 * kernel. Both buffers, and the slot's device staging, are free again once s has passed what
 * was queued. */
int hoist__gdec_window(hoist__load *ld, int worker, unsigned slot, size_t wi, const uint8_t *in,
                       const uint8_t *decoded, hoist__stream *s);
/* After the pipeline drained: fails naming the chunk if a kernel found a block that does not
 * decode. */
int hoist__gdec_finish(hoist__load *ld);
void hoist__gdec_close(hoist__load *ld);

#endif
