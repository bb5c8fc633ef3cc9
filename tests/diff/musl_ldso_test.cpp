// musl loader differential suite: a fixture tree built here with musl-gcc,
// each case run through musl's own loader in ldd mode (`LOADER --list
// PROGRAM`: it prints every object as it loads it, each failure on stderr,
// and exits with 127 after a failure) and through ldso::resolve() with the
// same loader as Request::explicit_loader. The objects (name and path, in
// order), the stderr lines and the exit status must be the same; what
// should happen is never written here, musl decides.
//
// The programs' PT_INTERP names a link to the system loader inside the tree
// (ROOT/lib/ld-musl-x86_64.so.1), so musl's path file for them is
// ROOT/etc/ld-musl-x86_64.path (ldso/dynlink.c load_library(): the prefix is
// ldso.name without its last two components): the cases with and without a
// path file never touch /etc. One case uses the system loader and the
// system's own path file as they are.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "procforge/ldso.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"
#include "support/run_command.hpp"
#include "support/system_elf.hpp"

namespace procforge::testsupport {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSystemLoader = "/lib/ld-musl-x86_64.so.1";

struct MuslCase {
  std::string program;                   // as given to the loader (may be relative, or a symlink)
  std::vector<std::string> env;          // LD_LIBRARY_PATH=..., LD_PRELOAD=...
  std::string cwd;                       // empty: the tree's root
  std::string loader;                    // empty: ROOT/lib/ld-musl-x86_64.so.1
  std::optional<std::string> path_file;  // contents of ROOT/etc/ld-musl-x86_64.path; nullopt: none
  bool path_file_is_dir = false;

  MuslCase(std::string p, std::vector<std::string> e = {}, std::string c = "", std::string l = "",
           std::optional<std::string> pf = std::nullopt, bool pf_dir = false)
      : program(std::move(p)),
        env(std::move(e)),
        cwd(std::move(c)),
        loader(std::move(l)),
        path_file(std::move(pf)),
        path_file_is_dir(pf_dir) {}
};

// The tree every case runs in, built once per test binary run.
class MuslTree {
 public:
  static MuslTree& get() {
    static MuslTree t;
    return t;
  }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::string at(const std::string& rel) const { return dir_.at(rel); }
  [[nodiscard]] std::string root() const { return dir_.path(); }
  [[nodiscard]] std::string loader() const { return dir_.at("lib/ld-musl-x86_64.so.1"); }

 private:
  MuslTree() { build(); }
  bool cc(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/musl-gcc"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandOptions o;
    o.cwd = dir_.path();
    o.inherit_env = true;
    const auto r = run_command(argv, o);
    if (r.exit_code != 0 && error_.empty()) error_ = "musl-gcc failed: " + r.err;
    return r.exit_code == 0;
  }
  // A library NAME in DIR whose function f_TAG returns a number; NEEDS: DT_NEEDED names.
  void lib(const std::string& dir, const std::string& name, const std::string& tag,
           const std::vector<std::string>& extra = {}) {
    dir_.mkdirs(dir);
    const std::string src = dir_.write("src/" + tag + ".c", "int f_" + tag + "(void) { return 1; }\n");
    std::vector<std::string> args = {"-shared", "-fPIC", "-o", dir + "/" + name, src, "-Wl,-soname," + name};
    args.insert(args.end(), extra.begin(), extra.end());
    cc(args);
  }
  // A program PATH that needs the libraries in LINK (-L/-l arguments etc.)
  // without referencing their symbols (no relocation can fail).
  void program(const std::string& path, const std::vector<std::string>& link) {
    const std::string src =
        dir_.write("src/main.c", "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n");
    fs::create_directories(fs::path(dir_.at(path)).parent_path());
    std::vector<std::string> args = {"-o", path, src, "-Wl,--dynamic-linker=" + loader(), "-Wl,--no-as-needed"};
    args.insert(args.end(), link.begin(), link.end());
    cc(args);
  }
  // A shared library PATH built from SOURCE (soname: its file name).
  void shared(const std::string& path, const std::string& source, const std::vector<std::string>& extra = {}) {
    const std::string name = path.substr(path.rfind('/') + 1);
    dir_.mkdirs(path.substr(0, path.rfind('/')));
    const std::string src = dir_.write("src/" + name + "." + std::to_string(++sources_) + ".c", source);
    std::vector<std::string> args = {"-shared", "-fPIC", "-o", path, src, "-Wl,-soname," + name};
    args.insert(args.end(), extra.begin(), extra.end());
    cc(args);
  }
  // A program PATH from SOURCE (it prints "ok" when it runs), linked with LINK.
  void program_from(const std::string& path, const std::string& source, const std::vector<std::string>& link) {
    const std::string src = dir_.write("src/prog" + std::to_string(++sources_) + ".c", "#include <stdio.h>\n" + source);
    fs::create_directories(fs::path(dir_.at(path)).parent_path());
    std::vector<std::string> args = {"-o", path, src, "-Wl,--dynamic-linker=" + loader(), "-Wl,--no-as-needed"};
    args.insert(args.end(), link.begin(), link.end());
    cc(args);
  }
  void build();
  void build_symbol_cases();

