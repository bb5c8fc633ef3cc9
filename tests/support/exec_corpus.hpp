// The exec differential corpus (reference/kernel-exec.md section 8, rows A-G,
// plus binfmt_misc): cases GENERATED in code. A case only builds a fixture
// and a request; what should happen is never written down here: the kernel
// (oracle.hpp) says what happens, the model (exec::predict) says what it
// expects, and the test compares the two.
//
// Each case builds its files in a fresh mkdtemp directory under /tmp (0755,
// so the unprivileged caller, nobody by default, can traverse it), removed
// when the case ends. Shared resources are set up lazily, once per process:
// a copy of probe_args, a noexec tmpfs (in a private mount namespace), and
// binfmt_misc entries (removed by SharedEnv::teardown(), or at exit).
//
// binfmt_misc keeps one table per user namespace, not per mount: entries
// outlive a private mount and the process that registered them for as long
// as binfmt_misc is mounted anywhere in the namespace (a host's own
// /proc/sys/fs/binfmt_misc usually is). A run that crashes leaves its
// entries there, so every entry is named
// kBinfmtPrefix + kind + "_" + the registering pid in hex, and the first use
// of binfmt() unregisters those whose process is gone.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elf_builder.hpp"
#include "oracle.hpp"

namespace procforge::testsupport {

inline constexpr std::string_view kBinfmtPrefix = "pfexec_";

// Unregisters every entry in binfmt_dir named like ours whose pid no longer
// exists (a live pid is another test run's, in parallel); returns their names.
std::vector<std::string> remove_stale_binfmt_entries(const std::string& binfmt_dir = "/proc/sys/fs/binfmt_misc");

struct BinfmtEntries {
  std::string plain_magic;     // files starting with this run probe_args (no flags)
  std::string preserve_magic;  // ... with the P flag
  std::string missing_magic;   // ... with an interpreter that does not exist
  std::string extension;       // files named *.<extension> run probe_args
};

// Why a shared resource is missing: the machine cannot provide it (not root,
// the kernel lacks the feature: the case is skipped), or setting it up failed
// where it should have worked (a harness failure: the case fails).
struct Unavailable {
  std::string why;
  bool harness_failure = false;
};

class SharedEnv {
 public:
  static SharedEnv& get();

  // Copy of probe_args readable and executable by everyone; empty + why on failure.
  const std::string& probe(Unavailable* why = nullptr);
  // A directory on a noexec tmpfs mount, private to this process's mount namespace.
  const std::string& noexec_dir(Unavailable* why);
  // binfmt_misc entries whose interpreter is probe_args; nullptr + why when unavailable.
  const BinfmtEntries* binfmt(Unavailable* why);
  // Something in the environment changed (mounts, binfmt entries): bumps on each change.
  int generation() const { return generation_; }
  // Unregisters this process's binfmt entries.
  void unregister_binfmt();
  // Unregisters binfmt entries and removes the shared directory.
  void teardown();

 private:
  bool ensure_namespace(Unavailable* why);
  std::string dir_;
  std::string probe_;
  Unavailable probe_why_;
  std::string noexec_;
  Unavailable noexec_why_;
  bool ns_tried_ = false, ns_ok_ = false;
  Unavailable ns_why_;
  bool binfmt_tried_ = false;
  std::optional<BinfmtEntries> binfmt_;
  Unavailable binfmt_why_;
  std::vector<std::string> binfmt_files_;  // /proc/sys/fs/binfmt_misc/<name> to unregister
  pid_t binfmt_owner_ = 0;                 // the process that registered them
  int generation_ = 0;
};

// One case's fixture and request, filled in by the case's build function.
class CaseBuilder {
 public:
  CaseBuilder();
  ~CaseBuilder();
  CaseBuilder(const CaseBuilder&) = delete;
  CaseBuilder& operator=(const CaseBuilder&) = delete;

  // The fresh directory for this case (no trailing slash).
  const std::string& dir() const { return dir_; }
  std::string at(std::string_view name) const { return dir_ + "/" + std::string(name); }

  // Fixture helpers; names are relative to dir() unless absolute. They return
  // the absolute path and record a setup failure (the case fails) if anything
  // fails, or a skip where the machine legitimately cannot (not root).
  std::string file(std::string_view name, std::string_view bytes, unsigned mode = 0755);
  std::string elf(std::string_view name, const ElfSpec& spec, unsigned mode = 0755);
  std::string probe_copy(std::string_view name, unsigned mode = 0755);
  std::string mkdir(std::string_view name, unsigned mode = 0755);
  std::string symlink(std::string_view name, std::string_view target);
  std::string fifo(std::string_view name, unsigned mode = 0755);
  std::string socket(std::string_view name);
  std::string mknod(std::string_view name, unsigned mode, unsigned major, unsigned minor);
  void chown(const std::string& path, unsigned uid, unsigned gid);
  // Keeps an fd open on path until the case ends (e.g. O_WRONLY for ETXTBSY).
  void hold_open(const std::string& path, int flags);
  // A fresh directory on the noexec mount (skip when the machine cannot have one).
  std::string noexec_subdir();
  // The shared probe_args path.
  std::string probe();
  // The shared binfmt_misc entries; nullptr (and a skip or a setup failure) when unavailable.
  const BinfmtEntries* binfmt();
  // A legitimate reason not to run the case (GTEST_SKIP). Only the first
  // reason or failure counts: what follows it is its consequence (a file on
  // a mount that is not there cannot be written either).
  void skip(std::string reason) {
    if (skip_.empty() && setup_error_.empty()) skip_ = std::move(reason);
  }
  // The harness failed to build the fixture: the case fails.
  void setup_failed(const std::string& what) {
    if (setup_error_.empty() && skip_.empty()) setup_error_ = what;
  }
  void unavailable(const std::string& what, const Unavailable& u);

  // The request. argv defaults to {path, "x1"} when left unset.
  std::string path;
  std::optional<std::vector<std::string>> argv;
  bool argv_null = false;
  std::vector<std::string> envp{"PROCFORGE_DIFF=1"};
  std::string cwd;       // defaults to dir()
  bool as_root = false;  // exec with the caller's credentials (root) instead of nobody
  bool addr_no_randomize = false;
  rlim_t rlimit_stack = 8ull << 20;
  std::optional<int> expect_exit;  // exit status the final image is built to return
  bool check_auxv = false;         // compare auxv types/values with the plan
  // The final image exits with the byte at `address` of its memory, which the
  // file holds as `file_byte`: the exit status shows whether the kernel zeroed it.
  struct ExitByte {
    std::uint64_t address;
    std::uint8_t file_byte;
  };
  std::optional<ExitByte> exit_byte;
  const std::string& skip_reason() const { return skip_; }
  const std::string& setup_error() const { return setup_error_; }

 private:
  std::string dir_;
  std::vector<std::string> extra_dirs_;
  std::vector<int> fds_;
  std::string skip_;
  std::string setup_error_;
};

struct ExecCase {
  std::string name;  // [A-Za-z0-9_], unique
  char row;          // 'A'..'G', 'M' (binfmt_misc)
  std::function<void(CaseBuilder&)> build;
};

const std::vector<ExecCase>& exec_corpus();

// The request a built case asks for: argv defaults to {path, "x1"}, cwd to the
// case directory, credentials nobody unless the case runs as root (or we are
// not root: then everything runs as ourselves).
OracleRequest oracle_request(const CaseBuilder& b);

}  // namespace procforge::testsupport
