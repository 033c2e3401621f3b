#!/usr/bin/env python3
"""Checks that hoist's layers stand the right way up (docs/ARCHITECTURE.md).

  1. Includes point down only: each folder may include from the folders listed for it in ALLOWED.
  2. Only gpu/ talks to the device: an object compiled from C outside gpu/ must not reference a
     CUDA runtime (cuda*), driver (cu[A-Z]*), cuBLAS (cublas*) or NCCL (nccl*) symbol. CUDA
     kernel units (.cu) are exempt: their launch stubs call the runtime.
  3. No include cycles between modules (a module is a source file and its header: formats/packed.c
     and formats/packed.h are one module).

Usage: check_layers.py SOURCE_DIR [OBJECT_DIR]   (OBJECT_DIR: CMakeFiles/hoist_objects.dir)
       check_layers.py --self-test               plants each violation in a scratch tree and
                                                 asserts that it is caught
Exit status 0 when clean, 1 with one line per violation otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LAYERS = ["core", "formats", "gpu", "infer", "loader", "tools"]
# What each folder may include ("hoist.h", the public header, is open to all).
ALLOWED = {
    "core": {"core"},
    "formats": {"core", "formats"},
    "gpu": {"core", "gpu"},
    "infer": {"core", "formats", "gpu", "infer"},
    "loader": {"core", "formats", "gpu", "loader"},
    "tools": {"tools"},
}
DEVICE_SYMBOL = re.compile(r"^(cuda|cu[A-Z]|cublas|nccl)")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    for layer in LAYERS:
        top = os.path.join(root, layer)
        for dirpath, _, names in os.walk(top):
            for name in sorted(names):
                if name.endswith((".c", ".h", ".cu")):
                    yield os.path.relpath(os.path.join(dirpath, name), root)


def includes(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        return INCLUDE.findall(f.read())


def resolve(root, rel, inc):
    """The repository path an include names, or None for the public header and system files."""
    if inc == "hoist.h":
        return None
    if os.path.exists(os.path.join(root, inc)):
        return inc
    beside = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
    if os.path.exists(os.path.join(root, beside)):
        return beside
    return None


def check_includes(root, files):
    bad = []
    for rel in files:
        layer = rel.split("/")[0]
        for inc in includes(root, rel):
            target = resolve(root, rel, inc)
            if target is None:
                continue
            to = target.split("/")[0]
            if to not in ALLOWED[layer]:
                bad.append(f"{rel}: includes {target}: {layer}/ may include only "
                           f"{', '.join(sorted(ALLOWED[layer]))}")
    return bad


def module(path):
    return os.path.splitext(path)[0]


def check_cycles(root, files):
    graph = {}
    for rel in files:
        deps = graph.setdefault(module(rel), set())
        for inc in includes(root, rel):
            target = resolve(root, rel, inc)
            if target is not None and module(target) != module(rel):
                deps.add(module(target))
    bad, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                cycle = stack[stack.index(d):] + [d]
                bad.append("include cycle: " + " -> ".join(cycle))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return bad


def check_symbols(objdir):
    bad = []
    for dirpath, _, names in os.walk(objdir):
        for name in sorted(names):
            if not name.endswith(".c.o"):
                continue
            obj = os.path.join(dirpath, name)
            rel = os.path.relpath(obj, objdir)
            if rel.startswith("gpu/"):
                continue
            out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True)
            for line in out.stdout.split("\n"):
                sym = line.split()[-1] if line.split() else ""
                if DEVICE_SYMBOL.match(sym):
                    bad.append(f"{rel[:-2]}: references {sym}: only gpu/ calls the device")
    return bad


def check(root, objdir):
    files = list(sources(root))
    bad = check_includes(root, files) + check_cycles(root, files)
    if objdir:
        bad += check_symbols(objdir)
    return bad


def self_test():
    """Each planted violation must be reported; a clean tree must not be."""
    scratch = tempfile.mkdtemp(prefix="hoist-layers-")
    try:
        def write(rel, text):
            path = os.path.join(scratch, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)

        write("core/core.h", "int x;\n")
        write("formats/a.h", '#include "core/core.h"\n')
        write("formats/a.c", '#include "formats/a.h"\n')
        assert check(scratch, None) == [], check(scratch, None)

        write("loader/load.h", "int y;\n")
        write("formats/up.c", '#include "loader/load.h"\n')
        assert any("formats/up.c: includes loader/load.h" in b for b in check(scratch, None))
        os.remove(os.path.join(scratch, "formats/up.c"))

        # two source files that include each other's header
        write("formats/b.h", "int b;\n")
        write("formats/b.c", '#include "formats/a.h"\n')
        assert check(scratch, None) == []
        write("formats/a.c", '#include "formats/a.h"\n#include "formats/b.h"\n')
        assert any("include cycle" in b for b in check(scratch, None)), check(scratch, None)
        write("formats/a.c", '#include "formats/a.h"\n')

        objdir = os.path.join(scratch, "obj")
        os.makedirs(os.path.join(objdir, "infer"))
        os.makedirs(os.path.join(objdir, "gpu"))
        for rel, call in (("infer/x.c", "cudaMalloc"), ("gpu/y.c", "cudaFree")):
            src = os.path.join(scratch, rel.replace("/", "_"))
            with open(src, "w") as f:
                f.write(f"int {call}(void **p, unsigned long n);\n"
                        f"int f(void) {{ return {call}(0, 1); }}\n")
            subprocess.run(["cc", "-c", src, "-o", os.path.join(objdir, rel + ".o")], check=True)
        bad = check_symbols(objdir)
        assert bad == ["infer/x.c: references cudaMalloc: only gpu/ calls the device"], bad
    finally:
        shutil.rmtree(scratch)
    print("check_layers self-test: every planted violation caught")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    bad = check(argv[1], argv[2] if len(argv) == 3 else None)
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
