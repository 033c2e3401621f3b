/* The size-prefixed structs of the public ABI (include/hoist.h's conventions, docs/ABI.md).
 *
 * Every public function that reads or writes a caller's struct goes through these helpers, so that
 * the rule lives in one place: read and write only min(caller's size, ours) bytes, give the fields
 * past the caller's their defaults, never write the caller's size, and refuse a size of 0 or one
 * below the struct's first sized layout with HOIST_E_INVALID_ARG naming the function and the
 * struct. Internal code works on the library's own full-size copy and never sees a short one. */
#ifndef HOIST_CORE_ABI_H
#define HOIST_CORE_ABI_H

#include "core/core.h"

#include <stddef.h>

/* X(type, the last field of its first sized layout (0.2.0), the initializer callers use).
 * A row is frozen once published: programs built against that layout pass a size that ends at
 * (or after, with padding) that field, and no smaller size was ever legitimate. A struct added
 * later gets a row naming the last field of its own first layout. */
#define HOIST__SIZED_STRUCTS(X)                                                                   \
    X(hoist_open_options, strict, "HOIST_OPEN_OPTIONS_DEFAULT")                                   \
    X(hoist_tensor_info, offset, "HOIST_TENSOR_INFO_INIT")                                        \
    X(hoist_meta_value, text, "HOIST_META_VALUE_INIT")                                            \
    X(hoist_geometry, dtype, "HOIST_GEOMETRY_INIT")                                               \
    X(hoist_device_info, compute_minor, "HOIST_DEVICE_INFO_INIT")                                 \
    X(hoist_plan_device, reserve_bytes, "HOIST_PLAN_DEVICE_DEFAULT")                              \
    X(hoist_plan_options, coordinator, "HOIST_PLAN_OPTIONS_DEFAULT")                              \
    X(hoist_plan_info, ndevices, "HOIST_PLAN_INFO_INIT")                                          \
    X(hoist_plan_usage, head, "HOIST_PLAN_USAGE_INIT")                                            \
    X(hoist_fit, max_seq_len, "HOIST_FIT_INIT")                                                   \
    X(hoist_load_options, readahead_bytes, "HOIST_LOAD_OPTIONS_DEFAULT")                          \
    X(hoist_load_stats, file_bytes, "HOIST_LOAD_STATS_INIT")                                      \
    X(hoist_view, data, "HOIST_VIEW_INIT")                                                        \
    X(hoist_sum_options, threads, "HOIST_SUM_OPTIONS_DEFAULT")                                    \
    X(hoist_pack_options, overwrite, "HOIST_PACK_OPTIONS_DEFAULT")                                \
    X(hoist_pack_stats, seconds, "HOIST_PACK_STATS_INIT")                                         \
    X(hoist_packed_info, stored_bytes, "HOIST_PACKED_INFO_INIT")                                  \
    X(hoist_tensor_packing, xxh3, "HOIST_TENSOR_PACKING_INIT")                                    \
    X(hoist_ceiling_options, progress_user, "HOIST_CEILING_OPTIONS_DEFAULT")                      \
    X(hoist_ceiling, note, "HOIST_CEILING_INIT")                                                  \
    X(hoist_session_options, cuda_graphs, "HOIST_SESSION_OPTIONS_DEFAULT")                        \
    X(hoist_session_stats, device_bytes, "HOIST_SESSION_STATS_INIT")                              \
    X(hoist_allocator, user, "HOIST_ALLOCATOR_INIT")                                              \
    X(hoist_tp_options, nccl_comm, "HOIST_TP_OPTIONS_DEFAULT")                                    \
    X(hoist_tp_share, pending, "HOIST_TP_SHARE_INIT")

/* What the helpers need to know of one struct (core/abi.c defines one per row above). */
typedef struct hoist__sized {
    const char *name;          /* "hoist_load_options" */
    const char *init;          /* "HOIST_LOAD_OPTIONS_DEFAULT", for the error message */
    size_t min;                /* end of the first sized layout's last field */
    size_t ours;               /* sizeof in this build */
} hoist__sized;

#define HOIST__X_DECLARE(type, last, init) extern const hoist__sized hoist__sized_##type;
HOIST__SIZED_STRUCTS(HOIST__X_DECLARE)
#undef HOIST__X_DECLARE

/* HOIST_E_INVALID_ARG (message: "fn: type.size is N; initialise it with INIT (at least M)")
 * unless caller->size is at least k->min. caller must not be NULL. */
int hoist__struct_check(const hoist__sized *k, const void *caller, const char *fn);

/* Builds the library's full-size copy of an input: *defaults (zeros when NULL), then the first
 * min(caller->size, ours) bytes of the caller's struct over them, then size = ours. A NULL caller
 * gives the defaults alone (the "opts may be NULL" convention). dst holds k->ours bytes. On a bad
 * size dst holds the defaults and the error is returned. */
int hoist__struct_in(const hoist__sized *k, void *dst, const void *caller, const void *defaults,
                     const char *fn);

/* hoist__struct_in for element i of a caller's array (hoist_plan_options.devices): the array's
 * stride is element 0's size, which every element must carry (else HOIST_E_INVALID_ARG naming
 * the element). array must not be NULL. */
int hoist__struct_in_at(const hoist__sized *k, void *dst, const void *array, size_t i,
                        const void *defaults, const char *fn);

/* Copies the library's full-size result src into the caller's struct: bytes [sizeof(size_t),
 * min(caller->size, ours)), leaving the caller's size and anything past it alone. The caller's
 * size must have passed hoist__struct_check. */
void hoist__struct_out(const hoist__sized *k, void *caller, const void *src);

/* Zeroes the caller's result as hoist__struct_out would write it (bytes [sizeof(size_t),
 * min(caller->size, ours))): what a function documented to zero its result on failure leaves.
 * The caller's size must have passed hoist__struct_check. */
void hoist__struct_zero(const hoist__sized *k, void *caller);

/* The same bound to a struct type, with the calling function's name for the message. The pointer
 * comparisons only make the compiler check that the pointers are of that type. */
#define HOIST__CHECK(type, caller)                                                                \
    ((void)sizeof((caller) == (const type *)0),                                                   \
     hoist__struct_check(&hoist__sized_##type, (caller), __func__))
#define HOIST__IN(type, dst, caller, defaults)                                                    \
    ((void)sizeof((dst) == (type *)0), (void)sizeof((caller) == (const type *)0),                 \
     hoist__struct_in(&hoist__sized_##type, (dst), (caller), (defaults), __func__))
#define HOIST__IN_AT(type, dst, array, i, defaults)                                               \
    ((void)sizeof((dst) == (type *)0), (void)sizeof((array) == (const type *)0),                  \
     hoist__struct_in_at(&hoist__sized_##type, (dst), (array), (i), (defaults), __func__))
#define HOIST__OUT(type, caller, src)                                                             \
    ((void)sizeof((caller) == (type *)0), (void)sizeof((src) == (const type *)0),                 \
     hoist__struct_out(&hoist__sized_##type, (caller), (src)))
#define HOIST__ZERO(type, caller)                                                                 \
    ((void)sizeof((caller) == (type *)0), hoist__struct_zero(&hoist__sized_##type, (caller)))

#endif
