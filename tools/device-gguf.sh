#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md): the GGUF tests (parser, generator, the
# GPU test of every path and of the forward pass), then the load throughput of an ~8 GB GGUF file
# against the same weights as one safetensors file, per path, cold and warm (and from /dev/shm),
# into cuda:0, then `hoist run` on both (the same tokens) and on a Q8_0 GGUF of the same size.
# Expects a build made here with
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# carried along, and writes its log and CSV under $OUT/gguf (or ./out/gguf).
#   STAGES="tests bench run" SIZE=8G REPS=2 tools/device-gguf.sh
# (DEVICE=host DROP=0 HOIST=build/hoist SIZE=64M STAGES=bench try the bench stage on any machine.)
# load.csv: format,condition,rep, then `hoist load --csv`'s columns (path,device,threads,seconds,
# gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes); summary.txt: the median GB/s of each
# format, path and condition, and GGUF's ratio to safetensors.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}/gguf
mkdir -p "$out"
stages=${STAGES:-"tests bench run"}
size=${SIZE:-8G}
reps=${REPS:-2}
work=${WORK:-/root/hoist-gguf}
hoist=${HOIST:-$root/build-dev/hoist}
device=${DEVICE:-cuda:0}
export HOIST_CLI=$hoist HOIST_TEST_DATA=$root/tests/data
status=0

log() { echo "== $*" | tee -a "$out/log"; }
run() {
    echo "\$ $*" | tee -a "$out/log"
    "$@" 2>&1 | tee -a "$out/log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "(exit $rc)" | tee -a "$out/log"; status=1; }
}
drop() { [ "${DROP:-1}" = 0 ] || { sync; echo 3 > /proc/sys/vm/drop_caches; }; }

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo no GPU), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(date -u +%F)"
run "$hoist" devices --bandwidth

if [[ " $stages " == *" tests "* ]]; then
    # ctest files hold the absolute paths of the tree they were configured in
    built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
    if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
        mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
    fi
    log "GGUF tests: parser, generator, every path into cuda:0"
    (cd "$root/build-dev" && ctest -R gguf --output-on-failure 2>&1) | tee -a "$out/log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

