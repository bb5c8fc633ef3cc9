// The kernel's random draws during an exec, thrown in user space with the
// same ranges: arch_mmap_rnd()/arch_rnd() with vm.mmap_rnd_bits
// (arch/x86/mm/mmap.c), randomize_stack_top() with STACK_RND_MASK
// (mm/util.c, asm/elf.h), arch_align_stack() below 8192
// (arch/x86/kernel/process.c), randomize_page() for brk, 16 AT_RANDOM bytes.
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "exec/system_facts.hpp"
#include "procforge/exec.hpp"

namespace procforge::exec {

Dice Dice::roll() {
  // One draw for everything: five words for the layout, then AT_RANDOM's bytes.
  Dice d;
  std::uint8_t draw[5 * 8 + sizeof d.random_bytes] = {};
  for (std::size_t got = 0; got < sizeof draw;) {
    ssize_t n = getrandom(draw + got, sizeof draw - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  std::uint64_t r[5];
  std::memcpy(r, draw, sizeof r);
  std::memcpy(d.random_bytes.data(), draw + sizeof r, d.random_bytes.size());
  static const int bits = static_cast<int>(read_number("/proc/sys/vm/mmap_rnd_bits", 28));
  const std::uint64_t mask = (1ull << bits) - 1;
  d.pie_rnd_pages = r[0] & mask;
  d.mmap_rnd_pages = r[1] & mask;
  d.stack_rnd_pages = r[2] & 0x3fffff;
  d.setup_align = static_cast<std::uint32_t>(r[3] % 8192);
  d.tables_align = static_cast<std::uint32_t>((r[3] >> 32) % 8192);
  d.brk_rnd_pages = r[4];
  return d;
}

}  // namespace procforge::exec