  FixtureDir dir_;
  int sources_ = 0;
  std::string error_;
};

void MuslTree::build() {
  fs::create_directories(dir_.at("lib"));
  fs::create_symlink(kSystemLoader, loader());
  // Libraries, each a distinct file wherever it is, so that the path says which was loaded.
  lib("r", "libr.so", "r");
  lib("rp", "librp.so", "rp");
  lib("rp2", "libinner.so", "inner");
  lib("rp", "libouter.so", "outer", {"-Lrp2", "-Wl,--no-as-needed", "-linner"});
  lib("llp", "libr.so", "r_llp");
  lib("real/lib", "libo.so", "o_real");
  lib("olib", "libo.so", "o_sym");
  lib("sys", "libs.so", "s");
  lib("good", "libw.so", "w");
  lib("gone", "libgone.so", "gone");
  lib("gone", "libgone2.so", "gone2");
  lib("pre", "libpre.so", "pre");
  lib("dup", "libd.so", "d");
  if (!error_.empty()) return;
  // Another architecture earlier in the path: the same library with
  // e_machine AArch64, and a real ELF32 one (i386).
  fs::create_directories(dir_.at("arm"));
  fs::copy_file(dir_.at("good/libw.so"), dir_.at("arm/libw.so"));
  {
    std::fstream f(dir_.at("arm/libw.so"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(18);
    const char aarch64[2] = {static_cast<char>(183), 0};
    f.write(aarch64, 2);
  }
  fs::create_directories(dir_.at("i386"));
  dir_.write("src/w32.c", "int f_w(void) { return 3; }\n");
  CommandOptions o;
  o.cwd = dir_.path();
  o.inherit_env = true;
  if (run_command({"/usr/bin/gcc", "-m32", "-nostdlib", "-shared", "-fPIC", "-o", "i386/libw.so", "src/w32.c"}, o)
          .exit_code != 0)
    error_ = "gcc -m32 -nostdlib -shared failed";
  dir_.write("notelf/libw.so", "not an ELF file\n");
  fs::create_symlink("libd.so", dir_.at("dup/libd.so.1"));

  program("bin/rpath", {"-Lr", "-lr", "-Wl,--disable-new-dtags,-rpath," + dir_.at("r")});
  program("bin/runpath", {"-Lrp", "-Lrp2", "-louter", "-Wl,--enable-new-dtags,-rpath," + dir_.at("rp")});
  // RUNPATH inherited: libouter (found in rp) needs libinner, which only the
  // program's RUNPATH (rp2) holds.
  program("bin/runpath_chain",
          {"-Lrp", "-Lrp2", "-louter", "-Wl,--enable-new-dtags,-rpath," + dir_.at("rp") + ":" + dir_.at("rp2")});
  program("real/bin/origin", {"-Lreal/lib", "-lo", "-Wl,-rpath,$ORIGIN/../lib"});
  fs::create_directories(dir_.at("sym"));
  fs::create_symlink("../real/bin/origin", dir_.at("sym/origin"));
  program("bin/origin_brace", {"-Lreal/lib", "-lo", "-Wl,-rpath,${ORIGIN}/../real/lib"});
  program("bin/origin_other_dst", {"-Lreal/lib", "-lo", "-Wl,-rpath,$LIB/x:" + dir_.at("real/lib")});
  program("bin/plain_r", {"-Lr", "-lr"});
  program("bin/sys", {"-Lsys", "-ls"});
  program("bin/missing", {"-Lgone", "-lgone", "-Lr", "-lr", "-lgone2", "-Wl,-rpath," + dir_.at("r")});
  program("bin/wrong_arch", {"-Lgood", "-lw"});
  program("bin/dup", {"-Ldup", "-ld", "-l:libd.so.1", "-Wl,-rpath," + dir_.at("dup")});
  dir_.mkdirs("slash");
  cc({"-shared", "-fPIC", "-o", "slash/libslash.so", dir_.write("src/slash.c", "int f_slash(void) { return 1; }\n")});
  program("bin/slash", {dir_.at("slash/libslash.so")});
  program("bin/libc_only", {});
  {
    const std::string src =
        dir_.write("src/sysmain.c", "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n");
    CommandOptions so;
    so.cwd = dir_.path();
    so.inherit_env = true;
    run_command({"/usr/bin/musl-gcc", "-o", "bin/system_loader", src}, so);
  }
  build_symbol_cases();
  {
    const std::string src =
        dir_.write("src/plain.c", "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n");
    CommandOptions so;
    so.cwd = dir_.path();
    so.inherit_env = true;
    run_command({"/usr/bin/musl-gcc", "-static", "-o", "bin/static", src}, so);
    run_command({"/usr/bin/gcc", "-o", "bin/glibc", src}, so);
  }
  fs::remove(dir_.at("gone/libgone.so"));
  fs::remove(dir_.at("gone/libgone2.so"));
}

// Programs linked against symfull/libsym.so (a function, data, TLS data and
// a function referenced weakly), whose RPATH finds symempty/libsym.so, which
// defines none of them; LD_LIBRARY_PATH puts another libsym.so first: the
// full one, one whose f_sym is an IFUNC (and which has an IRELATIVE
// relocation of its own), one whose f_sym has only a hidden version.
void MuslTree::build_symbol_cases() {
  shared("symfull/libsym.so",
         "int d_sym = 5;\n__thread int t_sym = 3;\nint f_sym(void) { return 1; }\nint f_weak(void) { return 2; }\n");
  shared("symempty/libsym.so", "int other = 1;\n");
  shared("symifunc/libsym.so",
         "static int impl(void) { return 1; }\nstatic void *resolve(void) { return (void *)impl; }\n"
         "int f_sym(void) __attribute__((ifunc(\"resolve\")));\n"
         "static int g(void) __attribute__((ifunc(\"resolve\")));\nint (*gp)(void) = g;\n");
  dir_.write("src/hidden.map", "V1 { global: f_old; };\n");
  shared("symhidden/libsym.so", "int f_old(void) { return 1; }\n__asm__(\".symver f_old,f_sym@V1\");\n",
         {"-Wl,--version-script=src/hidden.map"});
  shared("user/libuser.so",
         "extern int f_sym(void);\nextern int d_sym;\nextern __thread int t_sym;\n"
         "int f_user(void) { return f_sym() + d_sym + t_sym; }\n",
         {"-Lsymfull", "-lsym"});
  const std::vector<std::string> sym = {"-Lsymfull", "-lsym", "-Wl,-rpath," + dir_.at("symempty")};
  program_from("bin/sym_func",
               "extern int f_sym(void);\nint main(void) { if (f_sym() == 1) puts(\"ok\"); return 0; }\n", sym);
  program_from("bin/sym_data", "extern int d_sym;\nint main(void) { if (d_sym == 5) puts(\"ok\"); return 0; }\n", sym);
  program_from("bin/sym_tls",
               "extern __thread int t_sym;\nint main(void) { if (t_sym == 3) puts(\"ok\"); return 0; }\n", sym);
  program_from("bin/sym_weak",
               "extern int f_weak(void) __attribute__((weak));\n"
               "int main(void) { if (f_weak) f_weak(); puts(\"ok\"); return 0; }\n",
               sym);
  program_from("bin/sym_in_lib",
               "extern int f_user(void);\nextern int f_sym(void);\n"
               "int main(void) { if (f_user() && f_sym()) puts(\"ok\"); return 0; }\n",
               {"-Luser", "-luser", "-Lsymfull", "-lsym", "-Wl,-rpath," + dir_.at("user") + ":" + dir_.at("symempty")});
  program_from("bin/sym_and_missing",
               "extern int f_sym(void);\nint main(void) { if (f_sym() == 1) puts(\"ok\"); return 0; }\n",
               {"-Lgone", "-lgone", "-Lsymfull", "-lsym", "-Wl,-rpath," + dir_.at("symempty")});
}

std::map<std::string, MuslCase> cases() {
  const MuslTree& t = MuslTree::get();
  const std::string llp = "LD_LIBRARY_PATH=";
  return {
      {"rpath", MuslCase(t.at("bin/rpath"))},
      {"runpath", MuslCase(t.at("bin/runpath"))},
      {"runpath_inherited_by_needed_objects", MuslCase(t.at("bin/runpath_chain"))},
      {"origin_through_symlink_is_the_link_dir", MuslCase(t.at("sym/origin"))},
      {"origin_of_real_path", MuslCase(t.at("real/bin/origin"))},
      {"origin_relative_program", MuslCase("./sym/origin")},
      {"origin_braces", MuslCase(t.at("bin/origin_brace"))},
      {"rpath_with_other_dst_is_dropped", MuslCase(t.at("bin/origin_other_dst"))},
      {"ld_library_path_before_rpath", MuslCase(t.at("bin/rpath"), {llp + t.at("llp")})},
      {"ld_library_path_relative", MuslCase("bin/plain_r", {llp + "llp"})},
      {"ld_library_path_newlines_and_empty",
       MuslCase(t.at("bin/plain_r"), {llp + ":\n" + t.at("nowhere") + "::" + t.at("r")})},
      {"missing_libraries_each_reported", MuslCase(t.at("bin/missing"))},
      {"wrong_machine_earlier_is_loaded", MuslCase(t.at("bin/wrong_arch"), {llp + t.at("arm") + ":" + t.at("good")})},
      {"elf32_earlier_stops_the_search", MuslCase(t.at("bin/wrong_arch"), {llp + t.at("i386") + ":" + t.at("good")})},
      {"not_elf_earlier_stops_the_search",
       MuslCase(t.at("bin/wrong_arch"), {llp + t.at("notelf") + ":" + t.at("good")})},
      {"wrong_arch_after_the_good_one", MuslCase(t.at("bin/wrong_arch"), {llp + t.at("good") + ":" + t.at("i386")})},
      {"path_file_present", MuslCase(t.at("bin/sys"), {}, "", "", t.at("sys") + "\n")},
      {"path_file_absent", MuslCase(t.at("bin/sys"), {}, "", "", std::nullopt)},
      {"path_file_empty", MuslCase(t.at("bin/sys"), {}, "", "", std::string())},
      {"path_file_is_a_directory", MuslCase(t.at("bin/sys"), {}, "", "", std::string(), true)},
      {"path_file_colons_and_lines",
       MuslCase(t.at("bin/sys"), {}, "", "", "/nonexistent:" + t.at("good") + "\n\n" + t.at("sys"))},
      {"same_file_two_names", MuslCase(t.at("bin/dup"))},
      {"needed_with_a_slash", MuslCase(t.at("bin/slash"))},
      {"preload",
       MuslCase(t.at("bin/plain_r"), {"LD_PRELOAD=" + t.at("pre/libpre.so") + " libmissingpre.so", llp + t.at("r")})},
      {"preload_searched",
       MuslCase(t.at("bin/plain_r"), {"LD_PRELOAD=libpre.so", llp + t.at("pre") + ":" + t.at("r")})},
      {"libc_only", MuslCase(t.at("bin/libc_only"))},
      {"system_loader_and_path_file", MuslCase(t.at("bin/system_loader"), {}, "", kSystemLoader, std::nullopt)},
      {"symbol_missing_in_a_call", MuslCase(t.at("bin/sym_func"))},
      {"symbol_missing_in_data_copied", MuslCase(t.at("bin/sym_data"))},
      {"symbol_missing_tls", MuslCase(t.at("bin/sym_tls"))},
      {"weak_undefined_symbol_is_silent", MuslCase(t.at("bin/sym_weak"))},
      {"symbols_missing_library_first_program_last", MuslCase(t.at("bin/sym_in_lib"))},
      {"library_and_symbol_missing", MuslCase(t.at("bin/sym_and_missing"))},
      {"symbols_found_first_in_load_order", MuslCase(t.at("bin/sym_in_lib"), {llp + t.at("symfull")})},
      {"tls_symbol_found", MuslCase(t.at("bin/sym_tls"), {llp + t.at("symfull")})},
      {"ifunc_is_no_definition", MuslCase(t.at("bin/sym_func"), {llp + t.at("symifunc")})},
      {"hidden_version_is_no_definition", MuslCase(t.at("bin/sym_func"), {llp + t.at("symhidden")})},
      {"preloaded_definition_is_found", MuslCase(t.at("bin/sym_func"), {"LD_PRELOAD=" + t.at("symfull/libsym.so")})},
  };
}

struct Listing {
  std::vector<std::string> objects;  // "name => path", or the loader's own line "name"
  std::vector<std::string> errors;   // stderr lines
  int status = 0;
};

// "\tNAME => PATH (0x...)" / "\tNAME (0x...)" without the addresses.
std::vector<std::string> parse_list(const std::string& out) {
  std::vector<std::string> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '\t') line.erase(0, 1);
    const auto paren = line.rfind(" (0x");
    if (paren != std::string::npos) line.resize(paren);
    v.push_back(line);
  }
  return v;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) v.push_back(line);
  return v;
}

