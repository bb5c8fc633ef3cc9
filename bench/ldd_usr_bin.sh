#!/usr/bin/env bash
# `procforge ldd` against glibc's ldd on every ELF file under a directory
# (default /usr/bin), side by side on the same list:
#   procforge ldd FILE...          one invocation over every file (best of RUNS)
#   procforge ldd FILE             one process per file, as scripts call ldd; the
#                                  ld.so facts kept in XDG_CACHE_HOME (a fresh
#                                  directory, filled by one run before timing),
#                                  and again without a cache directory (every
#                                  process runs `ld.so --list-diagnostics`)
#   ldd FILE                       glibc's, once per file (it runs ld.so on the
#                                  file; DT_AUDIT modules of the file DO run, so
#                                  point this only at trusted files)
#   libtree FILE                   if installed, once per file
# Prints the time of each and its speed as a multiple of ldd's; the per-file
# rows alternate file by file between the tools so that a change in the
# machine's load hits them alike.
#   bench/ldd_usr_bin.sh [BUILD_DIR] [DIR] [RUNS]
# Absolute times depend on the machine and the page cache: compare the ratios.
set -euo pipefail
build=${1:-build}; dir=${2:-/usr/bin}; runs=${3:-3}
list=$(mktemp); cache=$(mktemp -d); trap 'rm -rf "$list" "$cache"' EXIT
find "$dir" -maxdepth 1 \( -type f -o -type l \) -print0 | sort -z |
  while IFS= read -r -d '' f; do
    [ -f "$f" ] && [ "$(head -c4 "$f" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] && printf '%s\n' "$f"
  done > "$list"
python3 - "$build/procforge" "$list" "$runs" "$cache" <<'PY'
import os, shutil, sys, time
exe, lst, runs, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = [l.rstrip("\n") for l in open(lst)]
devnull = os.open(os.devnull, os.O_RDWR)
clean = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

def spawn(cmd, env=clean):
    # posix_spawn (vfork-like): the harness's own cost per start stays small
    # next to the tools'.
    pid = os.posix_spawnp(cmd[0], cmd, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                                          (os.POSIX_SPAWN_DUP2, devnull, 1),
                                                          (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

cached = dict(clean, XDG_CACHE_HOME=cache)
spawn([exe, "ldd", files[0]], cached)  # fills the cache once
tools = [("procforge ldd FILE (per file, ld.so facts cached)", [exe, "ldd"], cached),
         ("procforge ldd FILE (per file, no cache: probes ld.so each time)", [exe, "ldd"], clean),
         ("ldd FILE (per file)", ["ldd"], clean)]
if shutil.which("libtree"):
    tools.append(("libtree FILE (per file)", ["libtree"], clean))
else:
    print("libtree: not installed; skipped")
spent = [0.0] * len(tools)
for f in files:
    for i, (_, argv, env) in enumerate(tools):
        t = time.perf_counter()
        spawn(argv + [f], env)
        spent[i] += time.perf_counter() - t
best = None
for _ in range(runs):
    t = time.perf_counter()
    code = spawn([exe, "ldd", "--"] + files, cached)
    dt = time.perf_counter() - t
    if code not in (0, 1):
        sys.exit(f"procforge ldd over every file failed with status {code}")
    best = dt if best is None else min(best, dt)
rows = [("procforge ldd FILE... (1 process, best of %d)" % runs, best)] + [(n, s) for (n, _, _), s in zip(tools, spent)]
ldd = spent[2]
print(f"files: {len(files)} ELF files under {os.path.dirname(files[0]) if files else '?'}")
for name, dt in rows:
    print(f"  {name:66s} {dt:8.3f} s  {len(files) / dt:9.0f} files/s  {ldd / dt:7.1f}x ldd's speed")
PY
