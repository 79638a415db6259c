#!/usr/bin/env bash
# Build the fuzz targets (clang, libFuzzer + ASan + UBSan; never part of the wheel)
# and run each for a bounded time, one after another.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; all targets)
#   targets: gguf tokenizer_bpe tokenizer_spm grammar schema
#
# Needs clang with the compiler-rt runtimes (Debian 12: apt-get install -y clang
# libclang-rt-14-dev), ninja, and for the schema target atheris (pip install atheris)
# with pyllama installed in the active Python. Not run in CI.
#
# New inputs go to build/fuzz/work/<target> (the committed seeds in
# fuzz/corpus/<target> are read, never written); crashes to build/fuzz/artifacts/;
# logs to build/fuzz/logs/<target>.log. The last line per target is libFuzzer's
# final status (execs, cov, ft). Exit status: non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(gguf tokenizer_bpe tokenizer_spm grammar schema)
B=build/fuzz

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S fuzz -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
nice cmake --build "$B" || exit 1
mkdir -p "$B/artifacts" "$B/logs"

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$B/work/$t"
  log="$B/logs/$t.log"
  opts=(-max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-"
        -timeout=30 -rss_limit_mb=4096)
  if [ "$t" = schema ]; then
    nice python fuzz/fuzz_schema.py "${opts[@]}" -dict=fuzz/schema.dict "$B/work/$t" "fuzz/corpus/$t" >"$log" 2>&1
  else
    nice "$B/fuzz_$t" "${opts[@]}" "$B/work/$t" "fuzz/corpus/$t" >"$log" 2>&1
  fi
  rc=$?
  [ $rc -ne 0 ] && status=1
  final=$(grep -E "^#[0-9]+\s+DONE" "$log" | tail -1)
  [ -z "$final" ] && final=$(grep -E "^#[0-9]+" "$log" | tail -1)
  echo "$t: rc=$rc ${SECONDS_PER_TARGET}s $final"
  grep -E "ERROR|SUMMARY|Traceback|AssertionError" "$log" | head -5
done
exit $status
