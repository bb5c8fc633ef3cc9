#include "exec_corpus.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#ifndef PROCFORGE_PROBE_DIR
#error "PROCFORGE_PROBE_DIR must name the directory holding probe_args"
#endif

namespace procforge::testsupport {
namespace {

std::string errstr(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string make_temp_dir(const std::string& pattern) {
  std::string t = pattern;
  if (!::mkdtemp(t.data())) return {};
  ::chmod(t.c_str(), 0755);
  return t;
}

int remove_entry(const char* p, const struct stat*, int, struct FTW*) {
  ::remove(p);
  return 0;
}

void remove_tree(const std::string& dir) {
  if (!dir.empty()) ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool copy_file(const std::string& from, const std::string& to, unsigned mode) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  return write_file(to, ss.str(), mode);
}

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, text.data(), text.size());
  ::close(fd);
  return n == static_cast<ssize_t>(text.size());
}

// A step that needs privileges failed: as root it should have worked (the
// harness is broken); otherwise the machine legitimately cannot run the case.
Unavailable privileged_step_failed(const std::string& what) {
  const bool root = ::geteuid() == 0;
  return {root ? what : "needs root: " + what, root};
}

std::string hexpid() {
  char b[16];
  std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(::getpid()));
  return b;
}

// The pid an entry name ends with ("pfexec_a_1f2e"), or 0 when the name is
// not one of ours.
pid_t binfmt_owner(const std::string& name) {
  if (name.rfind(kBinfmtPrefix, 0) != 0) return 0;
  const auto underscore = name.rfind('_');
  const std::string hex = name.substr(underscore + 1);
  if (underscore < kBinfmtPrefix.size() || hex.empty() || hex.size() > 8 ||
      hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    return 0;
  return static_cast<pid_t>(std::stoul(hex, nullptr, 16));
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// At exit, even from a test binary without an Environment that calls teardown().
void unregister_at_exit() { SharedEnv::get().unregister_binfmt(); }

}  // namespace

std::vector<std::string> remove_stale_binfmt_entries(const std::string& binfmt_dir) {
  std::vector<std::string> removed;
  DIR* d = ::opendir(binfmt_dir.c_str());
  if (d == nullptr) return removed;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const pid_t owner = binfmt_owner(name);
    if (owner > 0 && !process_exists(owner) && write_text(binfmt_dir + "/" + name, "-1")) removed.push_back(name);
  }
  ::closedir(d);
  return removed;
}

// ---------------------------------------------------------------------------
// SharedEnv

SharedEnv& SharedEnv::get() {
  static SharedEnv env;
  return env;
}

const std::string& SharedEnv::probe(Unavailable* why) {
  if (probe_.empty() && probe_why_.why.empty()) {
    if (dir_.empty()) dir_ = make_temp_dir("/tmp/pfexec-shared-XXXXXX");
    const std::string p = dir_ + "/probe_args";
    if (dir_.empty()) {
      probe_why_ = {errstr("mkdtemp /tmp/pfexec-shared-XXXXXX"), true};
    } else if (!copy_file(PROCFORGE_PROBE_DIR "/probe_args", p, 0755)) {
      probe_why_ = {errstr("copying " PROCFORGE_PROBE_DIR "/probe_args to " + p), true};
    } else {
      probe_ = p;
    }
  }
  if (probe_.empty() && why) *why = probe_why_;
  return probe_;
}

bool SharedEnv::ensure_namespace(Unavailable* why) {
  if (!ns_tried_) {
    ns_tried_ = true;
    // Our mounts stay in a mount namespace of our own, so nothing leaks to the host.
    if (::unshare(CLONE_NEWNS) != 0) {
      ns_why_ = privileged_step_failed(errstr("unshare(CLONE_NEWNS)"));
    } else if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      ns_why_ = {errstr("mount --make-rprivate /"), true};  // we own the namespace: this cannot be refused
    } else {
      ns_ok_ = true;
      ++generation_;
    }
  }
  if (!ns_ok_ && why) *why = ns_why_;
  return ns_ok_;
}

const std::string& SharedEnv::noexec_dir(Unavailable* why) {
  if (noexec_.empty() && noexec_why_.why.empty()) {
    Unavailable nswhy;
    if (probe(&noexec_why_).empty()) {
      // reason already set
    } else if (!ensure_namespace(&nswhy)) {
      noexec_why_ = {"no private mount namespace: " + nswhy.why, nswhy.harness_failure};
    } else {
      const std::string d = dir_ + "/noexec";
      if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
        noexec_why_ = {errstr("mkdir " + d), true};
      } else if (::mount("pfexec-noexec", d.c_str(), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
        noexec_why_ = privileged_step_failed(errstr("mount -t tmpfs -o noexec " + d));
      } else {
        noexec_ = d;
        ++generation_;
      }
    }
  }
  if (noexec_.empty() && why) *why = noexec_why_;
  return noexec_;
}

const BinfmtEntries* SharedEnv::binfmt(Unavailable* why) {
  if (!binfmt_tried_) {
    binfmt_tried_ = true;
    const std::string bdir = "/proc/sys/fs/binfmt_misc";
    Unavailable nswhy;
    const std::string& pr = probe(&binfmt_why_);
    if (pr.empty()) {
      // reason set
    } else if (::access((bdir + "/register").c_str(), F_OK) != 0) {
      // The directory exists only when the kernel has binfmt_misc (fs/binfmt_misc.c
      // registers the mount point under /proc/sys/fs).
      if (::access(bdir.c_str(), F_OK) != 0) {
        binfmt_why_ = {"the kernel has no binfmt_misc (" + bdir + " does not exist)", false};
      } else if (::geteuid() != 0) {
        binfmt_why_ = {"binfmt_misc not mounted and not root", false};
      } else if (!ensure_namespace(&nswhy)) {
        binfmt_why_ = {"binfmt_misc not mounted and no private mount namespace: " + nswhy.why, nswhy.harness_failure};
      } else if (::mount("binfmt_misc", bdir.c_str(), "binfmt_misc", 0, nullptr) != 0) {
        // ENODEV: no such file system type (binfmt_misc is a module that is not loaded).
        binfmt_why_ = {errstr("mount -t binfmt_misc"), errno != ENODEV};
      } else {
        ++generation_;
      }
    }
    if (binfmt_why_.why.empty() && ::access((bdir + "/register").c_str(), W_OK) != 0)
      binfmt_why_ = privileged_step_failed(errstr(bdir + "/register not writable"));
    if (binfmt_why_.why.empty()) {
      remove_stale_binfmt_entries(bdir);
      const std::string id = hexpid();
      BinfmtEntries e;
      e.plain_magic = "PFXA" + id;
      e.preserve_magic = "PFXP" + id;
      e.missing_magic = "PFXM" + id;
      e.extension = "pfx" + id;
      struct Reg {
        std::string kind, rule;  // the name's kind letter; the register line after the name
      };
      const std::vector<Reg> regs{
          {"a", "M::" + e.plain_magic + "::" + pr + ":"},
          {"p", "M::" + e.preserve_magic + "::" + pr + ":P"},
          {"m", "M::" + e.missing_magic + "::" + dir_ + "/no-such-interp:"},
          {"e", "E::" + e.extension + "::" + pr + ":"},
      };
      binfmt_owner_ = ::getpid();
      std::atexit(unregister_at_exit);
      for (const auto& r : regs) {
        const std::string name = std::string(kBinfmtPrefix) + r.kind + "_" + id;
        const std::string line = ":" + name + ":" + r.rule;
        if (!write_text(bdir + "/register", line)) {
          binfmt_why_ = privileged_step_failed(errstr("registering " + line));
          break;
        }
        binfmt_files_.push_back(bdir + "/" + name);
      }
      if (binfmt_why_.why.empty()) binfmt_ = e;
      ++generation_;
    }
  }
  if (!binfmt_ && why) *why = binfmt_why_;
  return binfmt_ ? &*binfmt_ : nullptr;
}

void SharedEnv::unregister_binfmt() {
  // A forked child that exit()s runs the atexit handler too: the entries stay
  // until their owner is done with them.
  if (::getpid() != binfmt_owner_) return;
  for (const auto& f : binfmt_files_) write_text(f, "-1");
  binfmt_files_.clear();
}

