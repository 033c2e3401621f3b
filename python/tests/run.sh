#!/bin/sh
# ctest's `python` test: the binding's pytest suite, run by a python3 that has numpy and pytest.
# Tried in order: $HOIST_PYTHON, the first python3 on PATH, Debian's /usr/bin/python3 (CI installs
# python3-numpy and python3-pytest for it, while a pyenv python3 may come first on PATH without
# them). Exit 77 (ctest: skipped) only when no candidate has numpy; one with numpy but without
# pytest is an error, since tools/install-deps.sh installs both.
here=$(cd "$(dirname "$0")" && pwd)
with_numpy=""
for py in ${HOIST_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    "$py" -c "import numpy" 2>/dev/null || continue
    if "$py" -c "import pytest" 2>/dev/null; then
        echo "python: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
        PYTHONDONTWRITEBYTECODE=1 exec "$py" -m pytest -q -p no:cacheprovider "$here" "$@"
    fi
    with_numpy="$with_numpy $py"
done
if [ -n "$with_numpy" ]; then
    echo "error:$with_numpy ha(s|ve) numpy but no pytest (tools/install-deps.sh installs python3-pytest)"
    exit 1
fi
echo "skipped: no python3 with numpy (tools/install-deps.sh installs python3-numpy)"
exit 77
