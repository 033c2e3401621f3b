/* The tensor table every format parser fills, and the model that owns it. */
#ifndef HOIST_TABLE_H
#define HOIST_TABLE_H

#include "hoist.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Bounds on untrusted counts, checked before anything is allocated from them. */
#define HOIST_MAX_TENSORS (1u << 22)  /* 4M tensors in one model */
#define HOIST_MAX_FILES 65536u
#define HOIST_MAX_NAME 4096u

/* A model's manifest is named after the file it was opened through (formats/manifest.h). */
#define HOIST_MANIFEST_SUFFIX ".hoist-sum"

typedef struct hoist__tensor {
    char *name;
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint32_t file;     /* index into the table's files */
    uint64_t offset;   /* absolute byte offset in that file */
    uint64_t nbytes;
} hoist__tensor;

typedef struct hoist__file {
    char *path;
    uint64_t size;       /* at open time */
    int64_t mtime_ns;    /* at open time; rechecked before a load is published */
    uint64_t data_start; /* absolute offset of the data section */
    /* st_dev and st_ino at open time, when the parser recorded them (ino 0: not recorded):
     * rechecked before a load is published, so that a file replaced by another of the same size
     * and mtime is caught. */
    uint64_t dev, ino;
} hoist__file;

/* One metadata entry. Safetensors values are strings (type STRING, str == value). GGUF values
 * keep their type; the parts a type does not use are zero / NULL. */
typedef struct hoist__meta {
    char *key;
    char *value;          /* the value as text (hoist_meta_value.text); for STRING the value */
    hoist_meta_type type, elem_type;
    uint64_t count;       /* ARRAY: elements; else 1 */
    uint64_t str_len;     /* STRING: bytes in value, without the NUL */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num;
    void *array;          /* ARRAY of numbers: packed elements; of strings: char *[count] */
    uint64_t *str_lens;   /* ARRAY of strings: lengths */
    char *blob;           /* ARRAY of strings: the bytes the pointers point into */
} hoist__meta;

typedef struct hoist__table {
    hoist__file *files;
    uint32_t nfiles, files_cap;
    hoist__tensor *tensors;
    size_t ntensors, tensors_cap;
    hoist__meta *meta;
    size_t nmeta, meta_cap;
    /* name -> tensor index, open addressing; built by hoist__table_finish */
    uint32_t *hash;
    size_t hash_cap;
    uint64_t total_bytes;
    /* the file the model was opened through (the .safetensors file, the index, the container):
     * manifests are named after it */
    char *origin;
    char *manifest; /* origin + HOIST_MANIFEST_SUFFIX */
    /* a packed container's chunks (formats/packed.h); NULL for other formats. The packed parser
     * sets the two hooks with it, so that the table, which every format stands on, does not
     * depend on one of them. */
    struct hoist__packed *packed;
    int (*packed_finish)(struct hoist__table *t);
    void (*packed_free)(struct hoist__packed *pk);
    /* what hoist_model_format reports: set by the parser that filled the table (0 is
     * HOIST_FORMAT_SAFETENSORS) */
    hoist_format format;
} hoist__table;

struct hoist_model {
    _Atomic int refs;
    hoist__table table;
};

/* All builder functions return HOIST_OK or a negative status with the error message set; the
 * table stays valid for hoist__table_free either way. */
void hoist__table_init(hoist__table *t);
void hoist__table_free(hoist__table *t);
/* Copies path. *index receives the new file's index. */
int hoist__table_add_file(hoist__table *t, const char *path, uint64_t size, int64_t mtime_ns,
                          uint64_t data_start, uint32_t *index);
/* Copies tensor->name; takes the other fields by value. Does not check for duplicates. */
int hoist__table_add_tensor(hoist__table *t, const hoist__tensor *tensor);
/* Copies path as the table's origin. */
int hoist__table_set_origin(hoist__table *t, const char *path);
/* Copies key and value (a STRING entry). Does not check for duplicates. */
int hoist__table_add_meta(hoist__table *t, const char *key, const char *value);
/* Moves *m (every pointer in it) into the table and zeroes *m; on failure frees what *m held.
 * Does not check for duplicates. */
int hoist__table_take_meta(hoist__table *t, hoist__meta *m);
/* Frees what one entry holds (not the entry itself). */
void hoist__meta_free(hoist__meta *m);
/* Index of the metadata entry called key, or -1. */
long hoist__table_find_meta(const hoist__table *t, const char *key);
/* Opens table file f again by its path (flags as open(2)) and checks that it is still the file
 * that was parsed: a regular file of the recorded size, with the recorded st_dev and st_ino
 * (hoist__io_open_same). Everything that reads a model's files after it was opened goes through
 * here, so that a name swapped to point elsewhere since is caught before its bytes are read. */
