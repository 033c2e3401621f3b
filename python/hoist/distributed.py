"""Cooperative loading over a torch.distributed process group.

Every rank of the group calls load_cooperative with the same arguments. Each rank reads from
storage only 1/world of the bytes that every rank holds alike (the whole model; with tp=True only
the replicated tensors, each rank also reading its own tensor-parallel slices), onto its own
device; then the group's own collective (all_gather_into_tensor where the backend has it, else
all_gather) fills in the rest, so that no rank reads what another one already did. It works with
any backend the group was created with: NCCL between GPUs, gloo on CPUs (which is how CI runs it).

    import torch.distributed as dist, hoist.distributed
    dist.init_process_group("nccl")                      # torchrun sets rank and world
    weights = hoist.distributed.load_cooperative("models/llama-70b", device="cuda",
                                                 tp=True)  # this rank's slices

Before any data moves, every rank learns whether every other one loaded its part (an
all_gather_object of the outcomes), so a rank that fails makes every rank raise, naming it,
instead of leaving the others waiting in a collective.
"""

import ctypes

from . import _core, _dlpack, _lib
from ._lib import lib


def _dist(group):
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise _lib.error(_lib.status_code("HOIST_E_INVALID_ARG"),
                         "hoist.distributed: torch.distributed is not initialised "
                         "(init_process_group first)")
    return dist


def _share_of(handle):
    s = _lib.TpShare()
    _lib.check(lib.hoist_weights_tp_share(handle, ctypes.byref(s)))
    return s


def _region(handle, share):
    """The shared region as a flat uint8 torch tensor over the arena (no copy)."""
    import torch

    return torch.from_dlpack(_dlpack.Export(handle, share.base, share.device, _dlpack.KDL_UINT, 8,
                                            (share.bytes,)))


def _gather(dist, group, region, share):
    """Fills every part of region but this rank's from the others, in place."""
    part = share.part_bytes
    mine = region[share.rank * part:(share.rank + 1) * part]
    if dist.get_backend(group) == "nccl" and hasattr(dist, "all_gather_into_tensor"):
        dist.all_gather_into_tensor(region, mine, group=group)
        return
    # gloo (torch 1.13 has no all_gather_into_tensor for it): views of the region as outputs
    outputs = [region[r * part:(r + 1) * part] for r in range(share.world)]
    dist.all_gather(outputs, mine.clone(), group=group)


def _agree(dist, group, own_error, nbytes):
    """Every rank's (failure message or None, shared bytes), gathered before any data moves;
    raises on every rank when one failed (its own error on that rank) or the ranks disagree on
    the region."""
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    outcomes = [None] * world
    dist.all_gather_object(outcomes, (None if own_error is None else str(own_error), nbytes),
                           group=group)
    if own_error is not None:
        raise own_error
    for r, (message, _) in enumerate(outcomes):
        if message is not None and r != rank:
            raise _lib.error(_lib.status_code("HOIST_E_ABORTED"),
                             "hoist.distributed: rank %d failed (%s); this rank's load is "
                             "abandoned" % (r, message))
    sizes = {n for _, n in outcomes}
    if len(sizes) != 1:
        raise _lib.error(_lib.status_code("HOIST_E_INVALID_ARG"),
                         "hoist.distributed: the ranks share %s bytes (different rules?)"
                         % sorted(sizes))


def load_cooperative(filename, group=None, device="cpu", tp=False, *, path_kind="auto",
                     ram_budget=None, threads=None, chunk_bytes=None, tp_pad=False,
                     tp_rule=None, framework="pt"):
    """Loads a checkpoint on every rank of `group` (None: the default group), each rank onto its
    `device`, reading 1/world of it per rank; returns {name: tensor} as hoist.load_file does.
    tp=False: every rank gets every tensor whole. tp=True: every rank gets its tensor-parallel
    slices (rank and world are the group's; tp_pad and tp_rule as for load_file) and only the
    replicated tensors are shared. Collective: every rank of the group must call it."""
    if not _lib.has("hoist_weights_tp_share"):
        raise ImportError("hoist.distributed needs a libhoist with tensor-parallel loads (%s "
                          "is %s)" % (_lib.library_path, lib.hoist_version().decode()))
    dist = _dist(group)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    f = None
    error, nbytes = None, 0
    try:
        f = _core.safe_open(filename, framework=framework, device=device, path_kind=path_kind,
                            ram_budget=ram_budget, threads=threads, chunk_bytes=chunk_bytes,
                            tp=(rank, world), tp_pad=tp_pad, tp_rule=tp_rule,
                            _cooperative=True, _tp_rules=bool(tp))
        f.load()
        nbytes = _share_of(f._weights.handle).bytes
    except Exception as e:  # told to the others before it is raised here
        error = e
    try:
        _agree(dist, group, error, nbytes)
        share = _share_of(f._weights.handle)
        if share.bytes:
            _gather(dist, group, _region(f._weights.handle, share), share)
        return f.tensors()
    finally:
        if f is not None:
            f.close()
