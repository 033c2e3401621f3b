"""The ctypes mirrors of include/hoist.h's structs match the C compiler's layout, the binding's
default options match HOIST_LOAD_OPTIONS_DEFAULT, and the library exports both ABIs: every 0.1
function under symbol version HOIST_0, every current one by default (docs/ABI.md)."""

import ctypes
import json
import os
import re
import subprocess

import pytest

from hoist import _lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probe():
    exe = os.environ.get("HOIST_ABI_PROBE")
    if not exe:
        pytest.skip("HOIST_ABI_PROBE (tests/abi_probe) is not set: run through ctest")
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_struct_layouts():
    records = [r for r in probe() if "struct" in r]
    assert {r["struct"] for r in records} == set(_lib.STRUCTS)
    for r in records:
        cls = _lib.STRUCTS[r["struct"]]
        assert ctypes.sizeof(cls) == r["size"], r["struct"]
        mirrored = {name: [getattr(cls, name).offset, getattr(cls, name).size]
                    for name, _ in cls._fields_}
        assert mirrored == r["fields"], r["struct"]
        # the size field leads, and a fresh mirror carries the C sizeof
        assert r["fields"]["size"] == [0, ctypes.sizeof(ctypes.c_size_t)], r["struct"]
        assert cls().size == r["size"], r["struct"]


def test_default_options():
    (d,) = [r for r in probe() if r.get("defaults") == "hoist_load_options"]
    ours = _lib.LoadOptions.default()
    assert {k: getattr(ours, k) for k in d["values"]} == d["values"]
    (t,) = [r for r in probe() if r.get("defaults") == "hoist_tp_options"]
    ours = _lib.TpOptions.default()
    assert {k: getattr(ours, k) for k in t["values"]} == t["values"]


def test_struct_sizes():
    """hoist_device_info_get on the host (always present) as an older, a current and a newer
    caller would call it: a size below the first sized layout is refused naming the struct with
    nothing written; a larger size than the library's gets the library's fields and nothing past
    them."""
    get = _lib.lib.hoist_device_info_get
    invalid = _lib.status_code("HOIST_E_INVALID_ARG")
    info = _lib.DeviceInfo()
    for bad in (0, 8, ctypes.sizeof(info) // 2):
        info.size, info.id = bad, 12345
        assert get(_lib.HOIST_DEVICE_HOST, ctypes.byref(info)) == invalid
        assert "hoist_device_info.size is %d" % bad in _lib.lib.hoist_last_error().decode()
        assert info.id == 12345 and info.size == bad
    info = _lib.DeviceInfo()
    assert get(_lib.HOIST_DEVICE_HOST, ctypes.byref(info)) == 0
    assert info.id == _lib.HOIST_DEVICE_HOST and info.total_bytes > 0
    assert info.size == ctypes.sizeof(info)  # never written by the library
    # a caller built against a newer header: 64 more bytes the library knows nothing of
    n = ctypes.sizeof(_lib.DeviceInfo)
    buf = (ctypes.c_ubyte * (n + 64))(*([0xAB] * (n + 64)))
    ctypes.c_size_t.from_buffer(buf).value = n + 64
    assert get(_lib.HOIST_DEVICE_HOST, ctypes.cast(buf, ctypes.POINTER(_lib.DeviceInfo))) == 0
    assert _lib.DeviceInfo.from_buffer(buf).total_bytes == info.total_bytes
    assert bytes(buf[n:]) == b"\xab" * 64


# ---- symbol versions ----------------------------------------------------------------------------

def _functions(header):
    """The HOIST_API functions a header declares."""
    with open(header) as f:
        text = f.read()
    return set(re.findall(r"HOIST_API\s+[^;(]*?\b(hoist_\w+)\s*\(", text))


def _map_node(name):
    """The symbols listed in one node of loader/libhoist.map."""
    with open(os.path.join(REPO, "loader", "libhoist.map")) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    body = re.search(r"\b%s\s*\{(.*?)\}" % re.escape(name), text, re.S).group(1)
    return set(re.findall(r"\b(hoist_\w+)\s*;", body))


def _dlvsym():
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "dlvsym"):
        pytest.skip("no dlvsym (not glibc)")
    fn = libc.dlvsym
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    return lambda name, version: fn(_lib.lib._handle, name.encode(), version.encode())


def test_symbol_versions():
    dlvsym = _dlvsym()
    v0 = _functions(os.path.join(REPO, "tests", "abi", "hoist_v0_1.h"))
    now = _functions(os.path.join(REPO, "include", "hoist.h"))
    changed = _map_node("HOIST_0.2")
    assert len(v0) > 80 and len(now) >= len(v0)
    # 0.1 programs find every function they were linked against
    missing = sorted(n for n in v0 if not dlvsym(n, "HOIST_0"))
    assert not missing, "not exported as @HOIST_0: %s" % missing
    # new programs find every function of the header by default
    for n in now:
        getattr(_lib.lib, n)
    assert changed <= now, "libhoist.map lists what hoist.h lacks: %s" % sorted(changed - now)
    for n in sorted(v0):
        old = dlvsym(n, "HOIST_0")
        default = ctypes.cast(getattr(_lib.lib, n), ctypes.c_void_p).value
        if n in changed:
            # a function whose structs changed: the 0.1 shim and the 0.2 function
            assert dlvsym(n, "HOIST_0.2") == default, n
            assert old != default, "%s@HOIST_0 is not a compatibility shim" % n
        else:
            assert old == default, "%s changed symbol without a HOIST_0.2 version" % n
    # functions new since 0.1 carry a newer version, never HOIST_0
    for n in sorted(now - v0):
        assert n in changed, "%s is new: list it in a version node after HOIST_0" % n
        assert not dlvsym(n, "HOIST_0"), n
