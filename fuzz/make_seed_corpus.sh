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
#   server_request  spawn server messages as a client writes them (the
#            protocol's field layout, src/server/protocol.cpp), one byte of
#            descriptor count first;
#   warm_request (none: libFuzzer starts from nothing).
# Usage: fuzz/make_seed_corpus.sh DIR
set -eu
dir=${1:?usage: $0 DIR}
mkdir -p "$dir/elf" "$dir/shebang" "$dir/ldcache" "$dir/predict" "$dir/warm_facts" "$dir/server_request"

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
python3 - "$dir/server_request" <<'PY'
import struct, sys
out = sys.argv[1]
def field(tag, value): return struct.pack('<HI', tag, len(value)) + value
def msg(kind, fields, ident=1): return struct.pack('<IHHQ', 0x31736670, 1, kind, ident) + b''.join(fields)
text = lambda t, s: field(t, s.encode())
seeds = {
    'hello': (0, msg(1, [field(1, struct.pack('<H', 1)), field(2, struct.pack('<H', 1))], 0)),
    'spawn': (2, msg(3, [text(10, '/bin/sh'), text(12, 'sh'), text(12, '-c'), text(12, 'exit 3'), text(13, 'PATH=/bin'),
                         text(14, '/tmp'), field(15, struct.pack('<ii', 0, 0)), field(15, struct.pack('<ii', 1, 1)),
                         field(15, struct.pack('<ii', 2, -1)), field(16, struct.pack('<I', 0o22)),
                         field(17, struct.pack('<i', 5)), field(18, struct.pack('<QQQ', 7, 64, 64)),
                         field(19, struct.pack('<Q', 1)), field(21, struct.pack('<i', 13)), field(22, b''),
                         field(25, struct.pack('<I', 1000)), field(26, struct.pack('<I', 1000)),
                         field(27, struct.pack('<II', 1000, 27)), field(28, b''), field(29, b'')])),
    'kill': (0, msg(7, [field(48, struct.pack('<i', 15))])),
}
for name, (nfds, data) in seeds.items():
    open(f'{out}/{name}', 'wb').write(bytes([nfds]) + data)
PY
for c in elf shebang ldcache predict warm_facts server_request; do echo "seeds: $c: $(ls "$dir/$c" | wc -l) files"; done