int hoist__file_open(const hoist__file *f, int flags, int *fd, int *os_errno);
/* Sorts tensors by (file, offset), builds the name index, sums the bytes.
 * HOIST_E_DUPLICATE_KEY (naming both files) when two tensors share a name. */
int hoist__table_finish(hoist__table *t);
/* Index of name, or -1. Only after hoist__table_finish. */
long hoist__table_find(const hoist__table *t, const char *name);

/* Byte size of a tensor from its dtype and shape: HOIST_E_OVERFLOW when the product overflows 64
 * bits, HOIST_E_SIZE_MISMATCH when a sub-byte dtype's size is not whole bytes, HOIST_E_BAD_TENSOR
 * for a negative dimension. Leaves a message naming `name`. */
int hoist__tensor_bytes(const char *name, hoist_dtype dtype, uint32_t ndim, const int64_t *shape,
                        uint64_t *nbytes);
/* The last safetensors dtype of HOIST_DTYPE_LIST; the ones after it are ggml's block types. */
#define HOIST_DTYPE_LAST_SAFETENSORS HOIST_DTYPE_U64
/* Looks up a safetensors dtype name ("BF16"); -1 when unknown (ggml type names included). */
int hoist__dtype_from_name(const char *name, size_t len);
/* Bytes of n consecutive elements along the innermost dimension (a row): false when n is not a
 * whole number of blocks or the size overflows 64 bits. */
bool hoist__dtype_row_bytes(hoist_dtype dtype, uint64_t n, uint64_t *bytes);

/* --- format parsers ---------------------------------------------------------------------- */

/* Parses one safetensors file and adds it and its tensors (and its __metadata__) to t.
 * Validates docs/RELIABILITY.md cases 1-14. strict: trailing bytes are an error (else a warning). */
int hoist__safetensors_parse(hoist__table *t, const char *path, int strict);
/* The same for a file already open as fd (named path in messages and recorded as its path):
 * what fd's fstat says is the identity recorded (docs/PATHS.md). fd stays open. */
int hoist__safetensors_parse_fd(hoist__table *t, const char *path, int fd, int strict);
/* The same for a file whose bytes (all len of them) are already in memory, as path: nothing is
 * read. The file is recorded with mtime 0 and no identity. For fuzzing, and for callers that hold
 * the bytes. */
int hoist__safetensors_parse_buffer(hoist__table *t, const char *path, const void *data,
                                    size_t len, int strict);
/* The geometry of config.json text in memory (len bytes, not NUL-terminated), unchecked (as
 * hoist_model_geometry reads it before hoist_geometry_check); path names it in messages. For
 * fuzzing. */
int hoist__geometry_from_config_text(const char *path, const char *text, size_t len,
                                     hoist_dtype def_dtype, hoist_geometry *g);
/* Opens a sharded checkpoint from its index file (cases 15): every shard parsed, every tensor
 * checked against the weight_map. Shard names are checked lexically and opened relative to the
 * index's directory (docs/PATHS.md). */
int hoist__safetensors_index_parse(hoist__table *t, const char *index_path, int strict);
/* The same for an index already open as index_fd, in the directory open as dirfd (which the
 * shards are opened relative to; index_path names the index in messages, and its directory part
 * prefixes the shards' recorded paths). Both descriptors stay open. */
int hoist__safetensors_index_parse_fd(hoist__table *t, const char *index_path, int index_fd,
                                      int dirfd, int strict);
/* The same for index text already in memory (len bytes, not NUL-terminated): index_path names
 * it in messages and locates the shards, which are read from the file system. For fuzzing. */
int hoist__safetensors_index_parse_buffer(hoist__table *t, const char *index_path,
                                          const char *text, size_t len, int strict);
/* Parses one GGUF file (versions 2 and 3, little-endian) and adds it, its tensors and its
 * key-value metadata to t; validates docs/RELIABILITY.md cases 16-24. strict: bytes after the last
 * tensor's padded end are an error (else a warning). A file that fails validation adds nothing
 * to t. */
int hoist__gguf_parse(hoist__table *t, const char *path, int strict);
/* The same for a file already open as fd (see hoist__safetensors_parse_fd). */
int hoist__gguf_parse_fd(hoist__table *t, const char *path, int fd, int strict);
/* The same for a file already in memory (len bytes), named path in messages. For fuzzing. */
int hoist__gguf_parse_buffer(hoist__table *t, const char *path, const void *data, size_t len,
                             int strict);
/* True when the 4 bytes at p are GGUF's magic. */
bool hoist__gguf_magic(const unsigned char *p);

/* The geometry of the model in t: from its GGUF metadata when it has `general.architecture`, else
 * from the config.json beside its first file (formats/geometry.c). *out is written only on
 * success; failures are HOIST_E_BAD_CONFIG (naming the key), HOIST_E_NOMEM or I/O statuses. */
int hoist__geometry_of_table(const hoist__table *t, hoist_geometry *out);

#endif
