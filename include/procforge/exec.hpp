// The kernel's execve() as a prediction: given a path, argv, envp, cwd and
// credentials, say what fs/exec.c, binfmt_misc, binfmt_script and binfmt_elf
// (x86_64, Linux 6.x) would do, without executing or mapping anything for
// execution. The rules and their sources are in src/exec/; this header is the
// contract the CLI, the tests and the later stages (user-space loader, spawn)
// share.
//
//   exec::Request req;
//   req.path = "/usr/bin/ls";
//   req.argv = {"ls", "-l"};
//   req.envp = {"PATH=/usr/bin:/bin"};
//   auto p = exec::predict(req, exec::SystemFacts::probe());
//   if (!p) return p.error();                     // the question cannot be answered
//   if (p->outcome == exec::Outcome::error) ...   // execve fails: p->err, p->diagnosis, p->fix
//   if (p->plan) ...                              // p->plan->entry, auxv, mappings
//   // ld.so's half: ldso::predict_after_exec(req, *p, ldso::SystemInfo::probe())
//
// Threads: predict() and predict_command() keep no state between calls and
// may run concurrently, each with its own Request and Prediction; a shared
// SystemFacts or OpenWriters is only read. Process-wide, read once and kept
// for the life of the process: vm.overcommit_memory with MemTotal + SwapTotal,
// fs.protected_symlinks and vm.mmap_rnd_bits (function-local statics). Without
// Request::writers, a predict() that reaches the ETXTBSY check scans /proc itself.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procforge/elf.hpp"
#include "procforge/open_writers.hpp"
#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::exec {

// Who asks. Permission checks follow fs/namei.c generic_permission() and
// capable_wrt_inode_uidgid() for CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
struct Credentials {
  uid_t uid = 0, euid = 0, suid = 0, fsuid = 0;
  gid_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
  std::vector<gid_t> groups;
  bool cap_dac_override = false;
  bool cap_dac_read_search = false;
  bool cap_sys_rawio = false;  // mmap below vm.mmap_min_addr (security/min_addr.c)
  bool cap_sys_admin = false;  // with CAP_CHECKPOINT_RESTORE: may set /proc/PID/exe (kernel/sys.c)
  bool cap_checkpoint_restore = false;
  bool no_new_privs = false;

  // The calling process's credentials and effective capabilities.
  static Credentials current();
  // An unprivileged identity (no capabilities), e.g. nobody.
  static Credentials unprivileged(uid_t uid, gid_t gid);
};

// Facts about the running kernel that change the rules. Read once with
// SystemFacts::probe(); tests may construct them to model another version.
struct SystemFacts {
  std::string release;  // uname -r
  int major = 0, minor = 0, patch = 0;
  std::uint64_t phdr_table_max = 65536;  // bytes; 4096 before the limit was relaxed (<= 6.12)
  bool rseq_auxv = true;                 // AT_RSEQ_FEATURE_SIZE / AT_RSEQ_ALIGN (6.3+)
  bool argc_zero_fixup = true;           // argv[0] = "" when argc == 0 (5.18+)
  int randomize_va_space = 2;            // /proc/sys/kernel/randomize_va_space
  std::uint64_t mmap_min_addr = 4096;    // /proc/sys/vm/mmap_min_addr
  std::uint64_t hwcap = 0;               // AT_HWCAP as this process received it
  std::uint64_t hwcap2 = 0;              // AT_HWCAP2
  std::uint64_t minsigstksz = 0;         // AT_MINSIGSTKSZ
  bool vdso = true;                      // AT_SYSINFO_EHDR present in our own auxv
  std::uint64_t vdso_size = 0;           // bytes of the [vdso] mapping (plus [vvar] before it)
  std::uint64_t vvar_size = 0;
  bool ia32_emulation = true;  // CONFIG_IA32_EMULATION: compat_binfmt_elf runs i386 ELF files
  bool binfmt_misc_mounted = false;
  std::string binfmt_misc_dir = "/proc/sys/fs/binfmt_misc";

  static SystemFacts probe();
  // Facts for a given kernel version with this machine's CPU facts.
  static SystemFacts for_version(int major, int minor, int patch);
};

// The random values the kernel draws during an exec. With them a prediction
// under ASLR is exact: the user-space loader throws them itself.
namespace detail {
struct ExecHooks;
}  // namespace detail

struct Dice {
  std::uint64_t pie_rnd_pages = 0;              // arch_mmap_rnd() added to ELF_ET_DYN_BASE for a PIE
  std::uint64_t mmap_rnd_pages = 0;             // arch_rnd() subtracted in mmap_base()
  std::uint64_t stack_rnd_pages = 0;            // randomize_stack_top()
  std::uint32_t setup_align = 0;                // arch_align_stack() in setup_arg_pages(), < 8192
  std::uint32_t tables_align = 0;               // arch_align_stack() in create_elf_tables(), < 8192
  std::uint64_t brk_rnd_pages = 0;              // randomize_page() for brk
  std::array<std::uint8_t, 16> random_bytes{};  // AT_RANDOM

