// When a template cannot stand in for a cold start. Each rule names the
// difference a warm instance would have, so that the spawn goes cold instead
// and the report says why.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <utility>

#include "common/files.hpp"
#include "procforge/elf.hpp"
#include "warm/detail.hpp"

namespace procforge::warm {

namespace {

std::string_view key_of(std::string_view kv) { return kv.substr(0, kv.find('=')); }

// glibc's elf/dl-tunables.list env_alias names (read by ld.so with the
// tunables), and the variables libc functions read that a constructor may
// call before main (setlocale: locale/findlocale.c; tzset: time/tzset.c;
// iconv: iconv/gconv_conf.c; catopen: catgets/catgets.c; the resolver:
// resolv/res_init.c). libc's own lookups do not pass through getenv's PLT
// entry, so the agent cannot record them: they are assumed read.
constexpr std::array<std::string_view, 24> kLibcNames = {"GLIBC_TUNABLES",
                                                         "MALLOC_CHECK_",
                                                         "MALLOC_MMAP_MAX_",
                                                         "MALLOC_MMAP_THRESHOLD_",
                                                         "MALLOC_PERTURB_",
                                                         "MALLOC_TOP_PAD_",
                                                         "MALLOC_TRIM_THRESHOLD_",
                                                         "MALLOC_ARENA_MAX",
                                                         "MALLOC_ARENA_TEST",
                                                         "LANG",
                                                         "LANGUAGE",
                                                         "LOCPATH",
                                                         "TZ",
                                                         "TZDIR",
                                                         "GCONV_PATH",
                                                         "NLSPATH",
                                                         "LOCALDOMAIN",
                                                         "RES_OPTIONS",
                                                         "HOSTALIASES",
                                                         "POSIXLY_CORRECT",
                                                         "TMPDIR",
                                                         "GETCONF_DIR",
                                                         "MALLOC_TCACHE_MAX",
                                                         "LIBC_FATAL_STDERR_"};

std::map<std::string_view, std::string_view> by_name(const std::vector<std::string>& env) {
  std::map<std::string_view, std::string_view> m;
  for (const auto& kv : env) m.emplace(key_of(kv), kv);  // the first wins, as getenv finds it
  return m;
}

std::string identity_change(const ObjectIdentity& o) {
  struct stat st {};
  if (stat(o.path.c_str(), &st) != 0) return o.path + " is gone";
  if (st.st_dev != o.dev || st.st_ino != o.ino) return o.path + " was replaced (another inode)";
  std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (mtime != o.mtime_ns || st.st_size != o.size) return o.path + " was modified (mtime or size changed)";
  return {};
}

// Whether an object may have changed: any inotify event on one of them since
// the last look (the stat pass then says which and how), or no watches.
bool files_may_have_changed(const Template& t) {
  if (!t.watches) return true;
  alignas(inotify_event) char buf[4096];
  bool any = std::exchange(t.stat_next, false);
  while (read(t.watches.get(), buf, sizeof buf) > 0) any = true;
  return any;
}

}  // namespace

void watch_objects(Template& t) {
  // IN_ATTRIB sees the link count drop when a file is renamed over or
  // removed (inotify(7)); the others a write in place, a move, a removal.
  constexpr std::uint32_t kChanges = IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF;
  t.watches.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  for (const auto& o : t.objects)
    if (t.watches && inotify_add_watch(t.watches.get(), o.path.c_str(), kChanges) < 0) t.watches.reset();
}

bool read_by_libc_before_main(std::string_view name) {
  return name.starts_with("LD_") || name.starts_with("LC_") ||
         std::find(kLibcNames.begin(), kLibcNames.end(), name) != kLibcNames.end();
}

std::string options_refusal(const spawn::Options& o) {
  if (o.namespaces) return "namespaces are entered before execve";
  if (o.cgroup) return "a cgroup is joined before execve";
  if (o.seccomp_filter.size()) return "a seccomp filter applies to execve and ld.so";
  if (o.capability_bounding || !o.ambient_capabilities.empty())
    return "capabilities are computed by execve from the bounding and ambient sets";
  if (o.controlling_tty) return "a controlling terminal is set up before execve";
  if (o.pdeathsig) return "the parent-death signal would follow the thread that started the template";
  if (!o.close_other_fds) return "the program would inherit every fd of the caller, and a template has only its own";
  if (o.exec_replacement) return "a user-space exec replaces execve";
  if (o.strategy != spawn::Strategy::automatic) return "a creation strategy was asked for";
  for (const auto& rl : o.rlimits)
    if (rl.resource == RLIMIT_STACK) return "RLIMIT_STACK decides the stack and mmap layout at execve";
  return {};
}

std::string program_refusal(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return path + ": " + strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + " is not a regular file";
  if (st.st_mode & (S_ISUID | S_ISGID)) return path + " is set-id: its start is a privileged one";
  if (getxattr(path.c_str(), "security.capability", nullptr, 0) >= 0)
    return path + " has file capabilities: its start is a privileged one";
  // The head of the file: #!, and the ELF headers up to PT_INTERP.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return path + ": " + strerror(errno);
  std::vector<std::uint8_t> head(64 << 10);
  ssize_t n = pread(fd.get(), head.data(), head.size(), 0);
  if (n < 0) return path + ": " + strerror(errno);
  head.resize(static_cast<std::size_t>(n));
  if (head.size() >= 2 && head[0] == '#' && head[1] == '!') return path + " is a #! script";
  if (static_cast<std::size_t>(n) == 64 << 10 && st.st_size > n) {
    // The program headers may lie further on; read the whole file then.
    head.resize(static_cast<std::size_t>(st.st_size));
    n = pread(fd.get(), head.data(), head.size(), 0);
    if (n != st.st_size) return path + ": short read";
  }
  auto f = elf::File::parse(head);
  if (!f) return path + " is not an ELF file procforge can read";
  auto interp = f->interpreter();
  if (!interp || !*interp) return path + " is statically linked: there is no ld.so start to skip";
  std::string_view i = **interp;
  if (i.find("ld-linux") == std::string_view::npos)
    return path + " is not a glibc program (its interpreter is " + std::string(i) + ")";
  return {};
}

// The environment: every name ld.so or libc may read before main, and every
// name the program and its libraries looked up with getenv, must have the
// template's value.
std::string environment_refusal(const Template& t, const std::vector<std::string>& env) {
  if (env == t.env) return {};  // the common case (a batch): nothing to compare
  auto mine = by_name(env), theirs = by_name(t.env);
  auto differs = [&](std::string_view name) {
    auto a = mine.find(name), b = theirs.find(name);
    if (a == mine.end() || b == theirs.end()) return (a == mine.end()) != (b == theirs.end());
    return a->second != b->second;
  };
  std::vector<std::string_view> names;
  for (const auto& [k, v] : mine) names.push_back(k);
  for (const auto& [k, v] : theirs) names.push_back(k);
  for (std::string_view name : names) {
    bool read = t.env_overflow || read_by_libc_before_main(name) ||
                std::find(t.facts.env_read.begin(), t.facts.env_read.end(), name) != t.facts.env_read.end();
    if (read && differs(name))
      return "the environment variable " + std::string(name) + " differs from the template's, and " +
             (read_by_libc_before_main(name) ? "ld.so or libc may read it before main"
                                             : "the program read it before main");
  }
  return {};
}

std::string instance_refusal(const Template& t, const spawn::Plan& plan, const std::vector<std::string>& env,
                             const std::string& cwd) {
  for (const auto& r : t.replaced) return r + " was replaced while the template started";
  if (t.atfork_overflow) return "the program registered more fork handlers than the agent records";
  if (files_may_have_changed(t))
    for (const auto& o : t.objects)
      if (auto why = identity_change(o); !why.empty()) return why + " since the template started";
  if (auto why = environment_refusal(t, env); !why.empty()) return why;
  if (t.facts.looked_at_cwd && cwd != t.cwd)
    return "the program looked at its working directory before main, and this spawn's (" + cwd +
           ") is not the template's (" + t.cwd + ")";
  for (int i = 0; i < plan.block.nfd_ops; ++i) {
    int target = plan.block.fd_ops[i].fd;
    if (target == wire::kControlFd) return "fd " + std::to_string(target) + " is the template's control socket";
    if (std::find(t.facts.fds_open_before_main.begin(), t.facts.fds_open_before_main.end(), target) !=
        t.facts.fds_open_before_main.end())
      return "the program opened fd " + std::to_string(target) + " before main, and this spawn sets fd " +
             std::to_string(target);
  }
  return {};
}

std::vector<std::string> differences(const Template& t, const std::vector<std::string>& argv) {
  std::vector<std::string> d;
  d.push_back("procforge_warm.so (the agent that held the template at main) stays mapped");
  d.push_back(
      "the address-space layout, AT_RANDOM, the stack-protector canary and the pointer guard are those of "
      "template " +
      std::to_string(t.pid) + ", shared by its " + std::to_string(t.uses) + " instances so far");
  if (argv != t.argv) d.push_back("constructors ran with the template's argv, not this one");
  d.push_back(
      "the process was forked ahead as the template's spare, before this spawn asked for it: its start time "
      "(/proc/PID/stat) is that of the fork");
  for (int fd : t.facts.fds_open_before_main)
    d.push_back("fd " + std::to_string(fd) + " was opened before main by the template and is shared by its instances");
  if (t.atfork_handlers)
    d.push_back(std::to_string(t.atfork_handlers) + " fork handlers registered before main ran as for a fork()");
  return d;
}

}  // namespace procforge::warm
