/*
 * hoist — load LLM weights from storage into GPU (or host) memory, fast, inside a host-RAM budget.
 *
 * One public header. Conventions:
 *  - Opaque handles with create/free pairs; every *_free(NULL) is a no-op.
 *  - Options are small structs with a HOIST_*_DEFAULT initializer.
 *  - Every struct the caller allocates and hands over by pointer (options it passes in, results it
 *    receives) starts with `size_t size`: sizeof the struct as the caller's hoist.h declares it.
 *    The HOIST_*_DEFAULT (options) and HOIST_*_INIT (results) initializers set it; keep them.
 *    The library reads only the first `size` bytes of an input (fields past them take their
 *    defaults, fields it does not know are ignored) and writes only the first `size` bytes of a
 *    result, never `size` itself, so programs built against an older or newer hoist.h of the same
 *    major version keep working: fields are only ever appended. A size of 0, or one below the
 *    struct's first sized layout (0.2.0), fails with HOIST_E_INVALID_ARG naming the struct.
 *    Structs the library hands to a callback (hoist_piece) are the library's and only grow.
 *    docs/ABI.md has the rules and how 0.1 programs keep running (symbol versions).
 *  - Every function that can fail returns a hoist_status (0 = HOIST_OK, failures negative).
 *    A failure also leaves a message naming the file, tensor and byte offset involved; read it
 *    with hoist_last_error() on the same thread before the next hoist call.
 *  - The library never prints, exits or aborts. Log lines go to the callback set with
 *    hoist_set_log_callback(); with none set they are dropped.
 */
#ifndef HOIST_H
#define HOIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HOIST_API __attribute__((visibility("default")))
#else
#define HOIST_API
#endif

/* ---- version ------------------------------------------------------------------------------ */

/* 0.2: every struct passed by pointer starts with its size (see above); hoist_plan_info_get,
 * hoist_weights_stats and hoist_session_stats_get return a status; hoist_plan_info's geometry
 * moved to hoist_plan_geometry(); HOIST_FORMAT_GGUF; hoist_device_name(). Programs built against
 * 0.1 keep running: its functions stay exported under symbol version HOIST_0 (docs/ABI.md).
 * Tensor-parallel slices and cooperative loads (hoist_tp_options, hoist_load_group, at the end
 * of this header) appended hoist_load_options.tp, hoist_plan_options.tp,
 * hoist_plan_info.tp_world, and hoist_load_stats.read_bytes, exchange_seconds, exchange_bytes.
 * CMake takes the library's version from these three lines. */
#define HOIST_VERSION_MAJOR 0
#define HOIST_VERSION_MINOR 2
#define HOIST_VERSION_PATCH 0
#define HOIST_VERSION_NUMBER \
    (HOIST_VERSION_MAJOR * 10000 + HOIST_VERSION_MINOR * 100 + HOIST_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library actually linked; static storage. */
HOIST_API const char *hoist_version(void);
/* HOIST_VERSION_NUMBER of the library actually linked (compare with the header's). */
HOIST_API unsigned hoist_version_number(void);

/* ---- status ------------------------------------------------------------------------------- */

/* X(name, value, description). Values are stable: append, never renumber. */
#define HOIST_STATUS_LIST(X)                                                                      \
    X(HOIST_OK, 0, "success")                                                                     \
    X(HOIST_E_INVALID_ARG, -1, "invalid argument")                                                \
    X(HOIST_E_NOMEM, -2, "out of host memory")                                                    \
    X(HOIST_E_IO, -3, "I/O error")                                                                \
    X(HOIST_E_OPEN, -4, "cannot open file")                                                       \
    X(HOIST_E_NOT_REGULAR, -5, "not a regular file")                                              \
    X(HOIST_E_TRUNCATED_HEADER, -6, "file too short for a header")                                \
    X(HOIST_E_HEADER_TOO_LARGE, -7, "header length above the limit")                              \
    X(HOIST_E_BAD_HEADER_LEN, -8, "header length past the end of the file")                       \
    X(HOIST_E_BAD_JSON, -9, "malformed JSON header")                                              \
    X(HOIST_E_DUPLICATE_KEY, -10, "duplicate key")                                                \
    X(HOIST_E_BAD_METADATA, -11, "malformed metadata")                                            \
    X(HOIST_E_BAD_DTYPE, -12, "unknown or unsupported dtype")                                     \
    X(HOIST_E_BAD_TENSOR, -13, "malformed tensor entry")                                          \
    X(HOIST_E_BAD_OFFSETS, -14, "invalid data offsets")                                           \
    X(HOIST_E_LAYOUT, -15, "tensor data not contiguous (gap, overlap or not at 0)")               \
    X(HOIST_E_TRUNCATED, -16, "data section shorter than declared")                               \
    X(HOIST_E_TRAILING_BYTES, -17, "trailing bytes after the data section")                       \
    X(HOIST_E_OVERFLOW, -18, "size arithmetic overflows")                                         \
    X(HOIST_E_SIZE_MISMATCH, -19, "byte length does not match shape and dtype")                   \
    X(HOIST_E_BAD_INDEX, -20, "malformed sharded index")                                          \
    X(HOIST_E_MISSING_SHARD, -21, "shard file missing")                                           \
    X(HOIST_E_PATH_ESCAPE, -22, "path escapes the model directory")                               \
    X(HOIST_E_NOT_FOUND, -23, "not found")                                                        \
    X(HOIST_E_BUDGET, -24, "host RAM budget too small")                                           \
    X(HOIST_E_DEVICE, -25, "device error")                                                        \
    X(HOIST_E_DEVICE_NOMEM, -26, "out of device memory")                                          \
    X(HOIST_E_NO_DEVICE, -27, "no such device")                                                   \
    X(HOIST_E_UNSUPPORTED, -28, "unsupported on this system")                                     \
    X(HOIST_E_FILE_CHANGED, -29, "file changed during the load")                                  \
    X(HOIST_E_INTEGRITY, -30, "loaded bytes differ from the file")                                \
    X(HOIST_E_TOO_MANY, -31, "count above the limit")                                             \
    X(HOIST_E_PINNED_NOMEM, -32, "pinned host memory refused")                                    \
    X(HOIST_E_INTERNAL, -33, "internal error")                                                    \
    X(HOIST_E_ABORTED, -34, "stopped by the caller's callback")                                   \
    X(HOIST_E_BAD_MANIFEST, -35, "malformed manifest, or one written for other files")            \
    X(HOIST_E_BAD_PACKED, -36, "malformed packed container")                                      \
    X(HOIST_E_DECODE, -37, "compressed chunk does not decode")                                    \
    X(HOIST_E_BAD_CONFIG, -40, "malformed or missing model configuration")                        \
    X(HOIST_E_NO_FIT, -41, "model does not fit the devices")                                      \
    X(HOIST_E_BUSY, -42, "resource already in use")                                               \
    X(HOIST_E_BAD_MAGIC, -43, "not a file of a known format (bad magic)")                        \
    X(HOIST_E_BAD_VERSION, -44, "unsupported format version")

typedef enum hoist_status {
#define HOIST_X_ENUM(name, value, desc) name = value,
    HOIST_STATUS_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
} hoist_status;

/* Fixed description of a status ("header length above the limit"); static storage, never NULL. */
HOIST_API const char *hoist_strerror(int status);
/* The status's enumerator name ("HOIST_E_HEADER_TOO_LARGE"); static storage, never NULL. */
HOIST_API const char *hoist_status_name(int status);
/* The message of the last failure on this thread, naming file, tensor and offset where they
 * exist; "" when the last call succeeded. Thread-local storage, valid until the next hoist call
 * on this thread. */
HOIST_API const char *hoist_last_error(void);

/* ---- logging ------------------------------------------------------------------------------ */

typedef enum hoist_log_level {
    HOIST_LOG_ERROR = 0,
    HOIST_LOG_WARN = 1,
    HOIST_LOG_INFO = 2,
    HOIST_LOG_DEBUG = 3
} hoist_log_level;

typedef void (*hoist_log_fn)(hoist_log_level level, const char *message, void *user);

/* Process-wide. Lines above max_level are not formatted. fn may be called from loader worker
 * threads, concurrently; NULL turns logging off. */
HOIST_API void hoist_set_log_callback(hoist_log_fn fn, void *user, hoist_log_level max_level);

/* ---- dtypes ------------------------------------------------------------------------------- */

/* X(name, value, "NAME", elements per block, bytes per block). Values are stable: append, never
 * renumber. A block is the smallest unit of storage: 1 element for the byte-sized types, 2 F4
 * elements in a byte, 4 F6 elements in 3 bytes, and 32 or 256 weights with their scales for the
 * quantized ggml types (Q4_0 to Q2_0), whose blocks run along a tensor's innermost dimension
 * (shape[ndim - 1], ggml's ne[0]), so that dimension is a multiple of the block's elements.
 * BOOL to U64 are the safetensors dtypes, named as that format names them; a GGUF tensor of ggml
 * type F32, F16, BF16, F64, I8, I16, I32 or I64 reports the dtype of the same name; the rest are
 * ggml's block types, named as ggml names them (upper case). */
#define HOIST_DTYPE_LIST(X)                                                                       \
    X(HOIST_DTYPE_BOOL, 0, "BOOL", 1, 1)                                                          \
    X(HOIST_DTYPE_F4, 1, "F4", 2, 1)                                                              \
    X(HOIST_DTYPE_F6_E2M3, 2, "F6_E2M3", 4, 3)                                                    \
    X(HOIST_DTYPE_F6_E3M2, 3, "F6_E3M2", 4, 3)                                                    \
    X(HOIST_DTYPE_U8, 4, "U8", 1, 1)                                                              \
    X(HOIST_DTYPE_I8, 5, "I8", 1, 1)                                                              \
    X(HOIST_DTYPE_F8_E5M2, 6, "F8_E5M2", 1, 1)                                                    \
    X(HOIST_DTYPE_F8_E4M3, 7, "F8_E4M3", 1, 1)                                                    \
    X(HOIST_DTYPE_F8_E8M0, 8, "F8_E8M0", 1, 1)                                                    \
    X(HOIST_DTYPE_F8_E4M3FNUZ, 9, "F8_E4M3FNUZ", 1, 1)                                            \
    X(HOIST_DTYPE_F8_E5M2FNUZ, 10, "F8_E5M2FNUZ", 1, 1)                                           \
    X(HOIST_DTYPE_I16, 11, "I16", 1, 2)                                                           \
    X(HOIST_DTYPE_U16, 12, "U16", 1, 2)                                                           \
    X(HOIST_DTYPE_F16, 13, "F16", 1, 2)                                                           \
    X(HOIST_DTYPE_BF16, 14, "BF16", 1, 2)                                                         \
    X(HOIST_DTYPE_I32, 15, "I32", 1, 4)                                                           \
    X(HOIST_DTYPE_U32, 16, "U32", 1, 4)                                                           \
    X(HOIST_DTYPE_F32, 17, "F32", 1, 4)                                                           \
    X(HOIST_DTYPE_C64, 18, "C64", 1, 8)                                                           \
    X(HOIST_DTYPE_F64, 19, "F64", 1, 8)                                                           \
    X(HOIST_DTYPE_I64, 20, "I64", 1, 8)                                                           \
    X(HOIST_DTYPE_U64, 21, "U64", 1, 8)                                                           \
    X(HOIST_DTYPE_Q4_0, 22, "Q4_0", 32, 18)                                                       \
    X(HOIST_DTYPE_Q4_1, 23, "Q4_1", 32, 20)                                                       \
    X(HOIST_DTYPE_Q5_0, 24, "Q5_0", 32, 22)                                                       \
    X(HOIST_DTYPE_Q5_1, 25, "Q5_1", 32, 24)                                                       \
    X(HOIST_DTYPE_Q8_0, 26, "Q8_0", 32, 34)                                                       \
    X(HOIST_DTYPE_Q8_1, 27, "Q8_1", 32, 36)                                                       \
    X(HOIST_DTYPE_Q2_K, 28, "Q2_K", 256, 84)                                                      \
    X(HOIST_DTYPE_Q3_K, 29, "Q3_K", 256, 110)                                                     \
    X(HOIST_DTYPE_Q4_K, 30, "Q4_K", 256, 144)                                                     \
    X(HOIST_DTYPE_Q5_K, 31, "Q5_K", 256, 176)                                                     \
    X(HOIST_DTYPE_Q6_K, 32, "Q6_K", 256, 210)                                                     \
    X(HOIST_DTYPE_Q8_K, 33, "Q8_K", 256, 292)                                                     \
    X(HOIST_DTYPE_IQ2_XXS, 34, "IQ2_XXS", 256, 66)                                                \
    X(HOIST_DTYPE_IQ2_XS, 35, "IQ2_XS", 256, 74)                                                  \
    X(HOIST_DTYPE_IQ3_XXS, 36, "IQ3_XXS", 256, 98)                                                \
    X(HOIST_DTYPE_IQ1_S, 37, "IQ1_S", 256, 50)                                                    \
    X(HOIST_DTYPE_IQ4_NL, 38, "IQ4_NL", 32, 18)                                                   \
    X(HOIST_DTYPE_IQ3_S, 39, "IQ3_S", 256, 110)                                                   \
    X(HOIST_DTYPE_IQ2_S, 40, "IQ2_S", 256, 82)                                                    \
    X(HOIST_DTYPE_IQ4_XS, 41, "IQ4_XS", 256, 136)                                                 \
    X(HOIST_DTYPE_IQ1_M, 42, "IQ1_M", 256, 56)                                                    \
    X(HOIST_DTYPE_TQ1_0, 43, "TQ1_0", 256, 54)                                                    \
    X(HOIST_DTYPE_TQ2_0, 44, "TQ2_0", 256, 66)                                                    \
    X(HOIST_DTYPE_MXFP4, 45, "MXFP4", 32, 17)                                                     \
    X(HOIST_DTYPE_NVFP4, 46, "NVFP4", 64, 36)                                                     \
    X(HOIST_DTYPE_Q1_0, 47, "Q1_0", 128, 18)                                                      \
    X(HOIST_DTYPE_Q2_0, 48, "Q2_0", 64, 18)

typedef enum hoist_dtype {
#define HOIST_X_ENUM(name, value, str, block_elems, block_bytes) name = value,
    HOIST_DTYPE_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
    HOIST_DTYPE_COUNT
} hoist_dtype;

/* "BF16", "Q8_0"; "?" for an unknown value. Static storage. */
HOIST_API const char *hoist_dtype_name(hoist_dtype dtype);
/* Bits per element where that is a whole number (4 for F4, 16 for BF16); 0 for the ggml block
 * types, whose elements take a fraction of bits (Q8_0: 34 bytes per 32 elements = 8.5), and for
 * an unknown value. */
HOIST_API unsigned hoist_dtype_bits(hoist_dtype dtype);
/* Elements per block (1 for the byte-sized types, 32 for Q8_0, 256 for Q4_K); 0 when unknown. */
HOIST_API unsigned hoist_dtype_block_elems(hoist_dtype dtype);
/* Bytes per block (2 for BF16, 34 for Q8_0); 0 when unknown. A tensor of a ggml block type takes
 * (elements / block_elems) * block_bytes bytes. */
HOIST_API unsigned hoist_dtype_block_bytes(hoist_dtype dtype);

/* ---- models (the tensor table; no weights are read) --------------------------------------- */

#define HOIST_MAX_DIMS 8

typedef struct hoist_model hoist_model;

typedef struct hoist_open_options {
    size_t size;               /* sizeof(hoist_open_options) (see the conventions above) */
    /* Reject bytes after the last tensor's data (1, the default), or accept them with a logged
     * warning (0): such files exist in the wild. */
    int strict;
} hoist_open_options;

#define HOIST_OPEN_OPTIONS_DEFAULT {.size = sizeof(hoist_open_options), .strict = 1}

/* Opens a model: a .safetensors file, a GGUF file (recognised by its magic, or by a .gguf name),
 * a packed container (hoist_pack; recognised by its magic), a directory holding
 * model.safetensors.index.json, model.safetensors, model.hoist, model.gguf or a single .gguf
 * file (tried in that order), or an index file. Parses and validates every header (a packed
 * container: its table and checksums); reads no tensor data. opts may be NULL for the defaults.
 * On success *out owns the model: release it with
 * hoist_model_free(). On failure *out is NULL and nothing is held. */
HOIST_API int hoist_model_open(const char *path, const hoist_open_options *opts, hoist_model **out);
/* Releases the caller's reference; weights loaded from the model keep it alive until they are
 * freed too. NULL is a no-op. */
HOIST_API void hoist_model_free(hoist_model *model);

typedef struct hoist_tensor_info {
    size_t size;               /* set by the caller: HOIST_TENSOR_INFO_INIT */
    const char *name;          /* owned by the model */
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS]; /* outermost first (row-major), in every format: a GGUF
                                      tensor's shape is ggml's ne[] reversed */
    uint64_t nbytes;
    uint32_t file;             /* index for hoist_model_file_path() */
    uint64_t offset;           /* absolute byte offset of the data in that file; in a packed
                                  model, the offset in its decoded byte stream (the tensors
                                  back to back in file order) */
} hoist_tensor_info;

