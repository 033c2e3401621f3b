#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md), with torch and transformers installed there
# (written for torch 2.11, transformers 5.17): every model family and rope scaling `hoist gen`
# writes, against transformers, on hoist's host reference and its GPU path.
#   f32:  greedy tokens over 32 steps must equal transformers' (host and cuda:0);
#   bf16: the first step's logits within 2% of the range of transformers' logits.
# Prompts of 96 tokens run past the original context of every scaled rope (llama3's 32, yarn's
# 64, dynamic's max_position 32), where the scalings change the rotation, and past every sliding
# window (24 and 40 positions; qwen2's only from layer 1 on). The models are wide
# (hidden 1024, head_dim 128) so that attention is peaked enough for the rotation to matter.
# Expects a build made here and carried along (libhoist.so holding the dependencies the device
# lacks):
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# then: tools/device-models.sh   (CASES="qwen2 llama3.1" to run some; DEVICES=host,cuda:0)
# Writes $OUT/models/table.txt, one JSON line per case in results.jsonl, and a log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/models
bin=${BIN:-$root/build-dev}
devices=${DEVICES:-host,cuda:0}
steps=32
mkdir -p "$out"
hoist=$bin/hoist
export HOIST_LIBRARY=$bin/libhoist.so PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export HOIST_PYTHON_NO_LOG=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
tmp=$(mktemp -d "${TMPDIR:-/dev/shm}/hoist-models.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
: >"$out/results.jsonl"

log() { echo "== $*" | tee -a "$out/log"; }
log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), $(date -u +%F)"
log "$(python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1)"
[ -x "$hoist" ] && [ -f "$HOIST_LIBRARY" ] || { log "no build at $bin (see the header)"; exit 1; }

wide="--layers 2 --hidden 1024 --heads 8 --kv-heads 2 --intermediate 512 --vocab 512"
declare -A flags=(
    [llama]="$wide"
    [llama-tied-mha]="$wide --kv-heads 8 --tie-embeddings"
    [llama3.1]="$wide --family llama3.1 --rope-original 32"
    [linear]="$wide --rope-scaling linear --rope-factor 4"
    [dynamic]="$wide --rope-scaling dynamic --rope-factor 2 --max-position 32"
    [yarn]="$wide --rope-scaling yarn --rope-factor 4 --max-position 256"
    [qwen2]="$wide --family qwen2"
    [qwen2-yarn]="$wide --family qwen2 --rope-scaling yarn --rope-factor 4 --max-position 256"
    [qwen3]="$wide --family qwen3 --head-dim 128"
    [qwen3-hd64]="$wide --family qwen3 --head-dim 64 --tie-embeddings"
    [mistral]="$wide --family mistral"
    [mistral-window]="$wide --family mistral --sliding-window 24"
    [qwen2-window]="$wide --family qwen2 --sliding-window 24 --window-layers 1"
    [qwen3-window]="$wide --family qwen3 --head-dim 128 --sliding-window 40"
)
order="llama llama-tied-mha llama3.1 linear dynamic yarn qwen2 qwen2-yarn qwen3 qwen3-hd64 mistral
       mistral-window qwen2-window qwen3-window"
cases=${CASES:-$order}
prompt=$(seq -s, 7 5 2000 | cut -d, -f1-96 | tr ',' '\n' | awk '{print $1 % 512}' | paste -sd,)

table=$out/table.txt
printf "%-16s %-5s %-8s %-10s %-12s %s\n" case dtype device verdict "same/$steps" "logit diff" \
    | tee "$table"
fails=0
for c in $cases; do
    for dt in f32 bf16; do
        m=$tmp/$c-$dt
        # shellcheck disable=SC2086
        if ! "$hoist" gen "$m" ${flags[$c]} --dtype "$dt" --seed 7 --quiet --force >>"$out/log" 2>&1; then
            printf "%-16s %-5s %-8s %s\n" "$c" "$dt" - "GEN FAILED" | tee -a "$table"
            fails=$((fails + 1))
            continue
        fi
        json=$(python3 "$root/tools/hf_compare.py" "$m" --dtype "$dt" --tokens "$prompt" \
            --steps "$steps" --devices "$devices" 2>>"$out/log")
        if [ -z "$json" ]; then
            printf "%-16s %-5s %-8s %s\n" "$c" "$dt" - "TRANSFORMERS FAILED (see log)" | tee -a "$table"
            fails=$((fails + 1))
            continue
        fi
        echo "{\"case\": \"$c\", \"dtype\": \"$dt\", \"result\": $json}" >>"$out/results.jsonl"
        rows=$(python3 - "$json" "$dt" "$steps" <<'PY'
import json, sys
r, dt, steps = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for dev, h in r["hoist"].items():
    if "error" in h:
        print(dev, "ERROR", "-", "-", h["error"][:80].replace(" ", "_"))
        continue
    ok = h["same"] == steps if dt == "f32" else h["logit_diff"] < 0.02
    print(dev, "ok" if ok else "FAIL", "%d" % h["same"], "%.2e" % h["logit_diff"], "")
PY
)
        while read -r dev verdict same diff note; do
            printf "%-16s %-5s %-8s %-10s %-12s %s %s\n" "$c" "$dt" "$dev" "$verdict" "$same" \
                "$diff" "$note" | tee -a "$table"
            [ "$verdict" = ok ] || fails=$((fails + 1))
        done <<<"$rows"
    done
done
log "$fails failures; table in $table, details in $out/results.jsonl"
[ "$fails" -eq 0 ]