void SharedEnv::teardown() {
  unregister_binfmt();
  if (!noexec_.empty()) ::umount2(noexec_.c_str(), MNT_DETACH);
  remove_tree(dir_);
  dir_.clear();
  probe_.clear();
  noexec_.clear();
}

// ---------------------------------------------------------------------------
// CaseBuilder

CaseBuilder::CaseBuilder() {
  dir_ = make_temp_dir("/tmp/pfexec-XXXXXX");
  if (dir_.empty()) setup_failed(errstr("mkdtemp /tmp/pfexec-XXXXXX"));
}

CaseBuilder::~CaseBuilder() {
  for (int fd : fds_) ::close(fd);
  for (const auto& d : extra_dirs_) remove_tree(d);
  remove_tree(dir_);
}

void CaseBuilder::unavailable(const std::string& what, const Unavailable& u) {
  if (u.harness_failure) setup_failed(what + ": " + u.why);
  else skip(what + ": " + u.why);
}

namespace {
std::string resolve(const CaseBuilder& b, std::string_view name) {
  return !name.empty() && name[0] == '/' ? std::string(name) : b.at(name);
}
}  // namespace

std::string CaseBuilder::file(std::string_view name, std::string_view bytes, unsigned mode) {
  std::string p = resolve(*this, name);
  if (!write_file(p, bytes, mode)) setup_failed(errstr("writing " + p));
  return p;
}

std::string CaseBuilder::elf(std::string_view name, const ElfSpec& spec, unsigned mode) {
  std::string p = resolve(*this, name);
  if (!write_file(p, build(spec), mode)) setup_failed(errstr("writing " + p));
  return p;
}

std::string CaseBuilder::probe() {
  Unavailable why;
  const std::string& p = SharedEnv::get().probe(&why);
  if (p.empty()) unavailable("probe_args", why);
  return p;
}

const BinfmtEntries* CaseBuilder::binfmt() {
  Unavailable why;
  const BinfmtEntries* e = SharedEnv::get().binfmt(&why);
  if (!e) unavailable("binfmt_misc", why);
  return e;
}

std::string CaseBuilder::probe_copy(std::string_view name, unsigned mode) {
  std::string p = resolve(*this, name);
  std::string src = probe();
  if (!src.empty() && !copy_file(src, p, mode)) setup_failed(errstr("copying probe to " + p));
  return p;
}

std::string CaseBuilder::mkdir(std::string_view name, unsigned mode) {
  std::string p = resolve(*this, name);
  if (::mkdir(p.c_str(), 0700) != 0 || ::chmod(p.c_str(), mode) != 0) setup_failed(errstr("mkdir " + p));
  return p;
}

std::string CaseBuilder::symlink(std::string_view name, std::string_view target) {
  std::string p = resolve(*this, name);
  if (::symlink(std::string(target).c_str(), p.c_str()) != 0) setup_failed(errstr("symlink " + p));
  return p;
}

std::string CaseBuilder::fifo(std::string_view name, unsigned mode) {
  std::string p = resolve(*this, name);
  if (::mkfifo(p.c_str(), 0600) != 0 || ::chmod(p.c_str(), mode) != 0) setup_failed(errstr("mkfifo " + p));
  return p;
}

std::string CaseBuilder::socket(std::string_view name) {
  std::string p = resolve(*this, name);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (p.size() >= sizeof sa.sun_path) {
    setup_failed("socket path too long: " + p);
    return p;
  }
  std::memcpy(sa.sun_path, p.c_str(), p.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) setup_failed(errstr("bind " + p));
  if (fd >= 0) ::close(fd);
  ::chmod(p.c_str(), 0777);
  return p;
}

std::string CaseBuilder::mknod(std::string_view name, unsigned mode, unsigned major, unsigned minor) {
  std::string p = resolve(*this, name);
  if (::mknod(p.c_str(), static_cast<mode_t>(mode), makedev(major, minor)) != 0 ||
      ::chmod(p.c_str(), static_cast<mode_t>(mode & 07777)) != 0)
    unavailable("device node", privileged_step_failed(errstr("mknod " + p)));  // CAP_MKNOD
  return p;
}

void CaseBuilder::chown(const std::string& p, unsigned uid, unsigned gid) {
  if (::chown(p.c_str(), uid, gid) != 0)
    unavailable("file owner", privileged_step_failed(errstr("chown " + p)));  // CAP_CHOWN
}

void CaseBuilder::hold_open(const std::string& p, int flags) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    setup_failed(errstr("open " + p));
    return;
  }
  fds_.push_back(fd);
}

std::string CaseBuilder::noexec_subdir() {
  Unavailable why;
  const std::string& base = SharedEnv::get().noexec_dir(&why);
  if (base.empty()) {
    unavailable("noexec mount", why);
    return at("noexec-unavailable");
  }
  std::string d = make_temp_dir(base + "/c-XXXXXX");
  if (d.empty()) setup_failed(errstr("mkdtemp on noexec mount"));
  extra_dirs_.push_back(d);
  return d;
}

// ---------------------------------------------------------------------------
// The corpus

namespace {

using B = CaseBuilder;

struct Corpus {
  std::vector<ExecCase> cases;
  void add(char row, std::string name, std::function<void(B&)> fn) {
    cases.push_back({std::string(1, row) + "_" + std::move(name), row, std::move(fn)});
  }
};

std::string mode_name(unsigned mode) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", mode);
  return b;
}

// An ELF that exits with `status`, at dir/name.
std::string exit_elf(B& b, std::string_view name, int status, unsigned mode = 0755) {
  b.expect_exit = status;
  return b.elf(name, minimal_exec(status), mode);
}

