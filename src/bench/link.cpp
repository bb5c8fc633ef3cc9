// Suites "link" and "faults": what exec and ld.so cost a start, with programs
// generated here and built with the system's cc and ld into a temporary
// directory (removed at the end, also on failure or cancel).
//
// What the curves follow, in glibc 2.36's ld.so:
//  - libraries: each DT_NEEDED is searched, opened, mapped and relocated
//    (elf/dl-load.c _dl_map_object, elf/dl-reloc.c _dl_relocate_object), and
//    every symbol lookup walks the search scope (elf/dl-lookup.c).
//  - lazy against BIND_NOW: with lazy binding, PLT slots are resolved at their
//    first call (elf/dl-runtime.c _dl_fixup); with BIND_NOW all at load.
//    LD_BIND_NOW=1 is what DF_BIND_NOW does (elf/rtld.c: GLRO(dl_lazy) = 0).
//  - symbols: a program referencing N functions of one library (in a branch
//    never taken) has N PLT slots: lazy binding resolves none, BIND_NOW all.
//  - hash style: DT_GNU_HASH lookups test a Bloom filter first; DT_HASH
//    walks SysV chains (elf/dl-lookup.c do_lookup_x).
//  - relative relocations: RELA stores 24 bytes each; DT_RELR packs them in
//    bitmaps (elf/dl-reloc-static-pie.c, elf/do-rel.h ELF_DYNAMIC_DO_RELR).
//  - LD_LIBRARY_PATH: every directory is tried for every library before
//    RUNPATH (elf/dl-load.c open_path), so the cost grows with both.
//  - faults: the same start with the generated files dropped from the page
//    cache (posix_fadvise POSIX_FADV_DONTNEED, mm/fadvise.c) and cached.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "bench/detail.hpp"
#include "procforge/warm.hpp"

