"""load_file and safe_open over libhoist."""

import ctypes
import os
import threading

from . import _dlpack, _dtypes, _lib
from ._lib import lib

try:  # bfloat16 and float8 for numpy, when installed
    import ml_dtypes as _ml_dtypes
except ImportError:
    _ml_dtypes = None

_INVALID_ARG = _lib.status_code("HOIST_E_INVALID_ARG")


def _invalid(message):
    return _lib.error(_INVALID_ARG, message)


class Weights:
    """The Python owner of one reference on a hoist_weights (loaded arena). Views handed out
    (torch tensors, numpy arrays) hold references of their own, so dropping this one frees the
    arena only once no view is left."""

    __slots__ = ("handle", "_free", "__weakref__")

    def __init__(self, handle):
        self.handle = handle
        self._free = lib.hoist_weights_free  # bound now: __del__ may run at interpreter exit

    def close(self):
        handle, self.handle = self.handle, None
        if handle:
            self._free(handle)

    __del__ = close


class _ArrayOwner:
    """Base object of a numpy view (zero-copy through __array_interface__): holds a reference on
    the weights until numpy drops the last array over it."""

    __slots__ = ("__array_interface__", "_handle", "_free")

    def __init__(self, handle, data, shape, typestr):
        self._free = lib.hoist_weights_free
        self._handle = lib.hoist_weights_retain(handle)
        self.__array_interface__ = {"version": 3, "data": (data, False), "shape": shape,
                                    "typestr": typestr}

    def __del__(self):
        handle, self._handle = self._handle, None
        if handle:
            self._free(handle)


# ---- argument parsing ---------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_size(value, what):
    """Bytes from an int or a string such as "256M", "1.5G" or "4096" (binary units)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _invalid("%s: expected a byte count, got %r" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise _invalid("%s: %d bytes is negative" % (what, value))
        return value
    if isinstance(value, str):
        text = value.strip().upper()
        for suffix in ("IB", "B"):
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                break
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        number = text[: len(text) - len(unit)]
        try:
            n = float(number)
        except ValueError:
            n = -1.0
        if n >= 0 and n == n:  # not NaN
            return int(n * _SIZE_UNITS[unit])
    raise _invalid("%s: cannot read %r as a size (bytes, or a number with K, M, G or T)"
                   % (what, value))


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _parse_device(device):
    """hoist device id (HOIST_DEVICE_HOST or a CUDA ordinal) of a device given as torch does:
    "cpu", "cuda", "cuda:N", an int N (= cuda:N) or a torch.device."""
    if device is None:
        return _lib.HOIST_DEVICE_HOST
    if isinstance(device, bool):
        raise _invalid("device: expected a device, got %r" % (device,))
    if isinstance(device, int):
        if device < 0:
            raise _invalid("device: negative CUDA ordinal %d" % device)
        return device
    text = str(device)  # torch.device prints as "cuda:1" or "cuda"
    if text == "cuda":
        torch = _torch()
        # torch's "cuda" is its current device
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.current_device()
    out = ctypes.c_int(0)
    _lib.check(lib.hoist_device_parse(text.encode(), ctypes.byref(out)))
    return out.value


def _parse_path_kind(path_kind):
    out = ctypes.c_int(0)
    _lib.check(lib.hoist_path_parse(str(path_kind).encode(), ctypes.byref(out)))
    return out.value


_VERIFY_NAMES = {"manifest": _lib.HOIST_VERIFY_MANIFEST, "readback": _lib.HOIST_VERIFY_READBACK}


def _parse_verify(verify):
    """HOIST_VERIFY_* flags from None, "manifest", "readback" or both ("manifest,readback" or a
    list). Booleans are refused: verify=True once meant readback here while the CLI's --verify
    means the manifest, so a bare True cannot say which one the caller wants."""
    if verify is None:
        return 0
    if isinstance(verify, bool):
        raise _lib.error_as(TypeError, "HOIST_E_INVALID_ARG",
                            "verify=%r: name the check instead: verify=\"manifest\" (hash every "
                            "byte against the manifest `hoist sum` wrote, as the CLI's --verify), "
                            "verify=\"readback\" (read the destination back and compare it with "
                            "the files), or verify=None (no check)" % (verify,))
    names = verify.replace("+", ",").split(",") if isinstance(verify, str) else verify
    flags = 0
    try:
        for name in names:
            flag = _VERIFY_NAMES.get(str(name).strip().lower()) if isinstance(name, str) else None
            if flag is None:
                raise KeyError(name)
            flags |= flag
    except (KeyError, TypeError):
        raise _lib.error_as(ValueError, "HOIST_E_INVALID_ARG",
                            "verify=%r: expected \"manifest\", \"readback\", both "
                            "(\"manifest,readback\") or None" % (verify,)) from None
    return flags


def _parse_allocator(allocator, framework):
    """The hoist_allocator for a load: torch's memory ("torch"; "auto" with framework "pt"), so
    that torch counts the weights and gets the memory back, or hoist's own (None, "hoist")."""
    if allocator == "auto":
        allocator = "torch" if framework == "pt" else None
    if allocator in (None, "hoist"):
        return None
    if allocator == "torch":
        if _torch() is None:
            raise _lib.error_as(ImportError, "HOIST_E_UNSUPPORTED",
                                "allocator=\"torch\" needs torch, which is not installed")
        from . import _alloc

        return _alloc.torch_allocator()
    raise _invalid("allocator=%r: expected \"auto\", \"torch\" or \"hoist\"" % (allocator,))


