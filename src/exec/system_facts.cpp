// Facts about the running kernel that select between versions of a rule, read
// once. Where a rule changed between versions the model follows the running
// kernel and names the rule it applied (Prediction::rules_applied).
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/maps.hpp"
#include "common/unique_fd.hpp"
#include "exec/system_facts.hpp"
#include "procforge/exec.hpp"

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

namespace procforge::exec {

namespace {

bool at_least(const SystemFacts& f, int major, int minor) {
  return f.major > major || (f.major == major && f.minor >= minor);
}

void apply_version_rules(SystemFacts& f) {
  // load_elf_phdrs(): 6.12 and older reject a table over ELF_MIN_ALIGN (4096
  // bytes, 73 entries); 6.18 accepts up to 65536 bytes. The change lies
  // between 6.12 and 6.18; we assume 6.13.
  f.phdr_table_max = at_least(f, 6, 13) ? 65536 : 4096;
  f.rseq_auxv = at_least(f, 6, 3);         // AT_RSEQ_FEATURE_SIZE/ALIGN, create_elf_tables()
  f.argc_zero_fixup = at_least(f, 5, 18);  // dcd46d897adb, do_execveat_common()
}

// Sizes of our own [vvar*] and [vdso] mappings: a new image gets the same.
void read_vdso_layout(SystemFacts& f) {
  for_each_mapping("/proc/self/maps", [&](const MapsLine& m) {
    if (m.path.starts_with("[vvar")) f.vvar_size += m.end - m.start;
    if (m.path == "[vdso]") f.vdso_size = m.end - m.start;
    return true;
  });
}

}  // namespace

long read_number(const char* path, long fallback) {
  const UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return fallback;
  char buf[64] = {};
  const ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  return n > 0 ? strtol(buf, nullptr, 10) : fallback;
}

SystemFacts SystemFacts::probe() {
  SystemFacts f;
  struct utsname u {};
  if (uname(&u) == 0) {
    f.release = u.release;
    sscanf(u.release, "%d.%d.%d", &f.major, &f.minor, &f.patch);
  }
  apply_version_rules(f);
  f.randomize_va_space = static_cast<int>(read_number("/proc/sys/kernel/randomize_va_space", 2));
  f.mmap_min_addr = static_cast<std::uint64_t>(read_number("/proc/sys/vm/mmap_min_addr", 4096));
  // The kernel's auxv as we received it; glibc's getauxval(AT_HWCAP) on x86
  // returns its own HWCAP_X86_* bits instead of CPUID(1).EDX.
  f.vdso = false;
  if (const UniqueFd fd(open("/proc/self/auxv", O_RDONLY | O_CLOEXEC)); fd) {
    std::uint64_t pair[2];
    while (read(fd.get(), pair, sizeof pair) == static_cast<ssize_t>(sizeof pair) && pair[0] != AT_NULL) {
      if (pair[0] == AT_HWCAP) f.hwcap = pair[1];
      if (pair[0] == AT_HWCAP2) f.hwcap2 = pair[1];
      if (pair[0] == AT_MINSIGSTKSZ) f.minsigstksz = pair[1];
      if (pair[0] == AT_SYSINFO_EHDR) f.vdso = true;
    }
  }
  read_vdso_layout(f);
  // CONFIG_IA32_EMULATION can be switched off at boot (ia32_emulation=).
  {
    const UniqueFd fd(open("/proc/cmdline", O_RDONLY | O_CLOEXEC));
    char cmd[4096] = {};
    if (fd && read(fd.get(), cmd, sizeof cmd - 1) < 0) cmd[0] = 0;
    f.ia32_emulation =
        !strstr(cmd, "ia32_emulation=0") && !strstr(cmd, "ia32_emulation=false") && !strstr(cmd, "ia32_emulation=off");
  }
  f.binfmt_misc_mounted = access((f.binfmt_misc_dir + "/register").c_str(), F_OK) == 0;
  return f;
}

SystemFacts SystemFacts::for_version(int major, int minor, int patch) {
  SystemFacts f = probe();
  f.major = major;
  f.minor = minor;
  f.patch = patch;
  f.release = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  apply_version_rules(f);
  return f;
}

}  // namespace procforge::exec
