#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): tensor-parallel slices and cooperative loads
# (docs/TENSOR_PARALLEL.md) on however many GPUs the machine has, logs under $OUT/tp (or
# ./out/tp). Expects the device build made here and carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev -j2
# and is run there as
#   tools/device-tp.sh               (SIZE=8G: the generated model)
# NCCL: the machine has it only inside the nvidia-nccl wheel that torch depends on; its
# libnccl.so.2 is found through python3 and handed to hoist as HOIST_NCCL_LIBRARY.
# 1. tests/test_gpu_tp (NCCL required): a world of one through hoist's own communicator equals a
#    normal load; two processes each load their rank's slice onto the one GPU; slices through
#    every path with a padded vocabulary zero-filled on the device; with 2+ GPUs, two ranks
#    exchanging over NCCL.
# 2. The CLI on a SIZE model: hoist plan --tp; hoist load --devices LIST --tp N [--cooperative]
#    and --cooperative alone; hoist bench --devices (each link's ceiling in the same run).
# 3. Python: hoist.load_file(tp=...) on cuda:0, and hoist.distributed.load_cooperative over a
#    2-process group on cuda:0 (gloo), or NCCL with one GPU per process when there are 2+.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/tp
mkdir -p "$out"
size=${SIZE:-8G}
hoist=$root/build-dev/hoist
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data HOIST_REQUIRE_NCCL=1
export HOIST_LIBRARY=$root/build-dev/libhoist.so PYTHONPATH=$root/python

# ctest files hold the absolute paths of the tree they were configured in
built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
    mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
fi

log() { echo "== $*" | tee -a "$out/tp.log"; }
run() { echo "\$ $*" | tee -a "$out/tp.log"; "$@" 2>&1 | tee -a "$out/tp.log"; return "${PIPESTATUS[0]}"; }
fail=0
check() { if [ "$1" != "$2" ]; then log "FAILED: $3 (exit $1, expected $2)"; fail=1; else log "ok: $3"; fi; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | paste -sd';'), $(nproc) cores, $(date -u +%F)"
ngpu=$("$hoist" devices | grep -c '^cuda:')
log "$ngpu GPU(s)"

nccl=$(python3 -c 'import nvidia.nccl, os, glob; print(glob.glob(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so*"))[0])' 2>/dev/null)
if [ -n "$nccl" ]; then
    export HOIST_NCCL_LIBRARY=$nccl
    log "NCCL: $nccl"
else
    log "NCCL: no nvidia-nccl wheel found through python3; hoist searches the library path"
fi

log "tests/test_gpu_tp"
(cd "$root/build-dev" && ./tests/test_gpu_tp) > "$out/test_gpu_tp.log" 2>&1
check $? 0 "test_gpu_tp"
tail -n 6 "$out/test_gpu_tp.log" | tee -a "$out/tp.log"

model=/dev/shm/hoist-tp-m$size
rm -rf "$model"
run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
check $? 0 "hoist gen --size $size"

devs=cuda:0
[ "$ngpu" -ge 2 ] && devs=cuda:0,cuda:1
[ "$ngpu" -ge 4 ] && devs=cuda:0,cuda:1,cuda:2,cuda:3
[ "$ngpu" -ge 8 ] && devs=cuda:0,cuda:1,cuda:2,cuda:3,cuda:4,cuda:5,cuda:6,cuda:7
n=$(echo "$devs" | tr ',' '\n' | wc -l)

log "plan: what each of 2, 4 and 8 ranks holds (devices sized like this one)"
mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
for w in 2 4 8; do
    list=$(for i in $(seq 0 $((w - 1))); do printf 'cuda:%d=%dM,' "$i" "$mem"; done)
    run "$hoist" plan "$model" --tp "$w" --devices "${list%,}" --max-seq-len 8192
    check $? 0 "hoist plan --tp $w"
done

log "one rank per GPU ($devs): slices, slices + cooperative, cooperative whole model"
run "$hoist" load "$model" --devices "$devs" --tp "$n" --path uring --repeat 2
check $? 0 "hoist load --tp $n"
run "$hoist" load "$model" --devices "$devs" --tp "$n" --cooperative --path uring --repeat 2
check $? 0 "hoist load --tp $n --cooperative"
for p in uring mmap stream; do
    run "$hoist" load "$model" --devices "$devs" --cooperative --path "$p" --repeat 2
    check $? 0 "hoist load --cooperative --path $p"
done

log "bench: each GPU against its own link, the aggregate against their sum"
run "$hoist" bench "$model" --devices "$devs" --cooperative --paths uring --repeat 3 --csv "$out/bench-coop.csv"
check $? 0 "hoist bench --devices $devs --cooperative"
run "$hoist" bench "$model" --devices "$devs" --tp --paths uring --repeat 3 --csv "$out/bench-tp.csv"
check $? 0 "hoist bench --devices $devs --tp"

log "python: load_file(tp=...) on cuda:0 and a cooperative load over 2 processes"
py=$root/python/tests
cat > "$out/tp_cuda.py" <<'EOF'
import sys, torch, hoist
model = sys.argv[1]
whole = hoist.load_file(model, device="cuda:0")
for rank in range(2):
    part = hoist.load_file(model, device="cuda:0", tp=(rank, 2))
    q = "model.layers.0.self_attn.q_proj.weight"
    o = "model.layers.0.self_attn.o_proj.weight"
    assert torch.equal(part[q], whole[q].chunk(2, 0)[rank]), q
    assert torch.equal(part[o], whole[o].chunk(2, 1)[rank]), o
    assert part[q].device.type == "cuda"
print("load_file(tp) on cuda:0: ok")
EOF
small=/dev/shm/hoist-tp-small
rm -rf "$small"
"$hoist" gen "$small" --quiet --layers 4 --hidden 1024 --intermediate 2048 --heads 8 --kv-heads 4 --vocab 8192 --dtype bf16
run python3 "$out/tp_cuda.py" "$small"
check $? 0 "hoist.load_file(tp=...) on cuda:0"
run python3 -m pytest -q -p no:cacheprovider -rs "$py/test_tp.py"
check $? 0 "python/tests/test_tp.py (gloo, CPU)"
backend=gloo
[ "$ngpu" -ge 2 ] && backend=nccl
pids=()
for r in 0 1; do
    dev=cuda:0
    [ "$ngpu" -ge 2 ] && dev=cuda:$r
    MASTER_ADDR=127.0.0.1 MASTER_PORT=29533 WORLD_SIZE=2 RANK=$r HOIST_PYTHON_DIR=$root/python \
        HOIST_TP_DEVICE=$dev HOIST_TP_BACKEND=$backend \
        python3 "$py/tp_worker.py" "$small" uring 4 > "$out/worker$r.log" 2>&1 &
    pids+=($!)
done
wrc=0
for pid in "${pids[@]}"; do wait "$pid" || wrc=1; done
cat "$out/worker0.log" "$out/worker1.log" | tee -a "$out/tp.log"
check $wrc 0 "hoist.distributed.load_cooperative over 2 processes on GPUs ($backend)"

rm -rf "$model" "$small"
log "done: $([ $fail = 0 ] && echo all passed || echo FAILURES)"
exit $fail