namespace procforge::bench::detail {

namespace {

namespace fs = std::filesystem;

// The temporary directory of the generated programs; removed by the destructor.
class GeneratedTree {
 public:
  GeneratedTree() {
    char tmpl[] = "/tmp/procforge-bench-gen-XXXXXX";
    if (mkdtemp(tmpl)) dir_ = tmpl;
  }
  ~GeneratedTree() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  GeneratedTree(const GeneratedTree&) = delete;
  GeneratedTree& operator=(const GeneratedTree&) = delete;
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

// What to generate: the values of each curve.
struct Plan {
  std::vector<int> libraries, symbols, relocs, dirs;
  int dirs_libraries = 0;  // the program the LD_LIBRARY_PATH curve runs
};

Plan plan_for(bool quick) {
  if (quick) return {{1, 10, 200}, {10, 10000}, {1000, 100000}, {0, 100}, 10};
  return {{1, 10, 50, 100, 200}, {10, 1000, 10000}, {1000, 10000, 100000}, {0, 10, 100}, 50};
}

std::string n(int v) { return std::to_string(v); }

// Builds with at most two compilers at a time (the machine may have two
// cores); each job's stderr goes to a file whose text a failure quotes.
Status run_jobs(const GeneratedTree& t, const std::vector<std::vector<std::string>>& jobs, Progress& progress) {
  struct Running {
    spawn::Child child;
    std::size_t job;
  };
  std::vector<Running> running;
  auto finish = [&](Running& r) -> Status {
    auto e = r.child.wait();
    if (e && e->shell_status() == 0) return ok_status();
    std::ifstream err(t.path("err-" + n(static_cast<int>(r.job))));
    std::string first;
    std::getline(err, first);
    std::string cmd;
    for (const auto& w : jobs[r.job]) cmd += (cmd.empty() ? "" : " ") + w;
    return Error{ECHILD, "building the generated programs: " + cmd.substr(0, 200) + " failed: " + first};
  };
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (progress.cancelled()) break;
    spawn::Options o;
    o.path = jobs[i].front();
    o.argv = jobs[i];
    o.cwd = t.dir();
    o.stdout_.kind = spawn::Stdio::Kind::null;
    o.stderr_.kind = spawn::Stdio::Kind::file;
    o.stderr_.path = t.path("err-" + n(static_cast<int>(i)));
    auto c = spawn::spawn(o);
    if (!c) return c.error().with_context("building the generated programs (" + jobs[i].front() + ")");
    running.push_back({std::move(*c), i});
    if (running.size() == 2) {
      Status st = finish(running.front());
      running.erase(running.begin());
      if (!st) {
        for (auto& r : running) (void)r.child.wait();
        return st;
      }
    }
  }
  Status st = ok_status();
  for (auto& r : running)
    if (auto s = finish(r); st && !s) st = s;
  if (st && progress.cancelled()) return cancelled_error();
  return st;
}

void write_file(const GeneratedTree& t, const std::string& name, const std::string& text) {
  std::ofstream(t.path(name)) << text;
}

// Library i: a few exported functions calling each other (through the PLT:
// default visibility, -fPIC) and some of libc's, and a pointer to relocate.
std::string library_source(int i) {
  const std::string s = n(i);
  return "#include <string.h>\n#include <stdlib.h>\nconst char* lib_name_" + s + " = \"lib" + s +
         "\";\nint lib_count_" + s + ";\nint lib_fn_" + s + "(void) { return ++lib_count_" + s + "; }\nint lib_twice_" +
         s + "(void) { return lib_fn_" + s + "() + lib_fn_" + s + "(); }\nint lib_len_" + s +
         "(void) { return (int)strlen(lib_name_" + s + "); }\nint lib_env_" + s + "(void) { return getenv(lib_name_" +
         s + ") != 0; }\nvoid* lib_copy_" + s + "(void* d, const void* src, size_t k) { return memcpy(d, src, k); }\n";
}

std::string libraries_main(int count) {
  std::string o;
  for (int i = 0; i < count; ++i) o += "int lib_fn_" + n(i) + "(void);\n";
  o += "int main(void) {\n  int s = 0;\n";
  for (int i = 0; i < count; ++i) o += "  s += lib_fn_" + n(i) + "();\n";
  return o + "  return s == " + n(count) + " ? 0 : 1;\n}\n";
}

std::string symbols_library(int count) {
  std::string o;
  for (int k = 0; k < count; ++k) o += "int sym_" + n(count) + "_" + n(k) + "(void) { return " + n(k) + "; }\n";
  return o;
}

// References every symbol in a branch never taken: N PLT slots, no call.
std::string symbols_main(int count) {
  std::string o;
  for (int k = 0; k < count; ++k) o += "int sym_" + n(count) + "_" + n(k) + "(void);\n";
  o += "int main(int argc, char** argv) {\n  (void)argv;\n  int s = 0;\n  if (argc > 1000) {\n";
  for (int k = 0; k < count; ++k) o += "    s += sym_" + n(count) + "_" + n(k) + "();\n";
  return o + "  }\n  return s;\n}\n";
}

// count pointers into one array: count R_X86_64_RELATIVE relocations.
std::string relocs_library(int count) {
  std::string o = "static char target[64];\nchar* relr_table_" + n(count) + "[] = {\n";
  for (int k = 0; k < count; ++k) o += "target + " + n(k % 64) + ",\n";
  return o + "};\n";
}

std::string relocs_main(int count) {
  return "extern char* relr_table_" + n(count) +
         "[];\nint main(int argc, char** argv) {\n  (void)argv;\n  return argc > "
         "1000 ? relr_table_" +
         n(count) + "[0][0] : 0;\n}\n";
}

// Writes the sources and builds every program of the plan.
Status build(const GeneratedTree& t, const Plan& p, Progress& progress) {
  const int max_libs = p.libraries.back();
  const std::string rpath = "-Wl,--enable-new-dtags,-rpath," + t.dir();
  std::vector<std::vector<std::string>> compile, link, mains;
  // Libraries: one cc -c for half of them, another for the other half.
  std::vector<std::string> even = {"cc", "-c", "-fPIC", "-O1"}, odd = even;
  for (int i = 0; i < max_libs; ++i) {
    write_file(t, "g" + n(i) + ".c", library_source(i));
    (i % 2 ? odd : even).push_back("g" + n(i) + ".c");
    link.push_back({"ld", "-shared", "--hash-style=gnu", "-soname", "libg" + n(i) + ".so", "-o", "libg" + n(i) + ".so",
                    "g" + n(i) + ".o"});
  }
  compile.push_back(even);
  if (odd.size() > 4) compile.push_back(odd);
  for (int c : p.libraries) {
    write_file(t, "libs" + n(c) + ".c", libraries_main(c));
    std::vector<std::string> cmd = {"cc",  "-O1", "-o",          "libs" + n(c),       "libs" + n(c) + ".c",
                                    "-L.", rpath, "-Wl,-z,lazy", "-Wl,--no-as-needed"};
    for (int i = 0; i < c; ++i) cmd.push_back("-lg" + n(i));
    mains.push_back(cmd);
  }
  for (int c : p.symbols) {
    write_file(t, "sym" + n(c) + ".c", symbols_library(c));
    write_file(t, "symmain" + n(c) + ".c", symbols_main(c));
    compile.push_back({"cc", "-c", "-fPIC", "-O0", "sym" + n(c) + ".c"});
    for (const char* style : {"gnu", "sysv"}) {
      const std::string lib = std::string("sym") + style + n(c);
      link.push_back(
          {"cc", "-shared", "-o", "lib" + lib + ".so", "sym" + n(c) + ".o", std::string("-Wl,--hash-style=") + style});
      mains.push_back({"cc", "-O0", "-o", lib, "symmain" + n(c) + ".c", "-L.", "-l" + lib, rpath, "-Wl,-z,lazy",
                       std::string("-Wl,--hash-style=") + style});
    }
  }
  for (int c : p.relocs) {
    write_file(t, "rel" + n(c) + ".c", relocs_library(c));
    write_file(t, "relmain" + n(c) + ".c", relocs_main(c));
    compile.push_back({"cc", "-c", "-fPIC", "-O0", "rel" + n(c) + ".c"});
    for (const char* kind : {"relr", "rela"}) {
      const std::string lib = kind + n(c);
      link.push_back({"cc", "-shared", "-o", "lib" + lib + ".so", "rel" + n(c) + ".o",
                      std::string("-Wl,-z,") + (kind[3] == 'r' ? "pack-relative-relocs" : "nopack-relative-relocs")});
      mains.push_back({"cc", "-O0", "-o", lib, "relmain" + n(c) + ".c", "-L.", "-l" + lib, rpath});
    }
  }
  write_file(t, "trivial.c", "int main(void) { return 0; }\n");
  mains.push_back({"cc", "-O1", "-static", "-o", "static", "trivial.c"});
  mains.push_back({"cc", "-O1", "-static-pie", "-o", "static-pie", "trivial.c"});
  mains.push_back({"cc", "-O1", "-o", "dynamic", "trivial.c"});
  for (int d = 0; d < p.dirs.back(); ++d) fs::create_directory(t.path("empty" + n(d)));

  progress.say("link: compiling " + n(max_libs) + " libraries and the symbol and relocation tables");
  if (auto st = run_jobs(t, compile, progress); !st) return st;
  progress.say("link: linking the libraries");
  if (auto st = run_jobs(t, link, progress); !st) return st;
  progress.say("link: linking the programs");
  if (auto st = run_jobs(t, mains, progress); !st) return st;
  // Written back, so that evicting them from the page cache drops them.
  const int fd = open(t.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) syncfs(fd), close(fd);
  progress.step("link: built");
  return ok_status();
}

std::vector<std::string> env_with(std::vector<std::string> extra) {
  extra.insert(extra.begin(), "PATH=/usr/bin:/bin");
  return extra;
}

Case start_case(const std::string& series, const std::string& variable, double value, const std::string& path,
                std::vector<std::string> envp, std::string label = {}) {
  Case k;
  k.series = series;
  k.variable = variable;
  k.value = value;
  k.label = std::move(label);
  k.run = [o = quiet_options(path, std::move(envp))] { return timed_spawn(o); };
  return k;
}

// Drops files from the page cache: clean pages not mapped anywhere go.
Status evict(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::call(ErrorStep::open, errno, "opening to evict", f);
    const int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (e != 0) return Error::call(ErrorStep::read, e, "posix_fadvise DONTNEED", f);
  }
  return ok_status();
}

std::vector<Case> link_cases(const GeneratedTree& t, const Plan& p, warm::Pool* pool) {
  std::vector<Case> cases;
  const std::string lazy = "lazy binding", now = "BIND_NOW";
  for (int c : p.libraries) {
    cases.push_back(start_case(lazy, "libraries", c, t.path("libs" + n(c)), env_with({})));
    cases.push_back(start_case(now, "libraries", c, t.path("libs" + n(c)), env_with({"LD_BIND_NOW=1"})));
    if (pool) {
      Case k;
      k.series = "warm instance";
      k.variable = "libraries";
      k.value = c;
      k.run = [pool, o = quiet_options(t.path("libs" + n(c)), env_with({}))]() -> Result<Sample> {
        const auto t0 = std::chrono::steady_clock::now();
        auto child = pool->spawn(o);
        if (!child) return child.error();
        auto exit = child->wait();
        if (!exit || exit->shell_status() != 0) return Error{ECHILD, "a warm instance of " + o.path + " failed"};
        return Sample{std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count()};
      };
      cases.push_back(std::move(k));
    }
  }
  for (int c : p.symbols) {
    cases.push_back(start_case(lazy, "exported_symbols", c, t.path("symgnu" + n(c)), env_with({})));
    cases.push_back(start_case(now, "exported_symbols", c, t.path("symgnu" + n(c)), env_with({"LD_BIND_NOW=1"})));
    cases.push_back(start_case("BIND_NOW, SysV hash", "exported_symbols", c, t.path("symsysv" + n(c)),
                               env_with({"LD_BIND_NOW=1"})));
  }
  for (int c : p.relocs) {
    cases.push_back(start_case("RELA", "relative_relocs", c, t.path("rela" + n(c)), env_with({})));
    cases.push_back(start_case("RELR", "relative_relocs", c, t.path("relr" + n(c)), env_with({})));
  }
  const char* kinds[] = {"static", "static-pie", "dynamic"};
  for (int i = 0; i < 3; ++i)
    cases.push_back(start_case("exec+ld.so+exit", "link_kind", i, t.path(kinds[i]), env_with({}), kinds[i]));
  for (int d : p.dirs) {
    std::string path;
    for (int k = 0; k < d; ++k) path += (k ? ":" : "") + t.path("empty" + n(k));
    cases.push_back(
        start_case(n(p.dirs_libraries) + " libraries", "ld_library_path_dirs", d, t.path("libs" + n(p.dirs_libraries)),
                   env_with(d ? std::vector<std::string>{"LD_LIBRARY_PATH=" + path} : std::vector<std::string>{})));
  }
  return cases;
}

std::vector<Case> fault_cases(const GeneratedTree& t, const Plan& p) {
  struct Program {
    std::string label, path;
    std::vector<std::string> files, env;
  };
  const int libs = p.libraries.back(), syms = p.symbols.back();
  Program many{n(libs) + " libraries", t.path("libs" + n(libs)), {t.path("libs" + n(libs))}, {}};
  for (int i = 0; i < libs; ++i) many.files.push_back(t.path("libg" + n(i) + ".so"));
  Program sym{n(syms) + " symbols, BIND_NOW",
              t.path("symgnu" + n(syms)),
              {t.path("symgnu" + n(syms)), t.path("libsymgnu" + n(syms) + ".so")},
              {"LD_BIND_NOW=1"}};
  Program stat{"static", t.path("static"), {t.path("static")}, {}};
  std::vector<Case> cases;
  int i = 0;
  for (const Program& prog : {stat, many, sym}) {
    cases.push_back(start_case("page cache warm", "program", i, prog.path, env_with(prog.env), prog.label));
    Case cold = start_case("page cache cold", "program", i, prog.path, env_with(prog.env), prog.label);
    cold.before = [files = prog.files] { return evict(files); };
    cases.push_back(std::move(cold));
    ++i;
  }
  return cases;
}

}  // namespace