  // Drawn from getrandom() with the kernel's ranges (vm.mmap_rnd_bits ...).
  static Dice roll();
};

struct Request {
  std::string path;               // as passed to execve (execveat: relative to dirfd; "" with AT_EMPTY_PATH)
  std::vector<std::string> argv;  // as passed; may be empty
  bool argv_null = false;         // execve(path, NULL, ...) (same effect as empty)
  std::vector<std::string> envp;
  std::string cwd;  // empty = the caller's cwd
  // execveat(dirfd, path, argv, envp, at_flags); fexecve(fd) is
  // execveat(fd, "", ..., AT_EMPTY_PATH). DIRFD is a descriptor of the
  // calling process (the model looks at it: its file, its close-on-exec
  // flag); -100 (AT_FDCWD) with at_flags 0 is execve().
  int dirfd = -100;
  int at_flags = 0;  // AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW; anything else is EINVAL
  Credentials creds = Credentials::current();
  std::uint64_t rlimit_stack = 8ull << 20;  // soft RLIMIT_STACK in bytes (RLIM_INFINITY allowed)
  bool addr_no_randomize = false;           // personality(ADDR_NO_RANDOMIZE)
  // Files open for writing (ETXTBSY). Null: scanned from /proc when first
  // needed. A batch of predictions shares one scan.
  const OpenWriters* writers = nullptr;
  // With ASLR on: the kernel's random draws, making every address exact.
  std::optional<Dice> dice;
  // Also produce the initial stack's bytes (Plan::stack_tables, stack_strings).
  bool want_stack_image = false;
  // Explain: keep every decision in Prediction::checks and write the plan's
  // texts (stack_layout, the auxv entries' names and descriptions). Off, the
  // decisions are still made (and a failure still explained) and the plan's
  // numbers are the same: a caller that only runs the program saves the
  // allocations and the pages they fill.
  bool explain = true;
  // Library-internal: what the user-space exec asks of the model (its own
  // vDSO and mmap base kept, the mapped files handed over; src/exec/hooks.hpp).
  const detail::ExecHooks* hooks = nullptr;
};

enum class Outcome { ok, error, killed };

// One decision the kernel makes, in the order it makes it.
struct Check {
  std::string step;    // "path lookup", "may_open", "#! parse", "ELF e_machine", ...
  std::string object;  // the file it concerns
  bool passed = true;
  std::string detail;  // what was found
  std::string rule;    // source of the rule: "fs/namei.c may_open()"
};

enum class LinkKind { script, elf, misc };

// A stage of the handler chain. For a script, interpreter/arg are what the
// #! line names; for misc, the registered interpreter; for elf, PT_INTERP.
struct ChainLink {
  std::string path;
  LinkKind kind = LinkKind::elf;
  std::optional<std::string> interpreter;
  std::optional<std::string> arg;
  std::string misc_entry;  // binfmt_misc entry name
};

struct Mapping {
  std::string object;       // file path, "[bss]", "[heap]", "[stack]", "[vdso]"
  std::uint64_t start = 0;  // absolute when address_known, else relative to base_symbol
  std::uint64_t end = 0;
  int prot = 0;  // PROT_READ | PROT_WRITE | PROT_EXEC
  std::uint64_t file_offset = 0;
  bool file_backed = false;
  bool address_known = false;  // false: start/end are offsets from base_symbol
  std::string base_symbol;     // "exec_base", "interp_base", "stack_top", "mmap area"
  std::string note;            // "bss: zero-filled from 0x...", "tail of last file page zeroed"
};

struct AuxvEntry {
  std::uint64_t type = 0;
  std::string name;                    // "AT_PHDR"
  std::optional<std::uint64_t> value;  // when predictable with the given randomisation
  std::string describe;                // "exec_base + 0x40", "random", "vDSO base"
};

// Where the new image's bits go; addresses known when randomisation is off
// (or for ET_EXEC segments, which never move).
struct Plan {
  std::string exe;             // the ELF the kernel loads (final link of the chain)
  std::uint16_t exe_type = 0;  // ET_EXEC / ET_DYN
  std::optional<std::string> interp;
  bool exe_randomized = false, interp_randomized = false, stack_randomized = false;
  std::optional<std::uint64_t> exe_base;     // load bias
  std::optional<std::uint64_t> interp_base;  // AT_BASE
  std::uint64_t exe_align = 4096;
  std::uint64_t entry_offset = 0;  // entry relative to the base of the object it is in
  bool entry_in_interp = false;
  std::optional<std::uint64_t> entry;  // first instruction executed
  std::optional<std::uint64_t> brk;    // start_brk when known
  std::string brk_rule;
  bool executable_stack = false;
  std::uint64_t stack_top = 0;  // before randomisation: 0x7ffffffff000
  std::vector<Mapping> mappings;
  std::vector<AuxvEntry> auxv;
  // Initial stack, from the top: bytes used by strings and by the pointer area.
  std::uint64_t stack_strings_bytes = 0;
  std::uint64_t stack_pointers_bytes = 0;
  std::string execfn;
  std::vector<std::string> stack_layout;  // human-readable top-down description
  // Exact only when addresses are known (no ASLR, or Request::dice):
  std::optional<std::uint64_t> rsp;   // stack pointer at entry (points at argc)
  std::uint64_t stack_vma_start = 0;  // the [stack] mapping is [stack_vma_start, stack_top)
  // create_elf_tables()'s bytes when Request::want_stack_image, in the two
  // pieces the kernel writes: [rsp, rsp + stack_tables.size()) (argc, the
  // pointer arrays, auxv, AT_RANDOM's bytes, the platform string) and
  // [stack_strings_start, stack_top) (argument and environment strings,
  // execfn, 8 zero bytes). Between them lies arch_align_stack()'s random gap
  // of up to 8 KiB, which the kernel never writes: zero, its pages not even
  // faulted in.
  std::vector<std::uint8_t> stack_tables;
  std::uint64_t stack_strings_start = 0;
  std::vector<std::uint8_t> stack_strings;
  // Partial pages the kernel zeroes after a writable segment's file bytes (padzero()).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> zero_ranges;  // {start, length}
  // mm fields the kernel sets (prctl PR_SET_MM_MAP's view).
  std::uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0, auxv_addr = 0;
};

