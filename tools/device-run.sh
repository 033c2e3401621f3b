#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the GPU tests, then the mmap->GPU
# benchmarks of docs/BENCHMARKS.md. Expects a build made here with
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# carried along, and writes its logs under $OUT (or ./out).
#   tools/device-run.sh [tests] [bench] [SIZE]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
stages=${STAGES:-"tests bench"}
size=${SIZE:-8G}
hoist=$root/build-dev/hoist
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data

# ctest files hold the absolute paths of the tree they were configured in
built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
    mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
fi

log() { echo "== $*" | tee -a "$out/log"; }
run() { echo "\$ $*" | tee -a "$out/log"; "$@" 2>&1 | tee -a "$out/log"; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(date -u +%F)"
run "$hoist" devices --bandwidth

if [[ " $stages " == *" tests "* ]]; then
    log "GPU tests"
    (cd "$built_in" 2>/dev/null || cd "$root"; cd build-dev && ctest -L gpu --output-on-failure 2>&1) | tee -a "$out/log"
fi

if [[ " $stages " == *" bench "* ]]; then
    model=/root/hoist-bench/m$size
    if [ ! -d "$model" ]; then
        log "generating a $size model"
        run "$hoist" gen "$model" --size "$size" --threads "$(nproc)"
    fi
    bytes=$(du -sb "$model" | cut -f1)
    log "model $model: $bytes bytes"
    cat "$model"/*.safetensors > /dev/null   # warm: the whole model in page cache
    log "warm page cache, mmap -> cuda:0, staging through pinned slots"
    for t in ${THREADS:-4 8 12}; do
        for c in ${CHUNKS:-2M 4M 8M}; do
            run "$hoist" load "$model" --device cuda:0 --path mmap --no-register --threads $t --chunk $c --repeat 3
        done
    done
    log "warm page cache, mmap -> cuda:0, registered mapping"
    for t in 4 8; do
        for c in 64M 128M; do
            run "$hoist" load "$model" --device cuda:0 --path mmap --register --threads $t --chunk $c --repeat 3
        done
    done
    log "warm, default options, with --verify"
    run "$hoist" load "$model" --device cuda:0 --verify-readback
    log "from /dev/shm"
    shm=/dev/shm/hoist-m$size
    rm -rf "$shm"; cp -r "$model" "$shm"
    for mode in --no-register --register; do
        run "$hoist" load "$shm" --device cuda:0 --path mmap $mode --repeat 3
    done
    rm -rf "$shm"
    log "cold (page cache dropped before each run): raw O_DIRECT read with dd, then each path"
    drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
    drop; t0=$(date +%s.%N)
    for f in "$model"/*.safetensors; do dd if="$f" of=/dev/null bs=64M iflag=direct status=none & done; wait
    t1=$(date +%s.%N)
    awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "dd O_DIRECT, one reader per file: %.2f GB/s\n", b / (z - a) / 1e9 }' | tee -a "$out/log"
    for p in uring stream mmap; do
        drop; run "$hoist" load "$model" --device cuda:0 --path $p
    done
    log "Hugging Face safetensors load_file (warm), for comparison"
    run python3 - "$model" <<'PY'
import glob, sys, time, resource
import torch
from safetensors.torch import load_file
files = sorted(glob.glob(sys.argv[1] + "/*.safetensors"))
torch.cuda.init(); torch.zeros(1, device="cuda:0")
t0 = time.time(); n = 0
for f in files:
    d = load_file(f, device="cuda:0")
    n += sum(t.numel() * t.element_size() for t in d.values())
    del d
torch.cuda.synchronize()
dt = time.time() - t0
print(f"safetensors.torch.load_file -> cuda:0: {dt:.3f} s, {n/dt/1e9:.2f} GB/s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024/1024:.2f} GiB")
PY
fi
if [[ " $stages " == *" final "* ]]; then
    # Every path at its defaults: the figures of docs/BENCHMARKS.md's summary.
    model=/root/hoist-bench/m$size
    [ -d "$model" ] || run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
    bytes=$(du -sb "$model" | cut -f1)
    drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
    log "cold: raw O_DIRECT ceiling (dd, one reader per shard), then each path at its defaults, twice"
    for rep in 1 2; do
        drop; t0=$(date +%s.%N)
        for f in "$model"/*.safetensors; do dd if="$f" of=/dev/null bs=64M iflag=direct status=none & done; wait
        t1=$(date +%s.%N)
        awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "dd O_DIRECT: %.2f GB/s\n", b / (z - a) / 1e9 }' | tee -a "$out/log"
        for p in uring stream mmap; do drop; run "$hoist" load "$model" --device cuda:0 --path $p; done
    done
    drop; run python3 - "$model" <<'PY'
import glob, sys, time, resource
import torch
from safetensors.torch import load_file
torch.zeros(1, device="cuda:0")
t0 = time.time(); n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.safetensors")):
    d = load_file(f, device="cuda:0"); n += sum(t.numel() * t.element_size() for t in d.values()); del d
torch.cuda.synchronize(); dt = time.time() - t0
print(f"cold safetensors.torch.load_file -> cuda:0: {dt:.3f} s, {n/dt/1e9:.2f} GB/s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20:.2f} GiB")
PY
    log "warm page cache, defaults"
    cat "$model"/*.safetensors > /dev/null
    for p in mmap uring stream; do run "$hoist" load "$model" --device cuda:0 --path $p --repeat 3; done
    run "$hoist" load "$model" --device cuda:0 --path mmap --register --repeat 3
    log "from /dev/shm, defaults"
    shm=/dev/shm/hoist-m$size
    rm -rf "$shm"; cp -r "$model" "$shm"
    for p in mmap uring stream; do run "$hoist" load "$shm" --device cuda:0 --path $p --repeat 3; done
    rm -rf "$shm"
fi
if [[ " $stages " == *" sweep "* ]]; then
    # The uring and stream paths' threads x window from /dev/shm (the I/O path itself is the
    # limit there) and cold from the disk, to set their defaults.
    model=/root/hoist-bench/m$size
    [ -d "$model" ] || run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
    shm=/dev/shm/hoist-m$size
    rm -rf "$shm"; cp -r "$model" "$shm"
    log "sweep from /dev/shm"
    for p in uring stream; do
        for t in ${SWEEP_THREADS:-8 12 16}; do
            for c in ${SWEEP_CHUNKS:-1M 2M 4M}; do
                run "$hoist" load "$shm" --device cuda:0 --path $p --threads $t --chunk $c --repeat 3 --csv
            done
        done
    done
    rm -rf "$shm"
fi
if [[ " $stages " == *" cgroup "* ]]; then
    # issue 11's proof, alone: the model 4x memory.max, stream in the cgroup, mmap beside it
    model=/root/hoist-bench/m$size
    [ -d "$model" ] || run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
    log "cgroup run: uid $(id -u), $(cat /proc/self/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers), subtree: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    cg=/sys/fs/cgroup
    if ! grep -qw memory $cg/cgroup.subtree_control && ! echo +memory > $cg/cgroup.subtree_control; then
        # a cgroup holding processes cannot hand controllers down: move them into a leaf
        mkdir -p $cg/hoist-init
        for p in $(cat $cg/cgroup.procs); do echo "$p" > $cg/hoist-init/cgroup.procs 2>/dev/null; done
        echo +memory > $cg/cgroup.subtree_control
        log "moved the root's processes to $cg/hoist-init; subtree: $(cat $cg/cgroup.subtree_control)"
    fi
    (cd "$built_in" 2>/dev/null || cd "$root"; cd build-dev && HOIST_CGROUP_MODEL=$model \
        ctest -R test_gpu_cgroup --output-on-failure -V 2>&1) | tee -a "$out/log"
fi
log "done"