#define HOIST_TENSOR_INFO_INIT {.size = sizeof(hoist_tensor_info)}

HOIST_API size_t hoist_model_tensor_count(const hoist_model *model);
/* Tensors are ordered by file, then offset. HOIST_E_INVALID_ARG when index is out of range. */
HOIST_API int hoist_model_tensor(const hoist_model *model, size_t index, hoist_tensor_info *out);
/* Index of the tensor called name, or HOIST_E_NOT_FOUND. */
HOIST_API int hoist_model_find(const hoist_model *model, const char *name, size_t *index);
HOIST_API size_t hoist_model_file_count(const hoist_model *model);
/* Path of file i as opened (owned by the model); NULL when out of range. */
HOIST_API const char *hoist_model_file_path(const hoist_model *model, size_t i);
HOIST_API uint64_t hoist_model_file_size(const hoist_model *model, size_t i);
/* Sum of every tensor's nbytes. */
HOIST_API uint64_t hoist_model_total_bytes(const hoist_model *model);
/* ---- model metadata ---------------------------------------------------------------------- */

/* X(name, value, "name", bytes per element or 0). The GGUF value types, with GGUF's numbers;
 * safetensors metadata (__metadata__) is all strings. */
#define HOIST_META_TYPE_LIST(X)                                                                   \
    X(HOIST_META_U8, 0, "u8", 1)                                                                  \
    X(HOIST_META_I8, 1, "i8", 1)                                                                  \
    X(HOIST_META_U16, 2, "u16", 2)                                                                \
    X(HOIST_META_I16, 3, "i16", 2)                                                                \
    X(HOIST_META_U32, 4, "u32", 4)                                                                \
    X(HOIST_META_I32, 5, "i32", 4)                                                                \
    X(HOIST_META_F32, 6, "f32", 4)                                                                \
    X(HOIST_META_BOOL, 7, "bool", 1)                                                              \
    X(HOIST_META_STRING, 8, "string", 0)                                                          \
    X(HOIST_META_ARRAY, 9, "array", 0)                                                            \
    X(HOIST_META_U64, 10, "u64", 8)                                                               \
    X(HOIST_META_I64, 11, "i64", 8)                                                               \
    X(HOIST_META_F64, 12, "f64", 8)

typedef enum hoist_meta_type {
#define HOIST_X_ENUM(name, value, str, size) name = value,
    HOIST_META_TYPE_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
    HOIST_META_TYPE_COUNT
} hoist_meta_type;

/* "u32"; "?" for an unknown value. Static storage. */
HOIST_API const char *hoist_meta_type_name(hoist_meta_type type);
/* Bytes of one element of a number or bool type; 0 for STRING, ARRAY and unknown values. */
HOIST_API size_t hoist_meta_type_size(hoist_meta_type type);

/* One metadata value. Every pointer is owned by the model and lives as long as it. */
typedef struct hoist_meta_value {
    size_t size;               /* set by the caller: HOIST_META_VALUE_INIT */
    hoist_meta_type type;
    hoist_meta_type elem_type; /* ARRAY: the elements' type (never ARRAY) */
    uint64_t count;            /* ARRAY: number of elements; 1 for any other type */
    union {
        uint64_t u;            /* U8, U16, U32, U64; BOOL as 0 or 1 */
        int64_t i;             /* I8, I16, I32, I64 */
        double f;              /* F32, F64 */
    } num;
    const char *str;           /* STRING: the bytes, NUL-terminated (they may hold NULs too) */
    uint64_t str_len;          /* STRING: length in bytes, without the terminating NUL */
    /* ARRAY of numbers or bools: count elements of hoist_meta_type_size(elem_type) bytes,
     * packed, in host byte order. ARRAY of strings: count pointers (const char *const *) to
     * NUL-terminated strings, whose lengths are in str_lens. */
    const void *array;
    const uint64_t *str_lens;  /* ARRAY of strings: count lengths */
    const char *text;          /* the value as text: numbers in decimal, strings as they are,
                                  arrays as a summary ("[string x 32000]") */
} hoist_meta_value;

#define HOIST_META_VALUE_INIT {.size = sizeof(hoist_meta_value)}