struct Prediction {
  Outcome outcome = Outcome::ok;
  int err = 0;                               // errno when outcome == error
  int signal = 0;                            // SIGSEGV when outcome == killed
  bool killed_at_first_instruction = false;  // exec succeeded but the entry faults
  std::string failed_step;                   // the step that decided a failure
  std::string failed_object;
  std::string diagnosis;          // plain words: what is wrong
  std::string fix;                // what to do
  std::vector<std::string> argv;  // what the final image receives (also on failure: as far as built)
  std::vector<ChainLink> chain;
  std::vector<Check> checks;
  std::vector<std::string> rules_applied;  // version-dependent rules: "phdr table limit 65536 (>= 6.13)"
  std::optional<Plan> plan;                // when the kernel gets to loading an ELF
  std::optional<elf::Header> elf_header;   // of the final ELF
  std::vector<elf::ProgramHeader> elf_phdrs;
};

// The prediction. Fails (Error) only when the question cannot be answered
// (e.g. the cwd cannot be read); a failing execve is a successful prediction.
Result<Prediction> predict(const Request& req, const SystemFacts& facts);

// execvp's PATH search for a name without '/' (glibc 2.36 posix/execvpe.c
// __execvpe_common()): PATH of the target environment (confstr(_CS_PATH)
// "/bin:/usr/bin" when it has none), each element joined with the name (an
// empty element is the current directory), execve tried on each in turn.
struct PathSearch {
  std::string name;                     // as given
  std::string path_value;               // the PATH searched
  std::vector<std::string> candidates;  // in order
  // The candidate the search ends with, or -1 when every one failed with an
  // errno execvp moves on from (not found). `entry` is its PATH element.
  int chosen = -1;
  std::string entry;
  // Set when the chosen file has no format the kernel runs (ENOEXEC) and
  // execvp runs it as "/bin/sh FILE ARG..." instead: that argv.
  std::vector<std::string> shell_argv;
};
// The candidates for NAME in ENVP's PATH (no search: NAME has a '/').
PathSearch path_candidates(const std::string& name, const std::vector<std::string>& envp);
// What execvp searches when the environment has no PATH: confstr(_CS_PATH)
// (glibc posix/execvpe.c: `if (!path) path = CS_PATH;`).
inline constexpr std::string_view kDefaultPath = "/bin:/usr/bin";
// NAME joined with each element of PATH, in order (an empty element: NAME
// alone, in the current directory); the one list every PATH search walks.
std::vector<std::string> path_candidates(const std::string& name, std::string_view path);

// predict() of the exec that execvp(req.path, ...) ends with: without a '/'
// in req.path, each PATH candidate is predicted in turn and the search stops
// where execvp's would (ENOENT, ENOTDIR, ESTALE, ENODEV and ETIMEDOUT move
// on; EACCES is remembered and moves on; ENOEXEC is retried as a /bin/sh
// script, whose prediction is returned when sh runs; anything else ends it). SEARCH, when
// given, says what was searched and which element matched. When no
// candidate is found the prediction is execve's ENOENT for the name, with
// the search as its diagnosis.
Result<Prediction> predict_command(const Request& req, const SystemFacts& facts, PathSearch* search = nullptr);
// REQ as the exec the search settled on: path the chosen candidate, or
// /bin/sh with the shell's argv; REQ itself when nothing was chosen.
Request searched_request(const Request& req, const PathSearch& search);
// The exec execvp(req.path, ...) settles on (predict_command()): req itself
// when its path has a '/'. An Error with ENOENT and the search's diagnosis
// when no element holds the program, or the model's own error when it
// cannot tell.
Result<Request> command_request(const Request& req, const SystemFacts& facts);

// Name of an auxv type ("AT_PHDR").
std::string auxv_name(std::uint64_t type);

}  // namespace procforge::exec

#pragma GCC visibility pop
