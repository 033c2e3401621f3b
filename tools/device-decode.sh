#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): batch-1 decode of an 8B-shaped model, bf16
# safetensors and Q8_0 GGUF of the same geometry, against the memory-bandwidth roofline, for
# cuBLAS's products (HOIST_DECODE_GEMV=off) and hoist's decode kernels under a few tunings
# (rows per warp, blocks per SM), so that one run says which to keep. Then, where nsys is
# installed, the time per kernel of a decode (the graph traced node by node).
# Expects a static build made here and copied into build-infer-dev/:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-dev --target hoist_cli test_gpu_gemv test_gpu_infer test_gpu_gguf
#   mkdir -p build-infer-dev && cp build-dev/hoist build-dev/tests/test_gpu_{gemv,infer,gguf} \
#       build-infer-dev/
# then run with carry ["build-infer-dev"]:   STAGES="tests bench kernels" tools/device-decode.sh
#   SETTINGS  HOIST_DECODE_GEMV values to compare (default "off 2,2 1,4 4,2 2,4")
#   REPS      runs per setting (default 2), N new tokens per run (default 256)
# Results under $OUT (or ./out): log, decode.csv, kernels-*.csv.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
bin=${BIN:-$root/build-infer-dev}
stages=${STAGES:-"tests bench kernels"}
settings=${SETTINGS:-"off 2,2 1,4 4,2 2,4"}
reps=${REPS:-2}
ntok=${N:-256}
bf16=${MODEL_BF16:-/dev/shm/hoist-decode-bf16}
q8=${MODEL_Q8:-/dev/shm/hoist-decode-q8}
mkdir -p "$out"
hoist=$bin/hoist
export HOIST_CLI=$hoist
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
tmp=$(mktemp -d /dev/shm/hoist-decode.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

log() { echo "== $*" | tee -a "$out/log"; }
run() { echo "\$ $*" | tee -a "$out/log"; "$@" 2>&1 | tee -a "$out/log"; return "${PIPESTATUS[0]}"; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1), $(nproc) cores, $(date -u +%FT%TZ)"

if [[ " $stages " == *" tests "* ]]; then
    for t in test_gpu_gemv test_gpu_infer test_gpu_gguf; do
        [ -x "$bin/$t" ] || { log "$t: not built, skipped"; continue; }
        start=$(date +%s)
        (cd "$tmp" && CK_DEFAULT_TIMEOUT=600 timeout 900 "$bin/$t") > "$out/$t.log" 2>&1
        rc=$?
        log "$t: exit $rc in $(( $(date +%s) - start )) s, $(grep -E '^[0-9]+%: Checks' "$out/$t.log" | tail -1)"
        [ $rc -eq 0 ] || tail -30 "$out/$t.log" | tee -a "$out/log"
    done
fi

gen() { # gen DIR ARGS...: the llama-8b geometry, once
    local dir=$1
    shift
    [ -e "$dir/config.json" ] || [ -e "$dir/model.gguf" ] && return 0
    log "generating $dir ($*)"
    run "$hoist" gen "$dir" --preset llama-8b --threads "$(nproc)" --quiet "$@"
}
model_path() { [ -e "$1/model.gguf" ] && echo "$1/model.gguf" || echo "$1"; }

if [[ " $stages " == *" bench "* || " $stages " == *" kernels "* ]]; then
    gen "$bf16" || exit 1
    gen "$q8" --format gguf --dtype q8_0 || exit 1
fi

if [[ " $stages " == *" bench "* ]]; then
    csv=$out/decode.csv
    [ -s "$csv" ] || echo "device,load_s,prompt_tokens,new_tokens,ttft_s,prefill_tok_s,decode_tok_s,weight_bytes_per_token,mem_gb_s,roofline_tok_s,roofline_pct,model,setting,prompt" > "$csv"
    for m in bf16 q8; do
        path=$(model_path "${!m}")
        log "model $m: $path, $(du -sb "${!m}" | cut -f1) bytes"
        # the settings in rotated order each round, so that drift spreads over all of them
        read -ra list <<< "$settings"
        for ((r = 0; r < reps; r++)); do
            for ((i = 0; i < ${#list[@]}; i++)); do
                s=${list[$(( (i + r) % ${#list[@]} ))]}
                line=$(HOIST_DECODE_GEMV=$s "$hoist" run "$path" --device cuda:0 --csv \
                    --tokens 1,2,3,4,5 --n "$ntok" 2>> "$out/log") || { log "$m $s: failed"; continue; }
                echo "$line,$m,${s//,/x},5" | tee -a "$csv" >> "$out/log" # "2,2" as 2x2
            done
        done
        # one long context with the default setting: the attention's share grows
        line=$("$hoist" run "$path" --device cuda:0 --csv --tokens "$(seq -s, 1 512)" \
            --n "$ntok" 2>> "$out/log") && echo "$line,$m,default,512" | tee -a "$csv" >> "$out/log"
        # the default setting in full, tokens included (the same greedy tokens as cuBLAS's?)
        for s in off ""; do
            HOIST_DECODE_GEMV=$s run "$hoist" run "$path" --device cuda:0 --tokens 1,2,3,4,5 --n 32 \
                | grep -E "^(generated|decode|roofline)" | sed "s/^/[${s:-default}] /" | tee -a "$out/log" > /dev/null
        done
    done
    log "best decode per model and setting (5-token prompt, $reps runs of $ntok tokens):"
    awk -F, 'NR > 1 && $14 == 5 { k = $12 " " $13; if (!(k in b) || $7 > b[k]) { b[k] = $7; p[k] = $11; g[k] = $9 } }
             END { printf "%-6s %-8s %10s %10s %10s\n", "model", "setting", "tok/s", "roofline%", "GB/s"
                   for (k in b) { split(k, a, " "); printf "%-6s %-8s %10.2f %10.1f %10.1f\n", a[1], a[2], b[k], p[k], g[k] } }' \
        "$csv" | sort | tee -a "$out/log"
fi

if [[ " $stages " == *" kernels "* ]]; then
    if command -v nsys > /dev/null; then
        for m in bf16 q8; do
            path=$(model_path "${!m}")
            for s in off ""; do
                tag=$m-${s:-default}
                log "kernel times, $tag (nsys, graph traced node by node, 64 tokens)"
                HOIST_DECODE_GEMV=$s nsys profile --trace=cuda --cuda-graph-trace=node --force-overwrite=true \
                    -o "$tmp/$tag" "$hoist" run "$path" --device cuda:0 --tokens 1,2,3,4,5 --n 64 --warmup 0 \
                    >> "$out/log" 2>&1 || { log "nsys failed"; continue; }
                nsys stats --report cuda_gpu_kern_sum --format csv --output "$out/kernels-$tag" \
                    "$tmp/$tag.nsys-rep" >> "$out/log" 2>&1
                f=$(ls "$out"/kernels-"$tag"*.csv 2>/dev/null | head -1)
                # time %, total ns, instances, average ns, name: the ten largest
                [ -n "$f" ] && awk -F'","' 'NR > 1 && NR <= 11 { gsub(/"/, ""); printf "%6s%% %12s ns %7s x %10s ns  %.70s\n", $1, $2, $3, $4, $NF }' "$f" | tee -a "$out/log"
                rm -f "$tmp/$tag.nsys-rep" "$tmp/$tag.sqlite"
            done
        done
    else
        log "nsys not installed: no per-kernel breakdown (the bench stage's off/default rows give the products' share)"
    fi
fi
log "done"