def _parse_framework(framework, device):
    if framework is None:
        if _torch() is not None:
            return "pt"
        if device != _lib.HOIST_DEVICE_HOST:
            raise _lib.error_as(ImportError, "HOIST_E_UNSUPPORTED",
                                "tensors on a GPU need torch (numpy arrays live in host "
                                "memory: use device=\"cpu\")")
        return "np"
    name = {"pt": "pt", "torch": "pt", "pytorch": "pt", "np": "np", "numpy": "np"}.get(
        str(framework).lower())
    if name is None:
        raise _invalid("framework %r: expected \"pt\" (torch) or \"np\" (numpy)" % (framework,))
    if name == "np" and device != _lib.HOIST_DEVICE_HOST:
        raise _invalid("framework \"np\" holds host memory only; device must be \"cpu\"")
    if name == "pt" and _torch() is None:
        raise _lib.error_as(ImportError, "HOIST_E_UNSUPPORTED",
                            "framework \"pt\" needs torch, which is not installed")
    return name


_ABORTED = _lib.status_code("HOIST_E_ABORTED")


class _TensorParallel:
    """The hoist_tp_options of a load, and the Python rule behind its callback (kept alive as
    long as the options are)."""

    def __init__(self, tp, pad=False, rule=None, cooperative=False, rules_default=True):
        try:
            rank, world = (int(x) for x in tp)
        except (TypeError, ValueError):
            raise _invalid("tp: expected (rank, world), got %r" % (tp,)) from None
        if world < 1 or not 0 <= rank < world:
            raise _invalid("tp: rank %d of world %d" % (rank, world))
        self.rank, self.world = rank, world
        self.rule = rule
        self.error = None  # an exception the rule raised, re-raised after the load
        o = _lib.TpOptions.default()
        o.rank, o.world = rank, world
        o.pad = 1 if pad else 0
        o.cooperative = 1 if cooperative else 0
        o.rules_default = 1 if rules_default else 0
        self._thunk = None
        if rule is not None:
            self._thunk = _lib.TpRuleFn(self._call_rule)
            o.rule = self._thunk
        self.options = o

    def _call_rule(self, info, rank, world, split, user):
        """hoist_tp_rule_fn: the rule gets (name, shape, dtype, rank, world) and returns None
        (the default rules decide), "replicate", a dim (cut into world parts, this rank's), or
        (dim, parts, index[, pad])."""
        try:
            t = info.contents
            answer = self.rule(_text(t.name), tuple(t.shape[: t.ndim]),
                               _lib.DTYPES[t.dtype][0], rank, world)
            if answer is None:
                return _lib.HOIST_TP_RULE_DEFAULT
            sp = split.contents
            if answer == "replicate":
                sp.dim = _lib.HOIST_TP_REPLICATE
            elif isinstance(answer, int):
                sp.dim = answer
            else:
                answer = tuple(answer)
                sp.dim, sp.parts, sp.index = answer[0], answer[1], answer[2]
                if len(answer) > 3:
                    sp.pad = 1 if answer[3] else 0
            return 0
        except BaseException as e:  # never unwind into C
            self.error = e
            return _ABORTED


