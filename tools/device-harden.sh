#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the CUDA fault sweeps and the 1,000-cycle
# VRAM test (tests/test_gpu_faults.c), then the other GPU tests, with logs under $OUT (or ./out).
# About 5 minutes on an H100 host (estimate; the sweeps are a few thousand small loads).
# Expects the device build made here and carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev -j2
# and is run there as
#   tools/device-harden.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
export HOIST_CLI=$root/build-dev/hoist HOIST_TEST_DATA=$root/tests/data HOIST_SWEEP_LOG=1

# ctest files hold the absolute paths of the tree they were configured in
built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
    mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
fi

log() { echo "== $*" | tee -a "$out/harden.log"; }
log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(date -u +%F)"
cd "$root/build-dev"
log "fault sweeps and 1,000 cycles on cuda:0 (one line per sweep: runs, runs that failed)"
t0=$(date +%s)
./tests/test_gpu_faults > "$out/test_gpu_faults.log" 2>&1
rc=$?
tail -n 3 "$out/test_gpu_faults.log" | tee -a "$out/harden.log"
log "test_gpu_faults: exit $rc in $(( $(date +%s) - t0 )) s; the sweep lines are in test_gpu_faults.log"
log "the other GPU-labelled tests"
ctest -L gpu -E '^test_gpu_faults$' --output-on-failure > "$out/ctest-gpu.log" 2>&1
rc2=$?
tail -n 8 "$out/ctest-gpu.log" | tee -a "$out/harden.log"
exit $(( rc || rc2 ))
