/* Decoding a packed model's codec 2 chunks on the GPU (gpu/codec.h): each worker copies the
 * stored bytes of its window into device staging and queues the decoder kernel, which writes
 * straight into the arena; the window's other chunks (zstd, raw) are decoded on the CPU by the
 * decode transform as before and copied chunk by chunk. What this checks, and what it leaves to
 * HOIST_VERIFY_*, is in docs/PACKED.md ("What a GPU-decoded load checks"). */
#ifndef HOIST_GPU_DECODE_H
#define HOIST_GPU_DECODE_H

#include "loader/load_ctx.h"

/* After the plan: whether this load decodes on the GPU (a packed model with codec 2 chunks, one
 * CUDA arena, whole tensors, the backend's decoder present, HOIST_GPU_DECODE not "0"); sets
 * ld->gpu_decode and the plan's device staging. */
void hoist__gdec_plan(hoist__load *ld);
/* Before the pipeline (ld->gpu_decode): each worker's device staging and chunk lists, taken
 * through the device seam and the budget. */
int hoist__gdec_open(hoist__load *ld, unsigned workers);
/* Worker `worker`'s window wi, slot `slot`: `in` holds the window's stored bytes in pinned
 * memory, `decoded` (pinned) the CPU-decoded bytes of its other chunks at their model offsets.
 * Queues on s the copies of those chunks, the staging copy and the kernel, and records in_ev
 * after the staging copy (in may be reused once it completes; *in_recorded says it was). */
int hoist__gdec_window(hoist__load *ld, int worker, unsigned slot, size_t wi, const uint8_t *in,
                       const uint8_t *decoded, hoist__stream *s, hoist__event *in_ev,
                       bool *in_recorded);
/* After the pipeline drained: fails naming the chunk if a kernel found a block that does not
 * decode. */
int hoist__gdec_finish(hoist__load *ld);
void hoist__gdec_close(hoist__load *ld);

#endif
