/* Manifests: the JSON sidecar hoist_model_sum() writes beside a checkpoint.
 *
 *   {"format": "hoist-manifest", "version": 1, "hoist_version": "0.1.0", "hash": "xxh3-64",
 *    "chunk_bytes": 1048576,
 *    "files": [{"name": "model-00001-of-00002.safetensors", "size": 4999819336,
 *               "header_bytes": 25128, "header_xxh3": "0123456789abcdef",
 *               "first_chunk": 0, "chunks": ["...", ...]}, ...],
 *    "tensors": [{"name": "model.embed_tokens.weight", "file": 0, "offset": 25128,
 *                 "bytes": 1050673152, "xxh3": "..."}, ...]}
 *
 * Chunk k of a file hashes, in file order, the bytes of its tensors that lie in
 * [k * chunk_bytes, (k + 1) * chunk_bytes); `chunks` runs from the chunk of the file's first
 * tensor byte to that of its last. header_xxh3 hashes bytes [0, header_bytes), where the tensor
 * data starts. Hashes are XXH3-64 as 16 lowercase hex digits. Parsing is strict: every key
 * required, no other key, no duplicate, every count bounded by the manifest's own size. */
#ifndef HOIST_MANIFEST_H
#define HOIST_MANIFEST_H

#include "formats/table.h"

#include <stdint.h>

#define HOIST_MANIFEST_VERSION 1
#define HOIST_MANIFEST_DEFAULT_CHUNK (1u << 20)
#define HOIST_MANIFEST_MIN_CHUNK (4u << 10)
#define HOIST_MANIFEST_MAX_CHUNK (1u << 30)
/* A manifest is read whole: bounded before it is allocated. */
#define HOIST_MANIFEST_MAX_BYTES (1ull << 30)

typedef struct hoist__manifest_file {
    char *name; /* the file's name, without directories */
    uint64_t size;
    uint64_t header_bytes;
    uint64_t header_xxh3;
    uint64_t first_chunk;
    uint64_t nchunks;
    uint64_t *chunks;
} hoist__manifest_file;

typedef struct hoist__manifest_tensor {
    char *name;
    uint32_t file;
    uint64_t offset;
    uint64_t nbytes;
    uint64_t xxh3;
} hoist__manifest_tensor;

typedef struct hoist__manifest {
    char *hoist_version;
    uint64_t chunk_bytes;
    hoist__manifest_file *files;
    uint32_t nfiles;
    hoist__manifest_tensor *tensors;
    size_t ntensors;
} hoist__manifest;

/* Reads and validates the manifest at path. HOIST_E_NOT_FOUND when it does not exist,
 * HOIST_E_BAD_MANIFEST (naming the path, and the key or entry) when it is malformed. On failure
 * *m holds nothing. */
int hoist__manifest_read(const char *path, hoist__manifest *m);
/* The same from memory (len bytes of text, not NUL-terminated); path only names it in messages. */
int hoist__manifest_read_buffer(const char *path, const char *text, size_t len,
                                hoist__manifest *m);
/* Writes m as JSON to path, through a temporary file beside it renamed over path. */
int hoist__manifest_write(const char *path, const hoist__manifest *m);
void hoist__manifest_free(hoist__manifest *m);

/* The chunks of table file f for chunk size cb: the chunk of its first tensor byte and how many
 * run to that of its last (0 when it holds no tensor bytes). */
void hoist__manifest_chunk_range(const hoist__table *t, uint32_t f, uint64_t cb,
                                 uint64_t *first, uint64_t *n);
/* Checks that m describes t's files: names, sizes, header lengths, tensors (name, file, offset,
 * size) and chunk ranges. HOIST_E_BAD_MANIFEST when it lists other files or tensors,
 * HOIST_E_INTEGRITY when a file's size or layout changed since it was written; the message names
 * the manifest, the file and the tensor. */
int hoist__manifest_match(const hoist__manifest *m, const hoist__table *t, const char *path);
#endif
