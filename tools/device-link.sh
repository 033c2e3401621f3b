#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): what keeps a warm staged load below the
# pinned-copy ceiling (issue #23 asks for 95% of it; mmap reaches 85%, hoist's own staging ceiling
# 87%). Three parts, each from a fresh process:
#   1. build-dev/link_probe (tools/link_probe.cu): the copy engines alone in pieces of 256 KiB to
#      16 MiB over 1-16 streams, from reused slots, with T threads copying memory beside them, and
#      the whole staging loop on anonymous memory. Its CSV is $OUT/link.csv.
#   2. warm `hoist load --path mmap` over a sweep of windows and thread counts, with glibc's
#      memcpy as it is and with its non-temporal threshold raised past every window (glibc
#      switches to streaming stores above a threshold set from the cache size, and streaming
#      stores measured 10-23% slower here: docs/BENCHMARKS.md). $OUT/link-loads.csv.
#   3. `hoist devices --bandwidth`, the ceiling the loads are compared with, before and after.
# Writes $OUT/link.log too. Expects the static build carried as build-dev/ (with link_probe):
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Settings (environment): SIZE (8G), HOIST (build-dev/hoist), MODEL_DIR (/root/hoist-bench),
# DEVICE (cuda:0), WINDOWS ("1M 2M 4M 8M"), THREADS ("12 16"), LOADS (2 per setting).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
hoist=${HOIST:-$root/build-dev/hoist}
probe=$root/build-dev/link_probe
size=${SIZE:-8G}
model=${MODEL_DIR:-/root/hoist-bench}/m$size
device=${DEVICE:-cuda:0}
windows=${WINDOWS:-"1M 2M 4M 8M"}
threads=${THREADS:-"12 16"}
loads=${LOADS:-2}
logf=$out/link.log
csv=$out/link-loads.csv

. "$root/tools/device-lib.sh"

[ -x "$hoist" ] || { log "no hoist at $hoist"; exit 1; }
[ -x "$probe" ] || { log "no link_probe at $probe (a CUDA build makes it)"; exit 1; }
log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null), $(nproc) cores, $(uname -r), $(date -u +%FT%TZ)"
log "glibc $(ldd --version | head -n 1 | awk '{print $NF}'); L3 $(getconf LEVEL3_CACHE_SIZE 2>/dev/null) bytes"
run "$hoist" devices --bandwidth

log "link_probe (test,piece,streams,threads,gbps)"
"$probe" "${device#cuda:}" 2>&1 | tee "$out/link.csv" | tee -a "$logf"

if [ ! -d "$model" ]; then
    log "generating a $size bf16 model"
    run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
fi
cat "$model"/*.safetensors > /dev/null
# 1 GiB: above every window, so memcpy never streams
no_nt=glibc.cpu.x86_non_temporal_threshold=0x40000000
echo "memcpy,window,threads,load,seconds,gbps" > "$csv"
for l in $(seq "$loads"); do
    for w in $windows; do
        for t in $threads; do
            for m in plain no_nt; do
                tun=""
                [ "$m" = no_nt ] && tun=$no_nt
                line=$(GLIBC_TUNABLES=$tun "$hoist" load "$model" --device "$device" --path mmap \
                       --threads "$t" --chunk "$w" --csv 2>>"$logf" | tail -n 1)
                echo "$m,$w,$t,$l,$(echo "$line" | cut -d, -f4,5)" | tee -a "$csv" >> "$logf"
            done
        done
    done
done
log "warm mmap loads (memcpy,window,threads,load,seconds,gbps): $csv"
cat "$csv"
run "$hoist" devices --bandwidth
