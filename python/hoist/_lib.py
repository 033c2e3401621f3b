"""libhoist through ctypes: finding the library, its prototypes, its structs and its errors.

Everything here mirrors include/hoist.h. The structs are checked against the C compiler's layout
by python/tests/test_abi.py (the ctest `python` test), so a field added to the header without its
twin here fails CI instead of corrupting memory.
"""

import ctypes
import ctypes.util
import os

# The C API this binding was written against: its major version, and the oldest minor version
# whose structs it mirrors. A library of another major version, or older than API_MIN_NUMBER
# (0.1 had no size fields in its structs, so it would read ours wrongly), is refused; a newer
# minor version takes these structs as they are, by their size fields (docs/ABI.md).
API_MAJOR = 0
API_MIN_NUMBER = 200  # 0.2.0, as hoist_version_number() counts

HOIST_MAX_DIMS = 8
HOIST_DEVICE_HOST = -1


class HoistError(Exception):
    """A failed libhoist call.

    Attributes:
        status: the hoist_status code (negative int), e.g. -23.
        name: its enumerator name, e.g. "HOIST_E_NOT_FOUND".
        description: the fixed description of the status (hoist_strerror).
        message: hoist's message for this failure, naming the file, tensor and byte offset where
            they exist (hoist_last_error), or a message of the binding itself.
    """

    def __init__(self, status, name, description, message):
        self.status = status
        self.name = name
        self.description = description
        self.message = message
        super().__init__("%s (%s): %s" % (name, description, message or description))


# ---- structs (include/hoist.h) ---------------------------------------------------------------

class Sized(ctypes.Structure):
    """A struct that starts with its size_t size, as every struct hoist reads or writes through a
    caller's pointer does: constructing one sets the size (the C initializers' job), so that the
    library reads and writes exactly the fields mirrored here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.size = ctypes.sizeof(self)


class TensorInfo(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_int64 * HOIST_MAX_DIMS),
        ("nbytes", ctypes.c_uint64),
        ("file", ctypes.c_uint32),
        ("offset", ctypes.c_uint64),
    ]


class View(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_int64 * HOIST_MAX_DIMS),
        ("nbytes", ctypes.c_uint64),
        ("device", ctypes.c_int),
        ("data", ctypes.c_void_p),
    ]


# hoist_progress_fn(done, total, user)
ProgressFn = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)
HOIST_VERIFY_MANIFEST = 1
HOIST_VERIFY_READBACK = 2


class LoadOptions(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("path", ctypes.c_int),
        ("device", ctypes.c_int),
        ("ram_budget", ctypes.c_uint64),
        ("threads", ctypes.c_uint),
        ("chunk_bytes", ctypes.c_uint64),
        ("verify", ctypes.c_uint),
        ("mmap_register", ctypes.c_int),
        ("plan", ctypes.c_void_p),  # const hoist_plan *: NULL, every tensor on device
        ("progress", ProgressFn),  # NULL unless set
        ("progress_user", ctypes.c_void_p),
        ("manifest", ctypes.c_char_p),
        ("readahead_bytes", ctypes.c_int64),
        ("allocator", ctypes.c_void_p),  # const hoist_allocator *: NULL, hoist's own
        ("tp", ctypes.c_void_p),  # const hoist_tp_options *: NULL, whole tensors
    ]

    @classmethod
    def default(cls):
        """HOIST_LOAD_OPTIONS_DEFAULT."""
        return cls(path=0, device=HOIST_DEVICE_HOST, ram_budget=0, threads=0, chunk_bytes=0,
                   verify=0, mmap_register=-1, manifest=None, readahead_bytes=-1)


class LoadStats(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("path", ctypes.c_char_p),
        ("seconds", ctypes.c_double),
        ("read_seconds", ctypes.c_double),
        ("copy_seconds", ctypes.c_double),
        ("verify_seconds", ctypes.c_double),
        ("bytes", ctypes.c_uint64),
        ("arena_bytes", ctypes.c_uint64),
        ("peak_host_bytes", ctypes.c_uint64),
        ("threads", ctypes.c_uint),
        ("decode_seconds", ctypes.c_double),
        ("readback_seconds", ctypes.c_double),
        ("file_bytes", ctypes.c_uint64),
        ("read_bytes", ctypes.c_uint64),
        ("exchange_seconds", ctypes.c_double),
        ("exchange_bytes", ctypes.c_uint64),
        ("gpu_decoded_bytes", ctypes.c_uint64),
        ("unhashed_bytes", ctypes.c_uint64),
    ]


class TpSplit(ctypes.Structure):
    """hoist_tp_split: the library's struct, handed to a rule callback (no size field)."""
    _fields_ = [
        ("dim", ctypes.c_int),
        ("parts", ctypes.c_uint32),
        ("index", ctypes.c_uint32),
        ("pad", ctypes.c_int),
    ]


HOIST_TP_REPLICATE = -1
HOIST_TP_RULE_DEFAULT = 1
# hoist_tp_rule_fn(tensor, rank, world, split, user)
TpRuleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(TensorInfo), ctypes.c_int, ctypes.c_int,
                            ctypes.POINTER(TpSplit), ctypes.c_void_p)


