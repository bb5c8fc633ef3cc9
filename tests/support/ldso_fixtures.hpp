// Library-search fixtures for the ld.so differential tests, BUILT by the
// tests with the system gcc and ld into a fresh temp directory: programs and
// libraries with DT_RPATH / DT_RUNPATH / $ORIGIN / -z nodefaultlib /
// version scripts / DT_AUDIT, plus files ld.so must skip (ELF32) or refuse
// (bad magic). A case says only how to build and how to run; what happens
// comes from the real ld.so (run_command) and what we expect from
// ldso::resolve(); the test compares the two.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace procforge::testsupport {

struct CommandResult {
  bool started = false;  // fork+exec worked (exit_code 127 from a failed exec otherwise)
  int exit_code = -1;    // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;  // killed (SIGKILL) at CommandOptions::timeout_ms
  std::string out, err;
};

struct CommandOptions {
  std::vector<std::string> env;   // the whole environment (not inherited)
  std::string cwd;                // empty: inherit
  std::optional<uid_t> uid;       // drop to this uid/gid (setgroups({gid})) before exec
  gid_t gid = 65534;
  int timeout_ms = 10000;
};

// fork + execv(argv[0]) with stdout/stderr captured.
CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& opts = {});

// A fresh 0755 directory under /tmp, removed with everything in it on
// destruction.
class FixtureDir {
 public:
  FixtureDir();
  ~FixtureDir();
  FixtureDir(const FixtureDir&) = delete;
  FixtureDir& operator=(const FixtureDir&) = delete;

  [[nodiscard]] const std::string& path() const { return dir_; }
  [[nodiscard]] std::string at(const std::string& rel) const { return dir_ + "/" + rel; }
  // Creates parent directories as needed. Returns the absolute path.
  std::string write(const std::string& rel, const std::string& content, unsigned mode = 0644);
  std::string mkdirs(const std::string& rel);
  std::string symlink(const std::string& rel, const std::string& target);
  // Runs gcc ARGS in the directory; false (with the compiler output in
  // error()) when it fails.
  bool gcc(const std::vector<std::string>& args);
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
};

// One fixture: a program plus how the oracle runs it.
struct LdsoCase {
  std::string name;
  std::string program;               // absolute path as executed (may be a symlink)
  std::vector<std::string> env;      // extra environment (LD_LIBRARY_PATH=..., LD_PRELOAD=...)
  std::string cwd;                   // the directory the program runs in
  bool secure = false;               // set-uid root copy run as nobody (AT_SECURE)
  bool run_for_real = false;         // the interesting part is a fatal error: run the program and read stderr
  bool list_with_ldso = true;        // also compare `ld.so --list PROGRAM` (explicit-loader mode)
  std::string canary;                // audit cases: the file la_version() creates
};

// Names of every search case, in a fixed order. "dt_audit" (an executable
// whose DT_AUDIT module writes LdsoCase::canary from la_version) is built by
// name only: running ld.so on it runs the module.
std::vector<std::string> ldso_case_names();
// Builds case NAME inside DIR. nullopt with WHY when the toolchain cannot
// build it (the test then skips, visibly).
std::optional<LdsoCase> build_ldso_case(const std::string& name, FixtureDir& dir, std::string* why);

}  // namespace procforge::testsupport
