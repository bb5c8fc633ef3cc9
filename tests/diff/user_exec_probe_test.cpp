// What a new image receives, kernel execve() against the user-space loader,
// seen by the static probes (support/probe_args.c, probe_state.c,
// probe_regs.c) and by /proc/self/maps:
//  * argv, envp and the auxv: the same types in the same order, equal values
//    except the randomised ones, whose shape is checked instead (AT_RANDOM is
//    the 16 bytes right below the "x86_64" string, AT_EXECFN is the path
//    string at the top of the stack, AT_PHDR - AT_ENTRY is the image's own
//    constant, the vDSO is page aligned, rsp is 16-byte aligned below them);
//    with ASLR off (personality ADDR_NO_RANDOMIZE) every value and rsp,
//    compared as values, but AT_SYSINFO_EHDR: the vDSO stays where the
//    starting process has it (a documented difference);
//  * the process state probe_state prints (fds, signals, limits, ids ...,
//    /proc/self/cmdline and environ, the mm fields of /proc/self/stat), the
//    stack and brk addresses among them compared as values with ASLR off;
//  * the register state at the first instruction: every general register 0
//    but rsp, rflags 0x202, MXCSR 0x1f80, x87 FCW 0x37f, fs/gs bases 0;
//  * /proc/self/maps: the same objects in the same order with the same
//    protections and sizes, and with ASLR off for a fixed-address image at
//    the same addresses (the vDSO's aside); the loader's stub page (r-x, one
//    page, the address Prepared::differences() names) is the one documented
//    extra mapping.
// Both sides run as nobody with a small fixed environment.
//
// Images in the mmap area (a static PIE, ld.so) are not compared by address
// with ASLR off: the loader lays them out against the mmap base of the
// process that starts them, which user space cannot move, while the
// kernel's exec takes a fresh one (arch_pick_mmap_layout()). probe_args_fixed
// (probe_args linked at a fixed address) stands for them there.
#include <gtest/gtest.h>
#include <sys/auxv.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <regex>
#include <sstream>

#include "support/oracle.hpp"
#include "support/probe_copy.hpp"
#include "support/user_exec.hpp"