/* Metadata entries in file order: safetensors' __metadata__ (every value a string), or GGUF's
 * key-value section (typed). key, value and *out's pointers are owned by the model.
 * HOIST_E_INVALID_ARG when index is out of range. */
HOIST_API size_t hoist_model_metadata_count(const hoist_model *model);
/* The entry's key and its value as text (hoist_meta_value.text). */
HOIST_API int hoist_model_metadata(const hoist_model *model, size_t index, const char **key,
                                   const char **value);
/* The entry's key and typed value. */
HOIST_API int hoist_model_metadata_value(const hoist_model *model, size_t index, const char **key,
                                         hoist_meta_value *out);
/* Value of a metadata key as text, or NULL. */
HOIST_API const char *hoist_model_metadata_get(const hoist_model *model, const char *key);
/* Typed value of a metadata key; HOIST_E_NOT_FOUND when the model has no such key. */
HOIST_API int hoist_model_metadata_find(const hoist_model *model, const char *key,
                                        hoist_meta_value *out);

/* ---- model geometry ----------------------------------------------------------------------- */

/* Rotary embedding variants: transformers' rope_type (rope_scaling, or rope_parameters in
 * transformers 5), or llama.cpp's <arch>.rope.scaling.type. */
typedef enum hoist_rope_type {
    HOIST_ROPE_DEFAULT = 0,
    HOIST_ROPE_LINEAR = 1,  /* inverse frequencies / factor */
    HOIST_ROPE_DYNAMIC = 2, /* NTK: the base grows with the sequence length past max_position */
    HOIST_ROPE_YARN = 3,
    HOIST_ROPE_LLAMA3 = 4
} hoist_rope_type;

/* The parameters of a rope type, resolved as transformers resolves them (defaults filled in). */
typedef struct hoist_rope_scaling {
    hoist_rope_type type;
    double factor;                            /* every type but the default */
    uint64_t original_max_position;           /* llama3, yarn */
    double low_freq_factor, high_freq_factor; /* llama3 */
    double attention_factor;                  /* yarn: multiplies cos and sin */
    double beta_fast, beta_slow;              /* yarn */
    int truncate;                             /* yarn: floor/ceil the correction range */
} hoist_rope_scaling;

/* hoist_geometry.biases */
#define HOIST_BIAS_QKV 1u /* q_proj, k_proj, v_proj (Qwen2; attention_bias) */
#define HOIST_BIAS_O 2u   /* o_proj (attention_bias of Llama and Qwen3) */
#define HOIST_BIAS_MLP 4u /* gate_proj, up_proj, down_proj (mlp_bias) */

/* The shape of a decoder-only transformer: what the planner sizes the KV cache and activations
 * from, and what an inference engine needs besides the tensors. The fields after dtype describe
 * the variants of the Llama block; zero is plain Llama. */
typedef struct hoist_geometry {
    size_t size;                /* HOIST_GEOMETRY_INIT; as an input, what the caller filled in */
    char architecture[32];      /* "llama" (from model_type / general.architecture) */
    uint32_t n_layers, hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab;
    uint64_t max_position;      /* max_position_embeddings */
    double rms_eps, rope_theta;
    int tied_embeddings;        /* tie_word_embeddings */
    hoist_dtype dtype;          /* weight dtype (torch_dtype) */
    hoist_rope_scaling rope;    /* rope_scaling / rope_parameters */
    uint32_t biases;            /* HOIST_BIAS_* */
    int qk_norm;                /* Qwen3: RMSNorm over each q and k head before the rotation */
    uint64_t sliding_window;    /* attention window in positions; 0: none */
    /* The first layer that attends over the window; the layers before it attend over every
     * earlier position (Qwen's max_window_layers, or its layer_types). 0: every layer. */
    uint32_t window_from_layer;
    /* "" when hoist's forward pass computes what the configuration describes; otherwise the
     * first reason it would not, naming the configuration key and its value. Loading and
     * planning ignore it; hoist_session_check refuses it. */
    char unsupported[256];
} hoist_geometry;

/* Every other field 0: for a result, or a geometry the caller fills in field by field. */
#define HOIST_GEOMETRY_INIT {.size = sizeof(hoist_geometry)}

/* Fills *out from the model's config.json (HF keys: num_hidden_layers, hidden_size,
 * intermediate_size, num_attention_heads, vocab_size required; head_dim defaulting to
 * hidden_size/num_attention_heads, num_key_value_heads defaulting to num_attention_heads,
 * max_position_embeddings to 2048, rms_norm_eps to 1e-6, rope_theta to 10000 (also read from
 * rope_parameters), tie_word_embeddings to false, torch_dtype (or dtype) to the dtype holding most
 * of the model's bytes; a "text_config" object is read when the top level has no
 * num_hidden_layers). config.json is looked up beside the model's first file. A model whose
 * metadata carries general.architecture (GGUF) is described by its "<arch>.*" metadata keys
 * instead. Every value is type-checked and bounded. On failure (HOIST_E_OPEN, HOIST_E_BAD_JSON,
 * HOIST_E_DUPLICATE_KEY, HOIST_E_BAD_CONFIG) *out is zeroed (up to its size, which is kept) and
 * the message names the file and the key. Nothing is kept: the model is not changed. */
HOIST_API int hoist_model_geometry(const hoist_model *model, hoist_geometry *out);
/* The same from a config.json at path, for callers without a model (a missing torch_dtype gives
 * HOIST_DTYPE_F32, the transformers default). */
HOIST_API int hoist_geometry_from_config(const char *path, hoist_geometry *out);
/* Checks a caller-built geometry (the bounds hoist_model_geometry applies); HOIST_E_BAD_CONFIG
 * naming the first bad field. */
HOIST_API int hoist_geometry_check(const hoist_geometry *geometry);

/* ---- devices ------------------------------------------------------------------------------ */

#define HOIST_DEVICE_HOST (-1)

typedef struct hoist_device_info {
    size_t size;               /* set by the caller: HOIST_DEVICE_INFO_INIT */
    int id;                    /* HOIST_DEVICE_HOST or a CUDA ordinal */
    char name[128];
    uint64_t total_bytes;
    uint64_t free_bytes;
    int compute_major, compute_minor;
} hoist_device_info;

#define HOIST_DEVICE_INFO_INIT {.size = sizeof(hoist_device_info)}

/* Number of CUDA devices (0 without CUDA, or when the driver finds none: not an error). */
HOIST_API int hoist_device_count(void);
/* Device id (HOIST_DEVICE_HOST or 0..count-1). HOIST_E_NO_DEVICE when absent. */
HOIST_API int hoist_device_info_get(int device, hoist_device_info *out);
/* Parses "host", "cpu", "cuda" (= cuda:0) or "cuda:N" into a device id. */
HOIST_API int hoist_device_parse(const char *text, int *device);
/* The name hoist_device_parse() reads back: "host" for HOIST_DEVICE_HOST, "cuda:N" for a CUDA
 * ordinal N >= 0 (whether or not it is present). Writes it NUL-terminated into buf (n bytes, the
 * caller's; HOIST_DEVICE_NAME_MAX always suffices) and returns buf, so that it can stand in a
 * printf argument list. A name that does not fit is cut to n - 1 bytes; with buf NULL or n 0
 * nothing is written and "" is returned. Any other negative id gives "device(N)". Never fails,
 * sets no error, and is thread-safe. */
#define HOIST_DEVICE_NAME_MAX 32
HOIST_API const char *hoist_device_name(int device, char *buf, size_t n);

/* Measures host-to-device copy bandwidth into `device` from `bytes` of pinned (or, with pinned = 0,
 * pageable) host memory, as the median of `repeat` timed copies after one warm-up; *gbps receives
 * 1e9-byte units per second. The ceiling the load paths are compared with. Takes and releases
 * 2 x bytes of memory. */
HOIST_API int hoist_device_copy_bandwidth(int device, uint64_t bytes, int pinned, int repeat,
                                          double *gbps);
/* Measures the memory bandwidth of `device` itself: `bytes` copied from one buffer of the device
 * to another (memcpy for HOIST_DEVICE_HOST), the median of `repeat` timed copies after a warm-up.
 * *gbps counts the bytes read plus the bytes written (2 x bytes per copy), in 1e9-byte units per
 * second: the ceiling a decode step, which streams every weight once, is compared with. Takes
 * and releases 2 x bytes of the device's memory. */
HOIST_API int hoist_device_memory_bandwidth(int device, uint64_t bytes, int repeat, double *gbps);

/* Frees the pinned staging buffers hoist keeps between loads (at most 1 GiB; pinning is slow, so
 * a later load reuses them). Call it once loading is over. Thread-safe. */
HOIST_API void hoist_trim(void);

/* ---- placement planning -------------------------------------------------------------------- */

/* What fits where, computed before anything is allocated or read: the weights of every layer
 * with that layer's KV cache on one device, the inference layer's activations and workspace, a
 * reserve left untouched on each device, and what would fit instead when the model does not. */

typedef struct hoist_coordinator hoist_coordinator;

/* X(name, value, "name", bytes per block of 32 elements). q8 and q4 store 32 elements in a block
 * with one f16 scale (34 and 18 bytes); a head's row is rounded up to whole blocks. */
#define HOIST_KV_DTYPE_LIST(X)                                                                    \
    X(HOIST_KV_F16, 0, "f16", 64)                                                                 \
    X(HOIST_KV_BF16, 1, "bf16", 64)                                                               \
    X(HOIST_KV_F32, 2, "f32", 128)                                                                \
    X(HOIST_KV_F8, 3, "f8", 32)                                                                   \
    X(HOIST_KV_Q8, 4, "q8", 34)                                                                   \
    X(HOIST_KV_Q4, 5, "q4", 18)

typedef enum hoist_kv_dtype {
#define HOIST_X_ENUM(name, value, str, block) name = value,
    HOIST_KV_DTYPE_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
    HOIST_KV_DTYPE_COUNT
} hoist_kv_dtype;

/* Room per kv dtype in public structs (hoist_fit): kv dtypes added later take unused slots
 * instead of moving the fields that follow. Always above HOIST_KV_DTYPE_COUNT. */
#define HOIST_KV_DTYPE_MAX 16

/* "q4"; "?" for an unknown value. */
HOIST_API const char *hoist_kv_dtype_name(hoist_kv_dtype kv);
/* Parses "f16", "bf16", "f32", "f8", "q8" or "q4"; HOIST_E_INVALID_ARG otherwise. */
HOIST_API int hoist_kv_dtype_parse(const char *text, hoist_kv_dtype *out);
/* KV-cache bytes: 2 (K and V) x n_layers x n_kv_heads x (head_dim in kv's encoding) x
 * max_seq_len x batch. HOIST_E_OVERFLOW when that passes 2^64; HOIST_E_BAD_CONFIG for a geometry
 * hoist_geometry_check() refuses. */
