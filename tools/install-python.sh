#!/bin/sh
# Installs the Python binding into a virtual environment, offline: Debian 12's python3 (with
# python3-venv, python3-setuptools, python3-pip) and nothing from a package index. The venv sees
# the system's packages (--system-site-packages), so Debian's python3-numpy and python3-torch
# serve it; the package itself is ctypes only, and carries a copy of libhoist.so.
#   tools/install-python.sh VENV_DIR          (what `make python` runs)
# $HOIST_LIBRARY names the libhoist.so to copy into the package (default: build/libhoist.so of
# this checkout, see python/setup.py); $PYTHON the interpreter (default: Debian's /usr/bin/python3).
set -eu
venv=${1:?usage: tools/install-python.sh VENV_DIR}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
    # a pyenv or other python3 first on PATH lacks Debian's python3-* packages
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi
if [ -z "${HOIST_LIBRARY:-}" ]; then
    for b in build build-dev; do
        [ -f "$here/$b/libhoist.so" ] && { export HOIST_LIBRARY="$here/$b/libhoist.so"; break; }
    done
fi
# pip builds in the directory it is given: build a copy, so that no build/ of an earlier install
# (another build's library) is reused and the checkout stays as it was
src=$(mktemp -d "${TMPDIR:-/tmp}/hoist-python-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
tar -C "$here/python" --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ -cf - . |
    tar -C "$src" -xf -
"$python" -m venv --system-site-packages "$venv"
# --no-index: never reach a package index; --no-build-isolation: build with the setuptools at
# hand instead of fetching one into an isolated environment
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --no-index --no-build-isolation \
    --no-input --quiet "$src"
cd / && env -u HOIST_LIBRARY "$venv/bin/python" -c \
    'import hoist; print("installed hoist", hoist.version(), "with", hoist.library_path)'