class _keep_torch_device:
    """libhoist selects the load's device on the calling thread (cudaSetDevice), which is also
    torch's notion of the current device: put torch's back afterwards, so that loading onto
    cuda:1 does not move a program working on cuda:0."""

    def __init__(self, framework, device):
        self.torch = _torch() if framework == "pt" and device >= 0 else None
        self.previous = None

    def __enter__(self):
        if self.torch is not None and self.torch.cuda.is_available():
            self.previous = self.torch.cuda.current_device()

    def __exit__(self, *exc):
        if self.previous is not None:
            self.torch.cuda.set_device(self.previous)
        return False


# ---- the handle ---------------------------------------------------------------------------------

def _text(b):
    return b.decode("utf-8", "replace")


class safe_open:
    """A lazy handle on a checkpoint, shaped like safetensors.safe_open.

    Opening parses and validates every header (a .safetensors file, a model directory or a
    model.safetensors.index.json) and reads no tensor data: keys(), metadata(), get_dtype() and
    get_shape() come from the headers. The first get_tensor() (or load()) loads every tensor in
    one pass into one arena on `device`, through hoist's I/O paths; that and every later
    get_tensor() return zero-copy views into it. Views stay valid after the handle is closed: the
    arena is freed when the handle is closed and no view is left.

    framework: "pt" (torch tensors, any device) or "np" (numpy arrays, device "cpu").
    device: "cpu", "cuda", "cuda:N", an int or a torch.device.
    path_kind: "auto" (hoist picks and logs why), "mmap", "uring" or "stream".
    ram_budget: host bytes the loader may take for staging (int, or "256M"); None = the path's
        default. A budget too small even for the smallest staging fails before reading anything.
    threads, chunk_bytes: loader workers and staging window (None: chosen by the path).
    verify: None (no check); "manifest": hash every byte in staging against the manifest hoist
        sum wrote, as the CLI's --verify (a packed model's chunk hashes are checked on every load
        anyway); "readback": read every byte back from the destination and compare it with the
        files; "manifest,readback" (or a list) for both. True and False are refused (TypeError):
        they do not say which check.
    allocator: where the arena's memory comes from. "auto" (the default): from torch when the
        framework is "pt" (torch.cuda's caching allocator on a GPU, a torch uint8 tensor on the
        host), so that torch.cuda.memory_allocated() counts the weights and the memory goes back
        to torch with the last tensor; hoist's own otherwise. "torch" or "hoist" (None) to
        choose.
    tp: (rank, world): load only this tensor-parallel rank's slice of each tensor, reading only
        those bytes (docs/TENSOR_PARALLEL.md): Llama's q/k/v/gate/up and the vocabulary rows by
        dim 0, o/down by dim 1, norms whole; each tensor has its slice's shape.
    tp_pad: pad dimensions that do not divide among the ranks with zeros (else refused).
    tp_rule: rule(name, shape, dtype, rank, world) deciding tensors first: None (the default
        rules decide), "replicate", a dimension (cut into world parts), or
        (dim, parts, index[, pad]).

    Every failure raises HoistError carrying hoist's status and message.
    """

    def __init__(self, filename, framework="pt", device="cpu", *, path_kind="auto",
                 ram_budget=None, threads=None, chunk_bytes=None, verify=None, allocator="auto",
                 tp=None, tp_pad=False, tp_rule=None, _cooperative=False, _tp_rules=True):
        self._model = None
        self._weights = None
        self._plan = None
        self._lock = threading.Lock()
        self._free_model = lib.hoist_model_free
        device_id = _parse_device(device)
        opts = _lib.LoadOptions.default()
        opts.path = _parse_path_kind(path_kind)
        opts.device = device_id
        opts.ram_budget = _parse_size(ram_budget, "ram_budget")
        opts.threads = int(threads or 0)
        opts.chunk_bytes = _parse_size(chunk_bytes, "chunk_bytes")
        opts.verify = _parse_verify(verify)
        self._tp = None
        if tp is not None or _cooperative:
            self._tp = _TensorParallel(tp if tp is not None else (0, 1), tp_pad, tp_rule,
                                       _cooperative, _tp_rules)
            opts.tp = ctypes.addressof(self._tp.options)
        self._opts = opts
        self._framework = _parse_framework(framework, device_id)
        opts.allocator = _parse_allocator(allocator, self._framework)
        model = ctypes.c_void_p()
        _lib.check(lib.hoist_model_open(os.fsencode(filename), None, ctypes.byref(model)))
        self._model = model.value
        self._index = {}
        info = _lib.TensorInfo()
        self._infos = []
        for i in range(lib.hoist_model_tensor_count(self._model)):
            _lib.check(lib.hoist_model_tensor(self._model, i, ctypes.byref(info)))
            name = _text(info.name)
            self._index[name] = i
            self._infos.append((name, _lib.DTYPES[info.dtype][0],
                                tuple(info.shape[: info.ndim]), info.nbytes))

    # -- context manager and closing
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Releases the model and this handle's reference on the arena (views keep theirs)."""
        model, self._model = self._model, None
        if model:
            self._free_model(model)
        weights, self._weights = self._weights, None
        if weights is not None:
            weights.close()
        plan, self._plan = self._plan, None  # the weights keep its reservation
        if plan is not None:
            plan.close()

    def __del__(self):
        if getattr(self, "_model", None) or getattr(self, "_weights", None):
            self.close()

    def _require_open(self):
        if self._model is None:
            raise _invalid("the safe_open handle is closed")

    # -- the table
    def keys(self):
        """Tensor names, sorted (as safetensors.safe_open.keys() returns them)."""
        self._require_open()
        return sorted(self._index)

    def __contains__(self, name):
        return name in self._index

    def __len__(self):
        return len(self._index)

    def metadata(self):
        """The __metadata__ entries as a dict of str, or None when the checkpoint has none."""
        self._require_open()
        n = lib.hoist_model_metadata_count(self._model)
        if n == 0:
            return None
        key, value = ctypes.c_char_p(), ctypes.c_char_p()
        out = {}
        for i in range(n):
            _lib.check(lib.hoist_model_metadata(self._model, i, ctypes.byref(key),
                                                ctypes.byref(value)))
            out[_text(key.value)] = _text(value.value)
        return out

    def _find(self, name):
        self._require_open()
        index = ctypes.c_size_t(0)
        _lib.check(lib.hoist_model_find(self._model, str(name).encode(), ctypes.byref(index)))
        return index.value

    def get_dtype(self, name):
        """The safetensors dtype name of a tensor ("BF16")."""
        return self._infos[self._find(name)][1]

    def get_shape(self, name):
        """The shape of a tensor as the file declares it (list of ints)."""
        return list(self._infos[self._find(name)][2])

    def files(self):
        """The files of the checkpoint, as opened."""
        self._require_open()
        return [_text(lib.hoist_model_file_path(self._model, i))
                for i in range(lib.hoist_model_file_count(self._model))]

    # -- loading
    def plan(self, devices=None, *, max_seq_len=None, batch=1, reserve_bytes=0, kv_dtype="f16",
             free_bytes=None):
        """Places the layers over devices with hoist's planner (hoist_plan_create; see
        hoist._plan.Plan for the arguments) and makes the load follow it: each tensor lands on
        its layer's device, the handle's device is ignored. Call before the load. Returns the
        plan (tensor_device(), layer_device()); HoistError HOIST_E_NO_FIT when the model does
        not fit, naming the device and what would fit."""
        from ._plan import Plan

        self._require_open()
        if self._weights is not None:
            raise _invalid("plan(): the checkpoint is already loaded")
        if free_bytes is not None:
            free_bytes = [_parse_size(b, "free_bytes") for b in free_bytes]
        plan = Plan(self._model, devices, max_seq_len=max_seq_len, batch=batch,
                    reserve_bytes=_parse_size(reserve_bytes, "reserve_bytes"), kv_dtype=kv_dtype,
                    free_bytes=free_bytes)
        self._plan, self._opts.plan = plan, plan.handle  # kept until the handle goes
        return plan

    def load(self):
        """Loads every tensor now (the first get_tensor() does it otherwise). Idempotent."""
        with self._lock:
            self._require_open()
            if self._weights is None:
                handle = ctypes.c_void_p()
                with _keep_torch_device(self._framework, self._opts.device):
                    status = lib.hoist_load(self._model, ctypes.byref(self._opts),
                                            ctypes.byref(handle))
                if status < 0 and self._tp is not None and self._tp.error is not None:
                    raise self._tp.error
                _lib.check(status)
                self._weights = Weights(handle.value)
        return self

    def stats(self):
        """The load's statistics (hoist_load_stats) as a dict; None before the load."""
        if self._weights is None:
            return None
        s = _lib.LoadStats()
        _lib.check(lib.hoist_weights_stats(self._weights.handle, ctypes.byref(s)))
        out = {name: getattr(s, name) for name, _ in _lib.LoadStats._fields_ if name != "size"}
        out["path"] = _text(s.path) if s.path else None
        return out

    def get_tensor(self, name):
        """The tensor called name: a zero-copy torch tensor (framework "pt") or numpy array
        ("np") over the arena. HoistError (HOIST_E_NOT_FOUND) when there is none."""
        index = self._find(name)
        self.load()
        return self._make(index)

    def _view(self, index):
        v = _lib.View()
        _lib.check(lib.hoist_weights_view(self._weights.handle, index, ctypes.byref(v)))
        return v

    def _make(self, index):
        v = self._view(index)
        _, dtype, shape, nbytes = self._infos[index]
        if self._tp is not None:  # this rank's slice: its own shape and size
            shape, nbytes = tuple(v.shape[: v.ndim]), v.nbytes
        shape = _dtypes.packed_shape(dtype, shape, nbytes)
        if self._framework == "pt":
            return _torch_tensor(self._weights, v, dtype, shape)
        return _numpy_array(self._weights, v, dtype, shape)

    def tensors(self):
        """Every tensor as {name: tensor}, sorted by name (loads them if needed); what
        load_file returns."""
        self.load()
        return {name: self._make(self._index[name]) for name in sorted(self._index)}


