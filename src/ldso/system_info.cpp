// The facts ld.so's search depends on that are fixed when glibc is built or
// chosen at start-up from the CPU: system directories (trusted-dirs.h),
// $LIB (DL_DST_LIB), $PLATFORM (AT_PLATFORM, overridden on Intel by
// sysdeps/x86/cpu-features.c), the glibc-hwcaps subdirectories that are
// active (sysdeps/x86/get-isa-level.h), the legacy hwcap bits (glibc <= 2.36)
// and the glibc version. Asked of the system's own ld.so with
// `--list-diagnostics` (glibc >= 2.33; manual/dynlink.texi "Dynamic Linker
// Diagnostics Format"), which prints facts and loads nothing; the built-in
// Debian multiarch values and cpuid stand in when that is not available.
#include <cpuid.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

namespace detail {

std::string run_and_read(const std::string& program, const std::string& arg, int capture_fd, bool need_success) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return "";
  const UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, write_end.get(), capture_fd);
  posix_spawn_file_actions_addopen(&fa, capture_fd == STDOUT_FILENO ? STDERR_FILENO : STDOUT_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  std::string arg0 = program, arg1 = arg;
  char* argv[] = {arg0.data(), arg1.empty() ? nullptr : arg1.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &fa, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  write_end.reset();  // the child holds the only write end: read() sees its EOF
  if (rc != 0) return "";
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (need_success && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) return "";
  return out;
}

}  // namespace detail

namespace {

// `LDSO --list-diagnostics` with an empty environment: its stdout ("" on any failure).
std::string run_diagnostics(const std::string& ldso) {
  return detail::run_and_read(ldso, "--list-diagnostics", STDOUT_FILENO, /*need_success=*/true);
}

std::uint64_t xgetbv0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (std::uint64_t{edx} << 32) | eax;
}

// x86-64 psABI micro-architecture levels, as get_isa_level() computes them
// (features must be present and, for AVX/AVX-512, enabled by the OS in XCR0).
int cpu_isa_level() {
  unsigned a = 0, b = 0, c1 = 0, d1 = 0;
  if (!__get_cpuid(1, &a, &b, &c1, &d1)) return 1;
  unsigned b7 = 0, c7 = 0, d7 = 0, a7 = 0;
  __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
  unsigned ae = 0, be = 0, ce = 0, de = 0;
  __get_cpuid(0x80000001, &ae, &be, &ce, &de);
  auto bit = [](unsigned r, int n) { return (r >> n) & 1u; };
  const bool v2 = bit(c1, 13) && bit(ce, 0) && bit(c1, 23) && bit(c1, 0) && bit(c1, 9) && bit(c1, 19) && bit(c1, 20);
  if (!v2) return 1;
  const bool osxsave = bit(c1, 27);
  const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool avx_os = (xcr0 & 6) == 6;
  const bool v3 = avx_os && bit(c1, 28) && bit(b7, 5) && bit(b7, 3) && bit(b7, 8) && bit(c1, 29) && bit(c1, 12) &&
                  bit(ce, 5) && bit(c1, 22);
  if (!v3) return 2;
  const bool avx512_os = (xcr0 & 0xe6) == 0xe6;
  const bool v4 = avx512_os && bit(b7, 16) && bit(b7, 30) && bit(b7, 28) && bit(b7, 17) && bit(b7, 31);
  return v4 ? 4 : 3;
}

// "x86-64-v4:x86-64-v3:x86-64-v2" filtered by what the CPU supports.
std::vector<std::string> hwcaps_for_level(int level) {
  std::vector<std::string> out;
  for (int l = 4; l >= 2; --l)
    if (level >= l) out.push_back("x86-64-v" + std::to_string(l));
  return out;
}

// Values are 0x-hex integers or "quoted strings" with octal escapes.
std::string unquote(const std::string& v) {
  if (v.size() < 2 || v.front() != '"') return v;
  std::string out;
  for (std::size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 3 < v.size()) {
      out += static_cast<char>(std::strtol(v.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += v[i];
    }
  }
  return out;
}

// A file of a few KiB read whole; "" when it cannot be.
std::string read_small_file(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!fd) return out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && out.size() < (1u << 20))
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// What identifies one answer of `ld.so --list-diagnostics`: the ld.so file
// (device, inode, size, modification time) and the boot (the CPU, whose
// features choose the hwcaps subdirectories and $PLATFORM, does not change
// within one). "" when either cannot be read.
std::string diagnostics_key(const std::string& ldso) {
  struct stat st {};
  if (::stat(ldso.c_str(), &st) != 0) return "";
  std::string boot = read_small_file("/proc/sys/kernel/random/boot_id");
  if (boot.empty()) return "";
  if (boot.back() == '\n') boot.pop_back();
  return "procforge ld.so facts 1 " + std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) + " " +
         std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + " boot " + boot + "\n";
}

}  // namespace

SystemInfo SystemInfo::fallback() {
  SystemInfo s;
  s.system_dirs = {"/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib/", "/usr/lib/"};
  s.lib = "lib/x86_64-linux-gnu";
  s.isa_level = cpu_isa_level();
  s.hwcaps_subdirs = hwcaps_for_level(s.isa_level);
  s.platform = "x86_64";
  s.hwcap = 2;
  s.hwcap_mask = 6;
  return s;
}

SystemInfo SystemInfo::probe() {
  SystemInfo s = fallback();
  if (::access(s.ldso_path.c_str(), X_OK) != 0) return s;
  return from_diagnostics(std::move(s), run_diagnostics(s.ldso_path));
}

