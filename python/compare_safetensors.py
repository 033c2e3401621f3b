#!/usr/bin/env python3
"""Checks hoist.load_file against safetensors.torch.load_file, tensor for tensor, on a device.

    python3 python/compare_safetensors.py MODEL [MODEL ...] [--device cuda:0] [--path auto]

MODEL is a .safetensors file, a model directory or an index. safetensors loads each shard with
load_file and merges them (what transformers does); hoist loads the whole checkpoint in one call.
For every tensor: the same name, dtype, shape, stride and device, and torch.equal of the bit
patterns (so NaN payloads and -0.0 count too). Then the lifetime: once every hoist tensor is
dropped, hoist.live_weights() is back where it was and the device's free memory has grown back
by the arena. Prints one line per model; exits 1 on the first mismatch.

--every-dtype DIR first writes DIR/every.safetensors with safetensors.torch.save_file: every
dtype this torch and safetensors support, odd shapes (scalars, empty, 8 dimensions, primes), random
bits, and checks it like the others.
"""

import argparse
import gc
import os
import sys
import time

import torch
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hoist  # noqa: E402
from bench_common import shards  # noqa: E402

SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 1, 3), (1, 1, 1, 1, 1, 1, 1, 1), (4097,), (3, 0, 5),
          (65, 63), (128, 1024)]
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "float8_e4m3fn",
          "float8_e5m2", "float8_e8m0fnu", "float8_e4m3fnuz", "float8_e5m2fnuz"]


def bits(t):
    """The tensor's bit patterns as an integer tensor of the same shape (a view)."""
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def write_every_dtype(directory):
    """Writes DIR/every.safetensors; returns its path and the dtypes left out (with why)."""
    os.makedirs(directory, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    probe = os.path.join(directory, "probe.safetensors")
    tensors, skipped = {}, []
    for name in DTYPES:
        dtype = getattr(torch, name, None)
        if dtype is None:
            skipped.append(name + " (not in this torch)")
            continue
        try:  # can this safetensors write it?
            st_save_file({"x": torch.zeros(1, dtype=torch.uint8).view(dtype)}, probe)
        except Exception as e:
            skipped.append("%s (safetensors: %s)" % (name, e))
            continue
        size = torch.empty((), dtype=dtype).element_size()
        for k, shape in enumerate(SHAPES):
            n = 1
            for d in shape:
                n *= d
            raw = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=g)
            if dtype == torch.bool:
                raw &= 1
            tensors["%s.%d" % (name, k)] = raw.view(dtype).reshape(shape)
    if os.path.exists(probe):
        os.remove(probe)
    path = os.path.join(directory, "every.safetensors")
    st_save_file(tensors, path, metadata={"written_by": "compare_safetensors.py"})
    return path, skipped


def compare(model, device, path_kind):
    dev = torch.device(device)
    base_live = hoist.live_weights()
    t0 = time.perf_counter()
    ours = hoist.load_file(model, device=device, path_kind=path_kind)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t_hoist = time.perf_counter() - t0
    live, arena = hoist.live_weights()
    if live != base_live[0] + 1:
        raise AssertionError("%s: %d weights alive after the load, expected %d"
                             % (model, live, base_live[0] + 1))
    theirs = {}
    for f in shards(model):
        theirs.update(st_load_file(f, device=device))
    if sorted(ours) != sorted(theirs):
        raise AssertionError("%s: names differ: %s" % (model, sorted(set(ours) ^ set(theirs))[:5]))
    nbytes, ntensors = 0, len(theirs)
    a = b = None
    for name in sorted(theirs):
        a, b = ours[name], theirs[name]
        for what, x, y in (("dtype", a.dtype, b.dtype), ("shape", a.shape, b.shape),
                           ("stride", a.stride(), b.stride()), ("device", a.device, b.device)):
            if x != y:
                raise AssertionError("%s: tensor %s: %s %s (hoist) != %s (safetensors)"
                                     % (model, name, what, x, y))
        if not torch.equal(bits(a), bits(b)):
            raise AssertionError("%s: tensor %s: values differ" % (model, name))
        nbytes += a.numel() * a.element_size()
    del a, b, theirs
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.synchronize(dev)
        free_with = torch.cuda.mem_get_info(dev)[0]
    keep = ours[sorted(ours)[-1]] if ours else None
    del ours
    still = hoist.live_weights()
    if keep is not None and still[0] != base_live[0] + 1:
        raise AssertionError("%s: the arena went while a tensor was alive" % model)
    del keep
    after = hoist.live_weights()
    if after != base_live:
        raise AssertionError("%s: %r weights alive after the last tensor went (before: %r)"
                             % (model, after, base_live))
    freed = ""
    arena_bytes = arena - base_live[1]
    # Below a few MiB the driver's allocation granularity blurs the reading; the count suffices.
    if dev.type == "cuda" and arena_bytes >= (64 << 20):
        torch.cuda.synchronize(dev)
        grown = torch.cuda.mem_get_info(dev)[0] - free_with
        if grown < arena_bytes:
            raise AssertionError("%s: free device memory grew by %d bytes when the last tensor "
                                 "went; the arena is %d" % (model, grown, arena_bytes))
        freed = ", arena of %d bytes freed with the last tensor" % arena_bytes
    print("ok %s: %d tensors, %d bytes equal to safetensors (dtype, shape, stride, device, "
          "bits); hoist %.3f s%s" % (model, ntensors, nbytes, t_hoist, freed))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--path", default="auto", help="hoist path_kind")
    ap.add_argument("--every-dtype", metavar="DIR")
    args = ap.parse_args()
    print("hoist %s (%s), torch %s" % (hoist.version(), hoist.library_path, torch.__version__))
    models = list(args.models)
    if args.every_dtype:
        path, skipped = write_every_dtype(args.every_dtype)
        if skipped:
            print("every-dtype file without: %s" % "; ".join(skipped))
        models.insert(0, path)
    failed = 0
    for m in models:
        try:
            compare(m, args.device, args.path)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (m, type(e).__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
