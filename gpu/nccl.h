/* NCCL, loaded at run time (gpu/nccl.c): the device layer's collectives for cooperative loads.
 * NCCL is not linked: on the device machines it exists only inside Python wheels
 * (nvidia-nccl-cu13), so the library finds libnccl.so.2 when first asked and declares the few
 * types and functions it calls itself (their ABI has been stable since NCCL 2.0). Builds without
 * CUDA get gpu/nccl_none.c, where every call is HOIST_E_UNSUPPORTED. */
#ifndef HOIST_GPU_NCCL_H
#define HOIST_GPU_NCCL_H

#include "gpu/gpu.h"

/* Loads NCCL once per process (later calls return the first outcome): dlopen("libnccl.so.2")
 * through the library path, then the file HOIST_NCCL_LIBRARY names, then
 * nvidia/nccl/lib/libnccl.so.2 under HOIST_NCCL_SITE_PACKAGES, each PYTHONPATH entry and
 * $VIRTUAL_ENV/lib/python3.x/site-packages. HOIST_E_UNSUPPORTED naming every place tried.
 * *version: NCCL's version code (22703 for 2.27.3). */
int hoist__nccl_version(int *version);

/* One communicator per device, rank i on devices[i] (ncclCommInitAll): comms[n]. */
int hoist__nccl_init_all(int n, const int *devices, void **comms);
/* NULL is a no-op. */
void hoist__nccl_destroy(void *comm);
/* The communicator's rank and size (ncclCommUserRank, ncclCommCount). */
int hoist__nccl_rank(void *comm, int *rank, int *count);

/* In place on `device` (the communicator's): rank r's `part` bytes at buf + r * part reach every
 * rank's buf at the same place. Returns once they have (the stream is synchronised). */
int hoist__nccl_all_gather(void *comm, int device, void *buf, uint64_t part, int rank);
/* The same for `bytes` bytes of host memory per rank: mine goes to all + rank * bytes of every
 * rank, through a device buffer of world * bytes. */
int hoist__nccl_all_gather_host(void *comm, int device, int rank, int world, const void *mine,
                                void *all, size_t bytes);

#endif
