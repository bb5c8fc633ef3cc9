#!/usr/bin/env bash
# install_test.sh SOURCE_DIR BUILD_DIR: procforge as a user installs it.
#   1. cmake --install into a temporary prefix: every file where
#      cmake/install.cmake says, the shared library exporting the public API
#      only, the helpers found from the installed binary;
#   2. examples/ built against that prefix with find_package and with
#      pkg-config, and run;
#   3. every manual page through man -l (warnings fail), the completions
#      through bash -n and zsh -n;
#   4. as root: the .deb from cpack installed, used and purged with dpkg.
set -euo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
work=$(mktemp -d /tmp/procforge-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cmake --install --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in bin/procforge bin/procforge-spawn lib/libprocforge.a include/procforge/spawn.hpp include/procforge/exec.hpp \
  lib/cmake/procforge/procforgeConfig.cmake lib/cmake/procforge/procforgeConfigVersion.cmake \
  lib/pkgconfig/procforge.pc lib/procforge/procforge_audit.so lib/procforge/procforge_warm.so lib/procforge/procforge-exit0 \
  share/man/man1/procforge.1 share/man/man1/procforge-explain.1 share/man/man1/procforge-spawn.1 \
  share/bash-completion/completions/procforge share/zsh/vendor-completions/_procforge; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
so=$(readlink -f "$prefix/lib/libprocforge.so")
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libprocforge.so.0 ] || fail "SONAME is '$soname', want libprocforge.so.0"
[ -e "$prefix/lib/$soname" ] || fail "lib/$soname (the SONAME link) missing"
echo "SONAME $soname"

step "the shared library exports the public API and nothing else"
nm -DC --defined-only "$so" | awk '{ $1 = $2 = ""; print substr($0, 3) }' >"$work/exports"
grep -q '^procforge::exec::predict(' "$work/exports" || fail "procforge::exec::predict is not exported"
grep -q '^procforge::spawn::spawn(' "$work/exports" || fail "procforge::spawn::spawn is not exported"
# Every exported procforge symbol is declared in an installed header: its
# unqualified name appears there.
bad=0
while read -r sym; do
  name=${sym%%(*}
  name=${name%%\[*}
  name=${name##*::}
  case $name in operator* | ~* | "typeinfo"* | "vtable"*) continue ;; esac
  grep -rqw -- "$name" "$prefix/include/procforge" || { echo "exported but not public: $sym"; bad=1; }
done < <(grep '^procforge::' "$work/exports" | grep -v '^procforge::.*::\(~\|operator\)')
[ "$bad" = 0 ] || fail "internal symbols are exported"
echo "$(grep -c '^procforge::' "$work/exports") procforge symbols exported, all declared in include/procforge/"

step "installed binary and its helpers"
"$prefix/bin/procforge" --version
"$prefix/bin/procforge-spawn" --version
"$prefix/bin/procforge" profile -- /bin/true >"$work/profile.out" 2>&1 || { cat "$work/profile.out"; fail "profile"; }
if grep -q "was not found" "$work/profile.out"; then cat "$work/profile.out"; fail "the installed profile did not find its LD_AUDIT module"; fi
"$prefix/bin/procforge" bench spawn --runs 20 --quick >"$work/bench.out" 2>&1 || true
if grep -q "procforge-exit0 was not found" "$work/bench.out"; then cat "$work/bench.out"; fail "bench did not find its static target"; fi

step "examples/ with find_package"
cmake -S "$src/examples" -B "$work/example-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/example-cmake" >/dev/null
"$work/example-cmake/embed" /usr/bin/true | tee "$work/example.out"
grep -qx 'execve /usr/bin/true: starts' "$work/example.out" || fail "the example's explain"
grep -qx 'exit status 0' "$work/example.out" || fail "the example's spawn"

step "examples/ with pkg-config"
cp "$src/examples/embed.cpp" "$src/examples/Makefile" "$work/"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C "$work" embed
rc=0
LD_LIBRARY_PATH=$prefix/lib "$work/embed" /nonexistent >"$work/example2.out" 2>&1 || rc=$?
cat "$work/example2.out"
[ "$rc" = 1 ] || fail "the pkg-config example exited $rc on a missing program, want 1"
grep -q '^execve /nonexistent: ' "$work/example2.out" || fail "the pkg-config example's explain"
grep -qx 'spawn: execve /nonexistent: ENOENT' "$work/example2.out" || fail "the pkg-config example's spawn of a missing file"

step "manual pages and completions"
pages=("$prefix"/share/man/man1/*.1)
for page in "${pages[@]}"; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man -l $page: $warnings"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME' || fail "man -l $page shows no NAME"
done
echo "${#pages[@]} pages read with man -l, no warnings"
bash -n "$prefix/share/bash-completion/completions/procforge"
zsh -n "$prefix/share/zsh/vendor-completions/_procforge"
# The bash completion offers the subcommands and a subcommand's options.
out=$(bash -c "source '$prefix/share/bash-completion/completions/procforge'; COMP_WORDS=(procforge ex); COMP_CWORD=1; _procforge; echo \${COMPREPLY[*]}")
[ "$out" = "explain exec" ] || fail "bash completion of 'procforge ex' gave '$out'"
out=$(bash -c "source '$prefix/share/bash-completion/completions/procforge'; COMP_WORDS=(procforge run --time); COMP_CWORD=2; _procforge; echo \${COMPREPLY[*]}")
[ "$out" = "--timeout" ] || fail "bash completion of 'procforge run --time' gave '$out'"
echo "completions: bash -n, zsh -n, bash offers subcommands and options"

step ".deb from cpack, installed and removed with dpkg"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: installing a .deb with dpkg needs root"
  [ -n "${PROCFORGE_SKIP_LOG:-}" ] && printf 'install_test\tInstall\tdeb\tinstalling a .deb with dpkg needs root\n' >>"$PROCFORGE_SKIP_LOG"
  exit 77
fi
installed() { [ "$(dpkg-query -W -f='${Status}' procforge 2>/dev/null)" = "install ok installed" ]; }
if installed || [ -e /usr/bin/procforge ]; then
  fail "a procforge is already installed on this machine: not replacing it"
fi
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log") ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/deb/procforge_*.deb)
echo "built $(basename "$deb")"
dpkg -i "$deb" >/dev/null
removed=0
trap '[ "$removed" = 1 ] || dpkg -P procforge >/dev/null 2>&1; rm -rf "$work"' EXIT
/usr/bin/procforge --version
/usr/bin/procforge-spawn --version
man -w procforge >/dev/null || fail "man -w procforge after dpkg -i"
man -w procforge-explain >/dev/null || fail "man -w procforge-explain after dpkg -i"
/usr/bin/procforge profile -- /bin/true 2>&1 | grep -q "was not found" && fail "the packaged profile did not find its LD_AUDIT module"
dpkg -P procforge >/dev/null
removed=1
[ ! -e /usr/bin/procforge ] || fail "/usr/bin/procforge left after dpkg -P"
[ ! -e /usr/lib/procforge ] || fail "/usr/lib/procforge left after dpkg -P"
! dpkg-query -W procforge >/dev/null 2>&1 || fail "dpkg still lists procforge after dpkg -P"
echo "dpkg -i, procforge --version, man, dpkg -P (purge): ok"
echo "== install test passed"