Listing predicted(const ldso::Prediction& p) {
  Listing l;
  for (std::size_t i = 0; i < p.objects.size(); ++i) {
    const auto& o = p.objects[i];
    if (!o.path) continue;  // musl prints nothing for a name it could not load
    l.objects.push_back(i == 0 ? o.name : o.name + " => " + *o.path);
  }
  l.errors = p.trace_stderr;  // musl: every line the loader prints on stderr
  if (p.error) {
    EXPECT_EQ(l.errors.empty() ? "" : l.errors.front(), ldso::error_line("", *p.error));
  }
  l.status = p.error ? ldso::exit_status(*p.error) : 0;
  return l;
}

// Puts the case's path file in place for the length of the case.
class PathFile {
 public:
  PathFile(const std::string& root, const MuslCase& c) : path_(root + "/etc/ld-musl-x86_64.path") {
    fs::remove_all(path_);
    if (c.path_file_is_dir) fs::create_directories(path_);
    else if (c.path_file) {
      fs::create_directories(root + "/etc");
      std::ofstream(path_) << *c.path_file;
    }
  }
  ~PathFile() { fs::remove_all(path_); }
  PathFile(const PathFile&) = delete;
  PathFile& operator=(const PathFile&) = delete;

 private:
  std::string path_;
};