// ---- A: pathname and permission ------------------------------------------
void row_a(Corpus& c) {
  c.add('A', "missing_file", [](B& b) { b.path = b.at("nope"); });
  c.add('A', "missing_parent", [](B& b) { b.path = b.at("nodir/exe"); });
  c.add('A', "file_trailing_slash", [](B& b) { b.path = exit_elf(b, "exe", 3) + "/"; });
  c.add('A', "file_slash_dot", [](B& b) { b.path = exit_elf(b, "exe", 3) + "/."; });
  c.add('A', "component_not_dir", [](B& b) { b.path = exit_elf(b, "exe", 3) + "/x"; });
  c.add('A', "empty_path", [](B& b) { b.path = ""; });
  c.add('A', "path_dot_is_cwd_dir", [](B& b) { b.path = "."; });
  c.add('A', "path_root_dir", [](B& b) { b.path = "/"; });
  // Component length around NAME_MAX (255).
  for (int len : {255, 256}) {
    c.add('A', "name_len_" + std::to_string(len) + "_exists", [len](B& b) {
      if (len <= 255) {
        b.path = exit_elf(b, std::string(static_cast<std::size_t>(len), 'n'), 4);
      } else {
        exit_elf(b, "exe", 4);
        b.path = b.at(std::string(static_cast<std::size_t>(len), 'n'));
      }
    });
    c.add('A', "name_len_" + std::to_string(len) + "_missing",
          [len](B& b) { b.path = b.at(std::string(static_cast<std::size_t>(len), 'm')); });
  }
  // Whole path length around PATH_MAX (4096 including the NUL): pad with slashes.
  for (std::size_t len : {4094u, 4095u, 4096u, 5000u}) {
    c.add('A', "path_len_" + std::to_string(len), [len](B& b) {
      exit_elf(b, "exe", 5);
      b.path = b.dir() + std::string(len - b.dir().size() - 3, '/') + "exe";
    });
  }
  // Symlinks: loops and chains around MAXSYMLINKS (40).
  c.add('A', "symlink_loop_pair", [](B& b) {
    b.symlink("l1", b.at("l2"));
    b.path = b.symlink("l2", b.at("l1"));
  });
  c.add('A', "symlink_self_loop", [](B& b) { b.path = b.symlink("self", b.at("self")); });
  for (int n : {1, 39, 40, 41}) {
    c.add('A', "symlink_chain_" + std::to_string(n), [n](B& b) {
      std::string target = exit_elf(b, "exe", 6);
      for (int i = 0; i < n; ++i) target = b.symlink("l" + std::to_string(i), target);
      b.path = target;
    });
  }
  c.add('A', "symlink_relative_to_exe", [](B& b) {
    exit_elf(b, "exe", 6);
    b.path = b.symlink("rel", "exe");
  });
  c.add('A', "symlink_dangling", [](B& b) { b.path = b.symlink("dangle", b.at("nothing")); });
  c.add('A', "symlink_to_dir", [](B& b) { b.path = b.symlink("tod", b.mkdir("d")); });
  c.add('A', "symlink_in_middle", [](B& b) {
    b.mkdir("real");
    exit_elf(b, "real/exe", 6);
    b.symlink("via", "real");
    b.path = b.at("via/exe");
  });
  // File types.
  c.add('A', "directory", [](B& b) { b.path = b.mkdir("d", 0755); });
  c.add('A', "fifo_0755", [](B& b) { b.path = b.fifo("fifo", 0755); });
  c.add('A', "unix_socket", [](B& b) { b.path = b.socket("sock"); });
  c.add('A', "dev_null", [](B& b) { b.path = "/dev/null"; });
  c.add('A', "chr_dev_0755", [](B& b) { b.path = b.mknod("chr", S_IFCHR | 0755, 1, 3); });
  c.add('A', "blk_dev_existing", [](B& b) {
    for (const char* p : {"/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/ram0"}) {
      struct stat st {};
      if (::stat(p, &st) == 0 && S_ISBLK(st.st_mode)) {
        b.path = p;
        return;
      }
    }
    b.skip("no block device found under /dev");
  });
  c.add('A', "blk_dev_0755", [](B& b) { b.path = b.mknod("blk", S_IFBLK | 0755, 7, 0); });
  // Mode bits, as nobody on a root-owned file.
  for (unsigned mode : {0000u, 0100u, 0010u, 0001u, 0111u, 0644u, 0700u, 0755u, 0711u, 0500u, 0005u, 0004u}) {
    c.add('A', "mode_" + mode_name(mode) + "_root_owned", [mode](B& b) { b.path = exit_elf(b, "exe", 8, mode); });
  }
  // ... on a file owned by nobody (owner class applies, even when "other" has x).
  for (unsigned mode : {0100u, 0600u, 0700u, 0010u, 0001u}) {
    c.add('A', "mode_" + mode_name(mode) + "_nobody_owned", [mode](B& b) {
      b.path = exit_elf(b, "exe", 8, mode);
      b.chown(b.path, 65534, 65534);
    });
  }
  for (unsigned mode : {0010u, 0001u}) {
    c.add('A', "mode_" + mode_name(mode) + "_group_nobody", [mode](B& b) {
      b.path = exit_elf(b, "exe", 8, mode);
      b.chown(b.path, 0, 65534);
    });
  }
  // As root (CAP_DAC_OVERRIDE: exec needs at least one x bit).
  for (unsigned mode : {0000u, 0100u, 0010u, 0001u, 0644u, 0600u}) {
    c.add('A', "root_mode_" + mode_name(mode), [mode](B& b) {
      b.as_root = true;
      b.path = exit_elf(b, "exe", 9, mode);
    });
  }
  // Search permission on a directory in the path.
  for (unsigned mode : {0700u, 0600u, 0711u, 0755u, 0701u, 0744u, 0000u}) {
    c.add('A', "dir_search_" + mode_name(mode), [mode](B& b) {
      b.mkdir("sub", 0755);
      exit_elf(b, "sub/exe", 10);
      ::chmod(b.at("sub").c_str(), mode);
      b.path = b.at("sub/exe");
    });
  }
  c.add('A', "root_dir_search_0000", [](B& b) {
    b.as_root = true;
    b.mkdir("sub", 0755);
    exit_elf(b, "sub/exe", 10);
    ::chmod(b.at("sub").c_str(), 0);
    b.path = b.at("sub/exe");
  });
  // noexec mount.
  c.add('A', "noexec_elf", [](B& b) {
    std::string d = b.noexec_subdir();
    b.path = exit_elf(b, d + "/exe", 11);
  });
  c.add('A', "noexec_elf_root", [](B& b) {
    b.as_root = true;
    std::string d = b.noexec_subdir();
    b.path = exit_elf(b, d + "/exe", 11);
  });
  c.add('A', "noexec_script", [](B& b) {
    std::string d = b.noexec_subdir();
    b.path = b.file(d + "/script", "#!" + b.probe() + "\n");
  });
  c.add('A', "noexec_script_interpreter", [](B& b) {
    std::string d = b.noexec_subdir();
    std::string interp = b.probe_copy(d + "/probe");
    b.path = b.file("script", "#!" + interp + "\n");
  });
  c.add('A', "noexec_pt_interp", [](B& b) {
    std::string d = b.noexec_subdir();
    std::string interp = b.probe_copy(d + "/probe");
    ElfSpec s = minimal_exec(12);
    b.path = b.elf("exe", with_interp(s, interp));
  });
  // ETXTBSY: deny_write_access() on every file exec opens.
  c.add('A', "etxtbsy_elf", [](B& b) {
    b.path = exit_elf(b, "exe", 13);
    b.hold_open(b.path, O_WRONLY);
  });
  c.add('A', "etxtbsy_elf_read_only_open", [](B& b) {
    b.path = exit_elf(b, "exe", 13);
    b.hold_open(b.path, O_RDONLY);
  });
  c.add('A', "etxtbsy_script", [](B& b) {
    b.path = b.file("script", "#!" + b.probe() + "\n");
    b.hold_open(b.path, O_WRONLY);
  });
  c.add('A', "etxtbsy_script_interpreter", [](B& b) {
    std::string interp = b.probe_copy("probe");
    b.path = b.file("script", "#!" + interp + "\n");
    b.hold_open(interp, O_WRONLY);
  });
  c.add('A', "etxtbsy_pt_interp", [](B& b) {
    std::string interp = b.probe_copy("probe");
    ElfSpec s = minimal_exec(12);
    b.path = b.elf("exe", with_interp(s, interp));
    b.hold_open(interp, O_RDWR);
  });
  // Relative paths resolve against the cwd.
  c.add('A', "relative_bare_name", [](B& b) {
    exit_elf(b, "exe", 14);
    b.path = "exe";
  });
  c.add('A', "relative_dot_slash", [](B& b) {
    exit_elf(b, "exe", 14);
    b.path = "./exe";
  });
  c.add('A', "relative_subdir", [](B& b) {
    b.mkdir("sub");
    exit_elf(b, "sub/exe", 14);
    b.path = "sub/exe";
  });
  c.add('A', "relative_dotdot", [](B& b) {
    b.cwd = b.mkdir("sub");
    exit_elf(b, "exe", 14);
    b.path = "../exe";
  });
  c.add('A', "relative_wrong_cwd", [](B& b) {
    exit_elf(b, "exe", 14);
    b.cwd = b.mkdir("elsewhere");
    b.path = "exe";
  });
}

// ---- B: argv / envp --------------------------------------------------------
// Byte budget for strings (fs/exec.c bprm_stack_limits()) as the fixture
// generator's starting point; the sweep around it lets the kernel decide.
std::uint64_t string_budget(rlim_t rlim, std::size_t argc, std::size_t envc) {
  std::uint64_t limit = rlim == RLIM_INFINITY ? (6ull << 20) : std::min<std::uint64_t>(6ull << 20, rlim / 4);
  limit = std::max<std::uint64_t>(limit, 131072);
  return limit - (std::max<std::size_t>(argc, 1) + envc) * 8;
}

// Fills argv so that filename + env + argv strings (with NULs) total `total` bytes.
void fill_argv_to(B& b, std::uint64_t total) {
  std::uint64_t used = b.path.size() + 1;
  for (const auto& e : b.envp) used += e.size() + 1;
  std::vector<std::string> argv{"big"};
  used += 4;
  const std::uint64_t piece = 131071;
  while (used < total) {
    std::uint64_t need = total - used;  // bytes including the NUL
    std::uint64_t len = std::min<std::uint64_t>(piece, need - 1 == 0 ? 0 : need - 1);
    argv.push_back(std::string(static_cast<std::size_t>(len), 'a'));
    used += len + 1;
  }
  b.argv = argv;
}

