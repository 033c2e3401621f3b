#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the GPU codec of packed containers (issue #23,
# docs/PACKED.md). Expects the static build carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Stages (STAGES, default "tests bench"):
#   tests  test_gpu_packed (GPU-decoded loads equal the original; the CPU, host-twin and CUDA
#          decoders agree) and test_packed;
#   probe  warm GPU-decoded loads with HOIST_LOG=debug (the workers' time), variants of queues
#          and workers, and Nsight Compute's times of a sample of the codec kernels;
#   bench  generates a SIZE bf16 checkpoint (hoist gen), packs it with --codec zstd and --codec
#          gpu, and measures, REPS rounds in rotated order, each load a fresh process into cuda:0:
#          raw (the safetensors), zstd, gpu (decoded and hashed on the GPU), gpu-cpu (the same
#          container decoded on the CPU: HOIST_GPU_DECODE=0) and gpu+verify (GPU decode, then
#          every chunk also hashed read back), warm (page cache holding the files) and cold (drop_caches before
#          each load); then `hoist bench` on the raw model for the ceilings of the same run
#          (raw O_DIRECT read, host staging, pinned host-to-device copy).
# Writes $OUT/codec.log, $OUT/codec.csv (one row per load) and $OUT/ceilings.csv (or ./out).
# Env: SIZE (8G), REPS (3), PATHS (uring mmap), STAGES, MODES (warm cold), LABELS (the five above).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
size=${SIZE:-8G}
reps=${REPS:-3}
paths=${PATHS:-"uring mmap"}
stages=${STAGES:-"tests bench"}
modes=${MODES:-"warm cold"}
labels=" ${LABELS:-raw zstd gpu gpu-cpu gpu+verify} "
hoist=$root/build-dev/hoist
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data
logf=$out/codec.log
csv=$out/codec.csv

. "$root/tools/device-lib.sh"
device_link_tree

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(date -u +%FT%TZ)"

if [[ " $stages " == *" tests "* ]]; then
    log "GPU and host tests of the packed container and its codecs"
    (cd "$root/build-dev/tests" && for t in test_gpu_packed test_packed; do
        start=$(date +%s)
        CK_DEFAULT_TIMEOUT=900 ./$t > "$out/$t.log" 2>&1
        echo "$t: exit $? in $(( $(date +%s) - start )) s, $(grep -E '^[0-9]+%: Checks' "$out/$t.log" | tail -1)"
    done) 2>&1 | tee -a "$logf"
fi

[[ " $stages " == *" bench "* || " $stages " == *" probe "* ]] || { log "done"; exit 0; }

run "$hoist" devices --bandwidth
model=/root/hoist-bench/m$size
zstd=/root/hoist-bench/m$size.zstd.hoist
gpu=/root/hoist-bench/m$size.gpu.hoist
if [ ! -d "$model" ]; then
    log "generating a $size bf16 model"
    run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
fi
model_bytes=$(du -cb --apparent-size "$model"/*.safetensors | tail -1 | cut -f1)
log "model $model: $model_bytes bytes of safetensors"
[ -f "$zstd" ] || run "$hoist" pack "$model" "$zstd" --codec zstd --force
[ -f "$gpu" ] || run "$hoist" pack "$model" "$gpu" --codec gpu --force
for f in "$zstd" "$gpu"; do
    awk -v p="$(stat -c %s "$f")" -v m="$model_bytes" -v n="$(basename "$f")" \
        'BEGIN { printf "container %s: %d of %d bytes = %.2f%% (target <= 70%% for gpu)\n", n, p, m, 100 * p / m }' |
        tee -a "$logf"
done

if [[ " $stages " == *" probe "* ]]; then
    # where a warm GPU-decoded load's time goes: the workers' summed read, copy and wait for
    # their slots' device work (HOIST_LOG=debug), with the default 4 MiB windows, 2 and 8 MiB,
    # CUDA's 32 hardware queues instead of 8 (the slots' streams share them) and fewer workers;
    # then Nsight Compute's duration of a sample of the decode kernels, each run alone
    cat "$gpu" > /dev/null
    probes=("HOIST_UNUSED=1|" "HOIST_UNUSED=1|--chunk 2M" "HOIST_UNUSED=1|--chunk 8M"
            "CUDA_DEVICE_MAX_CONNECTIONS=32|" "HOIST_UNUSED=1|--threads 8")
    # PROBES: other variants, ';'-separated ENV|ARGS
    [ -n "${PROBES:-}" ] && IFS=';' read -r -a probes <<< "$PROBES"
    for v in "${probes[@]}"; do
        for rep in 1 2; do
            echo "\$ ${v%%|*} hoist load gpu --path mmap ${v#*|}" | tee -a "$logf"
            env HOIST_LOG=debug "${v%%|*}" "$hoist" load "$gpu" --path mmap --device cuda:0 --csv \
                ${v#*|} 2>&1 | grep -E 'load phases|^mmap' | tee -a "$logf"
        done
    done
    echo "\$ HOIST_LOG=debug hoist load raw --path mmap" | tee -a "$logf"
    HOIST_LOG=debug "$hoist" load "$model" --path mmap --device cuda:0 --csv 2>&1 |
        grep -E 'load phases|^mmap' | tee -a "$logf"
    timeout 300 ncu --clock-control none --metrics gpu__time_duration.sum --csv \
        --print-units base -k regex:'exphuff|hash' --launch-skip 400 --launch-count 200 \
        "$hoist" load "$gpu" --path mmap --device cuda:0 > "$out/ncu-codec.csv" 2>> "$logf"
    awk -F'","' '$0 ~ /gpu__time_duration/ { v = $NF; gsub(/[",]/, "", v); k = $5
            sub(/\(.*/, "", k); sub(/.*::/, "", k); t[k] += v; n[k]++ }
        END { for (k in t) printf "ncu: %s %d launches, mean %.1f us\n", k, n[k], t[k] / n[k] / 1e3 }' \
        "$out/ncu-codec.csv" | tee -a "$logf"
