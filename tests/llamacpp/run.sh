#!/usr/bin/env bash
# ctest llamacpp: hoist's GGUF files open and run in real llama.cpp. node-llama-cpp 3.21.1 (its
# prebuilt CPU build of llama.cpp) is installed from the npm registry into $HOIST_NODE_DIR once;
# `hoist gen` writes models of each family and rope scaling; llama.cpp's greedy tokens over raw
# token ids must equal `hoist run --device host` on f32, and f16, bf16 and q8_0 files must load
# and run. Exit 77 (skipped) only where the npm registry cannot be reached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${HOIST_CLI:?the hoist binary}"
node_dir=${HOIST_NODE_DIR:-$here/../../build/node-llama-cpp}
version=3.21.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v node >/dev/null && command -v npm >/dev/null || {
    echo "llamacpp: node and npm are needed (tools/install-deps.sh installs them)" >&2
    exit 1
}

# ---- node-llama-cpp, pinned, CPU binaries only ------------------------------------------------
install_llamacpp() {
    mkdir -p "$node_dir"
    local have
    have=$(node -p "require('$node_dir/node_modules/node-llama-cpp/package.json').version" \
        2>/dev/null || true)
    [ "$have" = "$version" ] && return 0
    if ! npm view "node-llama-cpp@$version" version >/dev/null 2>&1; then
        echo "llamacpp: the npm registry cannot be reached: skipped" >&2
        exit 77
    fi
    local arch
    arch=$(node -p process.arch)
    # the GPU builds are optional dependencies of some 700 MB: only the CPU one is needed
    (cd "$node_dir" && npm init -y >/dev/null &&
        npm i -E "node-llama-cpp@$version" "@node-llama-cpp/linux-$arch@$version" \
            --omit=optional --ignore-scripts --no-audit --no-fund >"$work/npm.log" 2>&1) || {
        cat "$work/npm.log" >&2
        echo "llamacpp: npm install failed" >&2
        exit 1
    }
}
exec 9>"$node_dir.lock" 2>/dev/null || exec 9>"$work/lock"
flock 9
install_llamacpp
flock -u 9
# ESM resolves node-llama-cpp from the script's own folder
cp "$here/greedy.mjs" "$node_dir/greedy.mjs"

# ---- the comparisons --------------------------------------------------------------------------
prompt=$(seq -s, 3 7 290 | cut -d, -f1-40)   # 40 tokens: past the small original contexts below
steps=16
fails=0

hoist_tokens() { # DIR
    "$HOIST_CLI" run "$1" --device host --tokens "$prompt" --n "$steps" --warmup 0 2>/dev/null |
        sed -n 's/^generated ([0-9]*): //p' | tr ' ' ','
}

llama_tokens() { # FILE
    (cd "$node_dir" && timeout 300 node greedy.mjs "$1" "$prompt" "$steps")
}

gen() { # NAME FLAGS...
    local name=$1
    shift
    "$HOIST_CLI" gen "$work/$name" --format gguf --vocab 300 --quiet --force "$@"
}

# Leading tokens two comma lists share.
agree() {
    local IFS=,
    local -a a=($1) b=($2)
    local i=0
    while [ $i -lt ${#a[@]} ] && [ $i -lt ${#b[@]} ] && [ "${a[$i]}" = "${b[$i]}" ]; do
        i=$((i + 1))
    done
    echo $i
}

# f32: every token equal. Small models attend almost uniformly, which hides the rotation, so the
# rope cases use a wider model (peaked attention) where each scaling type changes the tokens.
wide="--layers 2 --hidden 1024 --heads 8 --kv-heads 2 --intermediate 256"
cases=(
    "llama-gqa2:--preset tiny"
    "llama-tied-gqa4-hd32:--preset tiny --tie-embeddings --heads 4 --kv-heads 1 --head-dim 32"
    "mistral-mha:--family mistral --heads 4 --kv-heads 4"
    "qwen2-hd24:--family qwen2 --hidden 96 --heads 4 --kv-heads 2 --head-dim 24"
    "qwen3-hd32-tied:--family qwen3 --head-dim 32 --tie-embeddings"
    "llama-wide:$wide"
    "llama3.1-wide:$wide --family llama3.1 --rope-original 16"
    "linear-wide:$wide --rope-scaling linear --rope-factor 4"
    "qwen2-yarn-wide:$wide --family qwen2 --rope-scaling yarn --max-position 64 --rope-factor 4"
    "qwen3-wide:$wide --family qwen3 --head-dim 128"
)
for c in "${cases[@]}"; do
    name=${c%%:*}
    read -r -a flags <<<"${c#*:}"
    gen "$name" --dtype f32 "${flags[@]}"
    h=$(hoist_tokens "$work/$name")
    l=$(llama_tokens "$work/$name/model.gguf") || l="(llama.cpp failed)"
    if [ -n "$h" ] && [ "$h" = "$l" ]; then
        echo "ok    f32  $name: $h"
    else
        echo "FAIL  f32  $name: hoist $h, llama.cpp $l"
        fails=$((fails + 1))
    fi
done

# Other dtypes: llama.cpp loads and runs them (the F32 norms it needs), and its first token is
# hoist's; after that llama.cpp's f16/bf16/q8_0 arithmetic (activations rounded to the weights'
# type) may part ways with hoist's fp32 activations.
for dt in f16 bf16 q8_0; do
    for fam in llama qwen2 qwen3; do
        name="$fam-$dt"
        gen "$name" --family "$fam" --dtype "$dt" --layers 2 --hidden 256 --heads 4 \
            --kv-heads 2 --intermediate 256
        h=$(hoist_tokens "$work/$name")
        if ! l=$(llama_tokens "$work/$name/model.gguf"); then
            echo "FAIL  $dt $name: llama.cpp did not run it"
            fails=$((fails + 1))
            continue
        fi
        n=$(agree "$h" "$l")
        count=$(echo "$l" | tr ',' '\n' | grep -c .)
        if [ "$count" -eq "$steps" ] && [ "$n" -ge 1 ]; then
            echo "ok    $dt $name: $n of $steps tokens agree"
        else
            echo "FAIL  $dt $name: $n tokens agree, $count produced (hoist $h, llama.cpp $l)"
            fails=$((fails + 1))
        fi
    done
done

total=$(( ${#cases[@]} + 9 ))
echo "$((total - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
