#!/usr/bin/env bash
# Spawn+wait latency of procforge next to what other runtimes pay for the same
# targets: Python's subprocess (run, and Popen+wait) and Rust's
# std::process::Command (status, and spawn+wait; std only, built offline).
# All are shown as ratios against glibc posix_spawn measured in the same run.
#
#   bench/spawn_peers.sh [BUILD_DIR] [RUNS] [ROUNDS]
#     BUILD_DIR  procforge build tree (default: build); holds procforge and bench/procforge-exit0
#     RUNS       timed spawns per tool, target and round (default 101)
#     ROUNDS     the tools run one after another ROUNDS times (default 3), so
#                that drift over the run hits all of them; a row's median is the
#                median of its per-round medians, min/max over all rounds.
# Parent size is each tool's own (small): `procforge bench spawn` covers big parents.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
runs=${2:-101}
rounds=${3:-3}
procforge=$build/procforge
[ -x "$procforge" ] || { echo "spawn_peers: $procforge not found; build procforge first" >&2; exit 2; }
command -v python3 >/dev/null || { echo "spawn_peers: python3 is missing (scripts/bootstrap installs it)" >&2; exit 2; }

out=$(mktemp -d /tmp/procforge-peers.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Targets exactly as procforge resolves them.
"$procforge" bench spawn --json --runs 1 --rss 0 >"$out/probe.json"
read -r static dynamic < <(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["targets"]; print(t["static"], t["dynamic"])' "$out/probe.json")

# Rust peer: std only, no network.
rust=""
if command -v cargo >/dev/null; then
  if cargo build --offline --release --quiet --manifest-path "$here/peers/rust_spawn/Cargo.toml" \
       --target-dir "$build/rust_spawn" 2>"$out/cargo.log"; then
    rust=$build/rust_spawn/release/rust_spawn
  else
    echo "spawn_peers: cargo could not build bench/peers/rust_spawn offline; Rust skipped:" >&2
    sed 's/^/  /' "$out/cargo.log" >&2
  fi
else
  echo "spawn_peers: cargo not found; Rust skipped (Debian: apt-get install cargo, or run scripts/bootstrap)" >&2
fi

python_peer='
import json, subprocess, sys, time
runs = int(sys.argv[1])
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    res = {"python subprocess.run": [], "python Popen+wait": []}
    for i in range(runs + 1):  # interleaved; the first round is a warm-up
        t0 = time.perf_counter_ns()
        subprocess.run([path], check=True)
        t1 = time.perf_counter_ns()
        p = subprocess.Popen([path])
        if p.wait() != 0:
            raise SystemExit(path + " failed")
        t2 = time.perf_counter_ns()
        if i:
            res["python subprocess.run"].append((t1 - t0) / 1e3)
            res["python Popen+wait"].append((t2 - t1) / 1e3)
    for peer, us in res.items():
        us.sort()
        n = len(us)
        med = us[n // 2] if n % 2 else (us[n // 2 - 1] + us[n // 2]) / 2
        print(json.dumps({"peer": peer, "target": name, "median_us": med, "min_us": us[0], "max_us": us[-1], "runs": n}))
'

for ((r = 1; r <= rounds; r++)); do
  echo "spawn_peers: round $r/$rounds" >&2
  "$procforge" bench spawn --json --runs "$runs" --rss 0 >"$out/procforge.$r.json"
  python3 -c "$python_peer" "$runs" "static=$static" "dynamic=$dynamic" >"$out/python.$r.jsonl"
  if [ -n "$rust" ]; then "$rust" "$runs" "static=$static" "dynamic=$dynamic" >"$out/rust.$r.jsonl"; fi
done

python3 - "$out" "$rounds" "$(python3 --version 2>&1)" "$( [ -n "$rust" ] && rustc --version || echo 'Rust: skipped')" <<'PY'
import glob, json, os, statistics, sys
out, rounds, pyver, rustver = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = {}  # (target, tool) -> list of per-round samples
for r in range(1, rounds + 1):
    for s in json.load(open(f"{out}/procforge.{r}.json"))["results"]:
        rows.setdefault((s["target"], s["strategy"]), []).append(s)
    for f in (f"{out}/python.{r}.jsonl", f"{out}/rust.{r}.jsonl"):
        if os.path.exists(f):
            for line in open(f):
                s = json.loads(line)
                rows.setdefault((s["target"], s["peer"]), []).append(s)
def merged(samples):
    return (statistics.median(s["median_us"] for s in samples), min(s["min_us"] for s in samples),
            max(s["max_us"] for s in samples), sum(s["runs"] for s in samples))
print(f"spawn+wait latency in microseconds, parent of ordinary size; {pyver}; {rustver}")
print(f"median of {rounds} per-round medians; ratio = median / posix_spawn median (same target)\n")
print(f"{'target':<9}{'tool':<28}{'median':>10}{'min':>10}{'max':>11}{'runs':>6}{'vs posix_spawn':>16}")
for target in ("static", "dynamic"):
    base = merged(rows[(target, "posix_spawn")])[0]
    for (t, tool), samples in rows.items():
        if t != target:
            continue
        med, lo, hi, n = merged(samples)
        print(f"{target:<9}{tool:<28}{med:>10.1f}{lo:>10.1f}{hi:>11.1f}{n:>6}{med / base:>15.2f}x")
PY
