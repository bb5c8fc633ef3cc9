// The vDSO a user-space exec keeps, against the kernel's execve().
//
// The kernel maps the new image first and the vDSO after it
// (fs/binfmt_elf.c load_elf_binary(): the PT_LOAD loop, then
// ARCH_SETUP_ADDITIONAL_PAGES), so the image may take any place below the
// mmap base. The user-space loader cannot unmap its vDSO (the new image
// gets no other), and it lays the image out against the mmap base of the
// process that starts it, right above which that process's own vDSO lies.
// A static PIE with p_align above the page size is placed top-down and its
// address then rounded down to the alignment (the "alignment >
// ELF_MIN_ALIGN" branch for ET_DYN without PT_INTERP), which can land on
// those vDSO pages: the case is built here on purpose, where the generated
// corpus (F_pie_align_2m) meets it only when this process's random layout
// happens to put the vDSO there.
#include <gtest/gtest.h>
#include <sys/auxv.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "support/elf_builder.hpp"
#include "support/oracle.hpp"
#include "support/temp_dir_test.hpp"
#include "support/user_exec.hpp"

namespace procforge::testsupport {
namespace {

struct OwnLayout {
  std::uint64_t vdso_lo = 0, vdso_hi = 0;  // [vvar] .. the end of [vdso]
  std::uint64_t mmap_top = 0;              // the end of the dynamic linker's mappings
};

// Where this process's vDSO lies, and the top of its mmap area: the kernel
// mapped our dynamic linker first there (top-down from the mmap base), then
// the vDSO right below it.
std::optional<OwnLayout> own_layout() {
  OwnLayout l;
  std::ifstream maps("/proc/self/maps");
  std::string line, ldso_file;
  const std::uint64_t at_base = getauxval(AT_BASE);
  while (std::getline(maps, line)) {
    unsigned long long lo = 0, hi = 0, ino = 0;
    char dev[32] = {}, name[256] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %*s %*s %31s %llu %255s", &lo, &hi, dev, &ino, name) < 4) continue;
    const std::string n = name, file = std::string(dev) + ":" + std::to_string(ino);
    if (n == "[vvar]" || n == "[vvar_vclock]" || n == "[vdso]") {
      l.vdso_lo = l.vdso_lo ? std::min<std::uint64_t>(l.vdso_lo, lo) : lo;
      l.vdso_hi = std::max<std::uint64_t>(l.vdso_hi, hi);
    }
    if (at_base && lo == at_base) ldso_file = file;
    if (!ldso_file.empty() && file == ldso_file) l.mmap_top = std::max<std::uint64_t>(l.mmap_top, hi);
  }
  if (!l.vdso_hi || l.mmap_top <= l.vdso_hi) return std::nullopt;
  return l;
}

class UserExecVdso : public procforge::testing::TempDirTest {};

TEST_F(UserExecVdso, AStaticPieAlignedOntoTheKeptVdsoRunsAsUnderTheKernel) {
  const auto own = own_layout();
  ASSERT_TRUE(own) << "no [vdso] below the dynamic linker in /proc/self/maps";
  // An image exactly as large as the room between the vDSO and the mmap
  // top is placed right on the vDSO's end; an alignment twice the end's
  // lowest set bit rounds it down by that bit, into the vDSO when the image
  // still reaches it.
  const std::uint64_t size = own->mmap_top - own->vdso_hi;
  const std::uint64_t low_bit = own->vdso_hi & (~own->vdso_hi + 1);
  if (own->vdso_hi - low_bit + size <= own->vdso_lo)
    GTEST_SKIP() << "this process's vDSO ends on a " << low_bit / 1024
                 << " KiB boundary: no image placed above it is rounded down onto it (ASLR chose this layout)";
  ElfSpec s = minimal_pie(51);
  s.phdrs[0].align = 2 * low_bit;
  s.phdrs[0].filesz = kMinimalSize;
  s.phdrs[0].memsz = size;
  const std::string path = dir + "/pie";
  ASSERT_TRUE(write_file(path, build(s), 0755)) << path;

  OracleRequest req;
  req.path = path;
  req.argv = {path};
  req.envp = {"PATH=/usr/bin:/bin"};
  req.cwd = dir;
  req.trace = false;
  const OracleResult k = run_exec(req);
  UserExecDetail detail;
  const OracleResult u = run_user_exec(req, &detail);
  ASSERT_TRUE(k.setup_error.empty()) << k.setup_error;
  ASSERT_TRUE(u.setup_error.empty()) << u.setup_error;
  std::string differences;
  for (const auto& d : detail.differences) differences += "\n  " + d;
  EXPECT_EQ(describe(k), describe(u)) << std::hex << "image of 0x" << size << " bytes aligned to 0x" << 2 * low_bit
                                      << ", vDSO at 0x" << own->vdso_lo << "-0x" << own->vdso_hi
                                      << "; the loader's differences:" << differences
                                      << (detail.prepared ? "" : "\nprepare: " + detail.prepare_error);
}

}  // namespace
}  // namespace procforge::testsupport