fi
[[ " $stages " == *" bench "* ]] || { log "done"; exit 0; }

echo "label,mode,rep,path,device,threads,seconds,model_gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes,file_bytes,read_seconds,copy_seconds,verify_seconds,decode_seconds" > "$csv"
# one load in a fresh process: label, mode (cold|warm), rep, path, then env and hoist load args
one() {
    local label=$1 mode=$2 rep=$3 path=$4 envs=$5 file=$6
    shift 6
    if [ "$mode" = cold ]; then drop; else cat "$file" > /dev/null 2>&1 || cat "$file"/* > /dev/null; fi
    echo "\$ $envs hoist load $file --path $path $* --csv   [$label, $mode, round $rep]" | tee -a "$logf"
    local line
    line=$(env $envs "$hoist" load "$file" --path "$path" --device cuda:0 --csv "$@" 2>>"$logf" | tail -1)
    echo "$line" | tee -a "$logf"
    [ -n "$line" ] && echo "$label,$mode,$rep,$line" >> "$csv"
}
# the five loads of a round, rotated so that no label always follows a drop of the same size
round() {
    local mode=$1 rep=$2 path=$3
    local loads=("raw|$model|" "zstd|$zstd|" "gpu|$gpu|" "gpu-cpu|$gpu|HOIST_GPU_DECODE=0"
                 "gpu+verify|$gpu|")
    local n=${#loads[@]} i
    for i in $(seq 0 $((n - 1))); do
        IFS='|' read -r label file envs <<< "${loads[$(( (i + rep) % n ))]}"
        [[ "$labels" == *" $label "* ]] || continue
        local extra=()
        [ "$label" = gpu+verify ] && extra=(--verify)
        one "$label" "$mode" "$rep" "$path" "${envs:-HOIST_UNUSED=1}" "$file" "${extra[@]}"
    done
}

for mode in $modes; do
    log "$mode loads, $reps rounds, paths: $paths"
    for rep in $(seq 1 "$reps"); do
        for p in $paths; do round "$mode" "$rep" "$p"; done
    done
done

log "ceilings of the same run (hoist bench on the raw model: read, staging, pinned copy)"
run "$hoist" bench "$model" --device cuda:0 --paths uring --repeat 1 --cold --csv "$out/ceilings.csv" --quiet
bench_pin=$(awk -F, 'NR > 1 && $3 == "ceiling" && $5 == "pinned_copy" { print $13 }' "$out/ceilings.csv" | head -1)
# the same copy measured by `hoist devices --bandwidth` at the start of the run: the ratios take
# the higher of the two (bench's has read 20% low on one host), so that none is flattered
dev_pin=$(sed -n 's/.*host-to-device copy.*pinned \([0-9.]*\) GB\/s.*/\1/p' "$logf" | tail -1)
pinned=$(awk -v a="${bench_pin:-0}" -v b="${dev_pin:-0}" 'BEGIN { print (a > b ? a : b) }')
log "pinned host-to-device copy ceiling: ${pinned} GB/s (bench ${bench_pin:-?}, devices ${dev_pin:-?}); a codec load beats it when its model GB/s is above"

log "summary: median model GB/s (tensor bytes placed in cuda:0 per second of the whole load)"
awk -F, -v pin="${pinned:-0}" 'NR > 1 { k = $1 " " $2 " " $4; v[k] = v[k] " " $8 }
    END { for (k in v) { n = split(substr(v[k], 2), a, " ");
              for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
              med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2;
              printf "%-28s %d runs: %7.2f GB/s%s\n", k, n, med,
                     (pin > 0 ? sprintf(" (%.2fx the pinned copy ceiling)", med / pin) : "") } }' "$csv" |
    sort | tee -a "$logf"
log "done"
