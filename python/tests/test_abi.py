"""The ctypes mirrors of include/hoist.h's structs match the C compiler's layout, and the
binding's default options match HOIST_LOAD_OPTIONS_DEFAULT."""

import ctypes
import json
import os
import subprocess

import pytest

from hoist import _lib


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


def test_default_options():
    (d,) = [r for r in probe() if r.get("defaults") == "hoist_load_options"]
    ours = _lib.LoadOptions.default()
    assert {k: getattr(ours, k) for k in d["values"]} == d["values"]