class TpOptions(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("rank", ctypes.c_int),
        ("world", ctypes.c_int),
        ("rule", TpRuleFn),  # NULL unless set
        ("rule_user", ctypes.c_void_p),
        ("rules_default", ctypes.c_int),
        ("pad", ctypes.c_int),
        ("heads", ctypes.c_uint32),
        ("kv_heads", ctypes.c_uint32),
        ("cooperative", ctypes.c_int),
        ("nccl_comm", ctypes.c_void_p),
    ]

    @classmethod
    def default(cls):
        """HOIST_TP_OPTIONS_DEFAULT."""
        return cls(rank=0, world=1, rules_default=1, pad=0, heads=0, kv_heads=0, cooperative=0)


class TpShare(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("rank", ctypes.c_int),
        ("world", ctypes.c_int),
        ("device", ctypes.c_int),
        ("base", ctypes.c_void_p),
        ("part_bytes", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("pending", ctypes.c_int),
    ]


class DeviceInfo(Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("id", ctypes.c_int),
        ("name", ctypes.c_char * 128),
        ("total_bytes", ctypes.c_uint64),
        ("free_bytes", ctypes.c_uint64),
        ("compute_major", ctypes.c_int),
        ("compute_minor", ctypes.c_int),
    ]


# For the ABI test: every struct above under its C name.
STRUCTS = {
    "hoist_tensor_info": TensorInfo,
    "hoist_view": View,
    "hoist_load_options": LoadOptions,
    "hoist_load_stats": LoadStats,
    "hoist_device_info": DeviceInfo,
    "hoist_tp_options": TpOptions,
    "hoist_tp_share": TpShare,
}

# ---- finding the library ---------------------------------------------------------------------

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_SONAME = "libhoist.so.%d" % API_MAJOR


def _candidates():
    """Where the library is looked for, in order; see README.md in this directory."""
    env = os.environ.get("HOIST_LIBRARY")
    if env:
        # An explicit choice is the only candidate: falling back would hide a mistake.
        return [env]
    found = []
    for name in (_SONAME, "libhoist.so"):
        found.append(os.path.join(_PKG_DIR, name))
    # A source checkout: python/hoist/ inside the repository, next to its build trees.
    repo = os.path.dirname(os.path.dirname(_PKG_DIR))
    if os.path.isfile(os.path.join(repo, "include", "hoist.h")):
        for build in ("build", "build-dev"):
            found.append(os.path.join(repo, build, "libhoist.so"))
    found.append(ctypes.util.find_library("hoist") or _SONAME)
    return found


def _open():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (absent)" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("hoist: cannot load libhoist; set HOIST_LIBRARY to the path of libhoist.so. "
                      "Tried: " + "; ".join(tried))


lib, library_path = _open()

_c = ctypes
_P = ctypes.POINTER
_PROTOTYPES = {
    # name: (restype, argtypes)
    "hoist_version": (_c.c_char_p, []),
    "hoist_version_number": (_c.c_uint, []),
    "hoist_strerror": (_c.c_char_p, [_c.c_int]),
    "hoist_status_name": (_c.c_char_p, [_c.c_int]),
    "hoist_last_error": (_c.c_char_p, []),
    "hoist_set_log_callback": (None, [_c.c_void_p, _c.c_void_p, _c.c_int]),
    "hoist_dtype_name": (_c.c_char_p, [_c.c_int]),
    "hoist_dtype_bits": (_c.c_uint, [_c.c_int]),
    "hoist_model_open": (_c.c_int, [_c.c_char_p, _c.c_void_p, _P(_c.c_void_p)]),
    "hoist_model_free": (None, [_c.c_void_p]),
    "hoist_model_tensor_count": (_c.c_size_t, [_c.c_void_p]),
    "hoist_model_tensor": (_c.c_int, [_c.c_void_p, _c.c_size_t, _P(TensorInfo)]),
    "hoist_model_find": (_c.c_int, [_c.c_void_p, _c.c_char_p, _P(_c.c_size_t)]),
    "hoist_model_file_count": (_c.c_size_t, [_c.c_void_p]),
    "hoist_model_file_path": (_c.c_char_p, [_c.c_void_p, _c.c_size_t]),
    "hoist_model_total_bytes": (_c.c_uint64, [_c.c_void_p]),
    "hoist_model_metadata_count": (_c.c_size_t, [_c.c_void_p]),
    "hoist_model_metadata": (_c.c_int, [_c.c_void_p, _c.c_size_t, _P(_c.c_char_p),
                                        _P(_c.c_char_p)]),
    "hoist_device_count": (_c.c_int, []),
    "hoist_device_info_get": (_c.c_int, [_c.c_int, _P(DeviceInfo)]),
    "hoist_device_parse": (_c.c_int, [_c.c_char_p, _P(_c.c_int)]),
    "hoist_path_parse": (_c.c_int, [_c.c_char_p, _P(_c.c_int)]),
    "hoist_trim": (None, []),
    "hoist_load": (_c.c_int, [_c.c_void_p, _P(LoadOptions), _P(_c.c_void_p)]),
    "hoist_weights_free": (None, [_c.c_void_p]),
    "hoist_weights_retain": (_c.c_void_p, [_c.c_void_p]),
    "hoist_weights_live": (_c.c_size_t, [_P(_c.c_uint64)]),
    "hoist_weights_count": (_c.c_size_t, [_c.c_void_p]),
    "hoist_weights_view": (_c.c_int, [_c.c_void_p, _c.c_size_t, _P(View)]),
    "hoist_weights_stats": (_c.c_int, [_c.c_void_p, _P(LoadStats)]),
    "hoist_weights_read": (_c.c_int, [_c.c_void_p, _c.c_size_t, _c.c_uint64, _c.c_void_p,
                                      _c.c_uint64]),
}
# Functions newer than API_MIN_NUMBER: set up where the library has them (has(name) says).
_OPTIONAL = {
    "hoist_weights_tp_share": (_c.c_int, [_c.c_void_p, _P(TpShare)]),
    "hoist_tp_default_rule": (_c.c_int, [_c.c_void_p, _c.c_size_t, _P(TpOptions), _P(TpSplit)]),
}
for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
for _name, (_res, _args) in _OPTIONAL.items():
    _fn = getattr(lib, _name, None)
    if _fn is not None:
        _fn.restype = _res
        _fn.argtypes = _args