HOIST_API int hoist_kv_cache_bytes(const hoist_geometry *geometry, hoist_kv_dtype kv,
                                   uint64_t max_seq_len, uint32_t batch, uint64_t *out);

#define HOIST_PLAN_MAX_DEVICES 16

typedef struct hoist_plan_device {
    size_t size;               /* sizeof(hoist_plan_device): HOIST_PLAN_DEVICE_DEFAULT. Every
                                  element of an array has the same size: the array's stride */
    int device;                /* a CUDA ordinal or HOIST_DEVICE_HOST */
    uint64_t free_bytes;       /* memory to plan into before any of the coordinator's
                                  reservations; 0 = ask the device now */
    uint64_t reserve_bytes;    /* left unused (other processes, fragmentation) */
} hoist_plan_device;

#define HOIST_PLAN_DEVICE_DEFAULT                                                                 \
    {.size = sizeof(hoist_plan_device), .device = HOIST_DEVICE_HOST, .free_bytes = 0,           \
     .reserve_bytes = 0}

/* Tensor-parallel options, declared with the tensor-parallel section at the end. */
typedef struct hoist_tp_options hoist_tp_options;

typedef struct hoist_plan_options {
    size_t size;               /* sizeof(hoist_plan_options): HOIST_PLAN_OPTIONS_DEFAULT */
    /* Devices in split order: layers fill devices[0] first, then the next. NULL/0 = every CUDA
     * device (the host when there is none). At most HOIST_PLAN_MAX_DEVICES, no repeats. */
    const hoist_plan_device *devices;
    size_t ndevices;
    uint64_t max_seq_len;      /* KV-cache positions per sequence; 0 = the model's max_position */
    uint32_t batch;            /* sequences sharing the devices, each with its cache; 0 = 1 */
    uint32_t forward_tokens;   /* tokens per forward pass (prefill chunk); 0 = 256 */
    hoist_kv_dtype kv_dtype;
    /* The model's shape; NULL = hoist_model_geometry(model) (config.json or GGUF metadata). */
    const hoist_geometry *geometry;
    /* Budget shared with other plans and weights; NULL = the process-wide one. */
    hoist_coordinator *coordinator;
    /* Tensor parallelism (NULL = none, the layer split above): with tp->world > 1 every
     * device of the list holds one rank's slice of every layer, devices[i] being rank i (so
     * ndevices must equal tp->world; tp->rank is ignored), sliced by tp's rules as hoist_load
     * slices them; each device's KV cache holds its ranks' kv heads (n_kv_heads / world, or one
     * replicated head when there are fewer heads than ranks) and its workspace the rank's share
     * of the activations. See the tensor-parallel section at the end of this header. */
    const hoist_tp_options *tp;
} hoist_plan_options;

#define HOIST_PLAN_OPTIONS_DEFAULT                                                                \
    {.size = sizeof(hoist_plan_options), .devices = NULL, .ndevices = 0, .max_seq_len = 0,      \
     .batch = 1, .forward_tokens = 0, .kv_dtype = HOIST_KV_F16, .geometry = NULL,                \
     .coordinator = NULL, .tp = NULL}

typedef struct hoist_plan hoist_plan;

/* Plans model onto opts->devices and reserves what it places in the coordinator, atomically with
 * respect to other plans of that coordinator: a second model is planned into what the first
 * left. The reservation lasts while the plan, or weights loaded with it, are alive. opts may be
 * NULL (defaults). Reads no tensor data and allocates no device memory. On success *out owns the
 * plan (hoist_plan_free). HOIST_E_NO_FIT when the model does not fit: the message names the
 * device that lacks memory, how much (weights + cache + workspace against what it has), and what
 * would fit (max_seq_len <= K, another kv dtype, another device); nothing is reserved then, and
 * *out is NULL. The plan keeps the model alive. */
HOIST_API int hoist_plan_create(hoist_model *model, const hoist_plan_options *opts,
                                hoist_plan **out);
/* Releases the plan's share of the reservation. NULL is a no-op. */
HOIST_API void hoist_plan_free(hoist_plan *plan);

/* The geometry the plan was made for is not a field here (a struct of its own that grows would
 * move every field after it): read it with hoist_plan_geometry(). */
typedef struct hoist_plan_info {
    size_t size;                   /* set by the caller: HOIST_PLAN_INFO_INIT */
    uint64_t max_seq_len;
    uint32_t batch, forward_tokens;
    hoist_kv_dtype kv_dtype;
    uint64_t kv_bytes_per_token;   /* every layer, one sequence */
    uint64_t weights_bytes;        /* arena bytes over every device (alignment included) */
    uint64_t kv_bytes;
    uint64_t workspace_bytes;
    size_t ndevices;               /* as in the options (unused ones included) */
    size_t tp_world;               /* ranks of a tensor-parallel plan (device i is rank i;
                                      kv_bytes_per_token is then each rank's, and
                                      hoist_plan_tensor_device answers rank 0's device); 0 for
                                      a layer split. Such a plan is not for hoist_load: load
                                      each rank with hoist_load_options.tp */
} hoist_plan_info;

#define HOIST_PLAN_INFO_INIT {.size = sizeof(hoist_plan_info)}

typedef struct hoist_plan_usage {
    size_t size;               /* set by the caller: HOIST_PLAN_USAGE_INIT */
    int device;
    uint64_t free_bytes;       /* what the device had for this plan: given or queried, less the
                                  coordinator's other reservations */
    uint64_t reserve_bytes;
    uint64_t weights_bytes;    /* its arena, exactly as the load allocates it */
    uint64_t kv_bytes;
    uint64_t workspace_bytes;  /* activations, cuBLAS workspace, rotary tables, logits */
    uint64_t headroom_bytes;   /* free - reserve - weights - kv - workspace */
    uint32_t first_layer, layers; /* layers [first_layer, first_layer + layers) */
    int embeddings, head;      /* holds the embeddings / the final norm and output head */
} hoist_plan_usage;

#define HOIST_PLAN_USAGE_INIT {.size = sizeof(hoist_plan_usage)}

/* The plan's figures. HOIST_E_INVALID_ARG for a NULL argument or a bad out->size (*out is then
 * untouched). */
HOIST_API int hoist_plan_info_get(const hoist_plan *plan, hoist_plan_info *out);
/* The geometry the plan was made for (given in its options, or the model's). Errors as
 * hoist_plan_info_get. */
HOIST_API int hoist_plan_geometry(const hoist_plan *plan, hoist_geometry *out);
/* index < info.ndevices; HOIST_E_INVALID_ARG otherwise. */
HOIST_API int hoist_plan_usage_get(const hoist_plan *plan, size_t index, hoist_plan_usage *out);
/* The device a tensor (index as in hoist_model_tensor) or a layer is placed on. */
HOIST_API int hoist_plan_tensor_device(const hoist_plan *plan, size_t tensor, int *device);
HOIST_API int hoist_plan_layer_device(const hoist_plan *plan, uint32_t layer, int *device);

typedef struct hoist_fit {
    size_t size;               /* set by the caller: HOIST_FIT_INIT */
    int fits;                  /* the options as given fit */
    uint64_t shortfall_bytes;  /* memory missing on the last device for them; 0 when they fit */
    /* Largest max_seq_len that fits with each kv dtype (the other options as given), searched up
     * to max(the model's max_position, opts->max_seq_len); 0 when not even one token fits.
     * Indexed by hoist_kv_dtype; slots from HOIST_KV_DTYPE_COUNT on are 0. */
    uint64_t max_seq_len[HOIST_KV_DTYPE_MAX];
} hoist_fit;

#define HOIST_FIT_INIT {.size = sizeof(hoist_fit)}

/* What fits on opts->devices, computed as hoist_plan_create() would but reserving nothing.
 * Returns HOIST_OK whether or not the options fit; a failure means the question could not be
 * asked (bad geometry, absent device). */
HOIST_API int hoist_plan_fit(hoist_model *model, const hoist_plan_options *opts, hoist_fit *out);

/* A coordinator keeps the reservations of plans (and of the weights loaded with them) so that
 * several models in one process are planned into one budget. Thread-safe. The process-wide one
 * serves every plan whose options name none; create others to plan in isolation. */
HOIST_API int hoist_coordinator_create(hoist_coordinator **out);
/* Drops the caller's reference; plans and weights that reserved through it keep it alive.
 * NULL and the process-wide coordinator are no-ops. */
HOIST_API void hoist_coordinator_free(hoist_coordinator *coordinator);
HOIST_API hoist_coordinator *hoist_coordinator_default(void);
/* Bytes reserved on device through the coordinator (NULL = the process-wide one) right now. */
HOIST_API uint64_t hoist_coordinator_reserved(const hoist_coordinator *coordinator, int device);

/* ---- progress ----------------------------------------------------------------------------- */

/* Reports how far a long operation (a load, a ceiling measurement) has come: `done` of `total`
 * bytes. Each operation documents the thread it calls from; calls never overlap, `done` never
 * decreases and never exceeds `total`. Calls are at least HOIST_PROGRESS_INTERVAL_MS apart,
 * except the first (done = 0) and the last (done == total, made once every byte is through; an
 * operation that fails before that makes no such call, and a load may still fail after it, in
 * verification). The callback must not call into hoist for the operation it watches. */
typedef void (*hoist_progress_fn)(uint64_t done, uint64_t total, void *user);
#define HOIST_PROGRESS_INTERVAL_MS 100

/* ---- loading ------------------------------------------------------------------------------ */

#define HOIST_PATH_LIST(X)                                                                        \
    X(HOIST_PATH_AUTO, 0, "auto")                                                                 \
    X(HOIST_PATH_MMAP, 1, "mmap")                                                                 \
    X(HOIST_PATH_URING, 2, "uring")                                                               \
    X(HOIST_PATH_STREAM, 3, "stream")

typedef enum hoist_path {
#define HOIST_X_ENUM(name, value, str) name = value,
    HOIST_PATH_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
} hoist_path;

/* "mmap"; "?" for an unknown value. */
HOIST_API const char *hoist_path_name(hoist_path path);
/* Parses a path name; HOIST_E_INVALID_ARG for an unknown one, or one this build lacks. */
HOIST_API int hoist_path_parse(const char *text, hoist_path *path);

/* What a load checks (hoist_load_options.verify): flags, combinable. A packed model's chunks carry
 * XXH3 hashes that every load of it checks, whatever the flags: on the CPU where the CPU decodes
 * them, on the GPU for the codec 2 chunks a GPU decodes (hoist pack --codec gpu; docs/PACKED.md).
 * For a packed model HOIST_VERIFY_MANIFEST needs no manifest file, and with any flag the GPU's
 * chunks are also read back and hashed on the CPU before publishing. */
