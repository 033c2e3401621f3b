"""DLPack export of hoist views, built in ctypes.

Each exported tensor holds its own reference on the hoist_weights (hoist_weights_retain); the
DLPack deleter releases it (hoist_weights_free), so the arena lives exactly as long as any
consumer's tensor does. The DLManagedTensor (or DLManagedTensorVersioned) is allocated in C memory
together with its shape and strides, and its deleter and the capsule destructor are callbacks that
stay alive until the process ends: a consumer may release a tensor from any thread, or while the
interpreter tears its modules down, and nothing it touches may be gone by then.

Protocol: __dlpack__(stream=None, max_version=None, dl_device=None, copy=None) and
__dlpack_device__(), as in the Python array API standard. A consumer that passes max_version with
major >= 1 (torch 2.x does) gets a "dltensor_versioned" capsule of DLPack 1.0; older consumers
get a "dltensor" capsule. Views are complete when hoist_load returns (its copies are synchronised),
so no stream needs to wait and `stream` is accepted and ignored.
"""

import ctypes

from . import _lib

# DLPack constants (dlpack.h, v1.0)
KDL_CPU = 1
KDL_CUDA = 2
KDL_INT = 0
KDL_UINT = 1
KDL_FLOAT = 2
KDL_BFLOAT = 4
KDL_COMPLEX = 5
KDL_BOOL = 6
DLPACK_VERSION = (1, 0)


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


# Both deleters take a pointer to their own struct; c_void_p keeps ctypes from converting it.
_DELETER_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", _DELETER_FN),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("version", DLPackVersion),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", _DELETER_FN),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", DLTensor),
    ]


# ---- C memory and Python C API, through private prototypes (ctypes.pythonapi's shared function
# objects are left as other code configured them) ----------------------------------------------

_libc = ctypes.CDLL(None)
_malloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)(("malloc", _libc))
_free = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("free", _libc))
_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))

# A capsule keeps a pointer to its name, not a copy: the names live as long as the process.
_NAME_LEGACY = _lib.immortal(ctypes.create_string_buffer(b"dltensor"))
_NAME_VERSIONED = _lib.immortal(ctypes.create_string_buffer(b"dltensor_versioned"))

_CTX_LEGACY = DLManagedTensor.manager_ctx.offset
_CTX_VERSIONED = DLManagedTensorVersioned.manager_ctx.offset


def _make_deleter(ctx_offset, release=_lib.lib.hoist_weights_free, free=_free,
                  from_address=ctypes.c_void_p.from_address):
    # Everything the callback uses is bound here, not looked up in module globals, which the
    # interpreter may already have cleared when the last tensor goes.
    def deleter(managed):
        if managed:
            release(from_address(managed + ctx_offset).value)
            free(managed)
    return deleter


_delete_legacy = _make_deleter(_CTX_LEGACY)
_delete_versioned = _make_deleter(_CTX_VERSIONED)
_DELETER_LEGACY = _lib.immortal(_DELETER_FN(_delete_legacy))
_DELETER_VERSIONED = _lib.immortal(_DELETER_FN(_delete_versioned))

_DESTRUCTOR_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _destructor(capsule, is_valid=_capsule_is_valid, get=_capsule_get_pointer,
                legacy=_NAME_LEGACY, versioned=_NAME_VERSIONED,
                delete_legacy=_delete_legacy, delete_versioned=_delete_versioned,
                addressof=ctypes.addressof):
    # A consumer renames the capsule ("used_dltensor...") when it takes ownership; a capsule that
    # dies under its original name was never consumed, and its reference is released here. The
    # capsule is mid-deallocation: it is passed as a plain address, never as a Python object.
    for name, delete in ((versioned, delete_versioned), (legacy, delete_legacy)):
        if is_valid(capsule, addressof(name)):
            delete(get(capsule, addressof(name)))
            return


_DESTRUCTOR = _lib.immortal(_DESTRUCTOR_FN(_destructor))


