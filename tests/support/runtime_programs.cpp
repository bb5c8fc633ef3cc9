// See runtime_programs.hpp.
#include "runtime_programs.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/unique_fd.hpp"
#include "requires.hpp"
#include "run_command.hpp"

namespace procforge::testsupport {

namespace {

namespace fs = std::filesystem;

const char* const kHelloC = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";
const char* const kNoLibc =
    "void _start(void) {\n"
    "  static const char m[] = \"hello\\n\";\n"
    "  long r;\n"
    "  __asm__ volatile(\"syscall\" : \"=a\"(r) : \"a\"(1), \"D\"(1), \"S\"(m), \"d\"(6) : \"rcx\", \"r11\", "
    "\"memory\");\n"
    "  __asm__ volatile(\"syscall\" : : \"a\"(231), \"D\"(0) : \"rcx\", \"r11\", \"memory\");\n"
    "  for (;;) {}\n"
    "}\n";
const char* const kHelloRust = "fn main() { println!(\"hello\"); }\n";
// Each package's init spins for a different time, so that per-package init
// times are told apart.
std::string go_package(const std::string& name, const std::string& import, int spins) {
  std::string s = "package " + name + "\n\n";
  if (!import.empty()) s += "import _ \"gomod/" + import + "\"\n\n";
  s += "var Sink int\n\nfunc init() {\n\tfor i := 0; i < " + std::to_string(spins) +
       "; i++ {\n\t\tSink += i ^ (Sink >> 3)\n\t}\n}\n";
  return s;
}
const char* const kGoMain =
    "package main\n\nimport (\n\t\"fmt\"\n\t_ \"gomod/p1\"\n)\n\nfunc main() { fmt.Println(\"hello\") }\n";
const char* const kGoCgoMain =
    "package main\n\n// static int one(void) { return 1; }\nimport \"C\"\nimport (\n\t\"fmt\"\n\t_ \"gomod/p1\"\n)\n\n"
    "func main() { fmt.Println(\"hello\", int(C.one())-1) }\n";

// Writes TEXT to PATH unless it already holds exactly that (its time then says when it last changed).
void write_if_changed(const std::string& path, const std::string& text) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream old;
  old << in.rdbuf();
  if (in && old.str() == text) return;
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void build(RuntimePrograms& rp) {
  rp.missing = missing_programs({"/usr/bin/gcc", "/usr/bin/musl-gcc", "/usr/bin/go", "/usr/bin/rustc"});
  if (!rp.missing.empty()) return;
  const std::string d = rp.dir;
  fs::create_directories(d);
  // ctest runs test cases as processes side by side: one builds, the others
  // wait for it and then find everything up to date.
  const UniqueFd lock(::open((d + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
    rp.error = "cannot lock " + d + "/.lock";
    return;
  }
  CommandOptions o;
  o.cwd = d;
  o.inherit_env = true;
  o.timeout_ms = 180000;
  o.env = {"GOCACHE=" + d + "/gocache", "GOPATH=" + d + "/gopath", "HOME=" + d,
           "GOFLAGS=-mod=mod",          "GO111MODULE=on",          "GOPROXY=off",
           "GOTOOLCHAIN=local"};
  auto run = [&](const std::vector<std::string>& argv, const std::string& cwd = "") {
    if (!rp.error.empty()) return;
    CommandOptions oo = o;
    if (!cwd.empty()) oo.cwd = cwd;
    const auto r = run_command(argv, oo);
    if (r.exit_code != 0) rp.error = argv[0] + " " + (argv.size() > 1 ? argv.back() : "") + " failed: " + r.err;
  };
  // Each output is rebuilt when it is missing or older than a source it is built from.
  auto stale = [&](const std::string& out, std::initializer_list<std::string> sources) {
    std::error_code ec;
    const auto t = fs::last_write_time(d + "/" + out, ec);
    if (ec) return true;
    for (const auto& src : sources)
      if (fs::last_write_time(d + "/" + src, ec) > t || ec) return true;
    return false;
  };
  write_if_changed(d + "/src/hello.c", kHelloC);
  if (stale("c_glibc", {"src/hello.c"})) run({"/usr/bin/gcc", "-O2", "-o", "c_glibc", "src/hello.c"});
  if (stale("c_glibc_static", {"src/hello.c"}))
    run({"/usr/bin/gcc", "-O2", "-static", "-o", "c_glibc_static", "src/hello.c"});
  if (stale("c_musl", {"src/hello.c"})) run({"/usr/bin/musl-gcc", "-O2", "-o", "c_musl", "src/hello.c"});
  if (stale("c_musl_static", {"src/hello.c"}))
    run({"/usr/bin/musl-gcc", "-O2", "-static", "-o", "c_musl_static", "src/hello.c"});
  write_if_changed(d + "/src/nolibc.c", kNoLibc);
  if (stale("nolibc", {"src/nolibc.c"}))
    run({"/usr/bin/gcc", "-O2", "-static", "-nostdlib", "-fno-stack-protector", "-o", "nolibc", "src/nolibc.c"});
  write_if_changed(d + "/src/hello.rs", kHelloRust);
  if (stale("rust", {"src/hello.rs"})) run({"/usr/bin/rustc", "-O", "-o", "rust", "src/hello.rs"});
  if (stale("rust_stripped", {"src/hello.rs"}))
    run({"/usr/bin/rustc", "-O", "-C", "strip=symbols", "-o", "rust_stripped", "src/hello.rs"});
  write_if_changed(d + "/go/go.mod", "module gomod\n\ngo 1.19\n");
  write_if_changed(d + "/go/p1/p1.go", go_package("p1", "p2", 300000));
  write_if_changed(d + "/go/p2/p2.go", go_package("p2", "p3", 600000));
  write_if_changed(d + "/go/p3/p3.go", go_package("p3", "", 900000));
  write_if_changed(d + "/go/cmd/hello/main.go", kGoMain);
  write_if_changed(d + "/go/cmd/hellocgo/main.go", kGoCgoMain);
  const std::string go = d + "/go";
  const std::initializer_list<std::string> kGoSources = {"go/go.mod", "go/p1/p1.go", "go/p2/p2.go", "go/p3/p3.go",
                                                         "go/cmd/hello/main.go"};
  auto go_env = [&](bool cgo) { o.env.emplace_back(cgo ? "CGO_ENABLED=1" : "CGO_ENABLED=0"); };
  go_env(false);
  if (stale("go_static", kGoSources)) run({"/usr/bin/go", "build", "-o", d + "/go_static", "./cmd/hello"}, go);
  if (stale("go_stripped", kGoSources))
    run({"/usr/bin/go", "build", "-ldflags=-s -w", "-o", d + "/go_stripped", "./cmd/hello"}, go);
  o.env.pop_back();
  go_env(true);
  if (stale("go_cgo", {"go/go.mod", "go/p1/p1.go", "go/p2/p2.go", "go/p3/p3.go", "go/cmd/hellocgo/main.go"}))
    run({"/usr/bin/go", "build", "-o", d + "/go_cgo", "./cmd/hellocgo"}, go);
  o.env.pop_back();
}

}  // namespace

const std::vector<std::string>& runtime_program_names() {
  static const std::vector<std::string> names = {"c_glibc", "c_glibc_static", "c_musl", "c_musl_static", "go_static",
                                                 "go_cgo",  "go_stripped",    "rust",   "rust_stripped", "nolibc"};
  return names;
}

const RuntimePrograms& runtime_programs() {
  static const RuntimePrograms rp = [] {
    RuntimePrograms p;
    p.dir = std::string(PROCFORGE_BUILD_DIR) + "/runtime-programs";
    build(p);
    return p;
  }();
  return rp;
}

}  // namespace procforge::testsupport
