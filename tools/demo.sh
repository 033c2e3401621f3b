#!/usr/bin/env bash
# `make demo`: generate a ~1 GB sharded model, inspect it, and load it through every path this
# build has into the best device there is, printing one table.
set -euo pipefail
hoist=${1:-build/hoist}
model=${DEMO_MODEL:-$(dirname "$hoist")/demo-model}

if [ ! -f "$model/config.json" ]; then
    echo "== generating a small Llama-shaped model in $model"
    "$hoist" gen "$model" --preset small
fi
echo
echo "== hoist inspect $model (summary)"
"$hoist" inspect "$model" | sed -n '/^files:/,$p'

device=host
"$hoist" devices | grep -q '^cuda:0' && device=cuda:0
echo
echo "== loading into $device through every path"
printf '%-8s %-8s %9s %9s %16s %16s\n' path device seconds GB/s "loader peak" "process RSS"
for path in mmap uring stream; do
    if ! rows=$("$hoist" load "$model" --path "$path" --device "$device" --csv 2>/dev/null); then
        printf '%-8s (not available in this build)\n' "$path"
        continue
    fi
    echo "$rows" | awk -F, '{ printf "%-8s %-8s %9.3f %9.2f %13.1f MiB %13.1f MiB\n", $1, $2, $4, $5, $7/1048576, $8/1048576 }'
done