SystemInfo SystemInfo::probe_cached(const std::string& dir) {
  SystemInfo s = fallback();
  if (::access(s.ldso_path.c_str(), X_OK) != 0) return s;
  const std::string key = diagnostics_key(s.ldso_path);
  const std::string file = dir + "/ldso-facts";
  if (key.empty() || dir.empty()) return from_diagnostics(std::move(s), run_diagnostics(s.ldso_path));
  const std::string cached = read_small_file(file);
  if (cached.size() > key.size() && cached.compare(0, key.size(), key) == 0)
    return from_diagnostics(std::move(s), cached.substr(key.size()));
  // Kept without the env[...] lines (they can carry the caller's values).
  std::string out;
  const std::string all = run_diagnostics(s.ldso_path);
  for (std::size_t pos = 0; pos < all.size();) {
    std::size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) nl = all.size();
    if (all.compare(pos, 3, "env") != 0) out.append(all, pos, nl - pos).push_back('\n');
    pos = nl + 1;
  }
  if (out.empty()) return s;
  // Written whole under a temporary name and renamed: a reader sees the old
  // file or the new one. Failing to write only costs the next run a probe.
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    const std::string tmp = file + "." + std::to_string(::getpid());
    const UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    const std::string text = key + out;
    if (fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()))
      ::rename(tmp.c_str(), file.c_str());
    else ::unlink(tmp.c_str());
  }
  return from_diagnostics(std::move(s), out);
}

SystemInfo SystemInfo::from_diagnostics(SystemInfo s, const std::string& out) {
  if (out.empty()) return s;
  std::map<std::string, std::string> kv;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    const std::string line = out.substr(pos, nl - pos);
    pos = nl + 1;
    // env[...] lines can carry the caller's values; they are not needed.
    if (line.rfind("env", 0) == 0) continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = unquote(line.substr(eq + 1));
  }
  auto get = [&](const std::string& k) -> const std::string* {
    auto it = kv.find(k);
    return it == kv.end() ? nullptr : &it->second;
  };
  auto hexval = [](const std::string& v) { return std::strtoull(v.c_str(), nullptr, 0); };
  if (auto* v = get("version.version")) {
    int maj = 0, min = 0;
    if (std::sscanf(v->c_str(), "%d.%d", &maj, &min) == 2) s.glibc_major = maj, s.glibc_minor = min;
  }
  if (auto* v = get("dl_dst_lib")) s.lib = *v;
  if (auto* v = get("dl_platform")) s.platform = *v;
  if (auto* v = get("dl_hwcap")) s.hwcap = hexval(*v);
  // dl_hwcap_important is HWCAP_IMPORTANT, the default glibc.cpu.hwcap_mask.
  if (auto* v = get("dl_hwcap_important")) s.hwcap_mask = hexval(*v);
  if (auto* v = get("path.rtld")) s.ldso_path = *v;
  std::vector<std::string> dirs;
  for (unsigned i = 0;; ++i) {
    char key[64];
    std::snprintf(key, sizeof key, "path.system_dirs[0x%x]", i);
    auto* v = get(key);
    if (!v) break;
    dirs.push_back(*v);
  }
  if (!dirs.empty()) s.system_dirs = dirs;
  if (auto* v = get("path.sysconfdir")) {
    s.cache_path = *v + "/ld.so.cache";
    s.preload_path = *v + "/ld.so.preload";
  }
  auto* subdirs = get("dl_hwcaps_subdirs");
  auto* active = get("dl_hwcaps_subdirs_active");
  if (subdirs && active) {
    // Bit i of the mask selects the i-th name of the colon-separated list.
    const std::uint64_t mask = hexval(*active);
    s.hwcaps_subdirs.clear();
    std::size_t start = 0, i = 0;
    while (start <= subdirs->size()) {
      std::size_t colon = subdirs->find(':', start);
      if (colon == std::string::npos) colon = subdirs->size();
      if (colon > start && i < 64 && (mask >> i) & 1) s.hwcaps_subdirs.push_back(subdirs->substr(start, colon - start));
      ++i;
      start = colon + 1;
    }
  }
  s.from_ldso = true;
  return s;
}

std::vector<std::string> SystemInfo::subdirs() const {
  std::vector<std::string> out;
  for (const auto& h : hwcaps_subdirs) out.push_back("glibc-hwcaps/" + h + "/");
  if (at_least(2, 37)) {
    out.emplace_back();
    return out;
  }
  // The legacy power set: hwcap names (bit order), $PLATFORM, "tls"; entry i
  // holds the members whose bit is set in (2^cnt - 1 - i), last member first.
  static const char* const kHwcapNames[] = {"sse2", "x86_64", "avx512_1"};
  std::vector<std::string> temp;
  const std::uint64_t masked = hwcap & hwcap_mask;
  for (unsigned n = 0; n < 64; ++n)
    if ((masked >> n) & 1) temp.emplace_back(n < 3 ? kHwcapNames[n] : "");
  if (!platform.empty()) temp.push_back(platform);
  temp.emplace_back("tls");
  const std::size_t cnt = temp.size();
  if (cnt > 16) {  // glibc would fail with "cannot create capability list"
    out.emplace_back();
    return out;
  }
  const std::size_t all = (std::size_t{1} << cnt) - 1;
  for (std::size_t i = 0; i <= all; ++i) {
    const std::size_t mask = all - i;
    std::string s;
    for (std::size_t k = cnt; k-- > 0;)
      if ((mask >> k) & 1) s += temp[k] + "/";
    out.push_back(s);
  }
  return out;
}

}  // namespace procforge::ldso
