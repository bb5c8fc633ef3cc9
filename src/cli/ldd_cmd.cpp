// `procforge ldd`: glibc's ldd without running anything. For each FILE, the
// library's ldso::ldd() (the script's checks, the loader's --verify and its
// trace, modelled) and ldso::ldd_text(): the same lines as ldd without load
// addresses, the "FILE:" header when several files are given, ldd's status
// (0, or 1 when one file failed). A FILE whose PT_INTERP is musl's loader
// gets musl's ldd instead (the loader run as ldd: its list, its error lines,
// its status), unless --loader=glibc asks for the system's ldd. --tree draws each file's dependency tree
// with the rule that found every object; --json gives, per file, the same
// "loader" object as explain --json.
#include <unistd.h>

#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/output.hpp"

namespace procforge::cli {

namespace {

struct LddOptions {
  bool verbose = false;  // -v: the "Version information" section
  bool unused = false;   // -u
  bool data_relocs = false;
  bool function_relocs = false;
  bool tree = false;
  bool json = false;
  std::string loader = "auto";  // whose ldd: auto (by PT_INTERP), glibc, musl
  bool clear_env = false;
  std::vector<std::string> set_env, unset_env;
  std::string cwd;
};

const char* outcome_name(ldso::LddResult::Outcome o) {
  switch (o) {
    case ldso::LddResult::Outcome::no_such_file: return "no_such_file";
    case ldso::LddResult::Outcome::not_regular: return "not_regular";
    case ldso::LddResult::Outcome::no_read_permission: return "no_read_permission";
    case ldso::LddResult::Outcome::not_dynamic: return "not_dynamic";
    case ldso::LddResult::Outcome::traced: return "traced";
  }
  return "?";
}

nlohmann::json file_json(const std::string& given, const ldso::LddResult& r, const ldso::LddText& t) {
  return {{"file", given},
          {"path", r.file},
          {"outcome", r.musl_outcome == ldso::LddResult::MuslOutcome::cannot_load         ? "cannot_load"
                      : r.musl_outcome == ldso::LddResult::MuslOutcome::not_valid_dynamic ? "not_valid_dynamic"
                                                                                          : outcome_name(r.outcome)},
          {"ldd", ldso::loader_kind_name(r.kind)},
          {"why", r.why.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.why)},
          {"rtld", r.loader.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.loader)},
          {"status", t.status},
          {"stdout", t.out},
          {"stderr", t.err},
          {"loader", r.trace ? render_loader_json(r.file, *r.trace) : nlohmann::json(nullptr)}};
}

