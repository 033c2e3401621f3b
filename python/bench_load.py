#!/usr/bin/env python3
"""hoist.load_file against safetensors.torch.load_file, same checkpoint, same GPU, cold and warm.

    sudo python3 python/bench_load.py MODEL [--device cuda:0] [--cold 2] [--warm 3]
                                            [--path auto] [--csv results.csv]

MODEL is a .safetensors file (the fair case: both libraries read the same file), a directory or
an index (safetensors then loads shard by shard, as transformers does). Each (loader, cache
state) runs in a fresh process that first imports torch and creates the CUDA context, so neither
start-up is timed; each run is timed from the call until every tensor is on the device
(torch.cuda.synchronize), tensor dicts included. Cold runs drop the page cache first
(`echo 3 > /proc/sys/vm/drop_caches`, root only; skipped otherwise); warm runs follow a read of
the whole checkpoint into the page cache. Host RAM: the process's peak RSS above what it held
before the first load. Prints a table; --csv writes one row per run.
"""

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from bench_common import drop_caches, shards, warm_up

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args):
    """One loader, one cache state, several runs; a JSON line per run on stdout."""
    import torch

    device = torch.device(args.device)
    torch.zeros(1, device=device)  # the CUDA context, outside the timings
    files = shards(args.model)
    if args.loader == "hoist":
        sys.path.insert(0, HERE)
        import hoist

        hoist.device_count()

        def load():
            with hoist.safe_open(args.model, framework="pt", device=args.device,
                                 path_kind=args.path) as f:
                tensors = f.tensors()
                return tensors, f.stats()
    else:
        from safetensors.torch import load_file

        def load():
            tensors = {}
            for path in files:
                tensors.update(load_file(path, device=args.device))
            return tensors, None

    base_rss = rss_bytes()
    for run in range(args.runs):
        if args.mode == "cold":
            drop_caches()
        elif run == 0:
            warm_up(files)
        t0 = time.perf_counter()
        tensors, stats = load()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
        del tensors
        torch.cuda.empty_cache()
        row = {"loader": args.loader, "mode": args.mode, "run": run + 1, "seconds": seconds,
               "bytes": nbytes, "gbps": nbytes / seconds / 1e9,
               "peak_rss_above_start": rss_bytes() - base_rss,
               "hoist_path": stats["path"] if stats else "",
               "hoist_load_seconds": stats["seconds"] if stats else "",
               "hoist_peak_host_bytes": stats["peak_host_bytes"] if stats else ""}
        print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--cold", type=int, default=2, help="cold runs per loader (0: none)")
    ap.add_argument("--warm", type=int, default=3, help="warm runs per loader (0: none)")
    ap.add_argument("--path", default="auto", help="hoist path_kind")
    ap.add_argument("--loaders", default="hoist,safetensors")
    ap.add_argument("--csv")
    ap.add_argument("--child", nargs=3, metavar=("LOADER", "MODE", "RUNS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.loader, args.mode, args.runs = args.child[0], args.child[1], int(args.child[2])
        return child(args)

    files = shards(args.model)
    size = sum(os.path.getsize(f) for f in files)
    print("model %s: %d file(s), %.2f GB; device %s" % (args.model, len(files), size / 1e9,
                                                        args.device))
    modes = []
    if args.cold:
        if os.geteuid() == 0:
            modes.append(("cold", args.cold))
        else:
            print("cold runs skipped: dropping the page cache needs root")
    if args.warm:
        modes.append(("warm", args.warm))
    rows = []
    for mode, runs in modes:
        for loader in args.loaders.split(","):
            cmd = [sys.executable, os.path.abspath(__file__), args.model, "--device", args.device,
                   "--path", args.path, "--child", loader, mode, str(runs)]
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    rows.append(json.loads(line))
                    r = rows[-1]
                    extra = ""
                    if r["hoist_path"]:
                        extra = "  (hoist path %s, C load %.3f s, loader host RAM %.0f MiB)" % (
                            r["hoist_path"], r["hoist_load_seconds"],
                            r["hoist_peak_host_bytes"] / 2**20)
                    print("%-11s %-4s run %d: %7.3f s  %6.2f GB/s  peak RSS +%.2f GiB%s"
                          % (loader, mode, r["run"], r["seconds"], r["gbps"],
                             r["peak_rss_above_start"] / 2**30, extra), flush=True)
    print()
    print("| loader | cache | runs | median s | median GB/s | best GB/s | peak RSS above start |")
    print("|---|---|---:|---:|---:|---:|---:|")
    summary = {}
    for mode, _ in modes:
        for loader in args.loaders.split(","):
            rs = [r for r in rows if r["loader"] == loader and r["mode"] == mode]
            if not rs:
                continue
            med = statistics.median(r["seconds"] for r in rs)
            summary[(loader, mode)] = med
            print("| %s | %s | %d | %.3f | %.2f | %.2f | %.2f GiB |"
                  % (loader, mode, len(rs), med, rs[0]["bytes"] / med / 1e9,
                     max(r["gbps"] for r in rs), max(r["peak_rss_above_start"] for r in rs) / 2**30))
    for mode, _ in modes:
        if ("hoist", mode) in summary and ("safetensors", mode) in summary:
            print("%s: hoist is %.2fx safetensors (median time ratio)"
                  % (mode, summary[("safetensors", mode)] / summary[("hoist", mode)]))
    if args.csv and rows:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
