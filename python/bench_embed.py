#!/usr/bin/env python3
"""Time to a ready transformers model on a GPU: hoist.transformers.from_pretrained against
AutoModelForCausalLM.from_pretrained(dir, dtype=torch.bfloat16, device_map=DEVICE), same
checkpoint, same GPU, cold and warm page cache, each load in a fresh process.

    sudo python3 python/bench_embed.py MODEL_DIR [--device cuda:0] [--cold 1] [--warm 2]
                                                 [--tokens 8] [--csv embed.csv]

Each run is a new python3 process. It reports the seconds from its start to a model ready for
generate() (imports, the CUDA context and the build included: what a user waits for) and the
from_pretrained call alone (the CUDA context made and transformers' AutoModelForCausalLM and
hoist.transformers imported before it, alike for both: that import alone takes seconds), then
the model's greedy tokens for a fixed prompt, a hash of its logits for that prompt, and the
rotary inv_freq bytes. Cold runs drop the page cache first (root); warm runs follow a read of
every file. The parent checks that
every run of both loaders gave the same tokens, prints a table and writes one CSV row per run.

--profile DIR adds one warm hoist run, after the timed ones and left out of their statistics
(cProfile slows the calling thread), that writes a cProfile of the from_pretrained call (its
calling thread) and the load thread's own timings (hoist's C load, then the making of the
tensors) to DIR/prof-hoist.txt: where the seconds outside the load go.

--memory adds a run in which hoist's load is followed by torch.cuda.memory_allocated() before the
load, after it and after the model is dropped: the arena is torch's memory (hoist's allocator
hook), so it rises by the model's bytes and falls back.
"""

import argparse
import csv
import glob
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

from bench_common import drop_caches, warm_up

START = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT = [[128000, 791, 6864, 315, 9822, 374]]


def files_of(model):
    return sorted(glob.glob(os.path.join(model, "*.safetensors")) +
                  glob.glob(os.path.join(model, "*.json")))


def child(args):
    """One load in this fresh process; one JSON line on stdout."""
    import gc

    import torch
    import transformers

    device = torch.device(args.device)
    on_cuda = device.type == "cuda"  # (cpu: a smoke test of this script without a GPU)

    def sync():
        if on_cuda:
            torch.cuda.synchronize()

    def allocated():
        return torch.cuda.memory_allocated(device) if on_cuda else 0

    # Both loaders start from the same imports: transformers' AutoModelForCausalLM (whose lazy
    # import alone takes seconds) and hoist.transformers, so from_pretrained times the load.
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, HERE)
    import hoist.transformers

    torch.zeros(1, device=device)
    sync()
    ctx = time.perf_counter()
    mem0 = allocated()
    if args.loader.startswith("hoist"):
        prof, marks = _profile() if args.profile else (None, None)
        kwargs = load_kwargs(args.loader)
        t0 = time.perf_counter()
        model = hoist.transformers.from_pretrained(args.model, device=args.device, **kwargs)
        if prof is not None:
            sync()
            _write_profile(args, prof, marks, t0, time.perf_counter())
    else:
        t0 = time.perf_counter()
        try:
            model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16,
                                                         device_map=args.device)
            hf_mode = "device_map"
        except ImportError:  # a transformers that needs accelerate for device_map, without it
            t0 = time.perf_counter()
            model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16)
            model = model.to(device)
            hf_mode = "to(device), no accelerate"
    sync()
    t1 = time.perf_counter()
    mem1 = allocated()
    out = {"loader": args.loader, "cache": args.cache, "load_s": t1 - t0,
           "ready_s": t1 - START, "context_s": ctx - START,
           "class": type(model).__name__, "torch": torch.__version__,
           "transformers": transformers.__version__,
           "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
           "mem_before": mem0, "mem_loaded": mem1,
           "devices": sorted({str(p.device) for p in model.parameters()})}
    if args.loader == "hf":
        out["hf_mode"] = hf_mode
    if args.loader.startswith("hoist"):
        out["hoist_path"] = model.hoist_stats.get("path")
        out["hoist_load_s"] = model.hoist_stats.get("seconds")
        out["arena_bytes"] = model.hoist_stats.get("arena_bytes")
        out["timeline"] = model.hoist_timeline
    if args.memory:
        del model
        gc.collect()
        sync()
        out["mem_freed"] = allocated()
    else:
        rotary = [m for m in model.modules() if hasattr(m, "inv_freq")]
        out["inv_freq_sha"] = hashlib.sha256(
            rotary[0].inv_freq.detach().cpu().numpy().tobytes()).hexdigest()[:16] if rotary else ""
        ids = torch.tensor(PROMPT, device=device) % model.config.vocab_size
        with torch.no_grad():
            logits = model(ids).logits.float().cpu()
            gen = model.generate(ids, max_new_tokens=args.tokens, do_sample=False,
                                 attention_mask=torch.ones_like(ids))
        out["logits_sha"] = hashlib.sha256(logits.numpy().tobytes()).hexdigest()[:16]
        out["logits_head"] = [round(float(x), 4) for x in logits[0, -1, :4]]
        out["tokens"] = gen[0, ids.shape[1]:].tolist()
    print("RESULT " + json.dumps(out), flush=True)


