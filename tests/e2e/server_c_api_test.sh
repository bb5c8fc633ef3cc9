#!/usr/bin/env bash
# The C API (procforge_client.h) from Python's ctypes: examples/server_client.py
# against a server of this build, each answer as procforge run gives it.
#   tests/e2e/server_c_api_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=${1:?source dir}; build=${2:?build dir}
dir=$(mktemp -d /tmp/procforge-capi.XXXXXX)
"$build/procforge" serve --socket "$dir/s.sock" 2>"$dir/serve.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
out=$(python3 "$src/examples/server_client.py" "$dir/s.sock" "$build/libprocforge.so")
echo "$out"
# The statuses a local run gives for the same commands.
set +e
"$build/procforge" run -- sh -c 'exit 3'; three=$?
"$build/procforge" run -- /nonexistent/program 2>/dev/null; missing=$?
set -e
expected="exit 3 -> $three
/nonexistent/program: execve /nonexistent/program: ENOENT (status $missing)
missing -> $missing
hello from a warm instance
warm echo -> 0"
if [ "$out" != "$expected" ]; then
  echo "server_c_api_test: expected:"; echo "$expected"
  exit 1
fi
echo "server_c_api_test: the C API from Python gave what procforge run gives"
