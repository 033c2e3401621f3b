/* Prints the size and field offsets of every public struct, as the C compiler lays them out, one
 * JSON object per line. The Python binding's ABI test (python/tests/test_abi.py) compares them
 * with its ctypes mirrors, so a field added to include/hoist.h fails CI until the binding has it.
 * Each of these structs starts with its size_t size (docs/ABI.md), which the test checks too. */
#include "hoist.h"

#include <stddef.h>
#include <stdio.h>

#define FIELD(type, f)                                                                            \
    printf("%s\"%s\": [%zu, %zu]", first ? "" : ", ", #f, offsetof(type, f),                     \
           sizeof(((type *)0)->f)),                                                               \
        first = 0
#define BEGIN(type)                                                                               \
    do {                                                                                          \
        int first = 1;                                                                            \
        printf("{\"struct\": \"%s\", \"size\": %zu, \"fields\": {", #type, sizeof(type))
#define END()                                                                                     \
    printf("}}\n");                                                                               \
    }                                                                                             \
    while (0)

int main(void)
{
    BEGIN(hoist_tensor_info);
    FIELD(hoist_tensor_info, size);
    FIELD(hoist_tensor_info, name);
    FIELD(hoist_tensor_info, dtype);
    FIELD(hoist_tensor_info, ndim);
    FIELD(hoist_tensor_info, shape);
    FIELD(hoist_tensor_info, nbytes);
    FIELD(hoist_tensor_info, file);
    FIELD(hoist_tensor_info, offset);
    END();
    BEGIN(hoist_view);
    FIELD(hoist_view, size);
    FIELD(hoist_view, name);
    FIELD(hoist_view, dtype);
    FIELD(hoist_view, ndim);
    FIELD(hoist_view, shape);
    FIELD(hoist_view, nbytes);
    FIELD(hoist_view, device);
    FIELD(hoist_view, data);
    END();
    BEGIN(hoist_load_options);
    FIELD(hoist_load_options, size);
    FIELD(hoist_load_options, path);
    FIELD(hoist_load_options, device);
    FIELD(hoist_load_options, ram_budget);
    FIELD(hoist_load_options, threads);
    FIELD(hoist_load_options, chunk_bytes);
    FIELD(hoist_load_options, verify);
    FIELD(hoist_load_options, mmap_register);
    FIELD(hoist_load_options, plan);
    FIELD(hoist_load_options, progress);
    FIELD(hoist_load_options, progress_user);
    FIELD(hoist_load_options, manifest);
    FIELD(hoist_load_options, readahead_bytes);
    FIELD(hoist_load_options, allocator);
    FIELD(hoist_load_options, tp);
    END();
    BEGIN(hoist_load_stats);
    FIELD(hoist_load_stats, size);
    FIELD(hoist_load_stats, path);
    FIELD(hoist_load_stats, seconds);
    FIELD(hoist_load_stats, read_seconds);
    FIELD(hoist_load_stats, copy_seconds);
    FIELD(hoist_load_stats, verify_seconds);
    FIELD(hoist_load_stats, bytes);
    FIELD(hoist_load_stats, arena_bytes);
    FIELD(hoist_load_stats, peak_host_bytes);
    FIELD(hoist_load_stats, threads);
    FIELD(hoist_load_stats, decode_seconds);
    FIELD(hoist_load_stats, readback_seconds);
    FIELD(hoist_load_stats, file_bytes);
    FIELD(hoist_load_stats, read_bytes);
    FIELD(hoist_load_stats, exchange_seconds);
    FIELD(hoist_load_stats, exchange_bytes);
    FIELD(hoist_load_stats, gpu_decoded_bytes);
    FIELD(hoist_load_stats, unhashed_bytes);
    END();
    BEGIN(hoist_tp_options);
    FIELD(hoist_tp_options, size);
    FIELD(hoist_tp_options, rank);
    FIELD(hoist_tp_options, world);
    FIELD(hoist_tp_options, rule);
    FIELD(hoist_tp_options, rule_user);
    FIELD(hoist_tp_options, rules_default);
    FIELD(hoist_tp_options, pad);
    FIELD(hoist_tp_options, heads);
    FIELD(hoist_tp_options, kv_heads);
    FIELD(hoist_tp_options, cooperative);
    FIELD(hoist_tp_options, nccl_comm);
    END();
    BEGIN(hoist_tp_share);
    FIELD(hoist_tp_share, size);
    FIELD(hoist_tp_share, rank);
    FIELD(hoist_tp_share, world);
    FIELD(hoist_tp_share, device);
    FIELD(hoist_tp_share, base);
    FIELD(hoist_tp_share, part_bytes);
    FIELD(hoist_tp_share, bytes);
    FIELD(hoist_tp_share, pending);
    END();
    BEGIN(hoist_device_info);
    FIELD(hoist_device_info, size);
    FIELD(hoist_device_info, id);
    FIELD(hoist_device_info, name);
    FIELD(hoist_device_info, total_bytes);
    FIELD(hoist_device_info, free_bytes);
    FIELD(hoist_device_info, compute_major);
    FIELD(hoist_device_info, compute_minor);
    END();
    BEGIN(hoist_allocator);
    FIELD(hoist_allocator, size);
    FIELD(hoist_allocator, alloc);
    FIELD(hoist_allocator, free);
    FIELD(hoist_allocator, user);
    END();
    BEGIN(hoist_plan_device);
    FIELD(hoist_plan_device, size);
    FIELD(hoist_plan_device, device);
    FIELD(hoist_plan_device, free_bytes);
    FIELD(hoist_plan_device, reserve_bytes);
    END();
    BEGIN(hoist_plan_options);
    FIELD(hoist_plan_options, size);
    FIELD(hoist_plan_options, devices);
    FIELD(hoist_plan_options, ndevices);
    FIELD(hoist_plan_options, max_seq_len);
    FIELD(hoist_plan_options, batch);
    FIELD(hoist_plan_options, forward_tokens);
    FIELD(hoist_plan_options, kv_dtype);
    FIELD(hoist_plan_options, geometry);
    FIELD(hoist_plan_options, coordinator);
    FIELD(hoist_plan_options, tp);
    END();
    /* The defaults the binding fills in by hand (LoadOptions.default()). */
    hoist_load_options d = HOIST_LOAD_OPTIONS_DEFAULT;
    printf("{\"defaults\": \"hoist_load_options\", \"values\": {\"size\": %zu, \"path\": %d, "
           "\"device\": %d, \"ram_budget\": %llu, \"threads\": %u, \"chunk_bytes\": %llu, "
           "\"verify\": %u, \"mmap_register\": %d, \"manifest\": %s, \"readahead_bytes\": %lld}}\n",
           d.size, (int)d.path, d.device, (unsigned long long)d.ram_budget, d.threads,
           (unsigned long long)d.chunk_bytes, d.verify, d.mmap_register,
           d.manifest ? "\"?\"" : "null", (long long)d.readahead_bytes);
    /* The defaults TpOptions.default() fills in by hand. */
    hoist_tp_options t = HOIST_TP_OPTIONS_DEFAULT;
    printf("{\"defaults\": \"hoist_tp_options\", \"values\": {\"size\": %zu, \"rank\": %d, "
           "\"world\": %d, \"rules_default\": %d, \"pad\": %d, \"heads\": %u, "
           "\"kv_heads\": %u, \"cooperative\": %d}}\n",
           t.size, t.rank, t.world, t.rules_default, t.pad, t.heads, t.kv_heads, t.cooperative);
    return 0;
}
