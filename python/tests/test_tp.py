"""Tensor-parallel slices and cooperative loading from Python: load_file(tp=(rank, world))
gives each rank the default rules' slices (shapes and bytes, checked against numpy slicing of
the whole tensors), a Python rule decides tensors first, and hoist.distributed.load_cooperative
over a 2-process gloo group gives every rank what a whole load gives (run with a python that has
torch; skipped without one)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import hoist
from hoist import _lib

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def model():
    cli = os.environ.get("HOIST_CLI")
    if not cli:
        pytest.skip("HOIST_CLI (the hoist command) is not set: run through ctest")
    d = tempfile.mkdtemp(prefix="hoist-tp-")
    path = os.path.join(d, "m")
    subprocess.run([cli, "gen", path, "--quiet", "--layers", "2", "--hidden", "128",
                    "--intermediate", "256", "--heads", "4", "--kv-heads", "2", "--vocab", "256",
                    "--dtype", "f32"], check=True)
    yield path
    shutil.rmtree(d)


def expected(name, full, rank, world, kv_heads=2):
    if "norm" in name:
        return full
    if "o_proj" in name or "down_proj" in name:
        return np.split(full, world, axis=1)[rank]
    if ("k_proj" in name or "v_proj" in name) and world > kv_heads:
        return np.split(full, kv_heads, axis=0)[rank // (world // kv_heads)]
    return np.split(full, world, axis=0)[rank]


@pytest.mark.parametrize("world", [2, 4])
def test_load_file_slices(model, world):
    whole = hoist.load_file(model, device="cpu", framework="np")
    for rank in range(world):
        part = hoist.load_file(model, device="cpu", framework="np", tp=(rank, world),
                               path_kind=["mmap", "stream", "uring"][rank % 3])
        assert part.keys() == whole.keys()
        for name, full in whole.items():
            want = expected(name, full, rank, world)
            assert part[name].shape == want.shape, name
            assert np.array_equal(part[name], want), name


def test_rule(model):
    seen = []

    def rule(name, shape, dtype, rank, world):
        seen.append((name, shape, dtype))
        if name == "model.norm.weight":
            return (0, 2, rank, False)  # cut what the default rules replicate
        if "embed_tokens" in name:
            return "replicate"
        return None  # the default rules

    whole = hoist.load_file(model, device="cpu", framework="np")
    part = hoist.load_file(model, device="cpu", framework="np", tp=(1, 2), tp_rule=rule)
    assert ("model.norm.weight", (128,), "F32") in seen
    assert np.array_equal(part["model.norm.weight"], whole["model.norm.weight"][64:])
    assert np.array_equal(part["model.embed_tokens.weight"], whole["model.embed_tokens.weight"])

    def broken(name, shape, dtype, rank, world):
        raise KeyError("rule failed on " + name)

    with pytest.raises(KeyError, match="rule failed"):
        hoist.load_file(model, device="cpu", framework="np", tp=(0, 2), tp_rule=broken)
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(model, device="cpu", framework="np", tp=(2, 2))
    assert e.value.name == "HOIST_E_INVALID_ARG"


def _torch_python():
    """A python that has torch with gloo: this one, $HOIST_TORCH_PYTHON, or Debian's (whose
    python3-torch tools/install-deps.sh installs)."""
    probe = ("import torch.distributed as d, numpy; "
             "assert d.is_available() and d.is_gloo_available()")
    for py in (sys.executable, os.environ.get("HOIST_TORCH_PYTHON"), "/usr/bin/python3"):
        if py and os.path.exists(py) and subprocess.run([py, "-c", probe],
                                                        capture_output=True).returncode == 0:
            return py
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Under the sanitizer build the workers run with libasan preloaded, and its __cxa_throw interceptor
# aborts inside torch's C++ exceptions (gloo's rendezvous throws and catches); the plain build
# runs this test.
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="torch.distributed's workers abort under a preloaded libasan")
@pytest.mark.parametrize("path", ["stream", "mmap"])
def test_cooperative_gloo(tmp_path, path):
    py = _torch_python()
    if py is None:
        pytest.skip("no python with torch and gloo (python3-torch)")
    cli = os.environ.get("HOIST_CLI")
    if not cli:
        pytest.skip("HOIST_CLI is not set: run through ctest")
    model = str(tmp_path / "m")
    subprocess.run([cli, "gen", model, "--quiet", "--layers", "2", "--hidden", "128",
                    "--intermediate", "256", "--heads", "4", "--kv-heads", "2", "--vocab", "256",
                    "--dtype", "bf16"], check=True)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               WORLD_SIZE="2", HOIST_PYTHON_DIR=os.path.dirname(HERE),
               HOIST_LIBRARY=_lib.library_path, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([py, os.path.join(HERE, "tp_worker.py"), model, path, "2"],
                              env=dict(env, RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a rank hung: " + "".join(outs))
    for r, p in enumerate(procs):
        assert p.returncode == 0, "rank %d: %s" % (r, outs[r])
