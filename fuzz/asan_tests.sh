#!/usr/bin/env bash
# The native unit tests under AddressSanitizer + UndefinedBehaviorSanitizer:
# builds pyllama._native with -fsanitize=address,undefined (gcc, the wheel's
# compiler) into build/asan, stages it beside the Python sources in
# build/asan/pkg, and runs the tests with libasan preloaded (Python itself is not
# instrumented). Leak checking is off: CPython keeps memory until exit.
#
#   fuzz/asan_tests.sh [pytest args...]   (default: tests/native and the tokenizer / grammar tests)
#
# Run from the pyllama venv (numpy, pytest, pybind11, gguf importable). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=build/asan
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
  -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_MODULE_LINKER_FLAGS="$SAN" \
  -DPython_EXECUTABLE="$(command -v python)" -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
nice cmake --build "$B"

# build/asan/pkg/pyllama: the package's sources (symlinked) + the sanitized module
PKG="$B/pkg/pyllama"
rm -rf "$B/pkg" && mkdir -p "$PKG"
for f in "$ROOT"/pyllama/*; do
  case "$(basename "$f")" in _native*.so|__pycache__) ;; *) ln -s "$f" "$PKG/" ;; esac
done
ln -s "$ROOT/server" "$PKG/server"
cp "$B"/_native*.so "$PKG/"

[ $# -eq 0 ] && set -- tests/native tests/pyllama/test_tokenizer.py tests/pyllama/test_tokenizer_golden.py \
  tests/pyllama/test_tokenizer_threads.py tests/pyllama/test_grammar.py tests/pyllama/test_grammar_limits.py \
  tests/pyllama/test_json_schema.py tests/pyllama/test_gguf_file.py tests/pyllama/test_sampling.py

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
# An import shim: drop the editable install's finders (they would load the unsanitized
# module) and put the staged package first.
exec python - "$@" <<PY
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
sys.path[:] = ["$ROOT/$B/pkg"] + [p for p in sys.path if p not in ("", ".", "$ROOT", "/work/main")]
import pyllama._native as n
assert n.__file__.startswith("$ROOT/$B/pkg"), n.__file__
print("sanitized module:", n.__file__, flush=True)
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
PY
