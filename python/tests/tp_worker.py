"""One rank of test_tp.py's cooperative load: run as a process of its own with RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set, a gloo group over localhost. Loads the model cooperatively
(whole, then tensor-parallel slices) through hoist.distributed and compares every tensor with
hoist.load_file of the whole model (sliced here by numpy-free torch indexing), then exits 0, or
prints what differs and exits 1."""

import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.environ["HOIST_PYTHON_DIR"])
import hoist  # noqa: E402
import hoist.distributed  # noqa: E402


def expect_slice(name, full, rank, world, kv_heads):
    """The default rules' slice, worked out here from the names."""
    if "norm" in name:
        return full
    row = any(k in name for k in ("o_proj", "down_proj"))
    if row:
        return full.chunk(world, dim=1)[rank]
    if any(k in name for k in ("k_proj", "v_proj")) and world > kv_heads:
        return full.chunk(kv_heads, dim=0)[rank // (world // kv_heads)]
    return full.chunk(world, dim=0)[rank]


def same(a, b):
    return a.shape == b.shape and torch.equal(a.view(torch.uint8) if a.dtype == torch.bfloat16
                                               else a, b.view(torch.uint8)
                                               if b.dtype == torch.bfloat16 else b)


def main():
    model, path, kv_heads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # tools/device-tp.sh: cuda:N per rank over NCCL, or both ranks on cuda:0 over gloo
    device = os.environ.get("HOIST_TP_DEVICE", "cpu")
    backend = os.environ.get("HOIST_TP_BACKEND", "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    whole = hoist.load_file(model, device=device, path_kind=path)
    bad = []
    got = hoist.distributed.load_cooperative(model, device=device, path_kind=path)
    for name, t in whole.items():
        if not same(got[name], t):
            bad.append("whole: " + name)
    got = hoist.distributed.load_cooperative(model, device=device, tp=True, path_kind=path)
    for name, t in whole.items():
        if not same(got[name], expect_slice(name, t, rank, world, kv_heads)):
            bad.append("slice: %s %s" % (name, tuple(got[name].shape)))
    # a rank that fails makes every rank fail, naming it
    try:
        hoist.distributed.load_cooperative(model if rank else model + ".missing", device=device)
        bad.append("a failed rank did not fail the others")
    except hoist.HoistError as e:
        if rank and "rank 0 failed" not in str(e):
            bad.append("rank %d: %s" % (rank, e))
    dist.barrier()
    dist.destroy_process_group()
    if bad:
        print("rank %d: %s" % (rank, "; ".join(bad)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
