#!/usr/bin/env bash
# Library resolution of every ELF file under a directory (default /usr/bin):
# one `procforge explain --batch -` invocation (best of RUNS; exec model plus
# ldso::resolve() for every file that starts through ld.so, search and
# version check, sharing the ld.so facts, the parsed ld.so.cache and every
# library's facts), `procforge explain --json FILE` once per file (adds
# relocation counts, so it reads every object whole), and the per-file
# tools people use for the same question, run once each:
#   ldd FILE       (glibc's: runs ld.so in trace mode on the file; DT_AUDIT
#                   modules of the file DO run, so only point this at trusted
#                   files such as the system's own /usr/bin)
#   lddtree FILE   (pax-utils; reads files, its own search model)
#   libtree FILE   (libtree; reads files, its own search model)
# Prints files/s, ratios against ldd, and peak RSS (ru_maxrss; the largest
# single process for the per-file tools).
#   bench/ldso_usr_bin.sh [BUILD_DIR] [DIR] [RUNS]
# Absolute times depend on the machine and page cache: compare the ratios.
set -euo pipefail
build=${1:-build}; dir=${2:-/usr/bin}; runs=${3:-3}
list=$(mktemp); trap 'rm -f "$list"' EXIT
# Regular ELF files only (symlinks resolved to their target's type).
find "$dir" -maxdepth 1 \( -type f -o -type l \) -print0 | sort -z |
  while IFS= read -r -d '' f; do
    [ -f "$f" ] && [ "$(head -c4 "$f" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] && printf '%s\n' "$f"
  done > "$list"
python3 - "$build/procforge" "$list" "$runs" <<'PY'
import os, shutil, sys, time
exe, lst, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [l.rstrip("\n") for l in open(lst)]
n = len(files)
devnull = os.open(os.devnull, os.O_RDWR)

def spawn(cmd, stdin_path=None):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(stdin_path, os.O_RDONLY) if stdin_path else devnull, 0)
        os.dup2(devnull, 1); os.dup2(devnull, 2)
        try:
            # A clean environment: the system's python3 for lddtree (not a
            # pyenv shim), and no LD_* variables changing any tool's answer.
            os.execvpe(cmd[0], cmd, {"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), ru.ru_maxrss

def one_invocation(cmd, stdin_path):
    best, rss = None, 0
    for _ in range(runs):
        t = time.perf_counter()
        code, r = spawn(cmd, stdin_path)
        dt = time.perf_counter() - t
        if code not in (0, 1):
            sys.exit(f"{' '.join(cmd)} failed with status {code}")
        best = dt if best is None else min(best, dt)
        rss = max(rss, r)
    return best, rss

def per_file(tool_argv):
    t = time.perf_counter(); rss = 0; failed = 0
    for f in files:
        code, r = spawn(tool_argv + [f])
        failed += code != 0
        rss = max(rss, r)
    return time.perf_counter() - t, rss, failed

print(f"files: {n} ELF files under {os.path.dirname(files[0]) if files else '?'}")
rows = []
pf, pf_rss = one_invocation([exe, "explain", "--batch", "-"], lst)
rows.append(("procforge explain --batch (1 process)", pf, pf_rss, 0))
for name, argv in (("procforge explain --json (per file)", [exe, "explain", "--json"]), ("ldd (per file)", ["ldd"]), ("lddtree (per file)", ["lddtree"]),
                   ("libtree (per file)", ["libtree"])):
    if shutil.which(argv[0]) is None:
        print(f"{name}: not installed (scripts/bootstrap installs it); skipped")
        continue
    dt, rss, failed = per_file(argv)
    rows.append((name, dt, rss, failed))
ldd = next((r for r in rows if r[0].startswith("ldd")), None)
for name, dt, rss, failed in rows:
    ratio = f"{ldd[1] / dt:7.1f}x ldd's speed" if ldd else ""
    fail = f"  ({failed} exited non-zero)" if failed else ""
    print(f"{name:40s} {n / dt:9.0f} files/s  ({dt * 1000:8.0f} ms)  peak RSS {rss / 1024:6.1f} MiB  {ratio}{fail}")
PY
