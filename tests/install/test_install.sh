#!/bin/sh
# ctest `install`: `cmake --install BUILD --prefix TMP`, then the C example of README.md (the
# program between its "example: c-api" markers, so that the README stays true) compiled against
# the installed prefix through pkg-config, shared and static, and run on a generated model.
#   test_install.sh SOURCE_DIR BUILD_DIR HOIST_CLI
# $HOIST_EXAMPLE_FLAGS is added to the compile (the sanitizer build's runtime).
set -eu
src=$1 build=$2 cli=$3
cc=${CC:-cc}
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v pkg-config >/dev/null || fail "pkg-config is not installed (tools/install-deps.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "cmake --install"; }
pc=$(find "$prefix" -name hoist.pc)
[ -n "$pc" ] || fail "no hoist.pc installed under $prefix"
export PKG_CONFIG_PATH="$(dirname "$pc")"
# the .pc names the prefix installed into, not the one configured
[ "$(pkg-config --variable=prefix hoist)" = "$prefix" ] ||
    fail "hoist.pc: prefix=$(pkg-config --variable=prefix hoist), installed into $prefix"
libdir=$(pkg-config --variable=libdir hoist)
includedir=$(pkg-config --variable=includedir hoist)
for f in "$libdir/libhoist.so" "$libdir/libhoist.a" "$includedir/hoist.h" "$prefix/bin/hoist"; do
    [ -e "$f" ] || fail "$f was not installed"
done
echo "installed: $(pkg-config --modversion hoist) in $prefix"

# the README's program
awk '/<!-- example: c-api/ { on = 1; next }
     on && /^```c$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$src/README.md" > "$tmp/load.c"
grep -q "int main" "$tmp/load.c" || fail "no C example between the markers of README.md"

flags=${HOIST_EXAMPLE_FLAGS:-}
# shared
# shellcheck disable=SC2046,SC2086  # pkg-config's output is a list of words
$cc -std=c11 -Wall -Wextra -Werror $flags -o "$tmp/load_shared" "$tmp/load.c" \
    $(pkg-config --cflags --libs hoist) || fail "the README example does not compile (shared)"
# static: libhoist.a and what pkg-config --static says it needs
static_libs=$(pkg-config --static --libs hoist | sed 's/-lhoist\b/-l:libhoist.a/')
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Wextra -Werror $flags -o "$tmp/load_static" "$tmp/load.c" \
    $(pkg-config --cflags hoist) $static_libs ||
    fail "the README example does not link (static: $static_libs)"
if readelf -d "$tmp/load_static" | grep -q 'NEEDED.*libhoist'; then
    fail "the static build needs libhoist.so"
fi

# a model where the example looks for it
mkdir -p "$tmp/run/models"
"$cli" gen "$tmp/run/models/llama-8b" --preset tiny --quiet
out=$(cd "$tmp/run" && LD_LIBRARY_PATH="$libdir" "$tmp/load_shared") || fail "shared: exit $?"
echo "shared: $out"
case $out in *"model.layers.0.self_attn.q_proj.weight: BF16 ["*) ;; *) fail "shared: $out";; esac
# the shared build runs the installed library, not the build tree's
ldd_out=$(cd "$tmp/run" && LD_LIBRARY_PATH="$libdir" ldd "$tmp/load_shared" | grep libhoist)
case $ldd_out in *"$libdir/"*) ;; *) fail "shared build resolves libhoist as: $ldd_out";; esac
out=$(cd "$tmp/run" && "$tmp/load_static") || fail "static: exit $?"
echo "static: $out"
case $out in *"model.layers.0.self_attn.q_proj.weight: BF16 ["*) ;; *) fail "static: $out";; esac
# and a failure is a message and exit 1, not a crash
rm -rf "$tmp/run/models/llama-8b"
if (cd "$tmp/run" && "$tmp/load_static" 2> "$tmp/err"); then fail "no model, yet exit 0"; fi
grep -q "models/llama-8b" "$tmp/err" || fail "the error does not name the model: $(cat "$tmp/err")"
echo "install: ok"
