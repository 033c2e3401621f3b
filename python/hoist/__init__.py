"""hoist: load safetensors checkpoints into GPU (or host) memory at storage speed, inside a
host-RAM budget, as zero-copy torch tensors (or numpy arrays).

    import hoist
    weights = hoist.load_file("models/llama-8b", device="cuda:0")   # like safetensors.torch

    with hoist.safe_open("model.safetensors", framework="pt", device="cuda:0") as f:
        meta = f.metadata()
        w = f.get_tensor("model.embed_tokens.weight")

    shard = hoist.load_file("models/llama-70b", device="cuda", tp=(rank, world))  # slices only
    import hoist.distributed   # every rank reads 1/world, torch.distributed shares the rest
    weights = hoist.distributed.load_cooperative("models/llama-8b", device="cuda")

The binding is ctypes over libhoist.so (no compiler at install); see README.md beside this file
for how the library is found, and the dtype mapping.
"""

from ._core import load_file, safe_open
from . import _alloc, _plan  # noqa: F401  (their structs join the ABI test's list)
from ._lib import HoistError, library_path, lib as _clib

__all__ = ["HoistError", "load_file", "safe_open", "version", "library_path", "device_count",
           "trim", "live_weights"]

__version__ = _clib.hoist_version().decode()


def version():
    """The version of the libhoist in use ("0.1.0")."""
    return _clib.hoist_version().decode()


def device_count():
    """CUDA devices libhoist sees (0 without CUDA)."""
    return _clib.hoist_device_count()


def trim():
    """Frees the pinned staging buffers libhoist keeps between loads (call when loading is over)."""
    _clib.hoist_trim()


def live_weights():
    """(loaded arenas alive in this process, their bytes): hoist_weights_live(). An arena is
    freed when its handle is closed and its last tensor or array is gone."""
    from ._lib import live

    return live()