Status run_link_and_faults(const SuiteConfig& c, bool link, bool faults, int runs, Progress& progress,
                           SuiteReport& report) {
  const GeneratedTree tree;
  if (tree.dir().empty()) return Error::call(ErrorStep::write, errno, "making a directory for the generated programs");
  const Plan plan = plan_for(c.quick);
  progress.add_total(1);
  if (auto st = build(tree, plan, progress); !st) return st;

  if (link) {
    // A warm instance of each library program, when the pool can hold one.
    warm::Pool pool;
    warm::Report how;
    auto probe = pool.spawn(quiet_options(tree.path("libs1"), env_with({})), &how);
    if (probe) (void)probe->wait();
    const bool warm_ok = probe && how.warm;
    if (!warm_ok)
      report.notes.push_back("link: no warm instance series: " + (probe ? how.fallback_reason : probe.error().message));
    std::vector<Case> cases = link_cases(tree, plan, warm_ok ? &pool : nullptr);
    progress.add_total(rounds_of(cases, runs));
    if (auto st = run_interleaved("link", cases, runs, 2, progress, report.measurements); !st) return st;
  }
  if (faults) {
    std::vector<Case> cases = fault_cases(tree, plan);
    progress.add_total(rounds_of(cases, runs));
    const std::size_t first = report.measurements.size();
    if (auto st = run_interleaved("faults", cases, runs, 1, progress, report.measurements); !st) return st;
    for (std::size_t i = first; i < report.measurements.size(); ++i) {
      const auto& m = report.measurements[i];
      if (m.series == "page cache cold" && m.majflt <= 0)
        report.notes.push_back("faults: " + m.label +
                               ": no major fault after eviction (the files stayed cached: mapped elsewhere?)");
    }
  }
  return ok_status();
}

}  // namespace procforge::bench::detail