class MuslLdso : public ::testing::TestWithParam<std::string> {};

// ARGV run for case C in CWD with its environment, and the prediction of
// the same start (EXPLICIT_LOADER set: musl's ldd mode).
struct Both {
  CommandResult real;
  Result<ldso::Prediction> model;
};
Both run_and_predict(const MuslCase& c, const std::vector<std::string>& argv, const std::string& cwd,
                     const std::string& explicit_loader) {
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  o.env.insert(o.env.end(), c.env.begin(), c.env.end());
  o.cwd = cwd;
  ldso::Request req;
  req.program = c.program;
  req.envp = o.env;
  req.cwd = cwd;
  req.explicit_loader = explicit_loader;
  return {run_command(argv, o), ldso::resolve(req, ldso::SystemInfo::fallback())};
}

TEST_P(MuslLdso, ObjectsErrorsAndStatusMatchMuslsLdd) {
  SKIP_UNLESS_INSTALLED("/usr/bin/musl-gcc", kSystemLoader, "/usr/bin/gcc");
  const MuslTree& t = MuslTree::get();
  ASSERT_EQ(t.error(), "");
  const MuslCase c = cases().at(GetParam());
  const PathFile pf(t.root(), c);
  const std::string loader = c.loader.empty() ? t.loader() : c.loader;
  const auto b = run_and_predict(c, {loader, "--list", c.program}, c.cwd.empty() ? t.root() : c.cwd, loader);
  ASSERT_TRUE(b.real.started);
  ASSERT_TRUE(b.model) << b.model.error().message;
  EXPECT_EQ(ldso::loader_kind_name(b.model->kind), std::string("musl"));
  const Listing model = predicted(*b.model);
  const std::string printed = b.real.out + b.real.err;
  EXPECT_EQ(model.objects, parse_list(b.real.out)) << "musl printed:\n" << printed;
  EXPECT_EQ(model.errors, lines(b.real.err)) << "musl printed:\n" << printed;
  EXPECT_EQ(model.status, b.real.exit_code);
}

