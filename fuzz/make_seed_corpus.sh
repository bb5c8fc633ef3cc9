#!/bin/sh
# Fills the seed corpora of the fuzz targets, one subdirectory of DIR per
# target (DIR/elf for fuzz_elf, ...). Everything is made or copied on the spot
# from this system, never committed:
#   elf      small real ELF files: an executable, a PIE, shared objects, a
#            relocatable object and a static binary when there is one;
#   shebang  #! lines, well formed and not;
#   ldcache  ld.so.cache files written by ldconfig in its three formats (new,
#            old, old+new "compat") over a fixture directory of shared objects,
#            one with a glibc-hwcaps variant;
#   predict  files to exec: the ELF and #! seeds;
#   warm_facts   a template's ready message, as the agent writes it, from this
#            process's own maps and fds;
#   warm_request (none: libFuzzer starts from nothing).
# Usage: fuzz/make_seed_corpus.sh DIR
set -eu
dir=${1:?usage: $0 DIR}
mkdir -p "$dir/elf" "$dir/shebang" "$dir/ldcache" "$dir/predict" "$dir/warm_facts"

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for f in \
    /bin/true /bin/ls /usr/bin/env \
    /usr/lib/"$multiarch"/libz.so.1 /usr/lib/"$multiarch"/libdl.so.2 \
    /usr/lib/"$multiarch"/libpthread.so.0 /usr/lib/"$multiarch"/libutil.so.1 \
    /usr/lib/"$multiarch"/crt1.o /usr/lib/"$multiarch"/crti.o /usr/lib/"$multiarch"/crtn.o \
    /lib64/ld-linux-x86-64.so.2 /sbin/ldconfig; do
  # Skip what is missing, and anything over 256 KiB: libFuzzer mutates small inputs best.
  if [ -f "$f" ] && [ "$(wc -c < "$f")" -le 262144 ]; then
    cp "$f" "$dir/elf/$(echo "$f" | tr / _)"
  fi
done

i=0
for line in '#!/bin/sh\n' '#! /usr/bin/env python3 -u\n' '#!/x\r\n' '#!\t/x\t-a  -b \t\n' '#!/x -x   ' '#!/x\0 -y\n' \
            '#!' '#!   \n' "#!/$(printf 'a%.0s' $(seq 1 260))"; do
  printf "$line" > "$dir/shebang/seed$i"
  i=$((i + 1))
done

cp "$dir/elf/"* "$dir/shebang/"* "$dir/predict/"

# ldconfig also adds the system's library directories: the caches hold those
# entries too, as a real /etc/ld.so.cache does. -X: no symlinks are made.
fixture=$(mktemp -d /tmp/procforge-ldcache.XXXXXX)
trap 'rm -rf "$fixture"' EXIT
mkdir -p "$fixture/lib/glibc-hwcaps/x86-64-v3"
printf 'int f(void) { return 1; }\n' > "$fixture/f.c"
gcc -shared -fPIC -Wl,-soname,libpfa.so.1 -o "$fixture/lib/libpfa.so.1.0" "$fixture/f.c"
gcc -shared -fPIC -Wl,-soname,libpfb.so.2 -o "$fixture/lib/libpfb.so.2" "$fixture/f.c"
gcc -shared -fPIC -Wl,-soname,libpfc.so -o "$fixture/lib/libpfc.so" "$fixture/f.c"
cp "$fixture/lib/libpfa.so.1.0" "$fixture/lib/glibc-hwcaps/x86-64-v3/"
echo "$fixture/lib" > "$fixture/ld.so.conf"
for format in new old compat; do
  ldconfig -C "$dir/ldcache/$format" -f "$fixture/ld.so.conf" -X --format="$format"
done
[ -f /etc/ld.so.cache ] && cp /etc/ld.so.cache "$dir/ldcache/system"
{
  printf 'pid %s\nthreads 1\nlooked_at_cwd 0\natfork 2\ncwd %s\nenv HOME\nenv TERM\nfd 3 /etc/passwd\n' $$ "$PWD"
  awk '$6 ~ /^\// { print "obj 2049 " $5 " 1700000000000000000 4096 " $6 }' /proc/self/maps | uniq
  echo "replaced /usr/lib/x86_64-linux-gnu/libgone.so.1"
} >"$dir/warm_facts/ready"
for c in elf shebang ldcache predict warm_facts; do echo "seeds: $c: $(ls "$dir/$c" | wc -l) files"; done
