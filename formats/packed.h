/* The packed container: a seekable file of independent zstd frames, one per chunk of a tensor.
 *
 * Layout (every integer little-endian):
 *
 *   header, 64 bytes:
 *     0  magic "HOISTPAK"            8 bytes
 *     8  version (1)                 u32
 *    12  header bytes (64)           u32
 *    16  chunk bytes C               u64   a power of two, 4 KiB .. 64 MiB
 *    24  index offset                u64   = 64 + the stored bytes of every chunk
 *    32  index bytes                 u64   index offset + index bytes = file size
 *    40  XXH3-64 of the index        u64
 *    48  reserved (0)                u64
 *    56  XXH3-64 of bytes 0..55      u64
 *   frames: the chunks' stored bytes back to back, in index order, from byte 64
 *   index:
 *     u32 tensors, u32 metadata entries, u64 chunks
 *     per tensor: u32 name length, name (no NUL), u32 dtype (hoist_dtype), u32 filter
 *                 (hoist_filter), u32 ndim, i64 shape[ndim], u64 bytes, u64 XXH3-64 of its bytes
 *     per metadata entry: u32 key length, key, u32 value length, value
 *     per chunk: u32 stored bytes, u32 codec (0 stored, 1 zstd, 2 exponent Huffman: version 2
 *                only, bf16 and f16 tensors without a filter; formats/exphuff.h), u64 XXH3-64 of
 *                its decoded bytes
 *
 * Tensor t (in index order) owns ceil(bytes / C) consecutive chunks; chunk j of it decodes to
 * its bytes [j C, min((j + 1) C, bytes)). A chunk never stores more bytes than it decodes to
 * (the writer stores it raw instead), so a window of the file never outgrows the model bytes it
 * yields. A filtered chunk stores the filtered bytes (formats/filter.h); each zstd frame declares
 * its decoded size, which must be the chunk's. */
#ifndef HOIST_PACKED_H
#define HOIST_PACKED_H

#include "core/core.h"
#include "formats/table.h"

#include <stdbool.h>
#include <stdint.h>

#define HOIST_PACKED_MAGIC "HOISTPAK"
#define HOIST_PACKED_VERSION 1u
/* The version a container with codec 2 chunks has (the newest this hoist reads). */
#define HOIST_PACKED_VERSION_GPU 2u
#define HOIST_PACKED_HEADER 64u
#define HOIST_PACKED_MIN_CHUNK (4u << 10)
#define HOIST_PACKED_MAX_CHUNK (64u << 20)
#define HOIST_PACKED_DEFAULT_CHUNK (256u << 10)
/* The index is read whole into memory: bounded before it is allocated. */
#define HOIST_PACKED_MAX_INDEX (1ull << 31)
/* The name a directory's packed model has (hoist_model_open on a directory). */
#define HOIST_PACKED_DIR_NAME "model.hoist"

enum { HOIST_CODEC_STORED = 0, HOIST_CODEC_ZSTD = 1, HOIST_CODEC_EXPHUFF = 2 };

typedef struct hoist__chunk {
    uint64_t file_off; /* where its stored bytes start in the container */
    uint64_t vofs;     /* where its decoded bytes start in the decoded stream */
    uint64_t xxh3;     /* of the decoded bytes */
    uint32_t stored;   /* bytes in the file */
    uint32_t len;      /* decoded bytes */
    uint32_t tensor;   /* table index of the tensor it belongs to */
    uint8_t codec;
} hoist__chunk;

typedef struct hoist__packed_tensor {
    uint64_t first_chunk, nchunks;
    uint64_t stored;
    uint64_t xxh3;
    hoist_filter filter;
    uint64_t exphuff; /* chunks of codec 2 */
} hoist__packed_tensor;

typedef struct hoist__packed {
    uint32_t version;
    uint64_t chunk_bytes;
    uint64_t stored_bytes;
    uint64_t exphuff_chunks, exphuff_bytes; /* codec 2 chunks and the model bytes they hold */
    hoist__chunk *chunks;
    uint64_t nchunks;
    hoist__packed_tensor *tensors; /* by table index (after hoist__table_finish) */
    struct hoist__packed_pending *pending; /* index order, from parse to hoist__packed_finish */
} hoist__packed;

/* 1 when the file at path starts with the packed magic, 0 when it does not (or cannot be opened,
 * or is not a regular file: its parser says why), HOIST_E_IO when reading it fails. */
int hoist__packed_probe(const char *path);
/* The same for a file open as fd (named path in messages); fd stays open. */
int hoist__packed_probe_fd(int fd, const char *path);
/* Parses the container at path into t (one file; tensor offsets are decoded-stream offsets) and
 * sets t->packed. Checks the header and index hashes, bounds every count before allocating from
 * it, and checks that the frames tile the file exactly. HOIST_E_TRUNCATED_HEADER,
 * HOIST_E_BAD_PACKED, HOIST_E_TRUNCATED, HOIST_E_INTEGRITY, HOIST_E_BAD_DTYPE, ... with a message
 * naming the file, tensor and offset. Call hoist__table_finish after it. */
int hoist__packed_parse(hoist__table *t, const char *path);
/* The same for a container already open as fd (see hoist__safetensors_parse_fd); fd stays open. */
int hoist__packed_parse_fd(hoist__table *t, const char *path, int fd);
/* The same from memory: data holds the whole container (the fuzz target's entry). */
int hoist__packed_parse_buffer(hoist__table *t, const char *path, const uint8_t *data,
                               size_t size);
/* Attaches the per-tensor view once the table is sorted (called by hoist__table_finish). */
int hoist__packed_finish(hoist__table *t);
void hoist__packed_free(hoist__packed *p);

/* A worker's decoding context: a zstd context (through the allocator seam) and room for one
 * chunk's filtered bytes. */
typedef struct hoist__decoder {
    void *dctx;
    uint8_t *scratch;
    uint64_t scratch_bytes;
} hoist__decoder;

/* Host bytes a decoder takes, for budgets. */
uint64_t hoist__decoder_bytes(uint64_t chunk_bytes);
int hoist__decoder_init(hoist__decoder *d, uint64_t chunk_bytes);
void hoist__decoder_free(hoist__decoder *d);

/* Decodes chunk c of t from its stored bytes `in` into out (c->len bytes) and checks its hash.
 * Output never exceeds c->len, whatever the frame declares. HOIST_E_DECODE (a frame that lies
 * about its size, an oversized window, a truncated frame, a bad frame checksum, trailing bytes)
 * or HOIST_E_INTEGRITY (hash mismatch), naming the file, tensor, chunk and offset. *decode_ns and
 * *hash_ns accumulate the time of each stage (either may be NULL). */
int hoist__packed_decode(const hoist__table *t, hoist__decoder *d, uint64_t c, const uint8_t *in,
                         uint8_t *out, uint64_t *decode_ns, uint64_t *hash_ns);

/* Checks the structure of codec 2 chunk c from its stored bytes `in` (formats/exphuff.h) before
 * anything decodes it, on the CPU or the GPU: HOIST_E_DECODE naming the file, tensor, chunk and
 * byte range. */
struct hoist__exphuff;
int hoist__packed_exphuff_check(const hoist__table *t, uint64_t c, const uint8_t *in,
                                struct hoist__exphuff *x);

/* Fails with `status` for chunk c: the message names the file, the tensor, the chunk's place in
 * it and its bytes in the file, then the printf-style reason. Returns status. */
int hoist__packed_chunk_err(const hoist__table *t, uint64_t c, int status, const char *fmt, ...)
    HOIST_PRINTF(4, 5);

#endif