// The same case started by the kernel (the program exec'd, its PT_INTERP
// run as the loader, not in ldd mode): $ORIGIN of the program is then
// /proc/self/exe's directory and the needed-by name the execve() path. What
// it prints on stderr and its exit status against the prediction.
TEST_P(MuslLdso, AKernelStartPrintsWhatIsPredicted) {
  SKIP_UNLESS_INSTALLED("/usr/bin/musl-gcc", kSystemLoader, "/usr/bin/gcc");
  const MuslTree& t = MuslTree::get();
  ASSERT_EQ(t.error(), "");
  const MuslCase c = cases().at(GetParam());
  const PathFile pf(t.root(), c);
  const auto b = run_and_predict(c, {c.program}, t.root(), "");
  ASSERT_TRUE(b.real.started);
  ASSERT_TRUE(b.model) << b.model.error().message;
  const Listing model = predicted(*b.model);
  EXPECT_EQ(model.errors, lines(b.real.err)) << b.real.out;
  EXPECT_EQ(model.status, b.real.exit_code);
  if (!b.model->error) {
    EXPECT_EQ(b.real.out, "ok\n");
  }
}

// `procforge ldd FLAGS -- PROGRAM` in CWD, the case's environment given as
// --env (procforge's own start must not see its LD_PRELOAD).
CommandResult procforge_ldd(const MuslCase& c, const std::string& cwd, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {PROCFORGE_BINARY, "ldd", "--clear-env", "--env=PATH=/usr/bin:/bin"};
  for (const auto& e : c.env) argv.push_back("--env=" + e);
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.emplace_back("--");
  argv.push_back(c.program);
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  o.cwd = cwd;
  return run_command(argv, o);
}

