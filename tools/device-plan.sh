#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the placement planner's acceptance checks,
# with logs under $OUT (or ./out). Expects the device build made here and carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev -j2
# and is run there as
#   tools/device-plan.sh            (SIZE=4G: the generated model's size)
# 1. tests/test_gpu_plan: in one process, a plan that fits loads and verifies; one that does not
#    fails with the device's free memory and live buffers unchanged; the coordinator counts the
#    first model against the second; with 2 GPUs, an autosplit load verified on both.
# 2. The same through the CLI on a SIZE model: hoist plan, hoist load --devices --verify; a plan
#    that does not fit (hoist devices before and after); with 2 GPUs, an autosplit load.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
size=${SIZE:-4G}
hoist=$root/build-dev/hoist
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data

# ctest files hold the absolute paths of the tree they were configured in
built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
    mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
fi

log() { echo "== $*" | tee -a "$out/plan.log"; }
run() { echo "\$ $*" | tee -a "$out/plan.log"; "$@" 2>&1 | tee -a "$out/plan.log"; return "${PIPESTATUS[0]}"; }
fail=0
check() { if [ "$1" != "$2" ]; then log "FAILED: $3 (exit $1, expected $2)"; fail=1; else log "ok: $3"; fi; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | paste -sd';'), $(nproc) cores, $(date -u +%F)"
ngpu=$("$hoist" devices | grep -c '^cuda:')
log "$ngpu GPU(s)"

log "tests/test_gpu_plan"
(cd "$root/build-dev" && ./tests/test_gpu_plan) > "$out/test_gpu_plan.log" 2>&1
check $? 0 "test_gpu_plan"
tail -n 4 "$out/test_gpu_plan.log" | tee -a "$out/plan.log"

model=/dev/shm/hoist-plan-m$size
rm -rf "$model"
run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
check $? 0 "hoist gen --size $size"

log "a plan that fits, then a load that follows it, verified"
run "$hoist" plan "$model" --devices cuda:0 --reserve 1G --max-seq-len 32768
check $? 0 "hoist plan (fits)"
run "$hoist" load "$model" --devices cuda:0 --reserve 1G --max-seq-len 32768 --verify-readback
check $? 0 "hoist load --devices cuda:0 --verify"

log "a plan that does not fit: it fails before allocating (free memory before and after)"
run "$hoist" devices | tee "$out/devices-before.txt" >/dev/null
run "$hoist" plan "$model" --devices cuda:0 --max-seq-len 4294967296
check $? 1 "hoist plan (does not fit)"
run "$hoist" load "$model" --devices cuda:0 --max-seq-len 4294967296 --verify-readback
check $? 1 "hoist load (does not fit) fails"
run "$hoist" devices | tee "$out/devices-after.txt" >/dev/null
if diff <(grep '^cuda:' "$out/devices-before.txt") <(grep '^cuda:' "$out/devices-after.txt") >/dev/null; then
    log "ok: free VRAM unchanged"
else
    log "NOTE: free VRAM moved between the two listings (another process?); see devices-*.txt"
fi

if [ "$ngpu" -ge 2 ]; then
    bytes=$(du -sb "$model" | cut -f1)
    half=$(( bytes / 2 / 1048576 + 256 ))M   # cuda:0 given room for about half the weights
    log "autosplit over 2 GPUs (cuda:0 planned with $half)"
    run "$hoist" plan "$model" --devices cuda:0=$half,cuda:1 --max-seq-len 8192
    check $? 0 "hoist plan autosplit"
    run "$hoist" load "$model" --devices cuda:0=$half,cuda:1 --max-seq-len 8192 --verify-readback
    check $? 0 "hoist load autosplit over 2 GPUs --verify"
    log "both GPUs listed, free memory asked of each (cuda:0 is filled first)"
    run "$hoist" plan "$model" --devices cuda:0,cuda:1 --reserve 2G
    run "$hoist" load "$model" --devices cuda:0,cuda:1 --reserve 2G --verify-readback
    check $? 0 "hoist load --devices cuda:0,cuda:1 --verify"
else
    log "one GPU: the autosplit load over 2 GPUs was not run (ask for nvidia-h200-x2)"
fi
rm -rf "$model"
log "done: $([ $fail = 0 ] && echo all passed || echo FAILURES)"
exit $fail
