#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/fuzz for SECONDS each, from a seed
# corpus made on the spot (small system ELF files, #! lines). Fails on any
# crash, sanitizer report, timeout or out-of-memory.
#   fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
build=${1:?build dir}; seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/procforge-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/elf" "$work/shebang"
if [ -x "$here/make_seed_corpus.sh" ]; then bash "$here/make_seed_corpus.sh" "$work/elf"; fi
i=0
for line in '#!/bin/sh\n' '#! /usr/bin/env python3 -u\n' '#!/x\r\n' '#!\t/x\t-a  -b \t\n' '#!/x -x   ' '#!/x\0 -y\n' \
            '#!' '#!   \n' "#!/$(printf 'a%.0s' $(seq 1 260))"; do
  printf "$line" > "$work/shebang/seed$((i++))"
done
status=0
for target in "$build"/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus="$work/${name#fuzz_}"
  mkdir -p "$corpus"
  echo "fuzz: $name for ${seconds}s"
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "$corpus" 2>"$work/$name.log"; then
    echo "fuzz: $name FAILED" >&2
    tail -40 "$work/$name.log" >&2
    mkdir -p fuzz/findings && cp "$work"/crash-* "$work"/timeout-* "$work"/oom-* fuzz/findings/ 2>/dev/null || true
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$name.log" | sed "s/^/fuzz: $name /"
  fi
done
exit $status
