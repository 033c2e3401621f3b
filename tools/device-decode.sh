#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): decode at batch 1 (issue #23). First the GPU
# tests of the inference kernels (test_gpu_kernels holds each matrix-vector kernel to a
# double-precision reference; test_gpu_gguf and test_gpu_infer run whole models), then `hoist
# run` of a llama-8b-shaped Q8_0 GGUF and of the bf16 checkpoint of the same geometry, each
# VARIANT in turn, ROUNDS rounds, each run a fresh process; then, with NCU=1, Nsight Compute's
# duration of every kernel of one decode step (graphs off, caches flushed before each kernel as
# the weights' streaming leaves them), to place the step's time.
# Expects the static build-dev/ of docs/DEVICE.md. Writes $OUT/decode/log, decode.csv (variant,
# model, then `hoist run --csv`'s columns) and with NCU=1 ncu-<model>-<variant>.csv.
#   ROUNDS=2 VARIANTS="cublas fused" tools/device-decode.sh
# A variant is the value of HOIST_DECODE_KERNELS (infer/gpu_forward.c). WORK=/dev/shm/hoist-q8
# holds the Q8_0 model; BF16=/root/hoist-embed/llama-8b is the bf16 one (device-embed.sh's).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/decode
mkdir -p "$out"
bin=${BIN:-$root/build-dev}
hoist=$bin/hoist
rounds=${ROUNDS:-2}
variants=${VARIANTS:-"cublas fused"}
work=${WORK:-/dev/shm/hoist-q8}
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data
logf=$out/log
. "$root/tools/device-lib.sh"
status=0
check() { run "$@" || { echo "(exit $?)" | tee -a "$logf"; status=1; }; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), \
$(nproc) cores, $(date -u +%F)"
if [ "${TESTS:-1}" = 1 ]; then
    tmp=$(mktemp -d)
    cd "$tmp" || exit 1
    check timeout 200 "$bin/tests/test_gpu_kernels"
    check timeout 300 "$bin/tests/test_gpu_gguf"
    check timeout 300 "$bin/tests/test_gpu_infer"
    cd "$root" && rm -rf "$tmp"
fi

mkdir -p "$work"
q8=$work/q8 bf=${BF16:-/root/hoist-embed/llama-8b}
[ -f "$q8/model.gguf" ] || check "$hoist" gen "$q8" --preset llama-8b --dtype q8_0 --format gguf \
    --threads "$(nproc)" --quiet
[ -f "$bf/config.json" ] || check "$hoist" gen "$bf" --preset llama-8b --threads "$(nproc)" --quiet
models="q8_0|$q8/model.gguf bf16|$bf"
csv=$out/decode.csv
echo "variant,model,device,load_s,prompt_tokens,new_tokens,ttft_s,prefill_tok_s,decode_tok_s,\
weight_bytes_per_token,mem_gb_s,roofline_tok_s,roofline_pct" > "$csv"
one() { # variant model-label model
    local line
    line=$(HOIST_DECODE_KERNELS=$1 "$hoist" run "$3" --device cuda:0 --csv --tokens 1,2,3,4,5 \
        --n 256 2>> "$logf") || { echo "(run $1 $2 failed)" | tee -a "$logf"; status=1; return; }
    echo "$1,$2,$line" | tee -a "$csv" "$logf"
}
log "the same 32 tokens from every variant"
for m in $models; do
    for v in $variants; do
        echo "${m%%|*} $v: $(HOIST_DECODE_KERNELS=$v "$hoist" run "${m#*|}" --device cuda:0 \
            --tokens 1,2,3,4,5 --n 32 2>> "$logf" | sed -n 's/^generated ([0-9]*): //p')" |
            tee -a "$logf"
    done
done
log "decode at batch 1, $rounds rounds of: $variants, each on Q8_0 and bf16"
for r in $(seq "$rounds"); do
    for m in $models; do
        for v in $variants; do one "$v" "${m%%|*}" "${m#*|}"; done
    done
done

if [ "${NCU:-0}" = 1 ]; then
    # a one-token prompt runs the decode step's kernels: that one step (--n 1 takes its argmax)
    for m in $models; do
        for v in $variants; do
            f=$out/ncu-${m%%|*}-$v.csv
            log "ncu: every kernel of one decode step, ${m%%|*}, $v"
            HOIST_DECODE_KERNELS=$v timeout 300 ncu --clock-control none --cache-control all \
                --metrics gpu__time_duration.sum --csv --print-units base \
                "$hoist" run "${m#*|}" --device cuda:0 --no-graphs --warmup 0 --tokens 1 --n 1 \
                > "$f" 2>> "$logf" || { echo "(ncu exit $?)" | tee -a "$logf"; }
            python3 - "$f" <<'PY' | tee -a "$logf"
import collections, csv, re, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    sys.exit(0)
h = rows[0]
k, v, g = h.index("Kernel Name"), h.index("Metric Value"), h.index("Grid Size")
t = collections.defaultdict(list)
for r in rows[1:]:
    name = re.sub(r"\(.*", "", r[k].replace("(anonymous namespace)::", "")).replace("void ", "")
    t[(name[:56], r[g])].append(float(r[v].replace(",", "")) / 1e3)
for (name, grid), us in sorted(t.items(), key=lambda x: -sum(x[1])):
    print(f"  {name:56s} grid {grid:14s} {len(us):4d}x median {sorted(us)[len(us) // 2]:8.2f} us")
print(f"  all kernels of the step: {sum(map(sum, t.values())):.1f} us")
PY
        done
    done
fi
log "done (status $status)"
exit $status
