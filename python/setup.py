"""Installs the package and, when a built libhoist.so is found, a copy of it inside the package
(hoist/libhoist.so.0), so that an installed hoist works without HOIST_LIBRARY. Nothing is compiled.

The library copied: $HOIST_LIBRARY if set, else ../build/libhoist.so or ../build-dev/libhoist.so
of this source tree (build it first: `make build` in the repository root). Without one, the
package installs alone and finds the library at import time (see README.md)."""

import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def built_library():
    env = os.environ.get("HOIST_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise SystemExit("HOIST_LIBRARY=%s is not a file" % env)
        return env
    for build in ("build", "build-dev"):
        path = os.path.join(os.path.dirname(HERE), build, "libhoist.so")
        if os.path.isfile(path):
            return path
    return None


class build_py_with_library(build_py):
    def run(self):
        super().run()
        lib = built_library()
        if lib:
            # Always the file itself (following libhoist.so -> .so.0 -> .so.0.x.y), even over a
            # newer one: copy_file skips a destination newer than its source, which would keep
            # the library of an earlier build (a sanitizer build, say) in a reused build tree.
            dst = os.path.join(self.build_lib, "hoist", "libhoist.so.0")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(lib, dst)
            os.chmod(dst, 0o755)


class MaybeBinaryDistribution(Distribution):
    """A wheel that carries libhoist.so is tagged for this platform, not as pure Python."""

    def has_ext_modules(self):
        return built_library() is not None


setup(cmdclass={"build_py": build_py_with_library}, distclass=MaybeBinaryDistribution)
