#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the integrity and packed-container
# measurements of docs/BENCHMARKS.md (issue #4). Expects the static build carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Generates an 8 GB bf16 checkpoint, writes its manifest and its packed container, then measures,
# alternating the order over REPS rounds, caches dropped before every load:
#   - cold uring load of the original vs cold load of the packed model through every path
#     (model bytes/s delivered to cuda:0, and file bytes/s read);
#   - cold uring load with and without --verify (manifest hashing in staging);
#   - the same loads from /dev/shm, where the disk is out of the way (decode and hash ceilings);
#   - ceilings in the same run: raw O_DIRECT read (dd) and pinned host-to-device copy.
# Writes $OUT/pack.log and $OUT/pack.csv (or ./out). Env: SIZE (8G), REPS (2), STAGES
# ("tests bench").
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
size=${SIZE:-8G}
reps=${REPS:-2}
stages=${STAGES:-"tests bench"}
hoist=$root/build-dev/hoist
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data
logf=$out/pack.log
csv=$out/pack.csv

. "$root/tools/device-lib.sh"
device_link_tree

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(date -u +%F)"

if [[ " $stages " == *" tests "* ]]; then
    log "GPU tests of the packed container and manifests"
    (cd "$built_in" 2>/dev/null || cd "$root" || exit; cd build-dev &&
        ctest -R '^test_(gpu_packed|packed|manifest|filter)$' --output-on-failure 2>&1) |
        tee -a "$logf"
fi

[[ " $stages " == *" bench "* ]] || { log "done"; exit 0; }

run "$hoist" devices --bandwidth
model=/root/hoist-bench/m$size
packed=/root/hoist-bench/m$size.hoist
if [ ! -d "$model" ]; then
    log "generating a $size bf16 model"
    run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
fi
model_bytes=$(du -sb --apparent-size "$model"/*.safetensors | awk '{s += $1} END {print s}')
log "model $model: $model_bytes bytes of safetensors"

log "manifest (hoist sum, page cache warm after generation) and packed container"
run "$hoist" sum "$model"
run "$hoist" pack "$model" "$packed" --force
run "$hoist" pack "$model" "$packed.l3" --level 3 --force   # the level comparison
packed_bytes=$(stat -c %s "$packed")
awk -v p="$packed_bytes" -v m="$model_bytes" \
    'BEGIN { printf "packed size: %d of %d bytes = %.1f%% (target <= 75%%)\n", p, m, 100 * p / m }' |
    tee -a "$logf"
rm -f "$packed.l3"
run "$hoist" inspect "$packed" | tail -8

echo "label,where,rep,path,device,threads,seconds,model_gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes,file_bytes,read_seconds,copy_seconds,verify_seconds,decode_seconds" > "$csv"
# one cold load: label, where, rep, then hoist load arguments
cold() {
    local label=$1 where=$2 rep=$3
    shift 3
    [ "$where" = disk ] && drop
    echo "\$ hoist load $* --csv   [$label, $where, round $rep]" | tee -a "$logf"
    local line
    line=$("$hoist" load "$@" --device cuda:0 --csv 2>>"$logf" | tail -1)
    echo "$line" | tee -a "$logf"
    [ -n "$line" ] && echo "$label,$where,$rep,$line" >> "$csv"
}
ddread() {
    drop
    local t0 t1
    t0=$(date +%s.%N)
    for f in "$@"; do dd if="$f" of=/dev/null bs=64M iflag=direct status=none & done
    wait
    t1=$(date +%s.%N)
    local bytes
    bytes=$(du -cb --apparent-size "$@" | tail -1 | cut -f1)
    awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.3f s, %.2f GB/s\n", z - a, b / (z - a) / 1e9 }'
}

log "cold (caches dropped before every load), $reps rounds, order alternating"
for rep in $(seq 1 "$reps"); do
    echo "round $rep: dd O_DIRECT original: $(ddread "$model"/*.safetensors); packed: $(ddread "$packed")" | tee -a "$logf"
    if [ $((rep % 2)) -eq 1 ]; then
        cold original disk "$rep" "$model" --path uring
        for p in uring stream mmap; do cold packed disk "$rep" "$packed" --path $p; done
        cold original+verify disk "$rep" "$model" --path uring --verify
        cold original disk "$rep" "$model" --path uring
    else
        cold original+verify disk "$rep" "$model" --path uring --verify
        for p in mmap stream uring; do cold packed disk "$rep" "$packed" --path $p; done
        cold original disk "$rep" "$model" --path uring
        cold original+verify disk "$rep" "$model" --path uring --verify
    fi
done

log "from /dev/shm (no disk in the way: the decode and hashing ceilings), runs 2 and 3 of 3"
shm=/dev/shm/hoist-pack
rm -rf "$shm"; mkdir -p "$shm"
cp -r "$model" "$shm/m"; cp "$packed" "$shm/m.hoist"
for rep in 1 2 3; do
    cold original shm "$rep" "$shm/m" --path uring
    cold original+verify shm "$rep" "$shm/m" --path uring --verify
    for p in uring stream mmap; do cold packed shm "$rep" "$shm/m.hoist" --path $p; done
done
rm -rf "$shm"

log "summary (model GB/s = tensor bytes delivered to cuda:0 per second of load)"
awk -F, 'NR > 1 { k = $1 " " $2 " " $4; n[k]++; s[k] += $8; f[k] += $12 / $7 / 1e9 }
         END { for (k in n) printf "%-32s %d runs: %.2f GB/s model, %.2f GB/s file\n", k, n[k], s[k] / n[k], f[k] / n[k] }' "$csv" |
    sort | tee -a "$logf"
awk -F, 'NR > 1 && $2 == "disk" && $4 == "uring" { if ($1 == "original") { o += $8; no++ }
         if ($1 == "packed") { p += $8; np++ } if ($1 == "original+verify") { v += $8; nv++ } }
         END { if (no && np) printf "cold packed uring / cold original uring: %.2fx (target >= 1.25x)\n", (p / np) / (o / no);
               if (no && nv) printf "cold uring with --verify / without: %.1f%% of the throughput (target >= 90%%)\n", 100 * (v / nv) / (o / no) }' "$csv" |
    tee -a "$logf"
log "done"
