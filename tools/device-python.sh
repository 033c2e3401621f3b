#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the Python binding (python/) against the
# torch and safetensors installed there. Expects a build made here with
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# carried along (its libhoist.so holds liburing, Jansson, zstd and xxHash, which the device
# lacks), and writes logs and CSV under $OUT/python (or ./out/python).
#   tools/device-python.sh            SIZE=8G: the benchmark checkpoint (one file)
# Stages: the library loads; the pytest suite (host path, torch on the CPU); hoist.load_file
# against safetensors.torch.load_file on cuda:0 for generated checkpoints (several presets and
# dtypes, sharded and not, a file of every dtype, the 8 GB one) and through every I/O path;
# then python/bench_load.py, cold and warm, on the 8 GB file.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/python
mkdir -p "$out"
size=${SIZE:-8G}
work=${WORK:-/root/hoist-py}
hoist=$root/build-dev/hoist
export HOIST_LIBRARY=$root/build-dev/libhoist.so HOIST_CLI=$hoist PYTHONPATH=$root/python
[ -x "$root/build-dev/tests/abi_probe" ] && export HOIST_ABI_PROBE=$root/build-dev/tests/abi_probe
status=0

log() { echo "== $*" | tee -a "$out/log"; }
run() {
    echo "\$ $*" | tee -a "$out/log"
    "$@" 2>&1 | tee -a "$out/log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "(exit $rc)" | tee -a "$out/log"; status=1; }
}

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(date -u +%F)"
log "libhoist.so needs only these libraries"
run ldd "$HOIST_LIBRARY"
run python3 -c "import sys, torch, safetensors, numpy, hoist; print(sys.version.split()[0], 'torch', torch.__version__, 'safetensors', safetensors.__version__, 'numpy', numpy.__version__, 'hoist', hoist.version(), hoist.library_path, 'devices', hoist.device_count())"

log "pytest suite (host path; torch on the CPU)"
if python3 -c "import pytest" 2>/dev/null; then
    run python3 -m pytest -q -p no:cacheprovider -rs "$root/python/tests"
else
    log "no pytest on this machine: suite skipped"
fi

log "generating checkpoints under $work"
mkdir -p "$work"
gen() { [ -d "$work/$1" ] || run "$hoist" gen "$work/$1" --quiet --threads "$(nproc)" "${@:2}"; }
gen tiny-bf16 --preset tiny --dtype bf16
gen tiny-f16 --preset tiny --dtype f16
gen tiny-f32 --preset tiny --dtype f32
gen tiny-sharded --preset tiny --dtype bf16 --shard-size 64K
gen small-bf16 --preset small --dtype bf16
gen llama-1b-f16 --preset llama-1b --dtype f16
gen "m$size" --size "$size" --dtype bf16 --shard-size 64G
run du -sh "$work"/*

log "hoist.load_file == safetensors.torch.load_file on cuda:0 (dtype, shape, stride, device, bits; arena freed with the last tensor)"
run python3 "$root/python/compare_safetensors.py" --device cuda:0 --every-dtype "$work/every" \
    "$work/tiny-bf16" "$work/tiny-f16" "$work/tiny-f32" "$work/tiny-sharded" \
    "$work/small-bf16/model.safetensors.index.json" "$work/llama-1b-f16" \
    "$work/m$size/model.safetensors"
for p in mmap uring stream; do
    log "the same through path $p"
    run python3 "$root/python/compare_safetensors.py" --device cuda:0 --path "$p" "$work/small-bf16"
done

log "benchmark: hoist.load_file vs safetensors.torch.load_file, $work/m$size/model.safetensors -> cuda:0"
run python3 "$root/python/bench_load.py" "$work/m$size/model.safetensors" --device cuda:0 \
    --cold 2 --warm 3 --csv "$out/bench_load.csv"
log "done (status $status)"
exit $status