// A real ldd's stdout without the load addresses " (0x...)".
std::string strip_addresses(const std::string& out) {
  std::string s;
  for (auto line : lines(out)) {
    const auto at = line.rfind(" (0x");
    if (at != std::string::npos && line.back() == ')') line.resize(at);
    s += line + "\n";
  }
  return s;
}

// The real ldd REAL_ARGV and `procforge ldd FLAGS` on case C: the same
// stdout (without the load addresses), stderr and status.
void expect_same_ldd(const MuslCase& c, const std::vector<std::string>& real_argv, const std::string& cwd,
                     const std::vector<std::string>& flags) {
  const auto b = run_and_predict(c, real_argv, cwd, "");
  const auto mine = procforge_ldd(c, cwd, flags);
  ASSERT_TRUE(b.real.started && mine.started);
  EXPECT_EQ(mine.out, strip_addresses(b.real.out)) << c.program << ": the real ldd printed\n"
                                                   << b.real.out << b.real.err;
  EXPECT_EQ(mine.err, b.real.err) << c.program;
  EXPECT_EQ(mine.exit_code, b.real.exit_code) << c.program;
}

// procforge ldd on a musl program answers as musl's ldd: the program's
// PT_INTERP run as `LOADER --list PROGRAM`. With --loader=glibc, as the
// system's ldd (glibc's script, which traces the musl program with glibc's
// ld.so), on every case but those with LD_PRELOAD: preloading a musl
// library into glibc's ldd makes the script's own bash fail to start (the
// library's libc.so is glibc's linker script), which procforge does not
// model.
class MuslLddGlibc : public ::testing::TestWithParam<std::string> {};
void expect_case_as_ldd(const std::string& name, bool glibc) {
  SKIP_UNLESS_INSTALLED("/usr/bin/musl-gcc", kSystemLoader, "/usr/bin/gcc", "/usr/bin/ldd");
  const MuslTree& t = MuslTree::get();
  ASSERT_EQ(t.error(), "");
  const MuslCase c = cases().at(name);
  const PathFile pf(t.root(), c);
  const std::string cwd = c.cwd.empty() ? t.root() : c.cwd;
  if (glibc) expect_same_ldd(c, {"/usr/bin/ldd", "--", c.program}, cwd, {"--loader=glibc"});
  else expect_same_ldd(c, {c.loader.empty() ? t.loader() : c.loader, "--list", c.program}, cwd, {});
}
TEST_P(MuslLdso, ProcforgeLddPrintsWhatMuslsLddPrints) { expect_case_as_ldd(GetParam(), false); }
TEST_P(MuslLddGlibc, ProcforgeLddGlibcPrintsWhatTheSystemsLddPrints) { expect_case_as_ldd(GetParam(), true); }