def load_kwargs(loader):
    """hoist.transformers.from_pretrained's load options from a loader name: "hoist" has none,
    "hoist+threads=8+path_kind=uring" passes threads=8 and path_kind="uring" (an A/B of settings
    in one run)."""
    kwargs = {}
    for part in loader.split("+")[1:]:
        key, _, value = part.partition("=")
        kwargs[key] = int(value) if value.isdigit() else value
    return kwargs


def _profile():
    """A cProfile of the calling thread, enabled, and the load thread's timestamps: SafeOpen's
    load (the C load, arena allocation included) and tensors() (the load, then the tensors
    made) wrapped to record when they start and end."""
    import cProfile

    from hoist import _core

    marks = []

    def timed(name, fn):
        def wrapper(*a, **k):
            marks.append((name + " start", time.perf_counter()))
            try:
                return fn(*a, **k)
            finally:
                marks.append((name + " end", time.perf_counter()))
        return wrapper

    _core.safe_open.load = timed("load", _core.safe_open.load)
    _core.safe_open.tensors = timed("tensors", _core.safe_open.tensors)
    prof = cProfile.Profile()
    prof.enable()
    return prof, marks


def _write_profile(args, prof, marks, t0, t1):
    import io
    import pstats

    prof.disable()
    os.makedirs(args.profile, exist_ok=True)
    buf = io.StringIO()
    buf.write("from_pretrained %.3f s\n" % (t1 - t0))
    for name, t in marks:
        buf.write("  %-16s %+.3f s\n" % (name, t - t0))
    for key, n in (("cumulative", 45), ("tottime", 25)):
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(n)
    with open(os.path.join(args.profile, "prof-hoist.txt"), "w") as f:
        f.write(buf.getvalue())


