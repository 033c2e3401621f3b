"""Arena memory from PyTorch (hoist_load_options.allocator): with torch present, hoist's loads
for framework "pt" take their arenas from torch, so that torch's accounting sees the weights
(torch.cuda.memory_allocated() rises by the arena) and freeing the last tensor gives the memory
back to torch's caching allocator instead of cudaFree.

- a CUDA device: torch.cuda.caching_allocator_alloc(bytes, device) and caching_allocator_delete;
- the host: a torch.empty(bytes, dtype=uint8) tensor kept here until hoist gives the block back
  (its storage is torch's CPU allocator's), which is also what lets CI exercise the hook without
  a GPU. An arena of 2 MiB or more starts at the first 2 MiB boundary of a block 2 MiB longer,
  advised for transparent huge pages, as hoist's own host arenas are: a load writes every byte of
  a fresh arena, and with 4 KiB pages a page fault per 4 KiB is a large part of a host load.

hoist calls alloc on the loading thread and free when the weights' last reference goes (a
tensor's DLPack deleter, in Python): ctypes takes the GIL for both. A failure inside returns NULL
to hoist, which fails the load with HOIST_E_DEVICE_NOMEM (HOIST_E_NOMEM on the host) naming the
device; the Python exception is logged to the "hoist" logger.
"""

import ctypes
import logging
import threading

from . import _lib

_HUGE = 2 << 20
_MADV_HUGEPAGE = 14  # Linux, every architecture


_madvise = None


def _advise_huge(ptr, nbytes):
    """Asks for transparent huge pages over [ptr, ptr + nbytes) (ptr 2 MiB-aligned). Advice
    only: where THP is off, or madvise is refused, the pages stay small."""
    global _madvise
    if _madvise is None:
        f = ctypes.CDLL(None, use_errno=True).madvise
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise = f
    _madvise(ptr, nbytes & ~(_HUGE - 1), _MADV_HUGEPAGE)

AllocFn = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
FreeFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)


class Allocator(_lib.Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("alloc", AllocFn),
        ("free", FreeFn),
        ("user", ctypes.c_void_p),
    ]


_lib.STRUCTS["hoist_allocator"] = Allocator
_log = logging.getLogger("hoist")


class TorchArenas:
    """The blocks torch lent to hoist, by address; counters for tests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.host = {}          # address -> (the uint8 tensor that owns it, bytes lent)
        self.cuda = {}          # address -> (device, bytes)
        self.allocs = 0
        self.frees = 0

    def alloc(self, user, device, nbytes):
        try:
            import torch

            if device < 0:
                huge = nbytes >= _HUGE
                block = torch.empty(nbytes + (_HUGE if huge else 0), dtype=torch.uint8)
                ptr = block.data_ptr()
                if huge:
                    ptr = (ptr + _HUGE - 1) & ~(_HUGE - 1)
                    _advise_huge(ptr, nbytes)
                with self.lock:
                    self.host[ptr] = (block, nbytes)
            else:
                ptr = torch.cuda.caching_allocator_alloc(nbytes, device)
                with self.lock:
                    self.cuda[ptr] = (device, nbytes)
            with self.lock:
                self.allocs += 1
            return ptr
        except Exception as e:  # an exception must not unwind into C: NULL is hoist's failure
            _log.error("torch could not allocate %d bytes for hoist on device %d: %s", nbytes,
                       device, e)
            return None

    def free(self, user, device, ptr, nbytes):
        try:
            with self.lock:
                self.frees += 1
                block = self.host.pop(ptr, None)
                on_cuda = self.cuda.pop(ptr, None)
            del block  # the host block's storage goes back to torch here
            if on_cuda is not None:
                import torch

                torch.cuda.caching_allocator_delete(ptr)
        except Exception as e:
            _log.error("giving hoist's arena at 0x%x back to torch failed: %s", ptr or 0, e)

    def live(self):
        """(blocks lent and not yet given back, their bytes)."""
        with self.lock:
            return (len(self.host) + len(self.cuda),
                    sum(n for _, n in self.host.values()) +
                    sum(n for _, n in self.cuda.values()))


TORCH = TorchArenas()
# The thunks and the struct live as long as the process: an arena may be given back at any time,
# interpreter shutdown included.
_ALLOC = _lib.immortal(AllocFn(TORCH.alloc))
_FREE = _lib.immortal(FreeFn(TORCH.free))
_STRUCT = _lib.immortal(Allocator(alloc=_ALLOC, free=_FREE, user=None))


def torch_allocator():
    """The address of the hoist_allocator that lends torch's memory (for LoadOptions)."""
    return ctypes.addressof(_STRUCT)