// --loader=musl on files musl's loader refuses or that are not musl's: a
// name that does not exist, a directory, a text file, a static program, a
// glibc program (its libc.so.6 is musl's own name for itself; its
// references looked up in musl's libc), against `ld-musl-x86_64.so.1 --list`.
TEST(MuslLdd, RefusalsAndOtherProgramsMatchMuslsLdd) {
  SKIP_UNLESS_INSTALLED("/usr/bin/musl-gcc", kSystemLoader, "/usr/bin/gcc");
  const MuslTree& t = MuslTree::get();
  ASSERT_EQ(t.error(), "");
  for (const std::string& file : {std::string("nonexistent"), std::string("bin"), t.at("notelf/libw.so"),
                                  t.at("bin/static"), std::string("/usr/bin/true"), t.at("bin/glibc")}) {
    expect_same_ldd(MuslCase(file), {kSystemLoader, "--list", file}, t.root(), {"--loader=musl"});
  }
}

// --loader=musl on every 8th ELF file of the system (support/system_elf:
// glibc's programs and libraries, whose references musl's loader looks up in
// its own libc and mostly does not find) against `ld-musl-x86_64.so.1 --list
// FILE`, which maps and relocates them but runs nothing of theirs: the same
// stdout without addresses, stderr and status. Closing line: "musl ldd
// sweep: N files compared, M identical (P%)".
TEST(MuslLdd, SystemFilesThroughMuslsLddMatch) {
  SKIP_UNLESS_INSTALLED(kSystemLoader);
  std::vector<std::string> files;
  const auto all = system_elf_files();
  for (std::size_t i = 0; i < all.size(); i += 8) files.push_back(all[i].path);
  std::vector<std::string> argv = {PROCFORGE_BINARY, "ldd", "--json", "--loader=musl", "--"};
  argv.insert(argv.end(), files.begin(), files.end());
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  o.timeout_ms = 60000;
  const auto mine = run_command(argv, o);
  const auto docs = nlohmann::json::parse(mine.out, nullptr, false);
  ASSERT_FALSE(docs.is_discarded()) << mine.out << mine.err;
  ASSERT_EQ(docs["files"].size(), files.size());
  std::size_t same = 0;
  std::vector<std::string> differences;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& f = docs["files"][i];
    const auto real = run_command({kSystemLoader, "--list", files[i]}, o);
    const bool identical =
        f["status"] == real.exit_code && f["stdout"] == strip_addresses(real.out) && f["stderr"] == real.err;
    if (identical) ++same;
    else if (differences.size() < 10)
      differences.push_back(files[i] + "\n" + f.dump() + "\nmusl: " + real.out + real.err);
  }
  std::printf("musl ldd sweep: %zu files compared, %zu identical (%.1f%%)\n", files.size(), same,
              files.empty() ? 0.0 : 100.0 * static_cast<double>(same) / static_cast<double>(files.size()));
  EXPECT_EQ(same, files.size()) << differences.front();
  EXPECT_GE(files.size(), 50u);
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  // Names only: the tree is built when the first case runs, not at discovery.
  for (const char* n : {"rpath",
                        "runpath",
                        "runpath_inherited_by_needed_objects",
                        "origin_through_symlink_is_the_link_dir",
                        "origin_of_real_path",
                        "origin_relative_program",
                        "origin_braces",
                        "rpath_with_other_dst_is_dropped",
                        "ld_library_path_before_rpath",
                        "ld_library_path_relative",
                        "ld_library_path_newlines_and_empty",
                        "missing_libraries_each_reported",
                        "wrong_machine_earlier_is_loaded",
                        "elf32_earlier_stops_the_search",
                        "not_elf_earlier_stops_the_search",
                        "wrong_arch_after_the_good_one",
                        "path_file_present",
                        "path_file_absent",
                        "path_file_empty",
                        "path_file_is_a_directory",
                        "path_file_colons_and_lines",
                        "same_file_two_names",
                        "needed_with_a_slash",
                        "preload",
                        "preload_searched",
                        "libc_only",
                        "system_loader_and_path_file",
                        "symbol_missing_in_a_call",
                        "symbol_missing_in_data_copied",
                        "symbol_missing_tls",
                        "weak_undefined_symbol_is_silent",
                        "symbols_missing_library_first_program_last",
                        "library_and_symbol_missing",
                        "symbols_found_first_in_load_order",
                        "tls_symbol_found",
                        "ifunc_is_no_definition",
                        "hidden_version_is_no_definition",
                        "preloaded_definition_is_found"})
    names.emplace_back(n);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Cases, MuslLdso, ::testing::ValuesIn(case_names()),
                         [](const auto& param_info) { return param_info.param; });

