#!/bin/sh
# ctest `python_install`: the documented offline install of the Python binding (`make python`
# runs tools/install-python.sh) into a temporary venv, then the installed package, imported from
# outside the source tree and without HOIST_LIBRARY, loads a generated model through the
# libhoist.so it carries.
#   test_python_install.sh SOURCE_DIR HOIST_CLI      (HOIST_LIBRARY: the library to install)
set -eu
src=$1 cli=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c "import venv, ensurepip" 2>/dev/null; then
    # CI installs python3-venv (tools/install-deps.sh): there its absence is a failure
    [ -n "${CI:-}" ] &&
        fail "$py has no venv/ensurepip (tools/install-deps.sh installs python3-venv)"
    echo "skipped: $py has no venv module (apt-get install python3-venv)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-pyinstall.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

PYTHON=$py "$src/tools/install-python.sh" "$tmp/venv" || fail "tools/install-python.sh"
"$cli" gen "$tmp/model" --preset tiny --quiet
cd "$tmp"
# HOIST_LIBRARY empty: the package finds its own copy (setup.py put it beside the modules)
env -u HOIST_LIBRARY "$tmp/venv/bin/python" - "$tmp/model" <<'PY' || fail "the installed package"
import os, sys
import hoist
pkg = os.path.dirname(hoist.__file__)
assert pkg.startswith(sys.prefix), (pkg, sys.prefix)  # the venv's copy, not the source tree
assert hoist.library_path.startswith(pkg), hoist.library_path
tensors = hoist.load_file(sys.argv[1])  # device "cpu", as safetensors
names = sorted(tensors)
assert "model.embed_tokens.weight" in names, names[:5]
print("installed hoist %s (%s): %d tensors from %s" % (hoist.version(), hoist.library_path,
                                                        len(names), sys.argv[1]))
PY
echo "python_install: ok"