void row_b(Corpus& c) {
  c.add('B', "argv_null_probe", [](B& b) {
    b.path = b.probe();
    b.argv_null = true;
  });
  c.add('B', "argv_empty_probe", [](B& b) {
    b.path = b.probe();
    b.argv = std::vector<std::string>{};
  });
  c.add('B', "argv_null_script", [](B& b) {
    b.path = b.file("script", "#!" + b.probe() + "\n");
    b.argv_null = true;
  });
  c.add('B', "argv_empty_script_with_arg", [](B& b) {
    b.path = b.file("script", "#!" + b.probe() + " -o\n");
    b.argv = std::vector<std::string>{};
  });
  c.add('B', "argv_many_small", [](B& b) {
    b.path = b.probe();
    std::vector<std::string> v;
    for (int i = 0; i < 2000; ++i) v.push_back("a" + std::to_string(i));
    b.argv = v;
  });
  c.add('B', "argv_special_bytes", [](B& b) {
    b.path = b.probe();
    b.argv = std::vector<std::string>{"", "with space", "tab\there", "nl\nx", "back\\slash", "\x01\x7f\xff", ""};
  });
  for (std::size_t len : {131070u, 131071u, 131072u, 131073u}) {
    c.add('B', "argv_strlen_" + std::to_string(len), [len](B& b) {
      b.path = b.probe();
      b.argv = std::vector<std::string>{"p", std::string(len, 'a')};
    });
    c.add('B', "envp_strlen_" + std::to_string(len), [len](B& b) {
      b.path = b.probe();
      b.envp = {"X=" + std::string(len - 2, 'e')};
    });
  }
  // Total size around the budget, RLIMIT_STACK 8 MiB (budget 2 MiB).
  for (int delta : {-64, -1, 0, 1, 64}) {
    std::string dn = delta < 0 ? "minus" + std::to_string(-delta) : "plus" + std::to_string(delta);
    c.add('B', "total_8M_" + dn, [delta](B& b) {
      b.path = b.probe();
      // argc is not known until filled; two passes converge because piece count is stable.
      fill_argv_to(b, string_budget(b.rlimit_stack, 17, b.envp.size()));
      std::size_t argc = b.argv->size();
      fill_argv_to(b, string_budget(b.rlimit_stack, argc, b.envp.size()) + static_cast<std::uint64_t>(delta));
    });
  }
  for (int delta : {-1, 0, 1}) {
    std::string dn = delta < 0 ? "minus1" : "plus" + std::to_string(delta);
    c.add('B', "total_unlimited_stack_" + dn, [delta](B& b) {
      b.path = b.probe();
      b.rlimit_stack = RLIM_INFINITY;
      fill_argv_to(b, string_budget(b.rlimit_stack, 49, b.envp.size()));
      std::size_t argc = b.argv->size();
      fill_argv_to(b, string_budget(b.rlimit_stack, argc, b.envp.size()) + static_cast<std::uint64_t>(delta));
    });
  }
  // A small RLIMIT_STACK: the string budget floors at ARG_MAX, but the stack
  // itself may not grow past the limit while the strings are copied, nor when
  // the pointers and auxv are added. Where the stack starts inside its page is
  // random, so near the limit the outcome is only reproducible with ASLR off.
  for (std::uint64_t total : {16384u, 40000u, 60000u, 64000u, 65000u, 65500u, 66000u, 70000u, 131000u}) {
    c.add('B', "total_64k_stack_" + std::to_string(total), [total](B& b) {
      b.path = b.probe();
      b.addr_no_randomize = true;
      b.rlimit_stack = 64 << 10;
      fill_argv_to(b, total);
    });
  }
  // A script adds strings (interpreter, optional argument, script path) and
  // drops argv[0]: near the budget it decides between running and E2BIG.
  for (int delta : {-200, -60, -30, -10, 0, 10}) {
    std::string dn = delta < 0 ? "minus" + std::to_string(-delta) : "plus" + std::to_string(delta);
    c.add('B', "script_total_" + dn, [delta](B& b) {
      b.path = b.file("script", "#!" + b.probe() + " an-interpreter-argument\n");
      fill_argv_to(b, string_budget(b.rlimit_stack, 17, b.envp.size()));
      std::size_t argc = b.argv->size();
      fill_argv_to(b, string_budget(b.rlimit_stack, argc, b.envp.size()) + static_cast<std::uint64_t>(delta));
    });
  }
}