typedef enum hoist_verify {
    HOIST_VERIFY_NONE = 0,
    /* Hash every byte on the worker threads as it passes through staging, before it is copied,
     * against the manifest hoist_model_sum() wrote. A difference fails the load naming the file,
     * tensor and chunk; nothing is published. HOIST_E_NOT_FOUND when there is no manifest,
     * HOIST_E_BAD_MANIFEST when it is malformed or describes other files. Windows become
     * multiples of the manifest's chunk size. */
    HOIST_VERIFY_MANIFEST = 1,
    /* After the load, read every byte back from the destination and compare it with the files
     * (a packed model: hash it against its chunk hashes). Proves the copy path itself; costs a
     * second pass over the files. */
    HOIST_VERIFY_READBACK = 2
} hoist_verify;

typedef struct hoist_load_options {
    size_t size;               /* sizeof(hoist_load_options): HOIST_LOAD_OPTIONS_DEFAULT */
    hoist_path path;           /* I/O path */
    int device;                /* HOIST_DEVICE_HOST or a CUDA ordinal */
    uint64_t ram_budget;       /* host bytes the loader may take for staging; 0 = path default */
    unsigned threads;          /* worker threads; 0 = chosen by the path */
    uint64_t chunk_bytes;      /* staging chunk; 0 = chosen by the path (4 MiB for a packed
                                  model decoded on the GPU) */
    unsigned verify;           /* HOIST_VERIFY_* flags; 0 = none */
    int mmap_register;         /* mmap to GPU: register the mapping and DMA from it (1), or
                                  copy through pinned staging slots (0); -1 = the faster default.
                                  A packed model always stages (its bytes are decoded first). */
    /* Places every tensor as planned (one arena per device the plan uses), device ignored;
     * NULL = every tensor on device. The plan must be of this model, and its previous weights
     * freed; it may be freed once the load returns (the weights keep its reservation). */
    const hoist_plan *plan;
    /* Optional (NULL = none): progress of the bytes placed into the destination (or handed to
     * hoist_load_sink's callback), total = hoist_model_total_bytes(). Called on the thread that
     * called hoist_load (hoist_load_sink), while it waits for the workers; the last call
     * (done == total) comes before verification. */
    hoist_progress_fn progress;
    void *progress_user;
    const char *manifest;      /* HOIST_VERIFY_MANIFEST: the manifest file; NULL = the default,
                                  hoist_model_manifest_path() */
    int64_t readahead_bytes;   /* stream path: how far past its workers' windows the kernel is
                                  asked to read (posix_fadvise WILLNEED), so the disk keeps a
                                  deep queue; those pages are dropped behind like the rest and,
                                  under ram_budget, counted against it. -1 = the path's default
                                  (HOIST_STREAM_READAHEAD), 0 = none; at most a quarter of
                                  a budget. Not asked of a file a cold load reads with
                                  O_DIRECT, which would read it twice. Other paths ignore it. */
    /* The embedder's device allocator for the arenas (NULL = hoist's own: cudaMalloc, or
     * aligned host memory for HOIST_DEVICE_HOST): every arena of the load is taken from it and,
     * when the weights' last reference goes, given back to it. hoist copies the struct; its user
     * pointer must stay valid while the weights live. hoist_load_sink ignores it. */
    const struct hoist_allocator *allocator;
    /* Tensor parallelism and cooperative loading (NULL = neither): this process is rank
     * tp->rank of tp->world and loads only its slice of each tensor, reading only that slice's
     * bytes from storage; see the tensor-parallel section at the end of this header. */
    const hoist_tp_options *tp;
} hoist_load_options;

/* Arena memory from the embedder: a framework's caching allocator (so that its accounting sees
 * the weights, and freeing the last tensor returns the memory to it), a pool, a NUMA policy.
 * alloc returns `bytes` (at least 1) of memory on `device` (a CUDA ordinal, or HOIST_DEVICE_HOST
 * for host memory) aligned to at least HOIST_ALLOCATOR_ALIGN bytes, or NULL when it cannot; the
 * load then fails with HOIST_E_DEVICE_NOMEM (HOIST_E_NOMEM on the host) naming the device, after
 * giving back any arena it already took. free receives the same device, pointer and byte count;
 * it is called once per successful alloc, on the thread that frees the last reference (or the
 * failed hoist_load's). Neither may call into hoist. Both are called with no hoist lock held. */
typedef struct hoist_allocator {
    size_t size;               /* sizeof(hoist_allocator): HOIST_ALLOCATOR_INIT */
    void *(*alloc)(void *user, int device, size_t bytes);
    void (*free)(void *user, int device, void *ptr, size_t bytes);
    void *user;
} hoist_allocator;

#define HOIST_ALLOCATOR_INIT                                                                      \
    {.size = sizeof(hoist_allocator), .alloc = NULL, .free = NULL, .user = NULL}
/* Tensor views start at multiples of 64 bytes inside an arena: the least alignment of one. */
#define HOIST_ALLOCATOR_ALIGN 64u

/* None: on the device machine's virtio disk reading ahead gained nothing at any distance
 * (docs/BENCHMARKS.md); storage that wants a deeper queue than the kernel keeps may differ. */
#define HOIST_STREAM_READAHEAD 0ll

#define HOIST_LOAD_OPTIONS_DEFAULT                                                                \
    {.size = sizeof(hoist_load_options), .path = HOIST_PATH_AUTO, .device = HOIST_DEVICE_HOST,  \
     .ram_budget = 0, .threads = 0, .chunk_bytes = 0, .verify = 0, .mmap_register = -1,         \
     .plan = NULL, .progress = NULL, .progress_user = NULL, .manifest = NULL,                   \
     .readahead_bytes = -1, .allocator = NULL, .tp = NULL}

typedef struct hoist_load_stats {
    size_t size;               /* set by the caller: HOIST_LOAD_STATS_INIT */
    const char *path;          /* name of the path that ran (after auto/fallbacks) */
    double seconds;            /* wall time of the whole call, teardown included */
    double read_seconds;       /* summed over workers: bytes from storage into host memory */
    double copy_seconds;       /* summed over workers: host to destination */
    double verify_seconds;     /* summed over workers: hashing bytes against the manifest or a
                                  packed model's chunk hashes */
    uint64_t bytes;            /* tensor bytes placed (model bytes) */
    uint64_t arena_bytes;      /* destination memory taken (alignment included), all devices */
    uint64_t peak_host_bytes;  /* high-water mark of loader-owned host memory (staging, tables) */
    unsigned threads;
    double decode_seconds;     /* summed over workers: decompressing a packed model's chunks
                                  on the CPU (codec 2 chunks decoded on the GPU run on the
                                  workers' streams and are not counted here) */
    double readback_seconds;   /* wall time of HOIST_VERIFY_READBACK */
    uint64_t file_bytes;       /* bytes of the files the load consumed: a packed model's
                                  compressed chunks; otherwise equal to bytes */
    uint64_t read_bytes;       /* bytes the path asked storage for: the windows, or with
                                  tensor-parallel slices only the slices' byte ranges, widened
                                  to the O_DIRECT unit (uring) or the page (mmap) */
    double exchange_seconds;   /* cooperative load: wall time of the exchange between ranks */
    uint64_t exchange_bytes;   /* cooperative load: bytes this rank received from the others */
    /* A packed model's codec 2 chunks decoded on the GPU (hoist pack --codec gpu), in model
     * bytes; and of those, the bytes no hash checked. The GPU hashes every chunk it decodes,
     * so that is 0; it counted the GPU's chunks when only opts.verify hashed them, and stays
     * for the programs that read it. docs/PACKED.md. */
    uint64_t gpu_decoded_bytes;
    uint64_t unhashed_bytes;
} hoist_load_stats;

#define HOIST_LOAD_STATS_INIT {.size = sizeof(hoist_load_stats)}

typedef struct hoist_weights hoist_weights;

/* Loads every tensor of model into one arena on opts->device, or with opts->plan one arena on
 * each device of the plan (checking first, before allocating, that each still has the free memory
 * its arena needs: HOIST_E_NO_FIT otherwise). opts may be NULL (defaults).
 * The weights keep the model alive. On success *out owns the weights: release with
 * hoist_weights_free(), which frees the arena. On failure *out is NULL and every host, pinned
 * and device buffer taken by the load has been released. */
HOIST_API int hoist_load(hoist_model *model, const hoist_load_options *opts, hoist_weights **out);
/* Releases one reference; the last one frees the arena (and releases the model). NULL is a
 * no-op. */
HOIST_API void hoist_weights_free(hoist_weights *weights);
/* Takes another reference on the weights and returns them (NULL stays NULL): each reference is
 * released with its own hoist_weights_free(), and the arena lives until the last one. Lets an
 * embedder hand views to owners with independent lifetimes (a DLPack deleter per tensor, as the
 * Python binding does). Thread-safe, as is releasing references from several threads. */
HOIST_API hoist_weights *hoist_weights_retain(hoist_weights *weights);
/* Weights alive in this process (loaded and not yet released by their last reference); when
 * arena_bytes is non-NULL it receives the bytes of their arenas. For leak checks in embedders and
 * tests: a binding proves that dropping its last view frees the arena. Thread-safe. */
HOIST_API size_t hoist_weights_live(uint64_t *arena_bytes);

typedef struct hoist_view {
    size_t size;               /* set by the caller: HOIST_VIEW_INIT */
    const char *name;          /* owned by the model */
    hoist_dtype dtype;
    uint32_t ndim;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t nbytes;
    int device;                /* HOIST_DEVICE_HOST or a CUDA ordinal */
    void *data;                /* host or device pointer into the arena; valid until freed */
} hoist_view;

#define HOIST_VIEW_INIT {.size = sizeof(hoist_view)}

HOIST_API size_t hoist_weights_count(const hoist_weights *weights);
/* Same order as hoist_model_tensor(). */
HOIST_API int hoist_weights_view(const hoist_weights *weights, size_t index, hoist_view *out);
HOIST_API int hoist_weights_find(const hoist_weights *weights, const char *name, hoist_view *out);
/* The load's figures. HOIST_E_INVALID_ARG for a NULL argument or a bad out->size (*out is then
 * untouched). */
HOIST_API int hoist_weights_stats(const hoist_weights *weights, hoist_load_stats *out);
/* Copies nbytes of tensor index from byte offset into dst (host memory), from wherever the
 * tensor lives. For tests and tools. */
HOIST_API int hoist_weights_read(const hoist_weights *weights, size_t index, uint64_t offset,
                                 void *dst, uint64_t nbytes);

/* ---- callback sink ------------------------------------------------------------------------- */