if [[ " $stages " == *" bench "* ]]; then
    mkdir -p "$work"
    st=$work/st$size gg=$work/gg$size
    # the same geometry, dtype and seed: the same tensor bytes, one file each
    [ -f "$st/model.safetensors" ] || run "$hoist" gen "$st" --size "$size" --dtype bf16 \
        --shard-size 1T --threads "$(nproc)" --quiet
    [ -f "$gg/model.gguf" ] || run "$hoist" gen "$gg" --size "$size" --dtype bf16 --format gguf \
        --threads "$(nproc)" --quiet
    files=("$st/model.safetensors" "$gg/model.gguf")
    names=(safetensors gguf)
    run ls -l "${files[@]}"
    "$hoist" inspect "$gg/model.gguf" > "$out/gguf-inspect.txt" 2>> "$out/log" || status=1
    csv=$out/load.csv
    echo "format,condition,rep,path,device,threads,seconds,gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes" > "$csv"
    # one load of file $1 (format $2) through path $3, condition $4, rep $5; extra args after
    load() {
        local f=$1 fmt=$2 p=$3 cond=$4 rep=$5
        shift 5
        echo "\$ hoist load $f --device $device --path $p --csv $*" >> "$out/log"
        "$hoist" load "$f" --device "$device" --path "$p" --csv "$@" 2>> "$out/log" |
            sed "s/^/$fmt,$cond,$rep,/" | tee -a "$csv" "$out/log"
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    }

    log "cold: page cache dropped before every load; raw O_DIRECT read (dd) of each file first"
    for rep in $(seq "$reps"); do
        for i in 0 1; do
            drop
            t0=$(date +%s.%N)
            dd if="${files[$i]}" of=/dev/null bs=64M iflag=direct status=none
            t1=$(date +%s.%N)
            awk -v b="$(stat -c %s "${files[$i]}")" -v a="$t0" -v z="$t1" -v f="${names[$i]}" \
                'BEGIN { printf "dd O_DIRECT %s: %.2f GB/s\n", f, b / (z - a) / 1e9 }' | tee -a "$out/log"
        done
        for p in mmap uring stream; do
            for i in 0 1; do drop; load "${files[$i]}" "${names[$i]}" "$p" cold "$rep"; done
        done
    done

    log "warm: the file read once with cat; --repeat 3 (stream drops what it read: its runs 2 and 3 are cold)"
    for p in mmap uring stream; do
        for i in 0 1; do
            cat "${files[$i]}" > /dev/null
            load "${files[$i]}" "${names[$i]}" "$p" warm 1 --repeat 3
        done
    done

    log "from /dev/shm (storage never the bottleneck), --repeat 3"
    for i in 0 1; do
        shm=/dev/shm/hoist-gguf-bench.${names[$i]}
        cp "${files[$i]}" "$shm"
        for p in mmap uring stream; do load "$shm" "${names[$i]}" "$p" shm 1 --repeat 3; done
        rm -f "$shm"
    done

    log "summary: median GB/s per format, path and condition; gguf / safetensors"
    awk -F, 'NR > 1 { k = $2 "," $4; v[k, $1, ++n[k, $1]] = $8; keys[k] = 1 }
        function median(k, f,    m, i, j, t, a) {
            m = n[k, f]; if (!m) return 0
            for (i = 1; i <= m; i++) a[i] = v[k, f, i]
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        }
        END {
            for (k in keys) {
                split(k, c, ","); s = median(k, "safetensors"); g = median(k, "gguf")
                printf "%-6s %-7s %12.2f %12.2f %8.3f\n", c[1], c[2], s, g, s ? g / s : 0
            }
        }' "$csv" | sort > "$out/summary.rows"
    { printf "%-6s %-7s %12s %12s %8s\n" cond path safetensors gguf ratio; cat "$out/summary.rows"; } |
        tee "$out/summary.txt" | tee -a "$out/log"
    rm -f "$out/summary.rows"
fi
if [[ " $stages " == *" run "* ]]; then
    st=$work/st$size gg=$work/gg$size q8=$work/q8$size
    [ -f "$st/model.safetensors" ] || run "$hoist" gen "$st" --size "$size" --dtype bf16 \
        --shard-size 1T --threads "$(nproc)" --quiet
    [ -f "$gg/model.gguf" ] || run "$hoist" gen "$gg" --size "$size" --dtype bf16 --format gguf \
        --threads "$(nproc)" --quiet
    [ -f "$q8/model.gguf" ] || run "$hoist" gen "$q8" --size "$size" --dtype q8_0 --format gguf \
        --threads "$(nproc)" --quiet
    tokens=1,17,200,3,99,5,42,1000
    log "hoist run: the GGUF model and its safetensors twin generate the same tokens"
    for m in "$st/model.safetensors" "$gg/model.gguf"; do
        run "$hoist" run "$m" --device "$device" --tokens "$tokens" --n 64
    done
    a=$("$hoist" run "$st/model.safetensors" --device "$device" --tokens "$tokens" --n 64 2>/dev/null | grep '^generated')
    b=$("$hoist" run "$gg/model.gguf" --device "$device" --tokens "$tokens" --n 64 2>/dev/null | grep '^generated')
    if [ -n "$a" ] && [ "$a" = "$b" ]; then log "same tokens: $a"; else log "tokens differ: '$a' vs '$b'"; status=1; fi
    log "hoist run on Q8_0 (dequantized on the GPU before each product)"
    run "$hoist" run "$q8/model.gguf" --device "$device" --tokens "$tokens" --n 64
fi
log "done (status $status)"
exit $status