def has(name):
    """Whether the library in use exports function `name` (a newer one than API_MIN_NUMBER)."""
    return getattr(lib, name, None) is not None

_number = lib.hoist_version_number()
if _number // 10000 != API_MAJOR or _number < API_MIN_NUMBER:
    raise ImportError("hoist: %s is version %s; this binding needs %d.x from %d.%d.%d on"
                      % (library_path, lib.hoist_version().decode(), API_MAJOR,
                         API_MIN_NUMBER // 10000, API_MIN_NUMBER // 100 % 100,
                         API_MIN_NUMBER % 100))

# ---- errors -------------------------------------------------------------------------------------


def _text(b):
    return b.decode("utf-8", "replace") if b is not None else ""


def error(status, message=None):
    """A HoistError for status; message defaults to hoist_last_error(), which must be read on the
    thread of the failed call before any other hoist call (it is thread-local)."""
    if message is None:
        message = _text(lib.hoist_last_error())
    return HoistError(status, _text(lib.hoist_status_name(status)),
                      _text(lib.hoist_strerror(status)), message)


_KINDS = {}


def error_as(base, status_name, message):
    """A HoistError that is also a `base` (ValueError, ImportError, TypeError, ...): callers that
    catch HoistError see every failure of the binding, and callers that catch the built-in kind
    still see theirs."""
    cls = _KINDS.get(base)
    if cls is None:
        cls = _KINDS[base] = type("Hoist" + base.__name__, (HoistError, base), {})
    status = status_code(status_name)
    return cls(status, status_name, _text(lib.hoist_strerror(status)), message)


def check(status):
    """Raises the HoistError of a failed call; returns status otherwise."""
    if status < 0:
        raise error(status)
    return status


def status_code(name):
    """The value of a status by its name ("HOIST_E_NOT_FOUND")."""
    for code in range(0, -1000, -1):
        if _text(lib.hoist_status_name(code)) == name:
            return code
    raise KeyError(name)


def live():
    """(weights alive in this process, bytes of their arenas): hoist_weights_live()."""
    nbytes = ctypes.c_uint64(0)
    count = lib.hoist_weights_live(ctypes.byref(nbytes))
    return count, nbytes.value


# ---- dtypes by name -------------------------------------------------------------------------------

def _dtype_table():
    names = {}
    for code in range(256):
        name = _text(lib.hoist_dtype_name(code))
        if name == "?":
            break
        names[code] = (name, lib.hoist_dtype_bits(code))
    return names


# hoist_dtype value -> (safetensors name, bits per element)
DTYPES = _dtype_table()

# ---- logging --------------------------------------------------------------------------------------

_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


def _install_log_bridge():
    """Forwards libhoist's log lines (auto's choice of path, fallbacks, budget fitting) to the
    Python logger "hoist". Lines come from loader threads too; ctypes takes the GIL for them."""
    import logging

    logger = logging.getLogger("hoist")
    levels = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}

    def forward(level, message, user):
        try:
            logger.log(levels.get(level, logging.DEBUG), "%s", _text(message))
        except Exception:  # a logging failure must never unwind into C
            pass

    thunk = _LOG_FN(forward)
    immortal(thunk)
    lib.hoist_set_log_callback(ctypes.cast(thunk, ctypes.c_void_p), None, 2)  # up to INFO


def immortal(obj):
    """Keeps obj alive until the process exits, interpreter teardown included: for C callbacks
    and strings that C code may still use while Python tears its modules down."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    return obj


if os.environ.get("HOIST_PYTHON_NO_LOG") is None:
    _install_log_bridge()

del _name, _res, _args, _fn
