#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md), as root: why the first load from /dev/shm
# right after the model is copied there runs at half the speed of the later ones (issue #23:
# 22.3 against 46 GB/s on the H200, docs/BENCHMARKS.md). Each case copies the model into a
# memory filesystem afresh, then loads it LOADS times, each in a fresh process, and reads the
# kernel counters that tell the suspected causes apart from /proc/vmstat before and after:
#   pgactivate          pages moved to the active LRU list. A read of a tmpfs page marks it
#                       accessed; a page cp wrote is activated by its first read, one LRU move
#                       per 4 KiB page under the lruvec lock, which 16 readers contend for.
#   numa_*, pgmigrate_* automatic NUMA balancing moving the pages towards the loading CPUs
#   thp_*, pgfault      huge pages and faults (the mmap path faults the pages in)
# Cases: every path of PATHS on /dev/shm; "cat" (one `cat >/dev/null` of the files between the
# copy and the first load: does a plain read take the first-load cost?); and "huge" (the same
# model on a tmpfs mounted huge=always, 512 times fewer pages to activate).
# Writes $OUT/shm.csv (case,path,load,seconds,GB/s,counters...) and $OUT/shm.log.
# Expects the static build carried as build-dev/:
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Settings (environment): SIZE (8G; in G), HOIST (build-dev/hoist), MODEL_DIR
# (/root/hoist-bench), DEVICE (cuda:0), LOADS (3), PATHS ("stream mmap"), CASES
# ("paths cat huge").
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
hoist=${HOIST:-$root/build-dev/hoist}
size=${SIZE:-8G}
model=${MODEL_DIR:-/root/hoist-bench}/m$size
device=${DEVICE:-cuda:0}
loads=${LOADS:-3}
paths=${PATHS:-"stream mmap"}
cases=${CASES:-"paths cat huge"}
logf=$out/shm.log
csv=$out/shm.csv
huge_mnt=/mnt/hoist-huge
counters="pgactivate pgdeactivate numa_hint_faults numa_pages_migrated pgmigrate_success
          thp_fault_alloc thp_file_mapped pgfault"

. "$root/tools/device-lib.sh"

[ "$(id -u)" = 0 ] || { log "needs root (mount, drop_caches)"; exit 1; }
[ -x "$hoist" ] || { log "no hoist at $hoist"; exit 1; }
log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null), $(nproc) cores, $(uname -r), $(date -u +%FT%TZ)"
log "numa_balancing $(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent);" \
    "shmem_enabled $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null);" \
    "/dev/shm: $(findmnt -no OPTIONS /dev/shm | head -n 1); nodes: $(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l)"
if [ ! -d "$model" ]; then
    log "generating a $size bf16 model"
    run "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet
fi

# The counters of /proc/vmstat named in $counters, space-separated, in that order.
vmstat() {
    local c
    for c in $counters; do awk -v k="$c" '$1 == k {v = $2} END {printf "%s ", v + 0}' /proc/vmstat; done
}

# DIR: the model copied into DIR afresh (the source read from the page cache).
fresh_copy() {
    rm -rf "$1" && mkdir -p "$1" && cp "$model"/* "$1"/ && sync
}

# CASE PATH DIR: LOADS loads of DIR, one csv line each.
loads() {
    local name=$1 path=$2 dir=$3 i before after line deltas
    for i in $(seq 1 "$loads"); do
        before=$(vmstat)
        line=$("$hoist" load "$dir" --device "$device" --path "$path" --csv 2>>"$logf" | tail -n 1)
        after=$(vmstat)
        # shellcheck disable=SC2086
        deltas=$(paste -d' ' <(echo $before | tr ' ' '\n') <(echo $after | tr ' ' '\n') |
            awk '{printf ",%d", $2 - $1}')
        echo "$name,$path,$i,$(echo "$line" | cut -d, -f4,5)$deltas" | tee -a "$csv"
    done
}

echo "case,path,load,seconds,gb_per_s,$(echo $counters | tr ' ' ',')" > "$csv"
run "$hoist" devices --bandwidth
for c in $cases; do
    case $c in
    paths)
        for p in $paths; do
            fresh_copy /dev/shm/hoist-shm
            loads "copy-then-$p" "$p" /dev/shm/hoist-shm
        done ;;
    cat)
        fresh_copy /dev/shm/hoist-shm
        t0=$(date +%s.%N)
        cat /dev/shm/hoist-shm/* >/dev/null
        log "cat of the copy: $(echo "$(date +%s.%N) $t0" | awk '{printf "%.3f", $1 - $2}') s"
        loads "copy-cat-then-stream" stream /dev/shm/hoist-shm ;;
    huge)
        mkdir -p "$huge_mnt"
        mountpoint -q "$huge_mnt" || mount -t tmpfs -o size=$((2 * ${size%G} + 2))G,huge=always tmpfs "$huge_mnt"
        fresh_copy "$huge_mnt/m"
        log "huge tmpfs: $(grep -E 'ShmemHugePages' /proc/meminfo)"
        loads "huge-copy-then-stream" stream "$huge_mnt/m"
        rm -rf "$huge_mnt/m"
        umount "$huge_mnt" ;;
    esac
done
rm -rf /dev/shm/hoist-shm
log "done: $csv"