def run_child(args, loader, cache, memory=False, profile=False):
    cmd = [sys.executable, os.path.abspath(__file__), args.model, "--device", args.device,
           "--child", loader, "--cache-state", cache, "--tokens", str(args.tokens)]
    if profile:
        cmd += ["--profile", args.profile]
    if memory:
        cmd.append("--memory")
    if cache == "cold":
        try:
            drop_caches()
        except OSError as e:
            print("cannot drop the page cache (%s): cold runs need root" % e, file=sys.stderr)
            return None
    else:
        warm_up(files_of(args.model))
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print("%s/%s failed (exit %d):\n%s" % (loader, cache, p.returncode, p.stderr[-4000:]),
              file=sys.stderr)
        return None
    line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--cold", type=int, default=1)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--csv")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--profile", metavar="DIR")
    ap.add_argument("--loaders", default="hoist,hf",
                    help="which loaders run, comma-separated (hoist alone: an A/B of two builds; "
                    "hoist+threads=8: hoist with that load option)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--cache-state", default="warm", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.loader, args.cache = args.child, args.cache_state
        return child(args)

    rows, failed = [], 0
    for cache, n in (("cold", args.cold), ("warm", args.warm)):
        for i in range(n):
            for loader in args.loaders.split(","):  # alternating, so drift hits both alike
                r = run_child(args, loader, cache)
                if r is None:
                    failed += 1
                    continue
                r["run"] = i
                rows.append(r)
                print("%-5s %-4s run %d: ready in %.2f s (from_pretrained %.2f s), tokens %s%s"
                      % (loader, cache, i, r["ready_s"], r["load_s"], r["tokens"],
                         ", timeline %s" % r["timeline"] if "timeline" in r else ""), flush=True)
    mem = run_child(args, "hoist", "warm", memory=True) if args.memory else None
    if args.profile:
        prof = run_child(args, "hoist", "warm", profile=True)
        if prof is None:
            failed += 1
        else:
            print("profiled hoist run (not in the statistics): from_pretrained %.2f s, in %s"
                  % (prof["load_s"], args.profile), flush=True)

    print("\n%-6s %-5s %4s %22s %22s" % ("loader", "cache", "runs", "ready s median [min]",
                                         "from_pretrained s"))
    loaders = list(dict.fromkeys(r["loader"] for r in rows))
    for loader in loaders:
        for cache in ("cold", "warm"):
            sel = [r for r in rows if r["loader"] == loader and r["cache"] == cache]
            if not sel:
                continue
            ready = [r["ready_s"] for r in sel]
            load = [r["load_s"] for r in sel]
            print("%-6s %-5s %4d %14.2f [%5.2f] %14.2f [%5.2f]"
                  % (loader, cache, len(sel), statistics.median(ready), min(ready),
                     statistics.median(load), min(load)))
    for cache in ("cold", "warm"):
        med = {}
        for loader in loaders:
            sel = [r for r in rows if r["loader"] == loader and r["cache"] == cache]
            if sel:
                med[loader] = (statistics.median(r["ready_s"] for r in sel),
                               statistics.median(r["load_s"] for r in sel))
        for loader in [l for l in med if l != "hf" and "hf" in med]:
            print("%s: %s is %.2fx faster in from_pretrained, %.2fx to ready from process start"
                  " (the same imports and CUDA context in both: %.1f s)"
                  % (cache, loader, med["hf"][1] / med[loader][1], med["hf"][0] / med[loader][0],
                     statistics.median(r["context_s"] for r in rows if r["cache"] == cache)))
    token_sets = {json.dumps(r["tokens"]) for r in rows}
    logit_sets = {r["logits_sha"] for r in rows}
    inv = {r["loader"]: r["inv_freq_sha"] for r in rows}
    same = len(token_sets) == 1 and bool(rows)
    print("\ngreedy tokens identical across every run of both loaders: %s %s"
          % ("YES" if same else "NO", sorted(token_sets)))
    print("logits identical: %s (%d distinct hashes); inv_freq hoist %s, hf %s"
          % ("YES" if len(logit_sets) == 1 else "NO", len(logit_sets), inv.get("hoist"),
             inv.get("hf")))
    if not same:
        for r in rows:
            print("  %s/%s/%d: %s logits %s %s" % (r["loader"], r["cache"], r["run"], r["tokens"],
                                                r["logits_sha"], r["logits_head"]))
    mem_ok = True
    if mem:
        rise = mem["mem_loaded"] - mem["mem_before"]
        mem_ok = rise >= mem["arena_bytes"] and mem["mem_freed"] == mem["mem_before"]
        print("torch.cuda.memory_allocated: %d before, +%d after the hoist load (arena %d, "
              "parameters %d), %d after the model was dropped: %s"
              % (mem["mem_before"], rise, mem["arena_bytes"], mem["param_bytes"],
                 mem["mem_freed"], "OK" if mem_ok else "WRONG"))
        mem["run"], mem["cache"] = 0, "memory"
        rows.append(mem)
    if args.csv:
        keys = ["loader", "cache", "run", "ready_s", "load_s", "context_s", "hoist_load_s",
                "hoist_path", "param_bytes", "arena_bytes", "mem_before", "mem_loaded",
                "mem_freed", "timeline", "tokens", "logits_sha", "inv_freq_sha", "hf_mode",
                "class", "torch", "transformers", "devices"]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore",
                               lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                            for k, v in r.items()})
    return 0 if same and mem_ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
