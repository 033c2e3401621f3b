#!/usr/bin/env bash
# Runs on the device machine (see docs/DEVICE.md), as root: issue #23's measurements of
# `--path stream` as a good citizen of the page cache and of a small cgroup.
#  (a) residency: the fraction of the model's pages in the page cache before and after a warm
#      `hoist load --path stream` (a second rank or a restart must find it still cached), and
#      after a cold one (what the load read must be gone again);
#  (b) cold loads (page cache dropped before each, a fresh process and a fresh cgroup v2 with
#      memory.max CG_MAX each): stream --ram-budget BUDGET against uring --ram-budget BUDGET,
#      and uring at its defaults in the same cgroup, RUNS of each, rotated.
# Writes under $OUT (or ./out): stream.md (the two tables), stream.csv (every load: the CLI's
# --csv line with the run's name, round, memory.peak and oom kills), log (everything else).
# Expects the build carried as build-dev/ (tools/device-run.sh):
#   cmake -S . -B build-dev -DHOIST_STATIC_DEPS=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-dev
# Settings (environment): SIZE (8G), MODEL_DIR (/root/hoist-bench), DEVICE (cuda:0), RUNS (3),
# CG_MAX (1G), BUDGET (128M), HOIST (build-dev/hoist), BASE (another build's hoist, e.g. main's:
# its stream --ram-budget BUDGET joins the rotation as stream-base).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
hoist=${HOIST:-$root/build-dev/hoist}
size=${SIZE:-8G}
model=${MODEL_DIR:-/root/hoist-bench}/m$size
device=${DEVICE:-cuda:0}
runs=${RUNS:-3}
cg_max=${CG_MAX:-1G}
budget=${BUDGET:-128M}
cg=/sys/fs/cgroup
md=$out/stream.md
csv=$out/stream.csv