// ---- C: #! scripts -----------------------------------------------------------
void row_c(Corpus& c) {
  // Lines built around the shared probe path P.
  struct Line {
    const char* name;
    std::function<std::string(const std::string&)> text;
  };
  const std::vector<Line> lines{
      {"basic", [](const std::string& p) { return "#!" + p + "\n"; }},
      {"one_arg", [](const std::string& p) { return "#!" + p + " -a\n"; }},
      {"arg_inner_blanks_kept_trailing_trimmed", [](const std::string& p) { return "#!" + p + " -a  -b  \t\n"; }},
      {"tabs_separate", [](const std::string& p) { return "#!" + p + "\t-x\t-y\n"; }},
      {"space_before_interp", [](const std::string& p) { return "#! " + p + "\n"; }},
      {"tab_before_interp", [](const std::string& p) { return "#!\t" + p + "\n"; }},
      {"blanks_around_interp", [](const std::string& p) { return "#!   " + p + "   \n"; }},
      {"crlf_no_arg", [](const std::string& p) { return "#!" + p + "\r\n"; }},
      {"crlf_with_arg", [](const std::string& p) { return "#!" + p + " -a\r\n"; }},
      {"vtab_is_not_blank", [](const std::string& p) { return "#!" + p + "\v-a\n"; }},
      {"no_newline", [](const std::string& p) { return "#!" + p; }},
      {"no_newline_trailing_blanks_after_arg", [](const std::string& p) { return "#!" + p + " -x   "; }},
      {"no_newline_trailing_blanks_only", [](const std::string& p) { return "#!" + p + "   "; }},
      {"nul_after_interp", [](const std::string& p) { return "#!" + p + std::string("\0 -x\n", 5); }},
      {"nul_inside_arg", [](const std::string& p) { return "#!" + p + std::string(" -x\0yy zz\n", 10); }},
      {"nul_before_interp", [](const std::string& p) { return std::string("#!\0", 3) + p + "\n"; }},
      {"blank_nul_before_interp", [](const std::string& p) { return std::string("#! \0", 4) + p + "\n"; }},
      {"empty_shebang_newline", [](const std::string&) { return std::string("#!\n"); }},
      {"empty_shebang_eof", [](const std::string&) { return std::string("#!"); }},
      {"blank_shebang_line", [](const std::string&) { return std::string("#!  \t \n"); }},
      {"blank_300_no_newline", [](const std::string&) { return "#!" + std::string(300, ' '); }},
      {"blank_no_newline", [](const std::string&) { return std::string("#! \t"); }},
      {"leading_space", [](const std::string& p) { return " #!" + p + "\n"; }},
      {"hash_only", [](const std::string& p) { return "#" + p + "\n"; }},
      {"bang_hash", [](const std::string& p) { return "!#" + p + "\n"; }},
      {"text_without_shebang", [](const std::string&) { return std::string("echo hello\nexit 3\n"); }},
      {"zero_length", [](const std::string&) { return std::string(); }},
      {"arg_with_spaces_single_arg", [](const std::string& p) { return "#!" + p + " a b  c\n"; }},
      {"arg_300_truncated", [](const std::string& p) { return "#!" + p + " " + std::string(300, 'a') + "\n"; }},
      {"double_slash_interp", [](const std::string& p) { return "#!/" + p + "\n"; }},
      {"interp_trailing_slash", [](const std::string& p) { return "#!" + p + "/\n"; }},
      {"interp_slash_dot", [](const std::string& p) { return "#!" + p + "/.\n"; }},
      {"second_line_ignored", [](const std::string& p) { return "#!" + p + " first\n#!/bin/false second\n"; }},
      {"high_bytes_in_arg", [](const std::string& p) { return "#!" + p + " \xc3\xa9\xff\n"; }},
  };
  for (const auto& l : lines) {
    auto text = l.text;
    c.add('C', l.name, [text](B& b) { b.path = b.file("script", text(b.probe())); });
  }
  // Argument lengths such that the newline lands around byte 255/256.
  for (int nl_at : {253, 254, 255, 256, 257}) {
    c.add('C', "arg_newline_at_" + std::to_string(nl_at), [nl_at](B& b) {
      std::string head = "#!" + b.probe() + " ";
      std::string text = head + std::string(static_cast<std::size_t>(nl_at) - head.size(), 'q') + "\n";
      b.path = b.file("script", text);
    });
  }
  // Interpreter path lengths around the 253-byte maximum, with newline,
  // without newline (file shorter or longer than 256 bytes) and with an argument.
  for (std::size_t len : {251u, 252u, 253u, 254u, 255u, 256u}) {
    for (const char* tail : {"nl", "eof", "arg", "eof_arg"}) {
      const std::string t = tail;
      c.add('C', "interp_len_" + std::to_string(len) + "_" + t, [len, t](B& b) {
        std::string name(len - b.dir().size() - 1, 'i');
        std::string interp = b.probe_copy(name);
        std::string text = "#!" + interp;
        if (t == "nl") text += "\n";
        if (t == "arg") text += " ARG\n";
        if (t == "eof_arg") text += " ARG" + std::string(300, 'z');
        b.path = b.file("script", text);
      });
    }
  }
  // Nesting: script k's interpreter is script k-1; script 1's is the probe.
  for (int depth = 1; depth <= 7; ++depth) {
    c.add('C', "nested_depth_" + std::to_string(depth), [depth](B& b) {
      std::string prev = b.probe();
      for (int k = 1; k <= depth; ++k)
        prev = b.file("s" + std::to_string(k), "#!" + prev + " arg" + std::to_string(k) + "\n");
      b.path = prev;
      b.argv = std::vector<std::string>{"top", "X"};
    });
  }
  c.add('C', "nested_relative_names", [](B& b) {
    b.probe_copy("probe");
    b.file("s1", "#!probe a1\n");
    b.file("s2", "#!s1 a2\n");
    b.path = "s2";
  });
  // Interpreter resolution.
  c.add('C', "interp_relative_bare", [](B& b) {
    b.probe_copy("probe");
    b.path = b.file("script", "#!probe\n");
  });
  c.add('C', "interp_relative_dot", [](B& b) {
    b.probe_copy("probe");
    b.path = b.file("script", "#!./probe\n");
  });
  c.add('C', "interp_relative_subdir", [](B& b) {
    b.mkdir("bin");
    b.probe_copy("bin/probe");
    b.path = b.file("script", "#!bin/probe\n");
  });
  c.add('C', "interp_relative_wrong_cwd", [](B& b) {
    b.probe_copy("probe");
    b.path = b.file("script", "#!probe\n");
    b.cwd = b.mkdir("elsewhere");
  });
  c.add('C', "interp_missing", [](B& b) { b.path = b.file("script", "#!" + b.at("missing") + "\n"); });
  c.add('C', "interp_directory", [](B& b) { b.path = b.file("script", "#!" + b.mkdir("d") + "\n"); });
  c.add('C', "interp_not_executable",
        [](B& b) { b.path = b.file("script", "#!" + b.probe_copy("probe", 0644) + "\n"); });
  c.add('C', "interp_exec_only", [](B& b) { b.path = b.file("script", "#!" + b.probe_copy("probe", 0111) + "\n"); });
  c.add('C', "interp_symlink", [](B& b) { b.path = b.file("script", "#!" + b.symlink("ln", b.probe()) + "\n"); });
  c.add('C', "interp_text_without_shebang",
        [](B& b) { b.path = b.file("script", "#!" + b.file("text", "just text, no shebang\n") + "\n"); });
  c.add('C', "interp_zero_length", [](B& b) { b.path = b.file("script", "#!" + b.file("empty", "") + "\n"); });
  c.add('C', "interp_plain_elf", [](B& b) {
    std::string interp = exit_elf(b, "elf", 21);
    b.path = b.file("script", "#!" + interp + " -q\n");
  });
  c.add('C', "interp_elf_with_pt_interp", [](B& b) {
    ElfSpec s = minimal_exec(22);
    std::string interp = b.elf("elf", with_interp(s, b.probe()));
    b.path = b.file("script", "#!" + interp + " -q\n");
  });
  c.add('C', "interp_fifo", [](B& b) { b.path = b.file("script", "#!" + b.fifo("fifo") + "\n"); });
  // The script itself.
  c.add('C', "script_exec_only_no_read", [](B& b) { b.path = b.file("script", "#!" + b.probe() + "\n", 0111); });
  c.add('C', "script_not_executable", [](B& b) { b.path = b.file("script", "#!" + b.probe() + "\n", 0644); });
  c.add('C', "script_relative_bare", [](B& b) {
    b.file("script", "#!" + b.probe() + "\n");
    b.path = "script";
  });
  c.add('C', "script_relative_dot", [](B& b) {
    b.file("script", "#!" + b.probe() + "\n");
    b.path = "./script";
  });
  c.add('C', "script_relative_subdir", [](B& b) {
    b.mkdir("sub");
    b.file("sub/script", "#!" + b.probe() + "\n");
    b.path = "sub/script";
  });
  c.add('C', "script_via_symlink", [](B& b) {
    b.file("script", "#!" + b.probe() + "\n");
    b.path = b.symlink("link", b.at("script"));
  });
  c.add('C', "script_many_args", [](B& b) {
    b.path = b.file("script", "#!" + b.probe() + " opt\n");
    b.argv = std::vector<std::string>{"name-ignored", "a", "", "c d"};
  });
  c.add('C', "script_argv0_differs", [](B& b) {
    b.path = b.file("script", "#!" + b.probe() + "\n");
    b.argv = std::vector<std::string>{"something-else"};
  });
}

// ---- D: ELF header -----------------------------------------------------------
void row_d(Corpus& c) {
  struct Mut {
    std::string name;
    std::function<void(ElfSpec&)> edit;
  };
  std::vector<Mut> muts;
  for (int i = 0; i < 4; ++i)
    muts.push_back(
        {"magic_byte_" + std::to_string(i), [i](ElfSpec& s) { s.ident[static_cast<std::size_t>(i)] ^= 0x20; }});
  for (auto [name, t] : std::vector<std::pair<std::string, std::uint16_t>>{
           {"et_none", kEtNone}, {"et_rel", kEtRel}, {"et_core", kEtCore}, {"et_os_fe00", 0xfe00}, {"et_ffff", 0xffff}})
    muts.push_back({"type_" + name, [t](ElfSpec& s) { s.type = t; }});
  for (auto [name, m] : std::vector<std::pair<std::string, std::uint16_t>>{
           {"em_386", kEm386}, {"em_aarch64", kEmAarch64}, {"em_none", 0}, {"em_ffff", 0xffff}})
    muts.push_back({"machine_" + name, [m](ElfSpec& s) { s.machine = m; }});
  for (unsigned v : {0u, 1u, 3u, 0xffu})
    muts.push_back({"class_" + std::to_string(v), [v](ElfSpec& s) { s.ident[4] = static_cast<std::uint8_t>(v); }});
  for (unsigned v : {0u, 2u, 0xffu})
    muts.push_back({"data_" + std::to_string(v), [v](ElfSpec& s) { s.ident[5] = static_cast<std::uint8_t>(v); }});
  for (unsigned v : {0u, 2u})
    muts.push_back(
        {"ident_version_" + std::to_string(v), [v](ElfSpec& s) { s.ident[6] = static_cast<std::uint8_t>(v); }});
  for (unsigned v : {3u, 0xffu})
    muts.push_back({"osabi_" + std::to_string(v), [v](ElfSpec& s) { s.ident[7] = static_cast<std::uint8_t>(v); }});
  muts.push_back({"abiversion_ff", [](ElfSpec& s) { s.ident[8] = 0xff; }});
  muts.push_back({"ident_padding_garbage", [](ElfSpec& s) {
                    for (std::size_t i = 9; i < 16; ++i) s.ident[i] = 0xa5;
                  }});
  for (unsigned v : {0u, 2u}) muts.push_back({"e_version_" + std::to_string(v), [v](ElfSpec& s) { s.version = v; }});
  muts.push_back({"ehsize_0", [](ElfSpec& s) { s.ehsize = 0; }});
  muts.push_back({"shoff_garbage", [](ElfSpec& s) {
                    s.shoff = 0xdeadbeef;
                    s.shnum = 77;
                    s.shentsize = 3;
                    s.shstrndx = 99;
                  }});
  muts.push_back({"flags_all_ones", [](ElfSpec& s) { s.flags = 0xffffffffu; }});
  for (unsigned v : {0u, 32u, 55u, 57u, 64u, 0xffffu})
    muts.push_back(
        {"phentsize_" + std::to_string(v), [v](ElfSpec& s) { s.phentsize = static_cast<std::uint16_t>(v); }});
  // phnum around the table-size limits (56 * n <= 4096 on <= 6.12, <= 65536 later).
  for (unsigned n : {0u, 72u, 73u, 74u, 1170u, 1171u, 0xffffu}) {
    muts.push_back({"phnum_" + std::to_string(n), [n](ElfSpec& s) {
                      s.phoff = 0x1000;
                      if (n == 0) {
                        s.phnum = 0;
                      } else if (n == 0xffff) {
                        s.phnum = 0xffff;
                        s.phdrs.resize(1200, Phdr{kPtNull, 0, 0, 0, 0, 0, 0, 0});
                      } else {
                        s.phdrs.resize(n, Phdr{kPtNull, 0, 0, 0, 0, 0, 0, 0});
                      }
                    }});
  }
  muts.push_back({"phoff_past_eof", [](ElfSpec& s) {
                    s.phoff = 0x100000;
                    s.write_phdrs = false;
                  }});
  muts.push_back({"phdr_table_truncated", [](ElfSpec& s) {
                    s.phoff = 0x1000;
                    s.phdrs.resize(3, Phdr{kPtNull, 0, 0, 0, 0, 0, 0, 0});
                    s.phdrs[0].filesz = s.phdrs[0].memsz = 0x1000;
                    s.truncate_to = 0x1000 + 56 * 2 + 10;
                  }});
  // e_phoff as a file position: at or past 2^63 it is negative, and so is
  // one whose table would end past 2^63 - 1 (fs/read_write.c rw_verify_area()).
  for (const auto& [label, off] :
       std::vector<std::pair<std::string, std::uint64_t>>{{"phoff_2p63", 0x8000000000000000ull},
                                                          {"phoff_all_ones", 0xffffffffffffffffull},
                                                          {"phoff_end_past_2p63", 0x7fffffffffffffffull - 8},
                                                          {"phoff_2p63_minus_page", 0x7ffffffffffff000ull}})
    muts.push_back({label, [off](ElfSpec& s) {
                      s.phoff = off;
                      s.write_phdrs = false;
                    }});
  muts.push_back({"phoff_zero_overlaps_header", [](ElfSpec& s) {
                    s.phoff = 0;
                    s.write_phdrs = false;
                  }});
  muts.push_back({"phoff_unaligned", [](ElfSpec& s) { s.phoff = 0x41; }});
  muts.push_back({"file_truncated_to_header", [](ElfSpec& s) { s.truncate_to = 64; }});
  muts.push_back({"file_truncated_mid_header", [](ElfSpec& s) { s.truncate_to = 40; }});
  muts.push_back({"file_4_bytes_magic_only", [](ElfSpec& s) { s.truncate_to = 4; }});
  for (const auto& m : muts) {
    auto edit = m.edit;
    c.add('D', m.name, [edit](B& b) {
      ElfSpec s = minimal_exec(31);
      edit(s);
      b.expect_exit = 31;
      b.path = b.elf("exe", s);
    });
  }
  c.add('D', "valid_static_exec", [](B& b) { b.path = exit_elf(b, "exe", 32); });
  c.add('D', "valid_static_pie", [](B& b) {
    b.expect_exit = 33;
    b.path = b.elf("exe", minimal_pie(33));
  });
  c.add('D', "pie_machine_aarch64", [](B& b) {
    ElfSpec s = minimal_pie(33);
    s.machine = kEmAarch64;
    b.path = b.elf("exe", s);
  });
}