def _fill_tensor(t, data, device, code, bits, shape, shape_ptr):
    ndim = len(shape)
    t.data = data
    t.device = device
    t.ndim = ndim
    t.dtype = DLDataType(code, bits, 1)
    arrays = (ctypes.c_int64 * (2 * ndim or 1)).from_address(shape_ptr)
    stride = 1
    for i in range(ndim - 1, -1, -1):
        # Row-major strides in elements, with an empty dimension counted as 1, as torch and
        # numpy compute them for a new contiguous tensor: views then compare equal to theirs.
        arrays[i] = shape[i]
        arrays[ndim + i] = stride
        stride *= max(shape[i], 1)
    t.shape = ctypes.cast(shape_ptr, ctypes.POINTER(ctypes.c_int64))
    t.strides = ctypes.cast(shape_ptr + 8 * ndim, ctypes.POINTER(ctypes.c_int64))
    t.byte_offset = 0


def capsule(weights, data, device, code, bits, shape, versioned):
    """A DLPack capsule over `data` (a pointer into the arena of `weights`, a hoist_weights
    pointer) with a reference of its own on the weights."""
    struct = DLManagedTensorVersioned if versioned else DLManagedTensor
    head = ctypes.sizeof(struct)
    block = _malloc(head + 16 * max(len(shape), 1))
    if not block:
        raise _lib.error_as(MemoryError, "HOIST_E_NOMEM", "out of memory for a DLPack tensor")
    m = struct.from_address(block)
    _fill_tensor(m.dl_tensor, data, device, code, bits, shape, block + head)
    if versioned:
        m.version = DLPackVersion(*DLPACK_VERSION)
        m.flags = 0
        m.deleter = _DELETER_VERSIONED
    else:
        m.deleter = _DELETER_LEGACY
    m.manager_ctx = _lib.lib.hoist_weights_retain(weights)
    name = _NAME_VERSIONED if versioned else _NAME_LEGACY
    try:
        return _capsule_new(block, ctypes.addressof(name), ctypes.cast(_DESTRUCTOR, ctypes.c_void_p))
    except BaseException:
        (_delete_versioned if versioned else _delete_legacy)(block)
        raise


def dl_device(hoist_device):
    """The DLPack (device_type, device_id) of a hoist device id."""
    if hoist_device == _lib.HOIST_DEVICE_HOST:
        return (KDL_CPU, 0)
    return (KDL_CUDA, hoist_device)


class Export:
    """One hoist view as a DLPack producer: pass it to torch.from_dlpack, numpy.from_dlpack or
    any array library's from_dlpack. Holds a reference on the weights until it is dropped; every
    capsule it produces holds its own."""

    __slots__ = ("_handle", "_data", "_device", "_code", "_bits", "_shape", "_free")

    def __init__(self, handle, data, device, code, bits, shape):
        """handle: a hoist_weights pointer; data: a pointer into its arena; device: hoist's
        device id; code, bits: the DLPack dtype; shape: the shape in elements of that dtype."""
        self._free = _lib.lib.hoist_weights_free
        self._handle = _lib.lib.hoist_weights_retain(handle)
        self._data = data
        self._device = device
        self._code = code
        self._bits = bits
        self._shape = tuple(int(d) for d in shape)

    def __del__(self):
        handle, self._handle = self._handle, None
        if handle:
            self._free(handle)

    def __dlpack_device__(self):
        return dl_device(self._device)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if copy:
            raise _lib.error_as(BufferError, "HOIST_E_INVALID_ARG",
                                "views are zero-copy; copy=True is not supported")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise _lib.error_as(BufferError, "HOIST_E_INVALID_ARG",
                                "the view lives on %r, not on %r"
                                % (self.__dlpack_device__(), tuple(dl_device)))
        versioned = max_version is not None and max_version[0] >= 1
        return capsule(self._handle, self._data, DLDevice(*self.__dlpack_device__()),
                       self._code, self._bits, self._shape, versioned)
