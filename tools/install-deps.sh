#!/bin/sh
# Installs the Debian packages hoist builds with, when any is missing. Needs root (or sudo) only
# when something is missing.
set -e
pkgs="build-essential cmake pkg-config liburing-dev libzstd-dev libxxhash-dev libjansson-dev check"
# `tools/install-deps.sh fuzz`: also clang and its runtime (libFuzzer), for `make fuzz` only
[ "${1:-}" = fuzz ] && pkgs="$pkgs clang libclang-rt-dev"
# the Python binding's tests (python/tests, ctest test `python`); its offline install into a venv
# (`make python`, ctest `python_install`); torch for its tensors and the allocator hook (CPU)
pkgs="$pkgs python3 python3-numpy python3-pytest python3-venv python3-pip python3-setuptools"
pkgs="$pkgs python3-wheel python3-torch"
# the llama.cpp test (ctest llamacpp) installs node-llama-cpp with npm: Debian's only where the
# machine has no npm of its own
command -v npm > /dev/null 2>&1 || pkgs="$pkgs nodejs npm"
# hoist bench --plot, and its test
pkgs="$pkgs gnuplot-nox"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "hoist: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq $missing >/dev/null