// ---- E: PT_INTERP ---------------------------------------------------------------
void row_e(Corpus& c) {
  // Main program (exit 41, never expected to run: the interpreter gets control).
  auto main_with = [](B& b, std::string_view interp) {
    ElfSpec s = minimal_exec(41);
    return b.elf("exe", with_interp(s, interp));
  };
  auto main_raw = [](B& b, std::string_view bytes) {
    ElfSpec s = minimal_exec(41);
    return b.elf("exe", interp_raw(s, bytes));
  };
  c.add('E', "probe_interp_static_exec", [main_with](B& b) { b.path = main_with(b, b.probe()); });
  c.add('E', "probe_interp_pie", [](B& b) {
    ElfSpec s = minimal_pie(41);
    b.path = b.elf("exe", with_interp(s, b.probe()));
  });
  c.add('E', "missing", [main_with](B& b) { b.path = main_with(b, b.at("missing")); });
  c.add('E', "not_nul_terminated", [main_raw](B& b) { b.path = main_raw(b, b.probe()); });
  c.add('E', "filesz_1_nul", [main_raw](B& b) { b.path = main_raw(b, std::string(1, '\0')); });
  c.add('E', "filesz_1_char", [main_raw](B& b) { b.path = main_raw(b, "/"); });
  c.add('E', "two_nuls_empty_path", [main_raw](B& b) { b.path = main_raw(b, std::string(2, '\0')); });
  for (std::size_t filesz : {4095u, 4096u, 4097u}) {
    c.add('E', "filesz_" + std::to_string(filesz) + "_slash_padded", [main_raw, filesz](B& b) {
      std::string p = b.probe();
      std::string bytes = std::string(filesz - 1 - p.size(), '/') + p;
      bytes.push_back('\0');
      b.path = main_raw(b, bytes);
    });
  }
  c.add('E', "offset_past_eof", [](B& b) {
    ElfSpec s = minimal_exec(41);
    with_interp(s, b.probe());
    s.first(kPtInterp)->offset = 0x100000;
    b.path = b.elf("exe", s);
  });
  c.add('E', "range_straddles_eof", [](B& b) {
    ElfSpec s = minimal_exec(41);
    with_interp(s, b.probe());
    s.first(kPtInterp)->offset = kMinimalSize - 4;
    b.path = b.elf("exe", s);
  });
  c.add('E', "directory", [main_with](B& b) { b.path = main_with(b, b.mkdir("d")); });
  for (std::size_t size : {10u, 63u, 64u, 200u}) {
    c.add('E', "interp_text_" + std::to_string(size) + "_bytes",
          [main_with, size](B& b) { b.path = main_with(b, b.file("interp", std::string(size, 't'))); });
  }
  c.add('E', "interp_is_script", [main_with](B& b) {
    std::string text = "#!" + b.probe() + "\n" + std::string(100, '#') + "\n";
    b.path = main_with(b, b.file("interp", text));
  });
  c.add('E', "interp_zero_length", [main_with](B& b) { b.path = main_with(b, b.file("interp", "")); });
  struct InterpMut {
    std::string name;
    std::function<void(ElfSpec&)> edit;
  };
  const std::vector<InterpMut> interp_muts{
      {"interp_em_aarch64", [](ElfSpec& s) { s.machine = kEmAarch64; }},
      {"interp_bad_magic", [](ElfSpec& s) { s.ident[1] = 'X'; }},
      {"interp_phentsize_32", [](ElfSpec& s) { s.phentsize = 32; }},
      {"interp_phnum_0", [](ElfSpec& s) { s.phnum = 0; }},
      {"interp_phoff_past_eof",
       [](ElfSpec& s) {
         s.phoff = 0x100000;
         s.write_phdrs = false;
       }},
      {"interp_phoff_2p63",
       [](ElfSpec& s) {
         s.phoff = 0x8000000000000000ull;
         s.write_phdrs = false;
       }},
      {"interp_et_rel", [](ElfSpec& s) { s.type = kEtRel; }},
      {"interp_et_core", [](ElfSpec& s) { s.type = kEtCore; }},
      {"interp_no_pt_load", [](ElfSpec& s) { s.phdrs[0].type = kPtNote; }},
      {"interp_filesz_gt_memsz", [](ElfSpec& s) { s.phdrs[0].memsz = 0x10; }},
      {"interp_own_pt_interp_ignored", [](ElfSpec& s) { with_interp(s, "/nonexistent/ld.so"); }},
      {"interp_class_32_runs", [](ElfSpec& s) { s.ident[4] = 1; }},
      {"interp_ro_bss", [](ElfSpec& s) { s.phdrs[0].memsz = 0x3000; }},
  };
  for (const auto& m : interp_muts) {
    auto edit = m.edit;
    c.add('E', m.name, [main_with, edit](B& b) {
      ElfSpec interp = minimal_pie(42);
      edit(interp);
      b.path = main_with(b, b.elf("interp", interp));
    });
  }
  c.add('E', "interp_plain_pie_runs", [main_with](B& b) {
    b.expect_exit = 43;
    b.path = main_with(b, b.elf("interp", minimal_pie(43)));
  });
  c.add('E', "interp_et_exec_no_overlap", [](B& b) {
    ElfSpec interp = minimal_exec(44);
    interp.phdrs[0].vaddr = interp.phdrs[0].paddr = 0x800000;
    interp.entry = 0x800000 + kCodeOffset;
    ElfSpec s = minimal_pie(41);
    b.expect_exit = 44;
    b.path = b.elf("exe", with_interp(s, b.elf("interp", interp)));
  });
  c.add('E', "interp_et_exec_overlapping_main", [main_with](B& b) {
    b.expect_exit = 45;
    b.path = main_with(b, b.elf("interp", minimal_exec(45)));
  });
  c.add('E', "interp_is_main_itself", [](B& b) {
    ElfSpec s = minimal_exec(46);
    b.expect_exit = 46;
    b.path = b.elf("exe", with_interp(s, b.at("exe")));
  });
  c.add('E', "interp_not_executable", [main_with](B& b) { b.path = main_with(b, b.probe_copy("probe", 0644)); });
  c.add('E', "interp_exec_only", [main_with](B& b) { b.path = main_with(b, b.probe_copy("probe", 0111)); });
  c.add('E', "interp_symlink", [main_with](B& b) { b.path = main_with(b, b.symlink("ln", b.probe())); });
  c.add('E', "interp_trailing_slash", [main_with](B& b) { b.path = main_with(b, b.probe() + "/"); });
  c.add('E', "two_pt_interp_good_first", [](B& b) {
    ElfSpec s = minimal_exec(41);
    with_interp(s, b.probe());
    interp_raw(s, b.at("missing") + std::string(1, '\0'), 0xc00);
    b.path = b.elf("exe", s);
  });
  c.add('E', "two_pt_interp_missing_first", [](B& b) {
    ElfSpec s = minimal_exec(41);
    with_interp(s, b.at("missing"));
    interp_raw(s, b.probe() + std::string(1, '\0'), 0xc00);
    b.path = b.elf("exe", s);
  });
  c.add('E', "embedded_nul",
        [main_raw](B& b) { b.path = main_raw(b, b.probe() + std::string("\0garbage", 8) + std::string(1, '\0')); });
  c.add('E', "relative_interp_cwd", [main_with](B& b) {
    b.probe_copy("probe");
    b.path = main_with(b, "probe");
  });
  c.add('E', "relative_interp_wrong_cwd", [main_with](B& b) {
    b.probe_copy("probe");
    b.path = main_with(b, "probe");
    b.cwd = b.mkdir("elsewhere");
  });
  c.add('E', "pt_interp_after_pt_load", [](B& b) {
    ElfSpec s = minimal_exec(41);
    with_interp(s, b.probe());
    std::swap(s.phdrs[0], s.phdrs[1]);
    b.path = b.elf("exe", s);
  });
}