/* Bytes of one tensor, handed to a sink. The library's struct, not the caller's: it carries no
 * size and only ever grows at its end, so a sink reads only the fields of the hoist.h it was built
 * with (a field newer than the running library is absent: check hoist_version_number()). */
typedef struct hoist_piece {
    size_t tensor;             /* index as in hoist_model_tensor() */
    const char *name;          /* owned by the model */
    uint64_t offset;           /* of data within the tensor */
    uint64_t nbytes;           /* 0 only for a tensor without bytes */
    const void *data;          /* host memory, valid only during the call */
    int last;                  /* 1 on the piece that completes the tensor */
} hoist_piece;

/* Returns 0 to go on; anything else stops the load, which then fails with HOIST_E_ABORTED (a
 * negative hoist_status returned here is reported as such instead). */
typedef int (*hoist_sink_fn)(const hoist_piece *piece, void *user);

/* Streams every tensor of model to fn instead of placing it, for engines that place the bytes
 * themselves (or hash, or forward them). Pieces arrive in order: tensors in hoist_model_tensor()
 * order (file by file, by offset), each tensor's pieces by ascending offset, every tensor at
 * least once (a tensor without bytes as one empty piece). fn is never called concurrently, but
 * may be called from any of the load's worker threads. A piece is at most opts->chunk_bytes (the
 * path's window) long; a tensor larger than the RAM budget simply arrives in more pieces.
 *
 * opts may be NULL; opts->device must be left at its default, and opts->verify may hold
 * HOIST_VERIFY_MANIFEST (every piece is checked before the sink sees it) but not
 * HOIST_VERIFY_READBACK (there is no destination to read back). A packed model arrives decoded.
 * Host memory taken (staging, plan) stays within opts->ram_budget.
 * stats, if not NULL, receives the load's figures (arena_bytes 0). Returns HOIST_OK, the first
 * error of the load (message naming file, tensor and offset), or HOIST_E_ABORTED when fn stopped
 * it; every resource is released either way. */
HOIST_API int hoist_load_sink(hoist_model *model, const hoist_load_options *opts, hoist_sink_fn fn,
                              void *user, hoist_load_stats *stats);
/* ---- integrity: manifests ---------------------------------------------------------------- */

/* A manifest is a JSON sidecar that records, for every file of a checkpoint, its size and the
 * XXH3-64 hashes of its header, of every chunk_bytes-sized chunk of its tensor data (chunk k holds
 * the tensor bytes at file offsets [k * chunk_bytes, (k + 1) * chunk_bytes)), and of every tensor,
 * with the hoist version that wrote it. */
typedef struct hoist_sum_options {
    size_t size;               /* sizeof(hoist_sum_options): HOIST_SUM_OPTIONS_DEFAULT */
    const char *manifest;      /* the manifest file; NULL = hoist_model_manifest_path() */
    uint64_t chunk_bytes;      /* hoist_model_sum: bytes per chunk, a power of two from 4 KiB to
                                  1 GiB; 0 = 1 MiB. Ignored by hoist_model_verify. */
    unsigned threads;          /* 0 = online CPUs, at most 16 */
    /* Optional (NULL = none): the tensor bytes read and hashed (a packed model's: decoded and
     * checked) so far, total = every tensor byte; called on the calling thread while it waits
     * for the workers, the last call (done == total) once every byte is hashed, before the
     * manifest is written or compared. */
    hoist_progress_fn progress;
    void *progress_user;
} hoist_sum_options;

#define HOIST_SUM_OPTIONS_DEFAULT                                                                 \
    {.size = sizeof(hoist_sum_options), .manifest = NULL, .chunk_bytes = 0, .threads = 0,       \
     .progress = NULL, .progress_user = NULL}

/* The model's default manifest: its entry file (the .safetensors file, or the sharded index)
 * with ".hoist-sum" appended. Owned by the model; NULL for NULL. */
HOIST_API const char *hoist_model_manifest_path(const hoist_model *model);

/* Reads every file of the model once and writes its manifest (under a temporary name beside it,
 * then renamed over any old one). opts may be NULL. HOIST_E_UNSUPPORTED for a packed model: its
 * container holds the same hashes. On failure no manifest file is left behind. */
HOIST_API int hoist_model_sum(const hoist_model *model, const hoist_sum_options *opts);

/* Reads every byte of the model's files and checks it: against the manifest, or, for a packed
 * model, by decoding every chunk and checking it and every tensor against the container's
 * hashes. Every chunk is checked before it returns. HOIST_E_INTEGRITY names the file, tensor and
 * chunk of the first difference and counts the others; HOIST_E_NOT_FOUND when the manifest does
 * not exist; HOIST_E_BAD_MANIFEST when it is malformed or describes other files. */
HOIST_API int hoist_model_verify(const hoist_model *model, const hoist_sum_options *opts);

/* ---- packed models ------------------------------------------------------------------------ */

/* A packed model is one file: independently coded chunks (zstd frames, or for bf16/f16 with
 * HOIST_PACK_CODEC_GPU exponent-Huffman blocks), one per chunk_bytes model bytes of a tensor,
 * each with the XXH3-64 of the bytes it decodes to, and a tensor table at the end.
 * hoist_model_open() recognises it by its magic; hoist_load() decodes it on its worker threads
 * (codec 2 chunks into a GPU: on the GPU) through every path into the same arenas,
 * byte-identical to the original. docs/PACKED.md. */

#define HOIST_FORMAT_LIST(X)                                                                      \
    X(HOIST_FORMAT_SAFETENSORS, 0, "safetensors") /* a file, or shards with their index */       \
    X(HOIST_FORMAT_PACKED, 1, "packed")                                                           \
    X(HOIST_FORMAT_GGUF, 2, "gguf")

typedef enum hoist_format {
#define HOIST_X_ENUM(name, value, str) name = value,
    HOIST_FORMAT_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
} hoist_format;

/* "safetensors"; "?" for an unknown value. */
HOIST_API const char *hoist_format_name(hoist_format format);
/* The format of the model's files as opened (0.1 reported a GGUF file as safetensors);
 * HOIST_FORMAT_SAFETENSORS for NULL. */
HOIST_API hoist_format hoist_model_format(const hoist_model *model);

/* How a tensor's bytes are regrouped before compression. Trained weights keep their redundancy
 * in the exponent; grouping the bytes that carry it lets the entropy coder find it. */
#define HOIST_FILTER_LIST(X)                                                                      \
    X(HOIST_FILTER_NONE, 0, "none")          /* bytes as they are */                             \
    X(HOIST_FILTER_PLANES, 1, "planes")      /* byte k of every element together, k = 0.. */     \
    X(HOIST_FILTER_EXPONENT, 2, "exponent")  /* each element rotated left one bit (the sign to   \
                                                bit 0), then planes: bf16's and f32's top      \
                                                plane is then exactly the exponent */

typedef enum hoist_filter {
#define HOIST_X_ENUM(name, value, str) name = value,
    HOIST_FILTER_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
} hoist_filter;

/* hoist_pack_options.filter: each tensor gets the filter its dtype compresses best with. */
#define HOIST_FILTER_AUTO (-1)

/* "planes"; "?" for an unknown value. */
HOIST_API const char *hoist_filter_name(hoist_filter filter);
/* Parses a filter name, or "auto" (HOIST_FILTER_AUTO). HOIST_E_INVALID_ARG for anything else. */
HOIST_API int hoist_filter_parse(const char *text, int *filter);

/* hoist_pack_options.codec: how the chunks of bf16 and f16 tensors are coded. Other dtypes
 * always take zstd (or are stored raw where it saves under 1/32). */
#define HOIST_PACK_CODEC_LIST(X)                                                                  \
    X(HOIST_PACK_CODEC_ZSTD, 0, "zstd") /* a zstd frame per chunk, decoded on the CPU; a      \
                                           version 1 container, which every hoist reads */    \
    X(HOIST_PACK_CODEC_GPU, 1, "gpu")   /* exponent plane Huffman-coded in small blocks,      \
                                           sign+mantissa raw: decoded on the GPU straight     \
                                           into the arena (on the CPU for host loads); a      \
                                           version 2 container (docs/PACKED.md) */

typedef enum hoist_pack_codec {
#define HOIST_X_ENUM(name, value, str) name = value,
    HOIST_PACK_CODEC_LIST(HOIST_X_ENUM)
#undef HOIST_X_ENUM
} hoist_pack_codec;

typedef struct hoist_pack_options {
    size_t size;               /* sizeof(hoist_pack_options): HOIST_PACK_OPTIONS_DEFAULT */
    int level;                 /* zstd level 1..19; 0 = 1 (measured: higher levels compress
                                  weights no better and decode slower) */
    uint64_t chunk_bytes;      /* model bytes per frame, a power of two from 4 KiB to 64 MiB;
                                  0 = 256 KiB */
    int filter;                /* a hoist_filter for every 16-, 32- and 64-bit tensor (others
                                  are stored unfiltered), or HOIST_FILTER_AUTO: exponent for
                                  floats, planes for integers */
    unsigned threads;          /* 0 = online CPUs */
    int overwrite;             /* replace out_path if it exists (else HOIST_E_INVALID_ARG) */
    /* Optional (NULL = none): model bytes compressed and written so far, total = every tensor
     * byte; called on the calling thread between batches, the last call (done == total) once
     * every chunk is written, before the index. */
    hoist_progress_fn progress;
    void *progress_user;
    int codec;                 /* a hoist_pack_codec; default HOIST_PACK_CODEC_ZSTD */
} hoist_pack_options;

#define HOIST_PACK_OPTIONS_DEFAULT                                                                \
    {.size = sizeof(hoist_pack_options), .level = 0, .chunk_bytes = 0,                          \
     .filter = HOIST_FILTER_AUTO, .threads = 0, .overwrite = 0, .progress = NULL,               \
     .progress_user = NULL, .codec = HOIST_PACK_CODEC_ZSTD}

typedef struct hoist_pack_stats {
    size_t size;               /* set by the caller: HOIST_PACK_STATS_INIT */
    uint64_t model_bytes;      /* tensor bytes packed */
    uint64_t file_bytes;       /* size of the container written */
    uint64_t chunks;
    uint64_t raw_chunks;       /* chunks stored uncompressed (compression saved under 1/32) */
    double seconds;
} hoist_pack_stats;

#define HOIST_PACK_STATS_INIT {.size = sizeof(hoist_pack_stats)}

/* Writes model (any format hoist opens) as a packed container at out_path: written under a
 * temporary name beside it, then renamed. Refuses to overwrite one of the model's own files.
 * opts and stats may be NULL. On failure no file is left behind. */
HOIST_API int hoist_pack(const hoist_model *model, const char *out_path,
                         const hoist_pack_options *opts, hoist_pack_stats *stats);

