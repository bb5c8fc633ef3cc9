#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/fuzz for SECONDS each, from seed
# corpora made on the spot (fuzz/make_seed_corpus.sh). Fails on any crash,
# invariant violation, sanitizer report, timeout or out-of-memory, and when a
# fuzz_*.cpp has no built target: a target that did not run found nothing.
#   fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
build=${1:?build dir}; seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/procforge-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$here/make_seed_corpus.sh" "$work"
status=0
for src in "$here"/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  target="$build/fuzz/$name"
  if [ ! -x "$target" ]; then
    echo "fuzz: $name FAILED: $target was not built" >&2
    status=1
    continue
  fi
  corpus="$work/${name#fuzz_}"
  mkdir -p "$corpus"
  echo "fuzz: $name for ${seconds}s"
  # stdin is /dev/null: an input may name /dev/stdin as an interpreter.
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "$corpus" </dev/null 2>"$work/$name.log"; then
    echo "fuzz: $name FAILED" >&2
    grep -m1 -A3 "INVARIANT VIOLATED" "$work/$name.log" >&2 || true
    tail -40 "$work/$name.log" >&2
    mkdir -p fuzz/findings && cp "$work"/crash-* "$work"/timeout-* "$work"/oom-* fuzz/findings/ 2>/dev/null || true
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$name.log" | sed "s/^/fuzz: $name /"
  fi
done
exit $status