// ---- F: segments -----------------------------------------------------------------
// S made a PIE (its text at 0) with an empty PT_LOAD at VADDR.
void pie_with_empty_segment_at(ElfSpec& s, std::uint64_t vaddr) {
  s.type = kEtDyn;
  s.entry = kCodeOffset;
  s.phdrs[0].vaddr = 0;
  s.phdrs.push_back(Phdr{kPtLoad, kPfR | kPfX, 0, vaddr, 0, 0, 0, 0x1000});
}

void row_f(Corpus& c) {
  struct Mut {
    std::string name;
    std::function<void(ElfSpec&)> edit;
    bool root = false;
    bool no_rand = false;
  };
  constexpr std::uint64_t kTaskSize = 0x7ffffffff000ull;
  const std::vector<Mut> muts{
      {"filesz_gt_memsz",
       [](ElfSpec& s) {
         s.phdrs[0].memsz = 0x10;
         s.phdrs[0].filesz = 0x1000;
       }},
      {"offset_vaddr_misaligned",
       [](ElfSpec& s) {
         s.phdrs[0].vaddr += 0x10;
         s.entry += 0x10;
       }},
      {"offset_vaddr_congruent_nonzero",
       [](ElfSpec& s) {
         s.phdrs[0].offset = 0x10;
         s.phdrs[0].vaddr += 0x10;
         s.phdrs[0].filesz = s.phdrs[0].memsz = 0xff0;
       }},
      {"memsz_huge",
       [](ElfSpec& s) {
         s.phdrs[0].memsz = 1ull << 47;
         s.phdrs[0].filesz = 0x1000;
       }},
      {"memsz_past_task_size",
       [kTaskSize](ElfSpec& s) {
         s.phdrs[0].memsz = kTaskSize - 0x400000 + 0x1000;
         s.phdrs[0].filesz = 0x1000;
       }},
      {"vaddr_ge_task_size",
       [kTaskSize](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtLoad, kPfR, 0, kTaskSize, 0, 0x100, 0x100, 0x1000});
       }},
      {"entry_ge_task_size", [](ElfSpec& s) { s.entry = 0x800000000000ull; }},
      {"entry_unmapped", [](ElfSpec& s) { s.entry = 0x10000000; }},
      {"entry_zero", [](ElfSpec& s) { s.entry = 0; }},
      {"no_pt_load_exec", [](ElfSpec& s) { s.phdrs[0].type = kPtNote; }},
      {"no_pt_load_dyn",
       [](ElfSpec& s) {
         s.phdrs[0].type = kPtNote;
         s.type = kEtDyn;
         s.entry = kCodeOffset;
         s.phdrs[0].vaddr = 0;
       }},
      {"text_not_executable", [](ElfSpec& s) { s.phdrs[0].flags = kPfR; }},
      {"text_exec_only", [](ElfSpec& s) { s.phdrs[0].flags = kPfX; }},
      {"text_rwx", [](ElfSpec& s) { s.phdrs[0].flags = kPfR | kPfW | kPfX; }},
      {"overlap_rw_over_text",
       [](ElfSpec& s) {
         Phdr p = s.phdrs[0];
         p.flags = kPfR | kPfW;
         s.phdrs.push_back(p);
       }},
      {"overlap_duplicate_text", [](ElfSpec& s) { s.phdrs.push_back(s.phdrs[0]); }},
      {"out_of_order_exec",
       [](ElfSpec& s) {
         s.phdrs.insert(s.phdrs.begin(), Phdr{kPtLoad, kPfR | kPfW, 0, 0x600000, 0x600000, 0x100, 0x2000, 0x1000});
       }},
      {"out_of_order_dyn",
       [](ElfSpec& s) {
         s.type = kEtDyn;
         s.entry = kCodeOffset;
         s.phdrs[0].vaddr = 0;
         s.phdrs.insert(s.phdrs.begin(), Phdr{kPtLoad, kPfR | kPfW, 0, 0x200000, 0, 0x100, 0x2000, 0x1000});
       }},
      {"filesz_zero_anon_segment",
       [](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtLoad, kPfR | kPfW, 0, 0x600000, 0, 0, 0x3000, 0x1000});
       }},
      {"bss_rw_big",
       [](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtLoad, kPfR | kPfW, 0, 0x600000, 0, 0x800, 0x100000, 0x1000});
       }},
      {"vaddr_zero_exec",
       [](ElfSpec& s) {
         s.phdrs[0].vaddr = 0;
         s.entry = kCodeOffset;
       }},
      {"vaddr_zero_exec_root",
       [](ElfSpec& s) {
         s.phdrs[0].vaddr = 0;
         s.entry = kCodeOffset;
       },
       true},
      {"vaddr_below_mmap_min_addr",
       [](ElfSpec& s) {
         s.phdrs[0].vaddr = 0x0;
         s.phdrs.push_back(Phdr{kPtLoad, kPfR, 0, 0x400000, 0, 0x1000, 0x1000, 0x1000});
         s.entry = 0x400000 + kCodeOffset;
         s.phdrs[0].filesz = s.phdrs[0].memsz = 0x100;
       }},
      {"first_segment_over_stack",
       [kTaskSize](ElfSpec& s) {
         s.phdrs.insert(s.phdrs.begin(), Phdr{kPtLoad, kPfR, 0, kTaskSize - 0x2000, 0, 0x1000, 0x1000, 0x1000});
       },
       false, true},
      {"segment_over_stack",
       [kTaskSize](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtLoad, kPfR, 0, kTaskSize - 0x2000, 0, 0x1000, 0x1000, 0x1000});
       },
       false, true},
      {"gnu_stack_rwx",
       [](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtGnuStack, kPfR | kPfW | kPfX, 0, 0, 0, 0, 0, 16});
       }},
      {"gnu_stack_rw",
       [](ElfSpec& s) {
         s.phdrs.push_back(Phdr{kPtGnuStack, kPfR | kPfW, 0, 0, 0, 0, 0, 16});
       }},
      {"align_zero", [](ElfSpec& s) { s.phdrs[0].align = 0; }},
      {"align_not_power_of_two", [](ElfSpec& s) { s.phdrs[0].align = 0x3000; }},
      {"pie_align_2m",
       [](ElfSpec& s) {
         s.type = kEtDyn;
         s.entry = kCodeOffset;
         s.phdrs[0].vaddr = 0;
         s.phdrs[0].align = 0x200000;
       }},
      {"pie_vaddr_nonzero", [](ElfSpec& s) { s.type = kEtDyn; }},
      // An empty PT_LOAD far above the first: the first segment is mapped with
      // the whole span (total_mapping_size()), which must fit.
      {"pie_empty_segment_span_fits", [](ElfSpec& s) { pie_with_empty_segment_at(s, 0x10000000); }},
      {"pie_empty_segment_span_past_task_size", [](ElfSpec& s) { pie_with_empty_segment_at(s, 0x7a0000004000ull); }},
      {"pie_interp_empty_segment_span_past_task_size",
       [](ElfSpec& s) {
         pie_with_empty_segment_at(s, 0x7a0000004000ull);
         with_interp(s, "/lib64/ld-linux-x86-64.so.2");
       }},
  };
  for (const auto& m : muts) {
    auto edit = m.edit;
    bool root = m.root, no_rand = m.no_rand;
    c.add('F', m.name, [edit, root, no_rand](B& b) {
      ElfSpec s = minimal_exec(51);
      edit(s);
      b.as_root = root;
      b.addr_no_randomize = no_rand;
      b.expect_exit = 51;
      b.path = b.elf("exe", s);
    });
  }
  // bss zeroing: the code exits with the first bss byte, which the file holds as 0x5a.
  for (bool writable : {true, false}) {
    c.add('F', writable ? "bss_tail_rw_zeroed" : "bss_tail_ro_not_zeroed", [writable](B& b) {
      ElfSpec s = minimal_exec(0);
      const std::uint64_t data_off = 0x2000, data_va = 0x602000, filesz = 0x10;
      s.blobs.clear();
      s.blob(kCodeOffset, code_exit_with_byte_at(data_va + filesz));
      s.blob(data_off, Bytes(0x1000, 0x5a));
      s.phdrs[0].filesz = s.phdrs[0].memsz = 0x1000;
      s.phdrs.push_back(Phdr{kPtLoad, writable ? (kPfR | kPfW) : kPfR, data_off, data_va, 0, filesz, 0x3000, 0x1000});
      b.exit_byte = CaseBuilder::ExitByte{data_va + filesz, 0x5a};
      b.path = b.elf("exe", s);
    });
  }
}