def _torch_tensor(weights, view, dtype, shape):
    import torch

    code, bits, target = _dtypes.torch_plan(dtype)
    t = torch.from_dlpack(_dlpack.Export(weights.handle, view.data, view.device, code, bits, shape))
    return t if target is None else t.view(target)


def _numpy_array(weights, view, dtype, shape):
    import numpy as np

    np_dtype = _dtypes.numpy_dtype(dtype, _ml_dtypes)
    raw = np.asarray(_ArrayOwner(weights.handle, view.data, shape, _dtypes.numpy_typestr(dtype)))
    return raw if np_dtype == raw.dtype and not np_dtype.metadata else raw.view(np_dtype)


def load_file(filename, device="cpu", path_kind="auto", ram_budget=None, *, framework=None,
              threads=None, chunk_bytes=None, verify=None, allocator="auto", tp=None,
              tp_pad=False, tp_rule=None):
    """Loads a checkpoint into memory, a drop-in for safetensors.torch.load_file.

    Returns {name: tensor}, sorted by name, every tensor a zero-copy view of one arena on `device`
    that lives as long as any of them does. device defaults to "cpu", as safetensors' does.
    filename is a .safetensors file, a model directory, or a model.safetensors.index.json (every
    shard is loaded). With framework None the tensors are
    torch tensors when torch is installed, else numpy arrays (device "cpu" only). With
    tp=(rank, world) each tensor is this rank's tensor-parallel slice. Other arguments as for
    safe_open. Raises HoistError with hoist's status and message on any failure.
    """
    with safe_open(filename, framework=framework, device=device, path_kind=path_kind,
                   ram_budget=ram_budget, threads=threads, chunk_bytes=chunk_bytes,
                   verify=verify, allocator=allocator, tp=tp, tp_pad=tp_pad,
                   tp_rule=tp_rule) as f:
        return f.tensors()