int run_ldd(const LddOptions& o, const std::vector<std::string>& files) {
  if (files.empty()) {
    print_error("ldd", "name a FILE");
    return kExitCannot;
  }
  std::string bad;
  const auto env = edited_environment(o.clear_env, o.set_env, o.unset_env, &bad);
  if (!bad.empty()) {
    print_error("ldd", bad);
    return kExitCannot;
  }
  std::vector<ldso::LddRequest> reqs;
  bool glibc_ldd = false;
  for (const auto& file : files) {
    auto& req = reqs.emplace_back();
    req.file = file;
    req.envp = env;
    req.cwd = o.cwd;
    req.unused = o.unused;
    // ldd.bash.in: -r sets LD_WARN=yes and LD_BIND_NOW=yes, -d LD_WARN=yes alone.
    req.check_symbols = o.function_relocs ? ldso::Request::SymbolCheck::all
                        : o.data_relocs   ? ldso::Request::SymbolCheck::data
                                          : ldso::Request::SymbolCheck::none;
    if (o.loader != "auto") req.as = o.loader == "musl" ? ldso::LoaderKind::musl : ldso::LoaderKind::glibc;
    glibc_ldd |= ldso::musl_ldd_loader(req).empty();
  }
  // What ldd's own shell start prints, before anything else (glibc's ldd
  // is a bash script; musl's is the loader itself).
  std::string shell;
  if (glibc_ldd)
    for (const auto& l : ldso::ldd_shell_lines(env, o.cwd, loader_system())) shell += l + "\n";
  if (!o.json) std::cerr << shell << std::flush;
  const bool color = color_on(STDOUT_FILENO);
  int status = 0;
  bool cannot = false;
  nlohmann::json docs = nlohmann::json::array();
  for (const auto& req : reqs) {
    const std::string& file = req.file;
    auto r = ldso::ldd(req, loader_system());
    if (!r) {
      // Said and counted; the other files are still answered.
      cannot = true;
      if (o.json)
        docs.push_back({{"file", file}, {"outcome", "not_modelled"}, {"why", r.error().message}, {"status", nullptr}});
      else print_error("ldd", r.error().message);
      continue;
    }
    const ldso::LddText t = ldso::ldd_text(*r, o.verbose);
    status |= t.status;
    if (o.json) {
      docs.push_back(file_json(file, *r, t));
      continue;
    }
    // ldd's script: the header on stdout, its own errors on stderr.
    if (files.size() > 1) std::cout << file << ":\n";
    if (o.tree && r->trace && !r->trace->stopped && r->trace->dynamic)
      std::cout << render_loader_text(r->file, *r->trace, color, Detail::summary);
    else std::cout << t.out;
    std::cout << std::flush;
    std::cerr << t.err << std::flush;
  }
  if (cannot) status = kExitCannot;
  if (o.json)
    std::cout
        << stamped(nlohmann::json{{"files", docs}, {"shell_stderr", shell}, {"status", status}}, schema::ldd).dump(2)
        << "\n";
  return status;
}

}  // namespace

void add_ldd(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<LddOptions>();
  auto* l = app.add_subcommand("ldd", "ldd's answer for executables and shared libraries, without running them");
  l->add_flag("-v,--verbose", o->verbose, "Also the version information section, as ldd -v");
  l->add_flag("-u,--unused", o->unused, "Unused direct dependencies, as ldd -u (no list then)");
  l->add_flag("-r,--function-relocs", o->function_relocs,
              "Also the symbols no object defines, every relocation and PLT slot bound, as ldd -r");
  l->add_flag("-d,--data-relocs", o->data_relocs,
              "Also the symbols no object defines, data relocations only (lazy PLT slots are not bound), as ldd -d");
  l->add_flag("--tree", o->tree, "Each file's dependency tree, with the rule that found each object");
  l->add_flag("--json", o->json, "Machine-readable output: per file, explain --json's \"loader\" object");
  l->add_option("--loader", o->loader,
                "Whose ldd to answer as: auto (musl's for a FILE whose PT_INTERP is musl's loader, else glibc's), "
                "glibc (the system's ldd script, which traces musl programs with glibc's ld.so too), musl (musl's "
                "loader run as ldd: ld-musl-x86_64.so.1 --list FILE)")
      ->check(CLI::IsMember({"auto", "glibc", "musl"}));
  l->add_option("-C,--cwd", o->cwd, "Working directory relative FILEs and $ORIGIN are taken from");
  add_environment_flags(*l, o->set_env, o->unset_env, o->clear_env);
  l->footer(
      "FILE... follow the options (or \"--\"). ld.so run on each FILE as ldd runs it (LD_TRACE_LOADED_OBJECTS=1 "
      "/lib64/ld-linux-x86-64.so.2 FILE) is modelled, or for a musl program musl's loader run as ldd (LOADER --list "
      "FILE); nothing is loaded or run.\nExit status: 0 every file was listed, 1 one could not be or -u found an "
      "unused dependency (as ldd), 127 musl's loader failed on one (as it does), 2 bad usage or a file procforge "
      "cannot answer for.");
  commands.push_back({l, [o](std::vector<std::string> files) { return run_ldd(*o, files); }});
}

}  // namespace procforge::cli
