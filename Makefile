# Thin wrapper over CMake. `make test` and `make demo` are the two commands of the README.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
VENV       ?= .venv

.PHONY: all deps build test test-fast test-asan test-tsan demo install python clean fuzz

all: build

deps:
	@tools/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DHOIST_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

# Every test, then the same tests under AddressSanitizer + UndefinedBehaviorSanitizer, then under
# ThreadSanitizer (about three times the plain run's time on two cores).
test: test-fast test-asan test-tsan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DHOIST_WERROR=ON -DHOIST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:protect_shadow_gap=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2

# The same tests under ThreadSanitizer (every race a report, and a report fails its test). CUDA
# off: no GPU tests run in CI, and the CUDA runtime is not built with TSan.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DHOIST_WERROR=ON -DHOIST_SANITIZE=thread -DHOIST_CUDA=OFF \
	  $(CMAKE_ARGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j 2

# libFuzzer campaigns over every parser (clang): FUZZ_SECONDS each, see tools/fuzz.sh.
FUZZ_SECONDS ?= 600
fuzz:
	@tools/install-deps.sh fuzz
	tools/fuzz.sh $(FUZZ_SECONDS)

demo: build
	@tools/demo.sh $(BUILD)/hoist

# Under /usr/local (or PREFIX=...), with hoist.pc for that prefix; ldconfig runs for /usr and
# /usr/local when root.
PREFIX ?=
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# The Python binding in a virtual environment at $(VENV), offline (Debian's python3, the system's
# numpy and torch visible in it): then `$(VENV)/bin/python -c "import hoist"`. ctest `python_install`
# runs the same script.
python: build
	HOIST_LIBRARY=$(abspath $(BUILD))/libhoist.so tools/install-python.sh $(VENV)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
