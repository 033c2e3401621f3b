#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the Q8_0 matrix-vector kernels of
# infer/kernels.cu (test_gpu_kernels holds both to a double-precision reference; test_gpu_gguf
# and test_gpu_infer run whole models), then decode at batch 1 with `hoist run` of a
# llama-8b-shaped Q8_0 GGUF, the staged kernel and the scalar one (HOIST_Q8_GEMV=scalar)
# alternating, and of the bf16 checkpoint of the same geometry.
# Expects the static build-dev/ of docs/DEVICE.md. Writes $OUT/q8/log and $OUT/q8/q8.csv (kernel,
# then `hoist run --csv`'s columns).
#   ROUNDS=3 tools/device-q8.sh
# (WORK=/dev/shm/hoist-q8 holds the Q8_0 model; BF16=/root/hoist-embed/llama-8b is the bf16
# one, device-embed.sh's)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/q8
mkdir -p "$out"
bin=${BIN:-$root/build-dev}
hoist=$bin/hoist
rounds=${ROUNDS:-3}
work=${WORK:-/dev/shm/hoist-q8}
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data
logf=$out/log
. "$root/tools/device-lib.sh"
status=0
check() { run "$@" || { echo "(exit $?)" | tee -a "$logf"; status=1; }; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), \
$(nproc) cores, $(date -u +%F)"
tmp=$(mktemp -d)
cd "$tmp" || exit 1
check timeout 200 "$bin/tests/test_gpu_kernels"
check timeout 300 "$bin/tests/test_gpu_gguf"
check timeout 300 "$bin/tests/test_gpu_infer"
cd "$root" && rm -rf "$tmp"

mkdir -p "$work"
q8=$work/q8 bf=${BF16:-/root/hoist-embed/llama-8b}
[ -f "$q8/model.gguf" ] || check "$hoist" gen "$q8" --preset llama-8b --dtype q8_0 --format gguf \
    --threads "$(nproc)" --quiet
[ -f "$bf/config.json" ] || check "$hoist" gen "$bf" --preset llama-8b --threads "$(nproc)" --quiet
csv=$out/q8.csv
echo "kernel,device,load_s,prompt_tokens,new_tokens,ttft_s,prefill_tok_s,decode_tok_s,\
weight_bytes_per_token,mem_gb_s,roofline_tok_s,roofline_pct" > "$csv"
one() { # kernel-label model [env]
    local label=$1 model=$2
    shift 2
    local line
    line=$(env "$@" "$hoist" run "$model" --device cuda:0 --csv --tokens 1,2,3,4,5 --n 256 \
        2>> "$logf") || { echo "(run $label failed)" | tee -a "$logf"; status=1; return; }
    echo "$label,$line" | tee -a "$csv" "$logf"
}
log "the same tokens from both Q8_0 kernels"
for k in staged scalar; do
    echo "$k: $(env HOIST_Q8_GEMV=$k "$hoist" run "$q8/model.gguf" --device cuda:0 \
        --tokens 1,2,3,4,5 --n 32 2>> "$logf" | sed -n 's/^generated ([0-9]*): //p')" |
        tee -a "$logf"
done
log "decode at batch 1, $rounds rounds: Q8_0 staged, Q8_0 scalar, bf16"
for r in $(seq "$rounds"); do
    one q8_0-staged "$q8/model.gguf" HOIST_Q8_GEMV=staged
    one q8_0-scalar "$q8/model.gguf" HOIST_Q8_GEMV=scalar
    one bf16 "$bf" HOIST_UNUSED=1
done
log "done (status $status)"
exit $status