std::vector<std::string> glibc_ldd_case_names() {
  std::vector<std::string> names;
  for (const auto& n : case_names())
    if (n.find("preload") == std::string::npos) names.push_back(n);
  return names;
}
INSTANTIATE_TEST_SUITE_P(Cases, MuslLddGlibc, ::testing::ValuesIn(glibc_ldd_case_names()),
                         [](const auto& param_info) { return param_info.param; });

// explain names the loader it modelled, from PT_INTERP, in its JSON.
TEST(MuslLdsoKind, ExecOfAMuslProgramIsModelledAsMusl) {
  SKIP_UNLESS_INSTALLED("/usr/bin/musl-gcc", kSystemLoader, "/usr/bin/gcc");
  const MuslTree& t = MuslTree::get();
  ASSERT_EQ(t.error(), "");
  ldso::Request req;
  req.program = t.at("bin/system_loader");
  auto p = ldso::resolve(req, ldso::SystemInfo::fallback());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->kind, ldso::LoaderKind::musl);
  EXPECT_FALSE(p->loader_version.empty());
  ASSERT_GE(p->objects.size(), 2u);
  EXPECT_EQ(p->objects[0].path.value_or(""), kSystemLoader);
  EXPECT_EQ(p->objects[1].name, "libc.so");
}

}  // namespace
}  // namespace procforge::testsupport
