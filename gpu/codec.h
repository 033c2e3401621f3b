/* The GPU decoder of packed codec 2 chunks (formats/exphuff.h has the layout and the CPU
 * decoder; docs/PACKED.md the design). gpu/ may not include formats/, so the loader hands over
 * each chunk already checked and flattened into a descriptor: the decoder trusts the offsets in
 * it to lie inside the staged window, and still checks every block's bits as it decodes them.
 *
 * One CUDA block of HOIST_GPU_CODEC_THREADS threads per group of that many Huffman blocks of a
 * chunk, one thread per Huffman block: the chunk's 4096-entry decode table is built in shared
 * memory, every thread decodes its block's symbols a phase at a time into shared memory, and the
 * CUDA block then joins them with the raw plane and writes 16-byte vectors, contiguous across a
 * warp. The CUDA block that finishes a chunk's last group then hashes the chunk (XXH3-64,
 * gpu/codec_xxh3.h; one warp) against the hash its descriptor carries: one kernel per window, so
 * that nothing queued behind it waits for a second kernel that waits for the first (a stream's
 * work shares one of CUDA's few hardware queues with other streams' copies). */
#ifndef HOIST_GPU_CODEC_H
#define HOIST_GPU_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu/codec_huff.h"
#include "gpu/codec_xxh3.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "gpu/gpu.h"

#define HOIST_GPU_CODEC_THREADS 128u
#define HOIST_GPU_CODEC_MAX_LEN HOIST__HUFF_MAX_LEN
/* Bytes past a staged window the decoder may read (its unaligned 32-bit loads): the staging
 * buffer must be this much longer than the window. */
#define HOIST_GPU_CODEC_SLACK 64u

/* A chunk for the decoder. Offsets inside the chunk are from its first stored byte. */
typedef struct hoist__gpu_codec_chunk {
    uint64_t out;         /* device address of its decoded bytes (2 * elems) */
    uint64_t xxh3;        /* the XXH3-64 its decoded bytes must have (the container's record) */
    uint32_t in;          /* its first stored byte, from the staged window's first byte */
    uint32_t elems;       /* 16-bit elements */
    uint32_t block_elems; /* a power of two, at least 256 */
    uint32_t syms, offsets, raw, bits; /* where its parts start */
    uint32_t words;       /* 32-bit words of its bitstream */
    uint32_t index;       /* the caller's number for it, reported back on failure */
    uint16_t count[HOIST_GPU_CODEC_MAX_LEN + 1]; /* codes of each length */
    uint16_t pad;
    uint32_t done;        /* 0 on entry: the decoder counts the chunk's finished groups here */
    uint32_t pad2;
} hoist__gpu_codec_chunk;

/* Whether backend g has the decoder: CUDA, and the host backend while the test hooks ask for
 * host_as_device (it then decodes on the calling thread, as its copies run). */
bool hoist__gpu_codec_ready(const hoist__gpu_ops *g);

/* Queues on s the decoding of n chunks (their descriptors in device memory at `chunks`, each
 * `done` 0) from the window staged at `staged` (device memory, HOIST_GPU_CODEC_SLACK bytes
 * longer than it), and the hashing of what they decoded to. groups: the most Huffman-block groups
 * (HOIST_GPU_CODEC_THREADS blocks) of any chunk. err is two words of device memory, both
 * started at UINT32_MAX: a chunk whose bits do not decode (an unassigned code, a block that
 * does not use exactly its words) lowers err[0] to its index, one whose decoded bytes do not
 * hash to its descriptor's xxh3 lowers err[1]; the caller then fails the load. Passes through
 * the device seam (HOIST_GPU_DECODE). */
int hoist__gpu_codec_decode(const hoist__gpu_ops *g, int device, hoist__stream *s,
                            const uint8_t *staged, hoist__gpu_codec_chunk *chunks, uint32_t n,
                            uint32_t groups, uint32_t *err);

/* XXH3-64 of len bytes at p, computed as the kernel's hashing warp computes it (its lanes'
 * shares of each block summed the way the warp sums them): the host twin's hash, which tests
 * hold to libxxhash. */
uint64_t hoist__gpu_codec_xxh3(const uint8_t *p, uint64_t len);

/* The CUDA launcher (gpu/codec.cu; gpu/codec_none.c without CUDA). */
int hoist__gpu_codec_cuda(int device, hoist__stream *s, const uint8_t *staged,
                          hoist__gpu_codec_chunk *chunks, uint32_t n, uint32_t groups,
                          uint32_t *err);

#ifdef __cplusplus
}
#endif
#endif
