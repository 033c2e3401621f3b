#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): generates an 8 GB checkpoint and runs the
# full `hoist bench` on it twice (every path, cold and warm, --repeat 3), so that two runs' medians
# can be compared. Writes, under $OUT (or ./out): bench-run<N>.csv, bench-run<N>.svg (or the
# gnuplot script bench-run<N>.svg.gp where gnuplot is missing), bench-run<N>.log, and log.
# Expects the static build build-dev/ carried along, as tools/device-run.sh does:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Then, unless SHM=0, the same model copied to /dev/shm, warm only (tmpfs cannot be dropped): the
# uring and stream paths against the staging ceiling with storage out of the way
# (bench-shm.csv/.svg/.log).
# Settings (environment): SIZE (8G), RUNS ("1 2"), REPEAT (3), PATHS (mmap,uring,stream),
# BUDGETS (default: each path's own), DEVICE (cuda:0), MODEL_DIR (/root/hoist-bench), SHM (1),
# DROP (auto: drop_caches as root; "files" to leave the rest of a shared machine's cache alone).
# Each run takes about 2-3 minutes for 8 GB with one budget; three budgets triple the loads.
#
# Back on a machine with gnuplot, draw plots the device could not:
#   tools/device-bench.sh plot DIR     (every DIR/bench-*.csv -> .svg, with hoist bench --from-csv)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = plot ]; then
    dir=${2:?usage: tools/device-bench.sh plot DIR}
    hoist=${HOIST:-$root/build/hoist}
    for csv in "$dir"/bench-*.csv; do
        "$hoist" bench --from-csv "$csv" --plot "${csv%.csv}.svg" > /dev/null || exit 1
    done
    exit 0
fi

out=${OUT:-$root/out}
mkdir -p "$out"
hoist=$root/build-dev/hoist
size=${SIZE:-8G}
model=${MODEL_DIR:-/root/hoist-bench}/m$size

log() { echo "== $*" | tee -a "$out/log"; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r), $(date -u +%F)"
log "disk under $(dirname "$model"): $(df -hT "$(dirname "$model")" 2>/dev/null | awk 'NR==2{print $1, $2, $3}' || true)"
log "gnuplot: $(command -v gnuplot || echo 'not installed: the plots come back as .gp scripts')"
if [ ! -d "$model" ]; then
    log "generating a $size model"
    "$hoist" gen "$model" --size "$size" --threads "$(nproc)" 2>&1 | tee -a "$out/log"
fi
log "model $model: $(du -sb "$model" | cut -f1) bytes"

status=0
bench() { # NAME MODEL [bench options]
    local name=$1 m=$2
    shift 2
    log "bench $name: $m $*"
    "$hoist" bench "$m" --device "${DEVICE:-cuda:0}" --paths "${PATHS:-mmap,uring,stream}" \
        --budgets "${BUDGETS:-default}" --repeat "${REPEAT:-3}" --drop "${DROP:-auto}" "$@" \
        --csv "$out/bench-$name.csv" --plot "$out/bench-$name.svg" \
        > "$out/bench-$name.log" 2> "$out/bench-$name.err"
    local rc=$?
    tee -a "$out/log" < "$out/bench-$name.log"
    tail -n 3 "$out/bench-$name.err" | tee -a "$out/log"
    [ $rc -eq 0 ] || { log "bench $name exited with $rc"; status=1; }
}
for run in ${RUNS:-1 2}; do
    bench "run$run" "$model" --both
done
if [ "${SHM:-1}" = 1 ]; then
    shm=/dev/shm/hoist-m$size
    rm -rf "$shm" && cp -r "$model" "$shm" && bench shm "$shm" --warm
    rm -rf "$shm"
fi
log "done"
exit $status
