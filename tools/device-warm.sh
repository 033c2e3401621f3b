#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): warm `--path mmap` loads of a SIZE bf16 model
# into cuda:0 over a grid of worker counts (THREADS) and staging windows (WINDOWS), each load a
# fresh process, ROUNDS rounds in rotated order, then `hoist bench`'s pinned copy and host staging
# ceilings of the same run (issue #23: warm loads at the link). A smaller window keeps the
# workers' pinned slots (3 windows each) inside the CPU's last-level cache, where the copy engine
# reads them without going to DRAM; each copy costs a fixed launch, so too small loses again.
# Expects the static build-dev/ of docs/DEVICE.md. Writes $OUT/warm/log and warm.csv.
#   SIZE=8G ROUNDS=2 THREADS="8 12 16" WINDOWS="512K 1M 2M" tools/device-warm.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/warm
mkdir -p "$out"
hoist=$root/build-dev/hoist
size=${SIZE:-8G}
rounds=${ROUNDS:-2}
threads=${THREADS:-"8 12 16"}
windows=${WINDOWS:-"512K 1M 2M"}
logf=$out/log
. "$root/tools/device-lib.sh"

log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), \
$(nproc) cores, $(date -u +%F)"
model=/root/hoist-bench/m$size
[ -d "$model" ] || run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
cat "$model"/* > /dev/null
csv=$out/warm.csv
echo "round,threads,window,path,device,threads_used,seconds,gb_per_s,bytes,loader_peak_bytes,\
process_peak_rss_bytes,file_bytes,read_seconds,copy_seconds,verify_seconds,decode_seconds" > "$csv"
combos=()
for t in $threads; do for w in $windows; do combos+=("$t $w"); done; done
n=${#combos[@]}
for r in $(seq "$rounds"); do
    for i in $(seq 0 $((n - 1))); do
        read -r t w <<< "${combos[$(( (i + r) % n ))]}"
        line=$("$hoist" load "$model" --path mmap --device cuda:0 --threads "$t" --chunk "$w" \
            --csv 2>> "$logf" | tail -1)
        echo "$r,$t,$w,$line" | tee -a "$csv" "$logf"
    done
done
run "$hoist" bench "$model" --device cuda:0 --paths mmap --repeat 3 --warm --csv "$out/bench.csv" --quiet
log "the CPU's copy alone: staging into host memory, no device (its host staging ceiling)"
run "$hoist" bench "$model" --device host --paths mmap --repeat 1 --warm --csv "$out/host.csv" --quiet
log "median GB/s per setting"
awk -F, 'NR > 1 { k = $2 " threads, " $3; v[k] = v[k] " " $8 }
    END { for (k in v) { m = split(substr(v[k], 2), a, " ");
              for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
              printf "%-22s %s\n", k, (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) } }' "$csv" |
    sort -n | tee -a "$logf"
log "done"
