"""The allocator hook from Python (hoist_load_options.allocator): with torch, a load for
framework "pt" takes its arena from torch (on the host: a torch uint8 tensor, the twin of
torch.cuda's caching allocator on a GPU), every tensor lies inside that block, and the block goes
back to torch when the last tensor goes; allocator="hoist" and numpy loads leave torch alone."""

import gc
import os
import shutil
import tempfile

import pytest

torch = pytest.importorskip("torch")

import hoist
from hoist import _alloc
import st_reference as ref


@pytest.fixture
def model():
    d = tempfile.mkdtemp(prefix="hoist-py-alloc-")
    path = os.path.join(d, "m.safetensors")
    ref.write(path, [("a", "F32", (16, 16), bytes(range(256)) * 4),
                     ("b", "U8", (7,), b"arenas!"), ("c", "BF16", (3, 5), bytes(30))])
    yield path
    shutil.rmtree(d)


def test_host_arena_comes_from_torch(model):
    arenas = _alloc.TORCH
    gc.collect()  # models of earlier tests may still hold blocks of their own: those stay
    lent, lent_before = dict(arenas.host), arenas.live()
    allocs, frees = arenas.allocs, arenas.frees
    base = hoist.live_weights()
    tensors = hoist.load_file(model)  # device "cpu", framework "pt": allocator "auto" = torch
    assert arenas.allocs == allocs + 1 and arenas.frees == frees
    assert arenas.live()[0] == lent_before[0] + 1
    ((block, nbytes),) = [b for a, b in arenas.host.items() if a not in lent]
    lo, hi = block.data_ptr(), block.data_ptr() + block.numel()
    assert nbytes == block.numel()  # under 2 MiB: the block is the arena, no alignment slack
    assert hoist.live_weights()[1] - base[1] == nbytes  # the whole arena is torch's
    for name, t in tensors.items():
        assert lo <= t.data_ptr() and t.data_ptr() + t.numel() * t.element_size() <= hi, name
    assert bytes(tensors["b"].numpy()) == b"arenas!"
    keep = tensors["a"]
    del tensors, t
    gc.collect()
    assert arenas.frees == frees  # a tensor still holds the arena
    assert bytes(keep.numpy().tobytes()) == bytes(range(256)) * 4  # still the arena's bytes
    del keep
    gc.collect()
    assert arenas.frees == frees + 1 and arenas.live() == lent_before
    assert hoist.live_weights() == base


def _thp_eligible(addr):
    """THPeligible of the mapping that holds addr in /proc/self/smaps (None: no such line)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "THPeligible:":
                return int(line.split()[1])
    return None


def test_big_host_arena_is_aligned_and_asks_for_huge_pages():
    """An arena of 2 MiB or more starts on a 2 MiB boundary inside its torch block and asks for
    transparent huge pages: a load writes all of it, and 4 KiB faults were a large part of a host
    load. The advice is checked where THP is in madvise mode (elsewhere it decides nothing)."""
    d = tempfile.mkdtemp(prefix="hoist-py-alloc-")
    try:
        path = os.path.join(d, "big.safetensors")
        payload = bytes(range(256)) * (6 << 12)  # 6 MiB
        ref.write(path, [("w", "U8", (len(payload),), payload)])
        arenas = _alloc.TORCH
        gc.collect()
        lent = dict(arenas.host)
        tensors = hoist.load_file(path)
        ((addr, (block, nbytes)),) = [(a, b) for a, b in arenas.host.items() if a not in lent]
        assert addr % (2 << 20) == 0
        assert block.data_ptr() <= addr and addr + nbytes <= block.data_ptr() + block.numel()
        t = tensors["w"]
        assert addr <= t.data_ptr() and t.data_ptr() + t.numel() <= addr + nbytes
        assert bytes(t.numpy()[:1024]) == payload[:1024]
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            mode = f.read()
        eligible = _thp_eligible(addr)
        if "[madvise]" not in mode or eligible is None:
            pytest.skip("transparent huge pages not in madvise mode, or no THPeligible")
        assert eligible == 1
    finally:
        shutil.rmtree(d)


def test_hoist_allocator_leaves_torch_alone(model):
    arenas = _alloc.TORCH
    allocs = arenas.allocs
    tensors = hoist.load_file(model, allocator="hoist")
    assert bytes(tensors["b"].numpy()) == b"arenas!"
    arrays = hoist.load_file(model, framework="np")  # numpy: hoist's own memory
    assert arrays["b"].tobytes() == b"arenas!"
    assert arenas.allocs == allocs
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model, allocator="cuda")
    assert e.value.name == "HOIST_E_INVALID_ARG" and "cuda" in e.value.message


def test_torch_refusing_fails_the_load(model, monkeypatch):
    """An exception in torch's allocation is hoist's out-of-memory, naming the device; nothing is
    left lent."""
    def refuse(*args, **kwargs):
        raise RuntimeError("no memory today")

    gc.collect()
    lent = _alloc.TORCH.live()  # blocks earlier tests' models still hold
    monkeypatch.setattr(torch, "empty", refuse)
    base = hoist.live_weights()
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model)
    assert e.value.name == "HOIST_E_NOMEM" and "host" in e.value.message
    assert _alloc.TORCH.live() == lent and hoist.live_weights() == base


@pytest.mark.skipif(not torch.cuda.is_available() or hoist.device_count() == 0,
                    reason="needs a CUDA device")
def test_cuda_arena_is_torch_memory(model):
    """On a GPU the arena comes from torch's caching allocator: memory_allocated() rises by it
    and falls back when the last tensor goes (allocator="hoist": cudaMalloc, torch sees none)."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(0)
    with hoist.safe_open(model, device="cuda:0") as f:
        tensors = f.tensors()
        arena = f.stats()["arena_bytes"]
    assert torch.cuda.memory_allocated(0) - before >= arena > 0
    assert all(t.device == torch.device("cuda", 0) for t in tensors.values())
    assert bytes(tensors["b"].cpu().numpy()) == b"arenas!"
    del tensors
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated(0) == before
    tensors = hoist.load_file(model, device="cuda:0", allocator="hoist")
    assert torch.cuda.memory_allocated(0) == before
    assert bytes(tensors["b"].cpu().numpy()) == b"arenas!"
