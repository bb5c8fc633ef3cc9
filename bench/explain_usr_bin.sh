#!/usr/bin/env bash
# `procforge explain --batch` over every file in a directory (default
# /usr/bin) in one invocation, side by side with file(1) over the same list
# (the usual tool for "what is this file"), best of N runs each.
# Prints files/s, peak RSS and the ratio.
#   bench/explain_usr_bin.sh [BUILD_DIR] [DIR] [RUNS]
set -euo pipefail
build=${1:-build}; dir=${2:-/usr/bin}; runs=${3:-5}
list=$(mktemp); trap 'rm -f "$list"' EXIT
find "$dir" -maxdepth 1 \( -type f -o -type l \) | sort > "$list"
python3 - "$build/procforge" "$list" "$runs" <<'PY'
import os, resource, subprocess, sys, time
exe, lst, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = sum(1 for _ in open(lst))
def measure(cmd, stdin_path=None):
    best, rss = None, 0
    for _ in range(runs):
        with open(stdin_path or os.devnull) as stdin:
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os.dup2(stdin.fileno(), 0)
                fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
                os.execvp(cmd[0], cmd)
            _, status, ru = os.wait4(pid, 0)
            dt = time.perf_counter() - t
        if status != 0 and os.waitstatus_to_exitcode(status) not in (0, 1):
            sys.exit(f"{cmd[0]} failed: {status}")
        best = dt if best is None else min(best, dt)
        rss = max(rss, ru.ru_maxrss)
    return best, rss
pf, pf_rss = measure([exe, "explain", "--batch", "-"], lst)
fi, fi_rss = measure(["file", "-b", "-f", lst])
print(f"files: {n}")
print(f"procforge explain --batch: {n/pf:9.0f} files/s  ({pf*1000:.0f} ms)  peak RSS {pf_rss/1024:.1f} MiB")
print(f"file -f (baseline):        {n/fi:9.0f} files/s  ({fi*1000:.0f} ms)  peak RSS {fi_rss/1024:.1f} MiB")
print(f"ratio: procforge is {fi/pf:.1f}x the speed of file(1)")
PY