namespace procforge::testsupport {
namespace {

const std::vector<std::string> kEnv{"PATH=/usr/bin:/bin", "PROBE=1", "EMPTY=", "LC_ALL=C"};

OracleRequest probe_request(const std::string& path, std::vector<std::string> argv) {
  OracleRequest r;
  r.path = path;
  r.argv = std::move(argv);
  r.envp = kEnv;
  r.cwd = "/tmp";
  r.trace = false;
  r.capture_stderr = true;
  return r;
}

struct Both {
  OracleResult kernel, user;
  UserExecDetail detail;
};

Both run_both(const OracleRequest& req) {
  Both b;
  b.kernel = run_exec(req);
  b.user = run_user_exec(req, &b.detail);
  return b;
}

// Both sides run as nobody, who may not be able to enter the build tree.
std::string probe_path(const char* name) {
  std::string why;
  std::string path = probe_for_anyone(name, &why);
  if (path.empty()) ADD_FAILURE() << why;
  return path;
}

OracleRequest without_aslr(OracleRequest r) {
  r.addr_no_randomize = true;
  return r;
}

// Values the kernel randomises (with ASLR on): compared by shape, not value.
bool randomised(std::uint64_t type) {
  return type == AT_SYSINFO_EHDR || type == AT_PHDR || type == AT_ENTRY || type == AT_RANDOM || type == AT_EXECFN ||
         type == AT_PLATFORM || type == AT_BASE;
}

std::map<std::uint64_t, std::uint64_t> as_map(const ProbeReport& p) {
  std::map<std::uint64_t, std::uint64_t> m;
  for (const auto& [t, v] : p.auxv) m[t] = v;
  return m;
}

// The shape of the randomised values, as a list of violated rules.
std::vector<std::string> auxv_shape(const ProbeReport& p, const std::string& execfn) {
  std::vector<std::string> bad;
  auto a = as_map(p);
  if (a[AT_RANDOM] + 16 != a[AT_PLATFORM]) bad.push_back("AT_RANDOM is not the 16 bytes below AT_PLATFORM");
  // Top of stack: execfn string, then 8 zero bytes, ending on a page boundary.
  if ((a[AT_EXECFN] + execfn.size() + 1 + 8) % 4096 != 0) bad.push_back("AT_EXECFN is not the string at the stack top");
  if (a[AT_EXECFN] < a[AT_PLATFORM]) bad.push_back("AT_EXECFN below AT_PLATFORM");
  if (a[AT_SYSINFO_EHDR] % 4096 != 0 || a[AT_SYSINFO_EHDR] == 0) bad.push_back("AT_SYSINFO_EHDR not a page");
  if (p.rsp % 16 != 0) bad.push_back("rsp not 16-byte aligned");
  if (p.rsp >= a[AT_RANDOM]) bad.push_back("rsp above the random bytes");
  if (a[AT_RANDOM] - p.rsp > 64 * 1024) bad.push_back("rsp far below the strings");
  return bad;
}

TEST(UserExecProbe, ProbeArgsSeesTheSameArgvEnvAndAuxv) {
  const std::string path = probe_path("probe_args");
  const auto b = run_both(probe_request(path, {path, "one", "", "three words", "\x01\xff"}));
  ASSERT_TRUE(b.kernel.probe.ran) << describe(b.kernel);
  ASSERT_TRUE(b.user.probe.ran) << describe(b.user) << " " << b.detail.prepare_error;
  const ProbeReport& k = b.kernel.probe;
  const ProbeReport& u = b.user.probe;
  EXPECT_EQ(k.argv, u.argv);
  EXPECT_EQ(k.envc, u.envc);
  std::vector<std::uint64_t> kt, ut;
  for (const auto& e : k.auxv) kt.push_back(e.first);
  for (const auto& e : u.auxv) ut.push_back(e.first);
  EXPECT_EQ(kt, ut) << "auxv types in order";
  auto km = as_map(k), um = as_map(u);
  for (const auto& [type, value] : km) {
    if (randomised(type)) continue;
    EXPECT_EQ(value, um[type]) << exec::auxv_name(type);
  }
  EXPECT_EQ(km[AT_PHDR] - km[AT_ENTRY], um[AT_PHDR] - um[AT_ENTRY]) << "AT_PHDR relative to the image";
  EXPECT_EQ(km[AT_BASE], um[AT_BASE]) << "static PIE: no interpreter";
  EXPECT_EQ(auxv_shape(k, path), std::vector<std::string>{}) << "kernel";
  EXPECT_EQ(auxv_shape(u, path), std::vector<std::string>{}) << "user loader";
  // The random bytes and addresses really are fresh (not the parent's).
  EXPECT_NE(um[AT_RANDOM], getauxval(AT_RANDOM));
}

// The auxv entry by entry, "AT_NAME=0xvalue" per line; the vDSO's address
// (which the loader keeps) as "kept".
std::string auxv_values(const ProbeReport& p) {
  std::string s;
  char value[32];
  for (const auto& [type, v] : p.auxv) {
    std::snprintf(value, sizeof value, "0x%llx", static_cast<unsigned long long>(v));
    s += exec::auxv_name(type) + "=" + (type == AT_SYSINFO_EHDR ? std::string("kept") : value) + "\n";
  }
  return s;
}

TEST(UserExecProbe, WithAslrOffAFixedAddressImageGetsTheKernelsAuxvAndRsp) {
  const std::string path = probe_path("probe_args_fixed");
  const auto b = run_both(without_aslr(probe_request(path, {path, "one", "", "three words", "\x01\xff"})));
  ASSERT_TRUE(b.kernel.probe.ran) << describe(b.kernel);
  ASSERT_TRUE(b.user.probe.ran) << describe(b.user) << " " << b.detail.prepare_error;
  const ProbeReport& k = b.kernel.probe;
  const ProbeReport& u = b.user.probe;
  EXPECT_EQ(k.argv, u.argv);
  EXPECT_EQ(k.envc, u.envc);
  EXPECT_EQ(auxv_values(k), auxv_values(u)) << "auxv with ASLR off, in stack order";
  EXPECT_EQ(k.rsp, u.rsp) << std::hex << "rsp at entry: kernel 0x" << k.rsp << ", user 0x" << u.rsp;
}

// probe_state's report with the facts that differ between any two runs
// (pid, pipe inode numbers, process counts) masked, and with ASLR on also the
// mm fields the kernel randomises (the stack, hence the argument and
// environment ranges, and brk).
std::string state_masked(const std::string& out, bool aslr_off) {
  static const std::vector<std::string> random_with_aslr{
      "mm.start_stack=", "mm.start_brk=", "mm.arg_start=", "mm.arg_end=", "mm.env_start=", "mm.env_end="};
  std::istringstream in(out);
  std::string line, res;
  static const std::regex pipe_ino(R"(pipe:\[\d+\])");
  while (std::getline(in, line)) {
    if (line.rfind("pid=", 0) == 0 || line.rfind("proc_pids=", 0) == 0) continue;
    if (!aslr_off && std::any_of(random_with_aslr.begin(), random_with_aslr.end(),
                                 [&](const std::string& key) { return line.rfind(key, 0) == 0; }))
      continue;
    res += std::regex_replace(line, pipe_ino, "pipe:[]") + "\n";
  }
  return res;
}

void expect_same_state(const OracleRequest& req) {
  const auto b = run_both(req);
  ASSERT_EQ(b.kernel.outcome, OracleOutcome::ok) << describe(b.kernel);
  ASSERT_EQ(b.user.outcome, OracleOutcome::ok) << describe(b.user) << " " << b.detail.prepare_error;
  ASSERT_NE(b.kernel.out.find("end=1"), std::string::npos) << b.kernel.out;
  // The kernel's side read what it compares (a probe that prints "!errno"
  // on both sides would agree with itself).
  for (const char* key : {"\nmm.arg_end=", "\ncmdline=", "\nenviron="}) {
    const auto at = b.kernel.out.find(key);
    ASSERT_NE(at, std::string::npos) << key << " missing:\n" << b.kernel.out;
    ASSERT_NE(b.kernel.out[at + std::strlen(key)], '!') << "the kernel side could not read " << key << "\n"
                                                        << b.kernel.out;
  }
  EXPECT_EQ(state_masked(b.kernel.out, req.addr_no_randomize), state_masked(b.user.out, req.addr_no_randomize));
}

TEST(UserExecProbe, ProbeStateSeesTheSameProcessState) {
  const std::string path = probe_path("probe_state");
  expect_same_state(probe_request(path, {path, "--mm", "x"}));
}

TEST(UserExecProbe, WithAslrOffProbeStateSeesTheSameMmFieldsCmdlineAndEnviron) {
  const std::string path = probe_path("probe_state");
  expect_same_state(without_aslr(probe_request(path, {path, "--mm", "x", "", "two words"})));
}

std::map<std::string, std::string> regs(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line) && line != "maps") {
    auto eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

TEST(UserExecProbe, RegisterStateAtEntryIsTheKernels) {
  const std::string path = probe_path("probe_regs");
  const auto b = run_both(probe_request(path, {path}));
  ASSERT_EQ(b.kernel.outcome, OracleOutcome::ok) << describe(b.kernel);
  ASSERT_EQ(b.user.outcome, OracleOutcome::ok) << describe(b.user) << " " << b.detail.prepare_error;
  auto k = regs(b.kernel.out), u = regs(b.user.out);
  ASSERT_TRUE(k.count("rflags")) << b.kernel.out;
  for (const auto& [name, value] : k) {
    if (name == "rsp") continue;
    EXPECT_EQ(value, u[name]) << name << ": kernel " << value << ", user " << u[name];
  }
  // What the kernel documents, on both sides.
  for (auto* side : {&k, &u}) {
    const char* who = side == &k ? "kernel" : "user";
    for (const char* r : {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
                          "r14", "r15", "fsbase", "gsbase", "fs", "gs"})
      EXPECT_EQ((*side)[r], "0x0") << who << " " << r;
    EXPECT_EQ((*side)["rflags"], "0x202") << who;
    EXPECT_EQ((*side)["mxcsr"], "0x1f80") << who;
    EXPECT_EQ((*side)["fcw"], "0x37f") << who;
    EXPECT_EQ((*side)["rsp%16"], "00") << who;
  }
}

struct MapLine {
  std::uint64_t start = 0, end = 0;
  std::string perms, object;
};

std::vector<MapLine> maps_of(const std::string& text) {
  std::vector<MapLine> v;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapLine m;
    unsigned long long lo = 0, hi = 0;
    char perms[8] = {}, name[512] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s %511[^\n]", &lo, &hi, perms, name) < 3) continue;
    m.start = lo;
    m.end = hi;
    m.perms = perms;
    m.object = name;
    v.push_back(m);
  }
  return v;
}

// One line per mapping: its size, protections and object, and with
// `addresses` its start too, except for the vDSO's pages (which the loader
// keeps where they are).
std::string shape(const std::vector<MapLine>& v, bool addresses) {
  std::string s;
  char buf[64];
  for (const auto& m : v) {
    const bool vdso = m.object.rfind("[vvar", 0) == 0 || m.object == "[vdso]";
    if (addresses && !vdso) {
      std::snprintf(buf, sizeof buf, "%llx ", static_cast<unsigned long long>(m.start));
      s += buf;
    }
    std::snprintf(buf, sizeof buf, "size 0x%llx ", static_cast<unsigned long long>(m.end - m.start));
    s += buf + m.perms + " " + (m.object.empty() ? "(anon)" : m.object) + "\n";
  }
  return s;
}

// The user side without the stub page; fails if it is missing.
std::vector<MapLine> without_stub(std::vector<MapLine> v, const UserExecDetail& d) {
  std::uint64_t stub = 0;
  static const std::regex at(R"(stays mapped r-x at 0x([0-9a-f]+))");
  for (const auto& diff : d.differences) {
    std::smatch m;
    if (std::regex_search(diff, m, at)) stub = std::stoull(m[1].str(), nullptr, 16);
  }
  auto it = std::find_if(v.begin(), v.end(), [&](const MapLine& m) {
    return m.start == stub && m.end == stub + 4096 && m.perms == "r-xp" && m.object.empty();
  });
  EXPECT_NE(it, v.end()) << "the stub page at 0x" << std::hex << stub << " is not in the user side's maps";
  if (it != v.end()) v.erase(it);
  return v;
}

void expect_same_shape(const std::string& label, const OracleRequest& req, const std::string& marker) {
  const auto b = run_both(req);
  ASSERT_EQ(b.kernel.outcome, OracleOutcome::ok) << label << ": " << describe(b.kernel);
  ASSERT_EQ(b.user.outcome, OracleOutcome::ok) << label << ": " << describe(b.user) << " " << b.detail.prepare_error;
  auto cut = [&](const std::string& out) {
    return marker.empty() ? out : out.substr(out.find(marker) + marker.size());
  };
  const auto k = maps_of(cut(b.kernel.out));
  const auto u = without_stub(maps_of(cut(b.user.out)), b.detail);
  ASSERT_FALSE(k.empty()) << b.kernel.out;
  const bool addresses = req.addr_no_randomize;
  EXPECT_EQ(shape(k, addresses), shape(u, addresses)) << label << ": /proc/self/maps (" << (addresses ? "start, " : "")
                                                      << "size, perms, object in address order)\nkernel:\n"
                                                      << cut(b.kernel.out) << "user:\n"
                                                      << cut(b.user.out);
}

TEST(UserExecProbe, MapsShapeOfAStaticImageDiffersOnlyByTheStubPage) {
  const std::string path = probe_path("probe_regs");
  expect_same_shape("probe_regs (static)", probe_request(path, {path}), "\nmaps\n");
}

TEST(UserExecProbe, WithAslrOffMapsOfAStaticImageAreAtTheKernelsAddresses) {
  const std::string path = probe_path("probe_regs");
  expect_same_shape("probe_regs (static, ASLR off)", without_aslr(probe_request(path, {path})), "\nmaps\n");
}

TEST(UserExecProbe, MapsShapeOfADynamicPieDiffersOnlyByTheStubPage) {
  expect_same_shape("cat (PIE + ld.so + libc)", probe_request("/bin/cat", {"cat", "/proc/self/maps"}), "");
}

}  // namespace
}  // namespace procforge::testsupport
