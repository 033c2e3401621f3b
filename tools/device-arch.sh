#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the GPU tests of a build carried as
# build-dev-slim/ (hoist, libhoist.so, tests/test_gpu_*), then A/B loads of that build against
# another build's hoist (build-dev-slim/hoist-base), cold and warm, rotated (tools/device-ab.sh).
#   tools/device-arch.sh [tests] [ab]        SIZE (8G), ROUNDS (4); logs under $OUT
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
stages=${*:-tests ab}
slim=$root/build-dev-slim
[ -e "$root/build-dev" ] || ln -s "$slim" "$root/build-dev"
# the test binaries hold the absolute paths of the tree they were built in
built_in=${BUILT_IN:-/work/main}
[ -e "$built_in" ] || { mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"; }
export HOIST_CLI=$slim/hoist HOIST_TEST_DATA=$root/tests/data
log() { echo "== $*" | tee -a "$out/log"; }
log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(date -u +%FT%TZ)"
"$slim/hoist" devices --bandwidth 2>&1 | tee -a "$out/log"

if [[ " $stages " == *" tests "* ]]; then
    for t in "$slim"/tests/test_gpu_*; do
        start=$(date +%s)
        (cd "$slim/tests" && CK_DEFAULT_TIMEOUT=600 "$t") > "$out/$(basename "$t").log" 2>&1
        rc=$?
        log "$(basename "$t"): exit $rc in $(( $(date +%s) - start )) s, $(grep -E '^[0-9]+%: Checks' "$out/$(basename "$t").log" | tail -1)"
        [ $rc -eq 0 ] || tail -20 "$out/$(basename "$t").log" | tee -a "$out/log"
    done
fi

if [[ " $stages " == *" ab "* ]]; then
    model=/root/hoist-ab/m${SIZE:-8G}
    [ -d "$model" ] || "$slim/hoist" gen "$model" --size "${SIZE:-8G}" --threads "$(nproc)" > /dev/null
    log "model $model: $(du -sb "$model" | cut -f1) bytes"
    export HOIST=$slim/hoist
    for warm in 0 1; do
        log "A/B auto -> cuda:0, $([ $warm = 1 ] && echo warm page cache || echo cold)"
        OUT=$out/ab-$warm WARM=$warm "$root/tools/device-ab.sh" "$model" "${ROUNDS:-4}" \
            "before=HOIST_BIN=$slim/hoist-base" "after=HOIST_BIN=$slim/hoist" | tee -a "$out/log"
    done
fi