typedef struct hoist_packed_info {
    size_t size;               /* set by the caller: HOIST_PACKED_INFO_INIT */
    uint32_t version;          /* container version */
    uint64_t chunk_bytes;      /* model bytes per chunk */
    uint64_t chunks;
    uint64_t stored_bytes;     /* bytes of all frames */
} hoist_packed_info;

#define HOIST_PACKED_INFO_INIT {.size = sizeof(hoist_packed_info)}

/* HOIST_E_UNSUPPORTED when the model is not packed. */
HOIST_API int hoist_model_packed_info(const hoist_model *model, hoist_packed_info *out);

typedef struct hoist_tensor_packing {
    size_t size;               /* set by the caller: HOIST_TENSOR_PACKING_INIT */
    hoist_filter filter;
    uint64_t chunks;
    uint64_t stored_bytes;     /* bytes of its frames in the container */
    uint64_t xxh3;             /* XXH3-64 of the tensor's bytes (as a manifest records it) */
    uint64_t gpu_chunks;       /* chunks in codec 2 (HOIST_PACK_CODEC_GPU; the rest are zstd
                                  frames or stored raw) */
} hoist_tensor_packing;

#define HOIST_TENSOR_PACKING_INIT {.size = sizeof(hoist_tensor_packing)}

/* Same index as hoist_model_tensor(). HOIST_E_UNSUPPORTED when the model is not packed. */
HOIST_API int hoist_model_tensor_packing(const hoist_model *model, size_t index,
                                         hoist_tensor_packing *out);

/* ---- ceilings ----------------------------------------------------------------------------- */

/* What the load paths compete with, measured on a model's own files, so that a load's speed can
 * be judged as a fraction of what the machine allows (hoist bench reports both in one run). The
 * third ceiling, the pinned host-to-device copy, is hoist_device_copy_bandwidth(). */

typedef struct hoist_ceiling_options {
    size_t size;               /* sizeof(hoist_ceiling_options): HOIST_CEILING_OPTIONS_DEFAULT */
    int device;                /* staging ceiling: HOIST_DEVICE_HOST or a CUDA ordinal */
    unsigned threads;          /* read: rings (one thread each), 0 = 8; staging: copying
                                  threads, 0 = the best of 1, 2, 4 ... min(cores, 16) */
    unsigned queue_depth;      /* read: reads in flight per ring, 0 = 16; staging: 3 slots */
    uint64_t block_bytes;      /* read size, or staging slot: a multiple of 4096 up to 1 GiB;
                                  0 = 1 MiB for reads, 2 MiB for staging. With threads,
                                  queue_depth and block_bytes all 0 the read ceiling sweeps
                                  several shapes instead (see hoist_read_ceiling) */
    hoist_progress_fn progress; /* optional; called on the calling thread */
    void *progress_user;
} hoist_ceiling_options;

#define HOIST_CEILING_OPTIONS_DEFAULT                                                             \
    {.size = sizeof(hoist_ceiling_options), .device = HOIST_DEVICE_HOST, .threads = 0,          \
     .queue_depth = 0, .block_bytes = 0, .progress = NULL, .progress_user = NULL}

typedef struct hoist_ceiling {
    size_t size;               /* set by the caller: HOIST_CEILING_INIT */
    uint64_t bytes;            /* bytes of the pass reported: every byte of every file, or
                                  for the read sweep the fastest shape's slice of them */
    double seconds;            /* wall time of the timed pass (setup excluded) */
    double gbps;               /* bytes / seconds / 1e9 */
    unsigned threads;          /* of the pass reported (the best one of a sweep) */
    unsigned queue_depth;      /* reads in flight per ring, or staging slots per thread */
    uint64_t block_bytes;
    int direct;                /* read: every byte came through O_DIRECT */
    int uring;                 /* read: every ring came up (else threaded pread) */
    int fixed_buffers;         /* read: every ring registered its buffers */
    char note[256];            /* the fallbacks taken and why; "" when none */
} hoist_ceiling;

#define HOIST_CEILING_INIT {.size = sizeof(hoist_ceiling)}

/* The raw read ceiling: reads every byte of the model's files with O_DIRECT through io_uring,
 * `threads` rings each keeping `queue_depth` reads of `block_bytes` in flight into registered
 * (fixed) buffers, and discards them: no copy, no GPU. With those options all 0 it sweeps four
 * shapes (8 x 16 x 1 MiB, 16 x 4 x 512 KiB as the uring path reads, 4 x 32 x 1 MiB,
 * 16 x 8 x 2 MiB), each over its own quarter of every file so that the sweep reads the model
 * once and no shape reads what another one may have left in a cache, and reports the fastest;
 * out->note lists each shape's GB/s. Where O_DIRECT is refused (the filesystem
 * has no support, EINVAL at open or on a read) the file is read buffered after its page cache is
 * dropped (posix_fadvise), and where io_uring is unavailable the threads use pread; both are
 * recorded in out->direct / out->uring and out->note, and logged once. Takes threads x
 * queue_depth x block_bytes of host memory (256 MiB for the sweep's largest shape). Failures (a file that cannot be opened or read, or
 * that changed since the model was opened) leave a message naming the file and offset; out is
 * then zeroed (up to its size, which is kept). */
HOIST_API int hoist_read_ceiling(const hoist_model *model, const hoist_ceiling_options *opts,
                                 hoist_ceiling *out);

/* The host staging ceiling: maps the model's files, brings them into the page cache (untimed),
 * then `threads` threads copy them in `block_bytes` windows into pinned slots (3 per thread)
 * with asynchronous copies to opts->device overlapping the next window's copy, as the mmap path
 * does; into host memory directly for HOIST_DEVICE_HOST. The destination is a buffer of at most
 * 1 GiB that the windows cycle through. With threads = 0 it runs one timed pass per thread count
 * of the sweep and reports the fastest. Takes threads x 3 x block_bytes of pinned memory, the
 * destination buffer, and page cache for the files. Errors as hoist_read_ceiling. */
HOIST_API int hoist_staging_ceiling(const hoist_model *model, const hoist_ceiling_options *opts,
                                    hoist_ceiling *out);
/* ---- inference ---------------------------------------------------------------------------- */

/* A Llama-family forward pass (RMSNorm, rotary embeddings, grouped-query attention with a KV
 * cache, SwiGLU MLP, greedy decoding) over loaded weights, without copying them: an fp32 C
 * reference for weights in host memory, CUDA kernels and cuBLAS for weights on GPUs (each layer
 * runs on the device its tensors were placed on). Weights in bf16, f16 or f32; accumulation in
 * fp32. Computed as transformers computes Llama, Mistral, Qwen2 and Qwen3: rope scaling of types
 * linear, dynamic, yarn and llama3, q/k/v/o and MLP biases, Qwen3's q/k norms. A session is not
 * thread-safe; sessions over the same weights are independent. */
typedef struct hoist_session hoist_session;

typedef struct hoist_session_options {
    size_t size;               /* sizeof(hoist_session_options): HOIST_SESSION_OPTIONS_DEFAULT */
    uint32_t max_tokens;       /* KV-cache positions; 0 = min(max_position, 4096) */
    uint32_t max_batch;        /* prompt tokens per forward pass; 0 = 256 */
    int cuda_graphs;           /* replay decode steps as a CUDA graph (single GPU): 1 on, 0 off */
} hoist_session_options;

#define HOIST_SESSION_OPTIONS_DEFAULT                                                             \
    {.size = sizeof(hoist_session_options), .max_tokens = 0, .max_batch = 0, .cuda_graphs = 1}

typedef struct hoist_session_stats {
    size_t size;                     /* set by the caller: HOIST_SESSION_STATS_INIT */
    const char *backend;             /* "cpu" or "cuda" */
    uint32_t position;               /* tokens in the KV cache */
    uint64_t prefill_tokens;         /* through hoist_session_prefill and generate's prompt */
    double prefill_seconds;
    uint64_t decode_tokens;          /* one per decode step (hoist_session_decode, generate) */
    double decode_seconds;
    double first_token_seconds;      /* last generate: start to the first new token on the host */
    uint64_t weight_bytes_per_token; /* weight bytes one decode step reads */
    uint64_t kv_cache_bytes;
    uint64_t device_bytes;           /* KV cache plus scratch the session allocated */
} hoist_session_stats;

#define HOIST_SESSION_STATS_INIT {.size = sizeof(hoist_session_stats)}

/* Creates a session over weights (which must stay loaded until the session is freed) with the
 * geometry g (copied). Every tensor a Llama checkpoint names (model.embed_tokens.weight,
 * model.layers.N.{input_layernorm,self_attn.{q,k,v,o}_proj,post_attention_layernorm,
 * mlp.{gate,up,down}_proj}.weight, model.norm.weight, lm_head.weight unless tied) is looked up
 * and its shape checked against g: HOIST_E_NOT_FOUND or HOIST_E_BAD_TENSOR naming the tensor.
 * Biases and q/k norms are bound as the geometry announces them (self_attn.{q,k,v,o}_proj.bias,
 * mlp.{gate,up,down}_proj.bias, self_attn.{q,k}_norm.weight; GGUF: attn_{q,k,v,output}.bias,
 * ffn_{gate,up,down}.bias, attn_{q,k}_norm.weight, and rope_freqs.weight, llama.cpp's llama3
 * frequency factors). Weights spread over host and GPU memory, or dtypes other than bf16/f16/f32, give
 * HOIST_E_UNSUPPORTED. opts may be NULL. On success *out owns the session (free it with
 * hoist_session_free); on failure *out is NULL and nothing is held. */
HOIST_API int hoist_session_create(const hoist_weights *weights, const hoist_geometry *g,
                                   const hoist_session_options *opts, hoist_session **out);
/* Whether the forward pass computes what g describes, for a session with opts (NULL: defaults),
 * before anything is loaded: HOIST_E_BAD_CONFIG naming the configuration key and its value for a
 * model_type other than llama, mistral, qwen2 and qwen3, g->unsupported, or a shape the kernels
 * cannot take. hoist_session_create checks the same. A sliding window is attended as
 * transformers does (key j is seen from position p when p - j < sliding_window, in the layers from
 * window_from_layer on); the KV cache still holds every position of the session. */
HOIST_API int hoist_session_check(const hoist_geometry *g, const hoist_session_options *opts);
/* The same, and the model's tensor table against g, reading no tensor data: every tensor of a
 * decoder layer must be one the geometry announces (a layer past n_layers, a bias or a q/k norm
 * the configuration does not announce: HOIST_E_BAD_TENSOR naming the tensor), and every tensor it
 * announces must be there with its shape (HOIST_E_NOT_FOUND or HOIST_E_BAD_TENSOR).
 * hoist_session_create checks the loaded views the same way. */