// ---- G: auxv ----------------------------------------------------------------------
void row_g(Corpus& c) {
  struct Var {
    std::string name;
    std::function<void(B&)> build;
  };
  const std::vector<Var> vars{
      {"probe_direct", [](B& b) { b.path = b.probe(); }},
      {"exec_with_probe_interp",
       [](B& b) {
         ElfSpec s = minimal_exec(61);
         b.path = b.elf("exe", with_interp(s, b.probe()));
       }},
      {"pie_with_probe_interp",
       [](B& b) {
         ElfSpec s = minimal_pie(61);
         b.path = b.elf("exe", with_interp(s, b.probe()));
       }},
      {"pie_with_pt_phdr",
       [](B& b) {
         ElfSpec s = minimal_pie(61);
         with_interp(s, b.probe());
         s.phdrs.insert(s.phdrs.begin(), Phdr{kPtPhdr, kPfR, 64, 64, 64, 56 * 3, 56 * 3, 8});
         b.path = b.elf("exe", s);
       }},
      {"phoff_not_in_any_load",
       [](B& b) {
         ElfSpec s = minimal_exec(61);
         with_interp(s, b.probe());
         s.phoff = 0x1000;
         s.first(kPtLoad)->filesz = s.first(kPtLoad)->memsz = 0x1000;
         b.path = b.elf("exe", s);
       }},
      {"phnum_7_with_null_padding",
       [](B& b) {
         ElfSpec s = minimal_exec(61);
         with_interp(s, b.probe());
         s.phdrs.resize(7, Phdr{kPtNull, 0, 0, 0, 0, 0, 0, 0});
         b.path = b.elf("exe", s);
       }},
      {"pie_align_2m_with_interp",
       [](B& b) {
         ElfSpec s = minimal_pie(61);
         with_interp(s, b.probe());
         s.first(kPtLoad)->align = 0x200000;
         b.path = b.elf("exe", s);
       }},
      {"script_probe", [](B& b) { b.path = b.file("script", "#!" + b.probe() + " -g\n"); }},
      {"relative_execfn",
       [](B& b) {
         b.probe_copy("probe");
         b.path = "./probe";
       }},
      {"root_creds_probe",
       [](B& b) {
         b.as_root = true;
         b.path = b.probe();
       }},
      {"empty_env",
       [](B& b) {
         b.envp.clear();
         b.path = b.probe();
       }},
  };
  for (bool norand : {true, false}) {
    for (const auto& v : vars) {
      auto build = v.build;
      c.add('G', v.name + (norand ? "_norandom" : "_random"), [build, norand](B& b) {
        b.addr_no_randomize = norand;
        b.check_auxv = true;
        build(b);
      });
    }
  }
}

// ---- M: binfmt_misc -------------------------------------------------------------------
void row_m(Corpus& c) {
  auto entries = [](B& b) { return b.binfmt(); };
  c.add('M', "magic_plain", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->plain_magic + " payload\n");
    b.check_auxv = true;
    b.addr_no_randomize = true;
  });
  c.add('M', "magic_preserve_argv0", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->preserve_magic + " payload\n");
    b.argv = std::vector<std::string>{"argv0-kept", "x1"};
    b.check_auxv = true;
    b.addr_no_randomize = true;
  });
  c.add('M', "magic_missing_interpreter", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->missing_magic + " payload\n");
  });
  c.add('M', "magic_argv_null", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->plain_magic + " payload\n");
    b.argv_null = true;
  });
  c.add('M', "magic_preserve_argv_null", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->preserve_magic + " payload\n");
    b.argv_null = true;
  });
  c.add('M', "magic_not_executable", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("data", e->plain_magic + " payload\n", 0644);
  });
  c.add('M', "magic_relative_path", [entries](B& b) {
    if (auto* e = entries(b)) b.file("data", e->plain_magic + " payload\n");
    b.path = "data";
  });
  c.add('M', "extension_match", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("prog." + e->extension, "anything at all\n");
  });
  c.add('M', "extension_match_shebang_content", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("prog." + e->extension, "#!/nonexistent/interp\n");
  });
  c.add('M', "extension_no_match_other_ext", [entries](B& b) {
    if (auto* e = entries(b)) b.path = b.file("prog." + e->extension + "x", "anything at all\n");
  });
  c.add('M', "script_interp_is_misc_file", [entries](B& b) {
    if (auto* e = entries(b)) {
      std::string data = b.file("data", e->plain_magic + " payload\n");
      b.path = b.file("script", "#!" + data + " sarg\n");
    }
  });
}

}  // namespace

const std::vector<ExecCase>& exec_corpus() {
  static const std::vector<ExecCase> cases = [] {
    Corpus c;
    row_a(c);
    row_b(c);
    row_c(c);
    row_d(c);
    row_e(c);
    row_f(c);
    row_g(c);
    row_m(c);
    return std::move(c.cases);
  }();
  return cases;
}

OracleRequest oracle_request(const CaseBuilder& b) {
  OracleRequest r;
  r.path = b.path;
  r.argv = b.argv ? *b.argv : std::vector<std::string>{b.path, "x1"};
  r.argv_null = b.argv_null;
  r.envp = b.envp;
  r.cwd = b.cwd.empty() ? b.dir() : b.cwd;
  r.keep_credentials = b.as_root || ::geteuid() != 0;
  r.addr_no_randomize = b.addr_no_randomize;
  r.rlimit_stack = b.rlimit_stack;
  return r;
}

}  // namespace procforge::testsupport
