#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): cold A/B comparisons of `hoist load`
# settings on one model, the page cache dropped before every load and the order of the settings
# rotated every round and reversed every other block of rounds, so that a disk whose speed drifts
# during the run (the virtio disks of the device machines move by 10-30% from minute to minute)
# is spread over every setting alike.
#   tools/device-ab.sh MODEL ROUNDS LABEL=ARGS...
#   tools/device-ab.sh /root/m8G 4 "uring=--path uring" "verify=--path uring --verify"
# Leading NAME=VALUE words of a setting are set in hoist's environment for its loads, except
# HOIST_BIN=PATH, which runs that hoist binary for the setting (two builds, A against B). With
# MODEL "-" each setting names its own model (two formats of the same weights, say). WARM=1 keeps
# the page cache (the model is read once before the first round) instead of dropping it.
# Writes $OUT/ab.csv (label,round, then hoist load --csv's columns) and $OUT/ab.log, and prints
# per label the median and min-max GB/s over the rounds and the median's ratio to the first
# label's. Needs root (drop_caches). HOIST (build-dev/hoist), DEVICE (cuda:0).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
model=$1 rounds=$2
shift 2
hoist=${HOIST:-$root/build-dev/hoist}
out=${OUT:-$root/out}
mkdir -p "$out"
csv=$out/ab.csv logf=$out/ab.log
labels=() args=()
for s in "$@"; do labels+=("${s%%=*}"); args+=("${s#*=}"); done
n=${#labels[@]}

echo "label,round,path,device,threads,seconds,model_gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes,file_bytes,read_seconds,copy_seconds,verify_seconds,decode_seconds" > "$csv"
status=0
[ "${WARM:-0}" = 1 ] && [ "$model" != - ] && cat "$model"/* > /dev/null 2>&1
for r in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
        # rotated every round, and the order reversed every other block of n rounds, so that
        # each setting runs in each position and each pair in both orders (with two settings:
        # AB, BA, BA, AB)
        i=$(((k + r - 1) % n))
        [ $((((r - 1) / n) % 2)) -eq 1 ] && i=$(((n - 1 - k + r - 1) % n))
        if [ "${WARM:-0}" != 1 ]; then
            sync
            echo 3 > /proc/sys/vm/drop_caches
        fi
        envs=() opts=() bin=$hoist
        for word in ${args[$i]}; do
            if [ ${#opts[@]} -eq 0 ] && [[ $word =~ ^HOIST_BIN= ]]; then bin=${word#HOIST_BIN=}
            elif [ ${#opts[@]} -eq 0 ] && [[ $word =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$word"); else opts+=("$word"); fi
        done
        [ "$model" = - ] || opts=("$model" "${opts[@]}")
        line=$(env "${envs[@]}" "$bin" load --device "${DEVICE:-cuda:0}" --csv "${opts[@]}" 2>>"$logf" | tail -1)
        [ -n "$line" ] || { echo "round $r ${labels[$i]}: load failed" | tee -a "$logf"; status=1; continue; }
        echo "${labels[$i]},$r,$line" | tee -a "$logf" >> "$csv"
    done
done

awk -F, -v order="${labels[*]}" 'NR > 1 { v[$1, ++c[$1]] = $7 }
    function median(l,    m, i, j, t, a) {
        m = c[l]; for (i = 1; i <= m; i++) a[i] = v[l, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        lo = a[1]; hi = a[m]
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        k = split(order, L, " "); base = median(L[1])
        printf "%-16s %5s %9s %17s %8s\n", "label", "runs", "median", "min-max GB/s", "ratio"
        for (i = 1; i <= k; i++) {
            m = median(L[i])
            printf "%-16s %5d %9.3f %8.3f-%-8.3f %8.3f\n", L[i], c[L[i]], m, lo, hi, base ? m / base : 0
        }
    }' "$csv" | tee -a "$logf"
exit $status
