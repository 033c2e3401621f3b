#!/usr/bin/env bash
# libFuzzer campaigns over the parsers (tests/fuzz). Builds build-fuzz with clang (ASan + UBSan,
# leak checking on), then runs each target in turn (or those named) for SECONDS, at the lowest
# priority with one job, from the handcrafted seeds (tests/data), the committed corpus
# (tests/fuzz/corpus/<target>) and what earlier runs found (build-fuzz/corpus/<target>). Inputs
# that add coverage are merged into tests/fuzz/corpus/<target>, which `make test` replays.
# A crash, leak or timeout stops that target: the input is left in build-fuzz/artifacts/; once
# fixed, copy it into tests/fuzz/corpus/<target>/ as the regression. Stats per target (runs,
# coverage, features) go to build-fuzz/summary.txt.
#   tools/fuzz.sh [SECONDS] [TARGET...]      (default: 600 s, every target)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-600}
shift || true
build=${FUZZ_BUILD:-build-fuzz}
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DHOIST_FUZZ=ON -DHOIST_CUDA=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
rm -f "$build.configure.log"
targets=${*:-$(sed -n 's/^set(HOIST_FUZZ_TARGETS \(.*\))/\1/p' tests/fuzz/CMakeLists.txt)}
for t in $targets; do
    cmake --build "$build" --target "fuzz_$t" -j 2 > /dev/null || exit 1
done
mkdir -p "$build/artifacts" "$build/logs"
status=0
for t in $targets; do
    seeds=$(sed -n "s|^set(FUZZ_SEEDS_$t \${PROJECT_SOURCE_DIR}/\(.*\))|\1|p" tests/fuzz/CMakeLists.txt)
    mkdir -p "$build/corpus/$t" "tests/fuzz/corpus/$t"
    # seeds the CMake file globs (index files) are copied in; directories are read as they are
    for f in $(sed -n "s|^file(GLOB FUZZ_SEEDS_$t \${PROJECT_SOURCE_DIR}/\(.*\))|\1|p" tests/fuzz/CMakeLists.txt); do
        for g in $f; do cp "$g" "$build/corpus/$t/seed-$(echo "$g" | tr / _)"; done
    done
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
    log="$build/logs/$t-$(date +%Y%m%d-%H%M%S).log"
    echo "== fuzz_$t for $secs s (log: $log)"
    (cd "$build/logs" && nice -n 19 "$root/$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -jobs=1 -workers=1 \
        -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -detect_leaks=1 \
        -artifact_prefix="$root/$build/artifacts/$t-" $dict \
        "$root/$build/corpus/$t" ${seeds:+"$root/$seeds"} "$root/tests/fuzz/corpus/$t") \
        > "$log" 2>&1 # the job's own log is copied into it at the end
    rc=$?
    rm -f "$build/logs/fuzz-0.log"
    last=$(grep -E "^#[0-9]+" "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crashed=$(grep -scE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken|ALARM" "$log")
    echo "$t: ${secs}s, exit $rc, executions ${runs:-?}, last status: ${last:-?}, crash/leak/timeout reports: $crashed" \
        | tee -a "$build/summary.txt"
    if [ "$rc" -ne 0 ] || [ "${crashed:-1}" -ne 0 ]; then status=1; fi
    # keep what adds coverage over the committed corpus
    "$build/tests/fuzz/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$build/corpus/$t" > "$build/logs/$t-merge.log" 2>&1
    echo "   corpus/$t: $(ls "tests/fuzz/corpus/$t" | wc -l) files"
done
exit $status
