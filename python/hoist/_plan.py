"""hoist's placement planner through ctypes (hoist_plan_create and its getters): which device each
tensor and layer of a model goes to, with room left for each layer's KV cache. safe_open.plan()
attaches a plan to a handle's load; hoist.transformers builds its device map from one."""

import ctypes

from . import _lib
from ._lib import lib

HOIST_PLAN_MAX_DEVICES = 16


class PlanDevice(_lib.Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("device", ctypes.c_int),
        ("free_bytes", ctypes.c_uint64),
        ("reserve_bytes", ctypes.c_uint64),
    ]


class PlanOptions(_lib.Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("devices", ctypes.POINTER(PlanDevice)),
        ("ndevices", ctypes.c_size_t),
        ("max_seq_len", ctypes.c_uint64),
        ("batch", ctypes.c_uint32),
        ("forward_tokens", ctypes.c_uint32),
        ("kv_dtype", ctypes.c_int),
        ("geometry", ctypes.c_void_p),
        ("coordinator", ctypes.c_void_p),
        ("tp", ctypes.c_void_p),  # const hoist_tp_options *: NULL, a layer split
    ]

    @classmethod
    def default(cls):
        """HOIST_PLAN_OPTIONS_DEFAULT."""
        return cls(ndevices=0, max_seq_len=0, batch=1, forward_tokens=0, kv_dtype=0)


_lib.STRUCTS.update({"hoist_plan_device": PlanDevice, "hoist_plan_options": PlanOptions})

_c = ctypes
_P = ctypes.POINTER
for _name, _res, _args in [
    ("hoist_plan_create", _c.c_int, [_c.c_void_p, _P(PlanOptions), _P(_c.c_void_p)]),
    ("hoist_plan_free", None, [_c.c_void_p]),
    ("hoist_plan_tensor_device", _c.c_int, [_c.c_void_p, _c.c_size_t, _P(_c.c_int)]),
    ("hoist_plan_layer_device", _c.c_int, [_c.c_void_p, _c.c_uint32, _P(_c.c_int)]),
    ("hoist_kv_dtype_parse", _c.c_int, [_c.c_char_p, _P(_c.c_int)]),
]:
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


class Plan:
    """One hoist_plan: the model's layers placed over devices, each with its KV cache, reserved in
    the process-wide coordinator while this object (or weights loaded with it) lives.

    devices: None (every CUDA device, the host when there is none) or a list of device ids
        (ints, HOIST_DEVICE_HOST = -1) in split order: layers fill the first one first.
    max_seq_len: KV-cache positions to leave room for (None: the model's max_position).
    reserve_bytes: memory left unused on each device.
    kv_dtype: the cache's encoding ("f16", "bf16", "f32", "f8", "q8", "q4").
    free_bytes: None, or per device (as in devices) the memory to plan into instead of what the
        device has free (0: ask the device), as transformers' max_memory caps a device.
    """

    def __init__(self, model_handle, devices=None, max_seq_len=None, batch=1, reserve_bytes=0,
                 kv_dtype="f16", free_bytes=None):
        self.handle = None
        self._free = lib.hoist_plan_free
        opts = PlanOptions.default()
        if devices is not None:
            devices = list(devices)
            if not 0 < len(devices) <= HOIST_PLAN_MAX_DEVICES:
                raise _lib.error(_lib.status_code("HOIST_E_INVALID_ARG"),
                                 "plan: 1 to %d devices, not %d" % (HOIST_PLAN_MAX_DEVICES,
                                                                    len(devices)))
            array = (PlanDevice * len(devices))()
            free = list(free_bytes) if free_bytes is not None else [0] * len(devices)
            for slot, dev, cap in zip(array, devices, free):
                slot.size = ctypes.sizeof(PlanDevice)
                slot.device = int(dev)
                slot.free_bytes = int(cap or 0)
                slot.reserve_bytes = int(reserve_bytes)
            self._devices = array  # the options point into it until the plan is made
            opts.devices = array
            opts.ndevices = len(devices)
        opts.max_seq_len = int(max_seq_len or 0)
        opts.batch = int(batch or 1)
        kv = ctypes.c_int(0)
        _lib.check(lib.hoist_kv_dtype_parse(str(kv_dtype).encode(), ctypes.byref(kv)))
        opts.kv_dtype = kv.value
        handle = ctypes.c_void_p()
        _lib.check(lib.hoist_plan_create(model_handle, ctypes.byref(opts), ctypes.byref(handle)))
        self.handle = handle.value

    def tensor_device(self, index):
        """The device (HOIST_DEVICE_HOST or a CUDA ordinal) of tensor index (model order)."""
        out = ctypes.c_int(0)
        _lib.check(lib.hoist_plan_tensor_device(self.handle, index, ctypes.byref(out)))
        return out.value

    def layer_device(self, layer):
        out = ctypes.c_int(0)
        _lib.check(lib.hoist_plan_layer_device(self.handle, layer, ctypes.byref(out)))
        return out.value

    def close(self):
        handle, self.handle = self.handle, None
        if handle:
            self._free(handle)

    __del__ = close
