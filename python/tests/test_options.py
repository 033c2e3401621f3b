"""load_file's defaults and the named verify modes: device "cpu" by default (as
safetensors.torch.load_file), verify="manifest" | "readback" | None, and booleans refused with a
message that names the modes."""

import inspect
import os
import shutil
import subprocess
import tempfile

import pytest

import hoist
from hoist import _lib
import st_reference as ref


@pytest.fixture
def model():
    d = tempfile.mkdtemp(prefix="hoist-py-opts-")
    path = os.path.join(d, "m.safetensors")
    ref.write(path, [("a", "F32", (4, 4), bytes(range(64))), ("b", "U8", (5,), b"hoist")])
    yield path
    shutil.rmtree(d)


def cli():
    exe = os.environ.get("HOIST_CLI")
    if not exe:
        pytest.skip("HOIST_CLI (the hoist command) is not set: run through ctest")
    return exe


def test_load_file_defaults_to_cpu(model):
    assert inspect.signature(hoist.load_file).parameters["device"].default == "cpu"
    assert inspect.signature(hoist.load_file).parameters["verify"].default is None
    out = hoist.load_file(model)  # no device: host memory, whatever the framework
    assert sorted(out) == ["a", "b"]
    b = out["b"]
    if hasattr(b, "device"):  # torch
        assert b.device.type == "cpu"
        assert bytes(b.numpy().tobytes()) == b"hoist"
    else:
        assert b.tobytes() == b"hoist"


@pytest.mark.parametrize("flag", [True, False])
def test_verify_booleans_are_refused(model, flag):
    with pytest.raises(TypeError) as e:
        hoist.load_file(model, framework="np", verify=flag)
    msg = str(e.value)
    assert '"manifest"' in msg and '"readback"' in msg and "None" in msg
    with pytest.raises(TypeError):
        hoist.safe_open(model, framework="np", verify=flag)


@pytest.mark.parametrize("value, flags", [
    (None, 0),
    ("manifest", _lib.HOIST_VERIFY_MANIFEST),
    ("readback", _lib.HOIST_VERIFY_READBACK),
    ("Readback", _lib.HOIST_VERIFY_READBACK),
    ("manifest,readback", _lib.HOIST_VERIFY_MANIFEST | _lib.HOIST_VERIFY_READBACK),
    (["readback", "manifest"], _lib.HOIST_VERIFY_MANIFEST | _lib.HOIST_VERIFY_READBACK),
])
def test_verify_names_set_the_flags(model, value, flags):
    with hoist.safe_open(model, framework="np", verify=value) as f:
        assert f._opts.verify == flags


@pytest.mark.parametrize("value", ["yes", "", "manifest,bogus", 1, ["readback", 2]])
def test_verify_unknown_names(model, value):
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model, framework="np", verify=value)
    assert e.value.name == "HOIST_E_INVALID_ARG"
    assert '"manifest"' in e.value.message and repr(value) in e.value.message


def test_verify_manifest_is_the_cli_check(model):
    """"manifest" checks against `hoist sum`'s manifest (absent: HOIST_E_NOT_FOUND; a changed
    byte: HOIST_E_INTEGRITY naming the tensor); "readback" needs no manifest."""
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model, framework="np", verify="manifest")
    assert e.value.name == "HOIST_E_NOT_FOUND"
    assert hoist.load_file(model, framework="np", verify="readback")["b"].tobytes() == b"hoist"
    subprocess.run([cli(), "sum", model], check=True, capture_output=True)
    out = hoist.load_file(model, framework="np", verify="manifest")
    assert out["b"].tobytes() == b"hoist"
    del out
    with open(model, "r+b") as f:  # the last byte of the data: tensor b's
        f.seek(-1, os.SEEK_END)
        f.write(b"?")
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model, framework="np", verify="manifest")
    assert e.value.name == "HOIST_E_INTEGRITY", e.value
    assert model in e.value.message and "manifest" in e.value.message
    # without a check the changed byte simply loads
    assert hoist.load_file(model, framework="np")["b"].tobytes() == b"hois?"
