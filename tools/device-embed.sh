#!/usr/bin/env bash
# Runs on the device machine (docs/DEVICE.md): hoist.transformers against transformers'
# from_pretrained, with the torch and transformers installed there (no package index needed).
# Expects the static device build carried along:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Writes the log, the table and the CSV under $OUT/embed (or ./out/embed).
#   tools/device-embed.sh        PRESET=llama-8b (16 GB bf16), COLD=1 WARM=2 TOKENS=8 PROFILE=1,
#                                LOADERS=hoist,hf (hoist+threads=8: a variant of the load options),
#                                WORK=/root/hoist-embed
# Stages:
#  1. the binding's pytest suite with the real transformers and a GPU: test_transformers.py
#     (logits and greedy tokens equal to from_pretrained's, tied weights, errors, the cuda:0
#     model's arena counted by torch.cuda.memory_allocated() and given back, a model split over
#     cuda:0 and the host by max_memory) and test_allocator.py (the arena from torch's caching
#     allocator);
#  2. python/bench_embed.py on the generated llama-8b-shaped model: time to a ready
#     LlamaForCausalLM on cuda:0, hoist.transformers.from_pretrained vs
#     AutoModelForCausalLM.from_pretrained(dir, dtype=torch.bfloat16, device_map="cuda:0"), each
#     load in a fresh process, cold (drop_caches) and warm in the same run; greedy tokens
#     identical between the two; memory_allocated() up by the model's bytes after the hoist load
#     and back after the model is dropped; then one more hoist run, profiled (cProfile and the
#     load thread's timings under $OUT/embed/prof), outside the statistics (PROFILE=0: none; every
#     hoist run reports model.hoist_timeline, where its seconds went, in any case).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/embed
mkdir -p "$out"
preset=${PRESET:-llama-8b}
work=${WORK:-/root/hoist-embed}
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

for f in "$HOIST_LIBRARY" "$hoist"; do
    [ -e "$f" ] || { echo "missing $f: build build-dev here first (see the header)" >&2; exit 2; }
done
log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1), $(nproc) cores, $(date -u +%F)"
run python3 -c "import sys, torch, transformers, hoist; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'hoist', hoist.version(), hoist.library_path, 'devices', hoist.device_count())"
python3 -c "import accelerate; print('accelerate', accelerate.__version__)" 2>&1 | tee -a "$out/log"

log "1. pytest: hoist.transformers and the allocator hook with the real transformers, on the GPU"
if python3 -c "import pytest" 2>/dev/null; then
    run python3 -m pytest -q -p no:cacheprovider -rs "$root/python/tests/test_transformers.py" \
        "$root/python/tests/test_allocator.py" "$root/python/tests/test_options.py" \
        "$root/python/tests/test_abi.py"
else
    log "no pytest on this machine: stage 1 skipped"
fi

log "2. generating the $preset model under $work (nothing is downloaded)"
mkdir -p "$work"
[ -f "$work/$preset/config.json" ] ||
    run "$hoist" gen "$work/$preset" --preset "$preset" --dtype bf16 --threads "$(nproc)" --quiet
run du -sh "$work/$preset"
ls -la "$work/$preset" >> "$out/log"

log "3. time to a ready model on cuda:0: hoist.transformers vs from_pretrained, cold and warm"
run python3 "$root/python/bench_embed.py" "$work/$preset" --device cuda:0 \
    --cold "${COLD:-1}" --warm "${WARM:-2}" --tokens "${TOKENS:-8}" --memory \
    --loaders "${LOADERS:-hoist,hf}" \
    $([ "${PROFILE:-1}" = 1 ] && echo --profile "$out/prof") --csv "$out/embed.csv"
# the CSV as aligned columns (python, since the device machine has no column(1))
[ -f "$out/embed.csv" ] && python3 -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
w = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
for r in rows: print("  ".join(c.ljust(w[i]) for i, c in enumerate(r))[:200])' "$out/embed.csv" | tee -a "$out/log"
log "done (status $status); results in $out"
exit $status
