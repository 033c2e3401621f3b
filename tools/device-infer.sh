#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): infer/'s GPU tests, a cross-check of the
# generated tokens against Hugging Face transformers, and the decode benchmark of
# docs/BENCHMARKS.md. Expects a static build made here and copied into build-infer-dev/:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-dev --target hoist_cli test_infer test_gpu_infer
#   mkdir -p build-infer-dev && cp build-dev/hoist build-dev/tests/test_*infer build-infer-dev/
# then run with carry ["build-infer-dev"]:  STAGES="tests hf bench" tools/device-infer.sh
# Logs and CSV go under $OUT (or ./out).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
bin=${BIN:-$root/build-infer-dev}
stages=${STAGES:-"tests hf bench"}
model8b=${MODEL:-/dev/shm/hoist-llama-8b}
mkdir -p "$out"
hoist=$bin/hoist
export HOIST_CLI=$hoist
# cuBLAS is a shared library of the CUDA install
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
tmp=$(mktemp -d /dev/shm/hoist-infer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

log() { echo "== $*" | tee -a "$out/log"; }
run() { echo "\$ $*" | tee -a "$out/log"; "$@" 2>&1 | tee -a "$out/log"; return "${PIPESTATUS[0]}"; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(date -u +%F)"

if [[ " $stages " == *" tests "* ]]; then
    log "CPU reference tests, then GPU logits against the reference"
    (cd "$tmp" && run timeout 120 "$bin/test_infer")
    (cd "$tmp" && run timeout 120 "$bin/test_gpu_infer")
fi

if [[ " $stages " == *" hf "* ]]; then
    # f32 models: the greedy tokens of hoist's reference and GPU path must be transformers' own
    prompt=5,77,300,2,999,41
    for tie in "" "--tie-embeddings"; do
        m=$tmp/hf$tie
        "$hoist" gen "$m" --layers 3 --hidden 256 --intermediate 512 --heads 8 --kv-heads 2 \
            --head-dim 32 --vocab 1000 --dtype f32 $tie --quiet
        python3 - "$m" "$prompt" 32 > "$tmp/hf.txt" 2>> "$out/log" <<'PY'
import sys, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32).eval()
ids = [int(t) for t in sys.argv[2].split(",")]
toks = []
with torch.no_grad():
    o = m(torch.tensor([ids]), use_cache=True)
    for _ in range(int(sys.argv[3])):
        t = int(o.logits[0, -1].argmax())
        toks.append(t)
        o = m(torch.tensor([[t]]), past_key_values=o.past_key_values, use_cache=True)
print(" ".join(map(str, toks)))
PY
        hf=$(cat "$tmp/hf.txt")
        for dev in host cuda:0; do
            got=$("$hoist" run "$m" --tokens $prompt --n 32 --device $dev | sed -n 's/^generated ([0-9]*): //p')
            if [ "$got" = "$hf" ]; then verdict=same; else verdict=DIFFERENT; fi
            echo "hf check ${tie:-untied} $dev: $verdict (transformers: $hf; hoist: $got)" | tee -a "$out/log"
        done
    done
fi

if [[ " $stages " == *" bench "* ]]; then
    if [ ! -f "$model8b/config.json" ]; then
        log "generating the llama-8b preset (bf16) into $model8b"
        run "$hoist" gen "$model8b" --preset llama-8b --threads "$(nproc)" --quiet || exit 1
    fi
    log "model $model8b: $(du -sb "$model8b" | cut -f1) bytes"
    echo "device,load_s,prompt_tokens,new_tokens,ttft_s,prefill_tok_s,decode_tok_s,weight_bytes_per_token,mem_gb_s,roofline_tok_s,roofline_pct,mode" > "$out/infer.csv"
    log "decode at batch 1, CUDA graph replay (default)"
    run "$hoist" run "$model8b" --device cuda:0 --tokens 128000,791,4062,14198,39935 --n 256
    log "CSV: two runs each with graphs, without, cold (no warm-up run), and after a 512-token prompt"
    csv() { line=$("$hoist" run "$model8b" --device cuda:0 --csv "${@:2}") && echo "$line,$1" | tee -a "$out/infer.csv" "$out/log"; }
    for r in 1 2; do csv graphs --tokens 1,2,3,4,5 --n 256; done
    for r in 1 2; do csv no-graphs --tokens 1,2,3,4,5 --n 256 --no-graphs; done
    csv cold --tokens 1,2,3,4,5 --n 256 --warmup 0
    long=$(seq -s, 1 512)
    for r in 1 2; do csv prompt512 --tokens "$long" --n 256; done
fi
log "done"
