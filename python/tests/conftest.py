"""Tests of the Python binding. Run by ctest (test `python`, tests/CMakeLists.txt), which sets
HOIST_LIBRARY to the library under test, HOIST_CLI to the hoist command and HOIST_ABI_PROBE to
the struct layout probe; run by hand, they find the library as the package does."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package from this tree, not an installed one
sys.path.insert(0, HERE)