HOIST_API int hoist_session_check_model(const hoist_model *model, const hoist_geometry *g,
                                        const hoist_session_options *opts);
/* NULL is a no-op. */
HOIST_API void hoist_session_free(hoist_session *s);
/* Empties the KV cache (position 0) and returns dynamic NTK's frequencies to their initial ones
 * (a fresh model's; within a session they follow transformers' rotary state, which keeps the
 * longest sequence seen); statistics are kept. */
HOIST_API int hoist_session_reset(hoist_session *s);
/* Runs n tokens (each below vocab) through the model at the cache's position and appends them
 * to the cache; their last token's logits become available. HOIST_E_TOO_MANY when the cache
 * would overflow (nothing is run). Returns when the work is done. */
HOIST_API int hoist_session_prefill(hoist_session *s, const int32_t *tokens, size_t n);
/* One decode step: hoist_session_prefill of one token, counted as decoding. */
HOIST_API int hoist_session_decode(hoist_session *s, int32_t token);
/* Copies the last token's logits (n >= vocab floats) into out. HOIST_E_INVALID_ARG before any
 * token has run. */
HOIST_API int hoist_session_logits(hoist_session *s, float *out, size_t n);
/* Greedy decoding: prefills the prompt (n_prompt >= 1 tokens), then produces n_new tokens into
 * out (n_new ints), each the argmax of the previous logits (the first of equal values). Decode
 * steps run back to back without a host round trip per token. Fills the stats' first-token and
 * decode figures. */
HOIST_API int hoist_session_generate(hoist_session *s, const int32_t *prompt, size_t n_prompt,
                                     size_t n_new, int32_t *out);
/* The session's figures. HOIST_E_INVALID_ARG for a NULL argument or a bad out->size (*out is then
 * untouched). */
HOIST_API int hoist_session_stats_get(const hoist_session *s, hoist_session_stats *out);

/* ---- tensor parallelism and cooperative loading ------------------------------------------- */

/* Tensor parallelism: an engine running a model over `world` GPUs gives each rank a slice of most
 * matrices. hoist_load with hoist_load_options.tp loads only this rank's slice of each tensor,
 * and reads only that slice's bytes from storage: a slice along dim 0 is one range of the file,
 * a slice along dim 1 one range per row, each read exactly (merged where they touch; widened only
 * to the O_DIRECT unit on uring and to pages on mmap). The slice lands in the arena as a tensor of
 * its own, row-major; its view reports the slice's shape and bytes.
 *
 * Cooperative loading: ranks that all need the same bytes (a replicated tensor, or every tensor
 * when nothing is split) each read 1/world of them over their own storage and PCIe path, then
 * exchange the rest: hoist does it over the embedder's NCCL communicator, hoist_load_group over
 * one of its own, or the caller over its own group (hoist_weights_tp_share says where).
 * docs/TENSOR_PARALLEL.md has worked examples in C and Python. */

/* hoist_tp_split.dim: every rank gets the whole tensor. */
#define HOIST_TP_REPLICATE (-1)

/* How one tensor is cut, as a rule decides it. The library's struct, filled by a rule callback:
 * it has no size and only grows at its end (as hoist_piece). */
typedef struct hoist_tp_split {
    int dim;        /* HOIST_TP_REPLICATE, or the dimension cut (0 = outermost, the rows of a
                       Hugging Face [out, in] matrix; 1 = its columns), below the tensor's ndim */
    uint32_t parts; /* the dimension is cut into this many equal parts... */
    uint32_t index; /* ...and this rank takes part `index` (< parts) */
    int pad;        /* when parts does not divide the dimension: 0 refuses the tensor
                       (HOIST_E_INVALID_ARG naming it); 1 gives every part ceil(n / parts)
                       entries (whole blocks of a block type), the entries past n zero-filled */
} hoist_tp_split;

/* A rule for tensors the default rules do not know, or to override them. Called on the loading
 * thread, once per tensor per load, before anything is read; `split` arrives as HOIST_TP_REPLICATE
 * with parts = world, index = rank and pad = the options' pad. Returns 0 to take `split` as
 * filled, HOIST_TP_RULE_DEFAULT to let the default rules decide (or replicate, when
 * rules_default is 0), or a negative hoist_status to fail the load (anything else negative is
 * HOIST_E_ABORTED). */
typedef int (*hoist_tp_rule_fn)(const hoist_tensor_info *tensor, int rank, int world,
                                hoist_tp_split *split, void *user);
#define HOIST_TP_RULE_DEFAULT 1

/* The default rules (rules_default = 1), for the Llama families by Hugging Face and GGUF names,
 * as vLLM and Megatron split them (shapes outermost first, HF's [out, in]):
 *  - dim 0 (column-parallel): q_proj / attn_q, k_proj / attn_k, v_proj / attn_v, gate_proj /
 *    ffn_gate, up_proj / ffn_up, and the vocabulary rows of embed_tokens / token_embd and
 *    lm_head / output; their biases likewise;
 *  - dim 1 (row-parallel): o_proj / attn_output, down_proj / ffn_down; their biases replicated;
 *  - everything else replicated (every *norm*, rotary tables).
 * Attention is cut by whole heads: q and o need n_heads % world == 0. k and v are cut by kv
 * heads when n_kv_heads >= world (n_kv_heads % world == 0); with fewer kv heads than ranks
 * (world % n_kv_heads == 0) each rank gets the one kv head its query heads use, kv head
 * rank / (world / n_kv_heads), as vLLM replicates them. The head counts come from the options,
 * else the model's geometry (config.json or GGUF metadata). A dimension that does not divide is
 * refused naming the tensor unless the options' pad is set (heads are never padded). */
struct hoist_tp_options {
    size_t size;             /* sizeof(hoist_tp_options): HOIST_TP_OPTIONS_DEFAULT */
    int rank;                /* this process's rank, 0 <= rank < world */
    int world;               /* ranks; 1 = one rank holding everything */
    hoist_tp_rule_fn rule;   /* optional: decides tensors first (see hoist_tp_rule_fn) */
    void *rule_user;
    int rules_default;       /* 1: the default rules above; 0: whatever the rule leaves is
                                replicated */
    int pad;                 /* the default rules pad dimensions that do not divide */
    uint32_t heads;          /* attention heads; 0 = the model's geometry */
    uint32_t kv_heads;       /* kv heads; 0 = the model's geometry */
    /* 1: bytes every rank holds alike (replicated tensors; every tensor when nothing is split)
     * are read 1/world by each rank and exchanged. They lie first in the arena, in `world`
     * equal parts, rank r's part read by rank r. */
    int cooperative;
    /* cooperative: this rank's ncclComm_t, whose rank and size must be rank and world, over
     * which hoist_load all-gathers the parts in place on opts->device (a CUDA device) before it
     * returns. First every rank learns every other's outcome, so a rank that failed makes all
     * of them fail (HOIST_E_ABORTED naming it) rather than hang; a rank that cannot even reach
     * that point (a bad options size) leaves the others waiting in NCCL. NULL: the caller
     * completes the exchange itself (hoist_weights_tp_share). NCCL is loaded at run time
     * (hoist_nccl_version). */
    void *nccl_comm;
};

#define HOIST_TP_OPTIONS_DEFAULT                                                                  \
    {.size = sizeof(hoist_tp_options), .rank = 0, .world = 1, .rule = NULL, .rule_user = NULL,  \
     .rules_default = 1, .pad = 0, .heads = 0, .kv_heads = 0, .cooperative = 0,                 \
     .nccl_comm = NULL}

/* The default rules' decision for one tensor of model (name, shape) as rank of world, without
 * loading: what a rule callback may start from, and what hoist plan --tp prints.
 * HOIST_E_INVALID_ARG naming the tensor when they cannot cut it (heads that do not divide, no
 * head counts known). opts gives heads, kv_heads and pad (NULL: from the model, no padding). */
HOIST_API int hoist_tp_default_rule(const hoist_model *model, size_t tensor,
                                    const hoist_tp_options *opts, hoist_tp_split *split);

/* Where a cooperative load's shared bytes lie, to complete the exchange over the caller's own
 * group: `world` parts of part_bytes from base, rank r's part at base + r * part_bytes, every
 * part but this rank's still to be filled (pending = 1) by an all-gather of the caller's: in
 * Python, torch.distributed.all_gather_into_tensor over a uint8 tensor of those bytes. */
typedef struct hoist_tp_share {
    size_t size;             /* set by the caller: HOIST_TP_SHARE_INIT */
    int rank, world;
    int device;              /* where base lives (HOIST_DEVICE_HOST or a CUDA ordinal) */
    void *base;
    uint64_t part_bytes;
    uint64_t bytes;          /* world * part_bytes; 0 when the load shares nothing */
    int pending;             /* 1 until the caller's exchange (hoist did none); 0 when hoist
                                completed it, or there is nothing to share */
} hoist_tp_share;

#define HOIST_TP_SHARE_INIT {.size = sizeof(hoist_tp_share)}

/* The shared region of weights loaded with tp->cooperative (bytes 0 for any other load).
 * HOIST_E_INVALID_ARG for NULL or a bad out->size. */
HOIST_API int hoist_weights_tp_share(const hoist_weights *weights, hoist_tp_share *out);

/* Loads model once per device, on one thread each, as rank i of n = ndevices on devices[i]
 * (at most HOIST_PLAN_MAX_DEVICES; no GPU twice, while the host may be every rank, each with an
 * arena of its own: CPU engines, and tests). opts->tp gives the rules and cooperative (its
 * rank and nccl_comm are ignored, its world must be n or 1, taken as n); with opts->tp NULL every
 * device gets every tensor whole, each reading all of them. With cooperative set and every device
 * a GPU, hoist creates one NCCL communicator over them (ncclCommInitAll) and each rank's shared
 * part reaches the others through it; on the host the parts are copied. opts->device is ignored
 * and opts->plan must be NULL; opts->progress, when set, is called by every rank's thread,
 * concurrently. out[i] receives rank i's weights; on failure every out[i] is NULL and nothing is
 * held (the message names the first rank that failed). */
HOIST_API int hoist_load_group(hoist_model *model, const hoist_load_options *opts,
                               const int *devices, size_t ndevices, hoist_weights **out);

/* NCCL as loaded at run time: dlopen("libnccl.so.2") (the library path, then the file named by
 * HOIST_NCCL_LIBRARY, then the nvidia-nccl wheel under a site-packages directory named by
 * HOIST_NCCL_SITE_PACKAGES or found beside torch via PYTHONPATH). *version: NCCL_VERSION_CODE
 * (e.g. 22703). HOIST_E_UNSUPPORTED naming every place tried when none loads. */
HOIST_API int hoist_nccl_version(int *version);

#ifdef __cplusplus
}
#endif
#endif /* HOIST_H */
