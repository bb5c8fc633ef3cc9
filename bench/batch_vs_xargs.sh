#!/usr/bin/env bash
# procforge batch next to xargs -P and GNU parallel on many short commands:
# the same generated list (a mix of /bin/true, `cmake --version` and `ls /`)
# through `xargs -P N -L1 env` (xargs runs a fixed program with each line as
# its arguments: env(1) then executes the line's own program, one small exec
# more per command and no shell), `parallel -j N`, `procforge batch -j N` and
# `procforge batch -j N --warm`, one after another in one run. Every tool's
# output must be the same lines (compared sorted: xargs writes outputs as
# they come), and its wall time is shown with its ratio to xargs'.
#
# `xargs -P N -L1 env` pays one exec of env(1) per line besides the line's
# own. The fairer baseline, "xargs per program", runs the same list split by
# program, each part through `xargs -P N -L1 PROGRAM` with no wrapper, the
# three parts one after another (its output is the three parts concatenated).
#
#   bench/batch_vs_xargs.sh [BUILD_DIR] [COUNT] [JOBS]
#     BUILD_DIR  procforge build tree (default: build)
#     COUNT      commands in the list (default 10000)
#     JOBS       commands at once for every tool (default: nproc)
set -euo pipefail

build=${1:-build}
count=${2:-10000}
jobs=${3:-$(nproc)}
procforge=$build/procforge
[ -x "$procforge" ] || { echo "batch_vs_xargs: $procforge not found; build procforge first" >&2; exit 2; }
for tool in xargs parallel cmake; do
  command -v "$tool" >/dev/null || { echo "batch_vs_xargs: $tool is missing (scripts/bootstrap installs it)" >&2; exit 2; }
done

out=$(mktemp -d /tmp/procforge-batch-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

cmake=$(command -v cmake)
for ((i = 0; i < count; i++)); do
  case $((i % 3)) in
    0) echo /bin/true ;;
    1) echo "$cmake --version" ;;
    2) echo "/bin/ls /" ;;
  esac
done >"$out/commands"

# run NAME COMMAND...: runs with the list on stdin, stdout to $out/NAME, and
# records the wall time in seconds.
declare -A wall status
run() {
  local name=$1
  shift
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" <"$out/commands" >"$out/$name" 2>"$out/$name.err" || rc=$?
  t1=$(date +%s.%N)
  wall[$name]=$(echo "$t1 - $t0" | bc -l)
  status[$name]=$rc
}

# The list split by program: xargs without a wrapper, one part at a time.
xargs_per_program() {
  grep -x /bin/true "$out/commands" | xargs -P "$jobs" -L1 /bin/true
  grep -x "$cmake --version" "$out/commands" | sed "s|^$cmake ||" | xargs -P "$jobs" -L1 "$cmake"
  grep -x "/bin/ls /" "$out/commands" | sed "s|^/bin/ls ||" | xargs -P "$jobs" -L1 /bin/ls
}

tools=("xargs -P" "xargs per program" "parallel" "procforge batch" "procforge batch --warm")
echo "batch_vs_xargs: $count commands, $jobs at once" >&2
run "xargs -P" xargs -P "$jobs" -L1 env
run "xargs per program" xargs_per_program
run "parallel" parallel --will-cite -j "$jobs"
run "procforge batch" "$procforge" batch -j "$jobs"
run "procforge batch --warm" "$procforge" batch -j "$jobs" --warm

sort "$out/xargs -P" >"$out/reference"
fail=0
for t in "${tools[@]}"; do
  if [ "${status[$t]}" != 0 ]; then
    echo "batch_vs_xargs: $t exited ${status[$t]}:" >&2
    head -5 "$out/$t.err" >&2
    fail=1
  fi
  if ! sort "$out/$t" | cmp -s - "$out/reference"; then
    echo "batch_vs_xargs: the output of $t differs from xargs' (sorted)" >&2
    fail=1
  fi
done

printf '%-26s %10s %14s %22s\n' tool "wall (s)" "xargs / tool" "xargs per prog / tool"
for t in "${tools[@]}"; do
  printf '%-26s %10.3f %13.2fx %21.2fx\n' "$t" "${wall[$t]}" "$(echo "${wall["xargs -P"]} / ${wall[$t]}" | bc -l)" \
    "$(echo "${wall["xargs per program"]} / ${wall[$t]}" | bc -l)"
done
echo "outputs: $(wc -l <"$out/reference") lines, $( [ "$fail" = 0 ] && echo identical || echo DIFFERENT) across the tools (sorted)"
exit "$fail"