log() { echo "== $*" | tee -a "$out/log"; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (drop_caches, cgroups)"
[ -x "$hoist" ] || die "no hoist at $hoist"
command -v python3 > /dev/null || die "needs python3 (the residency probe)"

# Fraction of the model's pages resident in the page cache: mincore over a read-only shared
# mapping of each file, which faults nothing in (root owns the files: mincore tells the truth).
resident() {
    python3 - "$1" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
page, run = os.sysconf("SC_PAGE_SIZE"), 1 << 30
total = cached = 0
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(d, n)
        size = os.path.getsize(p)
        if not size or os.path.islink(p):
            continue
        fd = os.open(p, os.O_RDONLY)
        for off in range(0, size, run):  # bounded mappings and vectors
            length = min(run, size - off)
            addr = libc.mmap(None, length, 1, 1, fd, off)  # PROT_READ, MAP_SHARED
            if addr in (None, ctypes.c_void_p(-1).value):
                sys.exit("mmap %s: errno %d" % (p, ctypes.get_errno()))
            pages = (length + page - 1) // page
            vec = ctypes.create_string_buffer(pages)
            if libc.mincore(addr, length, vec) != 0:
                sys.exit("mincore %s: errno %d" % (p, ctypes.get_errno()))
            cached += sum(b & 1 for b in vec.raw)
            total += pages
            libc.munmap(addr, length)
        os.close(fd)
print("%.4f" % (cached / total if total else 1.0))
EOF
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# cgroup v2 children get the memory controller only if the root hands it down, which a cgroup
# holding processes cannot: move them into a leaf first (as tools/device-run.sh's cgroup stage).
cgroup_ready() {
    grep -qw memory $cg/cgroup.controllers 2>/dev/null || die "no cgroup v2 memory controller at $cg"
    if ! grep -qw memory $cg/cgroup.subtree_control && ! echo +memory > $cg/cgroup.subtree_control 2> /dev/null; then
        mkdir -p $cg/hoist-init
        for p in $(cat $cg/cgroup.procs); do echo "$p" > $cg/hoist-init/cgroup.procs 2> /dev/null; done
        echo +memory > $cg/cgroup.subtree_control || die "cannot enable +memory in $cg"
        log "moved the root's processes to $cg/hoist-init"
    fi
}

# NAME ROUND HOIST ARGS...: one cold load in a fresh cgroup; appends to $csv.
cold_in_cgroup() {
    local name=$1 round=$2 bin=$3
    shift 3
    local c=$cg/hoist-stream-$$-$name-$round
    mkdir "$c" || die "mkdir $c"
    echo "$cg_max" > "$c/memory.max" || die "cannot set $c/memory.max"
    echo 0 > "$c/memory.swap.max" 2> /dev/null || true
    drop_caches
    sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$c" \
        "$bin" load "$model" --device "$device" --csv "$@" > "$out/last.csv" 2>> "$out/log"
    local rc=$? line
    line=$(tail -n 1 "$out/last.csv")
    rm -f "$out/last.csv"
    local peak oom
    peak=$(cat "$c/memory.peak" 2> /dev/null || echo -1)
    oom=$(awk '/^oom_kill /{print $2}' "$c/memory.events" 2> /dev/null)
    rmdir "$c"
    echo "$name,$round,$rc,${peak},${oom:-0},$line" >> "$csv"
    log "$name round $round: exit $rc, memory.peak $peak, oom kills ${oom:-0}: $line"
}

log "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r), $(date -u +%FT%TZ)"
disk=$(df --output=source "$(dirname "$model")" 2> /dev/null | tail -1)
log "filesystem under $(dirname "$model"): $(df -hT "$(dirname "$model")" | awk 'NR==2{print $1, $2, $3}'); read_ahead_kb $(cat /sys/block/"$(basename "$disk")"/queue/read_ahead_kb 2>/dev/null), max_sectors_kb $(cat /sys/block/"$(basename "$disk")"/queue/max_sectors_kb 2>/dev/null)"
if [ ! -d "$model" ]; then
    log "generating a $size model"
    mkdir -p "$(dirname "$model")"
    "$hoist" gen "$model" --size "$size" --threads "$(nproc)" --quiet 2>&1 | tee -a "$out/log"
fi
bytes=$(du -sb "$model" | cut -f1)
log "model $model: $bytes bytes"
echo "name,round,exit,memory_peak,oom_kills,path,device,threads,seconds,gb_per_s,bytes,loader_peak_bytes,process_peak_rss_bytes,file_bytes,read_seconds,copy_seconds,verify_seconds,decode_seconds" > "$csv"

# ---- (a) residency -------------------------------------------------------------------------
cat "$model"/* > /dev/null
warm_before=$(resident "$model")
HOIST_LOG=debug "$hoist" load "$model" --path stream --device "$device" 2>&1 | tee -a "$out/log"
warm_after=$(resident "$model")
drop_caches
cold_before=$(resident "$model")
HOIST_LOG=debug "$hoist" load "$model" --path stream --device "$device" 2>&1 | tee -a "$out/log"
cold_after=$(resident "$model")
log "residency: warm $warm_before -> $warm_after, cold $cold_before -> $cold_after"

# ---- (b) cold loads in a small cgroup ------------------------------------------------------
cgroup_ready
names=(stream uring uring-defaults)
bins=("$hoist" "$hoist" "$hoist")
args=("--path stream --ram-budget $budget" "--path uring --ram-budget $budget" "--path uring")
if [ -n "${BASE:-}" ]; then
    names+=(stream-base)
    bins+=("$BASE")
    args+=("--path stream --ram-budget $budget")
fi
n=${#names[@]}
for round in $(seq 1 "$runs"); do
    for k in $(seq 0 $((n - 1))); do # rotated, so that a slow spell of the disk is not one path's
        i=$(( (k + round - 1) % n ))
        # shellcheck disable=SC2086
        cold_in_cgroup "${names[$i]}" "$round" "${bins[$i]}" ${args[$i]}
    done
done

# ---- the tables ------------------------------------------------------------------------------
{
    echo "## \`--path stream\` and the page cache ($(basename "$model"), $bytes bytes, $device)"
    echo
    echo "| load | resident before | resident after |"
    echo "|---|---:|---:|"
    echo "| warm \`hoist load --path stream\` | $warm_before | $warm_after |"
    echo "| cold \`hoist load --path stream\` | $cold_before | $cold_after |"
    echo
    echo "## Cold loads in a cgroup with memory.max=$cg_max ($runs runs each, fresh process and cgroup, drop_caches before each)"
    echo
    python3 - "$csv" "$budget" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
budget = sys.argv[2]
label = {"stream": "stream --ram-budget " + budget, "uring": "uring --ram-budget " + budget,
         "uring-defaults": "uring (defaults)", "stream-base": "stream --ram-budget %s, BASE build" % budget}
label = {n: l for n, l in label.items() if any(x["name"] == n for x in rows)}
med = {}
for n in label:
    r = [x for x in rows if x["name"] == n and x["exit"] == "0" and x["gb_per_s"]]
    med[n] = statistics.median(float(x["gb_per_s"]) for x in r) if r else None
print("| load | GB/s per run | median GB/s | vs uring --ram-budget %s | threads | max memory.peak | oom kills | failed runs |" % budget)
print("|---|---|---:|---:|---:|---:|---:|---:|")
for n, l in label.items():
    r = [x for x in rows if x["name"] == n]
    ok = [x for x in r if x["exit"] == "0" and x["gb_per_s"]]
    runs = ", ".join("%.2f" % float(x["gb_per_s"]) for x in ok)
    peak = max((int(x["memory_peak"]) for x in r), default=-1)
    rel = "%.0f%%" % (100 * med[n] / med["uring"]) if med[n] and med["uring"] else "-"
    print("| %s | %s | %s | %s | %s | %s | %d | %d |" % (
        l, runs or "-", "%.2f" % med[n] if med[n] else "-", rel,
        "/".join(sorted({x["threads"] for x in ok})) or "-",
        "%.0f MiB" % (peak / 2**20) if peak >= 0 else "-",
        sum(int(x["oom_kills"] or 0) for x in r), len(r) - len(ok)))
EOF
} > "$md"
tee -a "$out/log" < "$md"
log "done"
