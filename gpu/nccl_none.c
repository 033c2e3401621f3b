/* NCCL in a build without CUDA: there is nothing to gather on. */
#include "gpu/nccl.h"
#include "core/core.h"

static int none(void)
{
    return hoist__err(HOIST_E_UNSUPPORTED, "NCCL: this build of hoist has no CUDA backend");
}

int hoist__nccl_version(int *version)
{
    *version = 0;
    return none();
}

int hoist__nccl_init_all(int n, const int *devices, void **comms)
{
    (void)n, (void)devices, (void)comms;
    return none();
}

void hoist__nccl_destroy(void *comm) { (void)comm; }

int hoist__nccl_rank(void *comm, int *rank, int *count)
{
    (void)comm, (void)rank, (void)count;
    return none();
}

int hoist__nccl_all_gather(void *comm, int device, void *buf, uint64_t part, int rank)
{
    (void)comm, (void)device, (void)buf, (void)part, (void)rank;
    return none();
}

int hoist__nccl_all_gather_host(void *comm, int device, int rank, int world, const void *mine,
                                void *all, size_t bytes)
{
    (void)comm, (void)device, (void)rank, (void)world, (void)mine, (void)all, (void)bytes;
    return none();
}
