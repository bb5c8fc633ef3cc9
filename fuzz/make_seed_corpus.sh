#!/bin/sh
# Fills a seed corpus for fuzz_elf with small real ELF files of this system:
# an executable, a PIE, shared objects, a relocatable object and a static
# binary when there is one. The files are copied, never committed.
# Usage: fuzz/make_seed_corpus.sh DIR
set -eu
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for f in \
    /bin/true /bin/ls /usr/bin/env \
    /usr/lib/"$multiarch"/libz.so.1 /usr/lib/"$multiarch"/libdl.so.2 \
    /usr/lib/"$multiarch"/libpthread.so.0 /usr/lib/"$multiarch"/libutil.so.1 \
    /usr/lib/"$multiarch"/crt1.o /usr/lib/"$multiarch"/crti.o /usr/lib/"$multiarch"/crtn.o \
    /lib64/ld-linux-x86-64.so.2 /sbin/ldconfig; do
  # Skip what is missing, and anything over 256 KiB: libFuzzer mutates small inputs best.
  if [ -f "$f" ] && [ "$(wc -c < "$f")" -le 262144 ]; then
    cp "$f" "$dir/$(echo "$f" | tr / _)"
  fi
done
ls "$dir"
