// explain_snapshot OUTDIR PROCFORGE [OTHER_PROCFORGE]: `procforge explain
// --json` of every generated exec corpus case and ld.so fixture, one file each
// under OUTDIR, with the random temporary directory names replaced by fixed
// ones. Given a second binary (the build before a refactor, say), it runs both
// on the same fixture, names every case whose output differs, keeps both
// outputs of those (NAME.other.txt) and exits 1. Not a test: a tool for
// comparing two builds.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/exec_corpus.hpp"
#include "support/ldso_fixtures.hpp"

namespace ts = procforge::testsupport;

namespace {

// mkdtemp names (pfexec-XXXXXX, procforge-ldso-XXXXXX, c-XXXXXX on the noexec
// mount) differ on every run; their length does not, so the rest of the
// prediction (stack addresses included) is comparable after the rename.
std::string normalise(const std::string& s) {
  static const std::regex temp(R"((/tmp/(pfexec-shared|pfexec|procforge-ldso)-|/c-)[A-Za-z0-9]{6})");
  return std::regex_replace(s, temp, "$1XXXXXX");
}

void write(const std::string& file, const ts::CommandResult& r, const std::vector<std::string>& argv) {
  std::ofstream o(file);
  o << "#";
  for (const auto& a : argv) o << ' ' << a;
  o << "\n# exit " << r.exit_code << " signal " << r.signal << "\n" << r.out << "# stderr\n" << r.err;
}

// Runs procforge explain --json FLAGS... -- ARGV... with a fixed environment.
ts::CommandResult explain(const std::string& binary, std::vector<std::string> flags,
                          const std::vector<std::string>& argv, std::vector<std::string>* shown) {
  std::vector<std::string> cmd{binary, "explain", "--json", "--show-env"};
  cmd.insert(cmd.end(), flags.begin(), flags.end());
  cmd.push_back("--");
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  ts::CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin", "LANG=C"};
  o.timeout_ms = 60000;
  auto r = ts::run_command(cmd, o);
  r.out = normalise(r.out);
  r.err = normalise(r.err);
  *shown = cmd;
  for (auto& a : *shown) a = normalise(a);
  (*shown)[0] = "procforge";
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: explain_snapshot OUTDIR PROCFORGE [OTHER_PROCFORGE]\n");
    return 2;
  }
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  int written = 0, skipped = 0;
  std::vector<std::string> differ;
  // Both binaries answer the same fixture, built once.
  auto both = [&](const std::string& file, const std::vector<std::string>& flags,
                  const std::vector<std::string>& args) {
    std::vector<std::string> shown;
    auto r = explain(argv[2], flags, args, &shown);
    write(out + "/" + file + ".txt", r, shown);
    ++written;
    if (argc != 4) return;
    auto other = explain(argv[3], flags, args, &shown);
    if (other.out == r.out && other.err == r.err && other.exit_code == r.exit_code) return;
    write(out + "/" + file + ".other.txt", other, shown);
    differ.push_back(file);
  };

  for (const auto& c : ts::exec_corpus()) {
    ts::CaseBuilder b;
    c.build(b);
    if (!b.skip_reason().empty() || !b.setup_error().empty() || b.argv_null) {
      ++skipped;
      continue;
    }
    auto req = ts::oracle_request(b);
    std::vector<std::string> flags{"--clear-env", "--no-path-search", "-C", req.cwd};
    for (const auto& e : req.envp) flags.insert(flags.end(), {"--env", e});
    if (!req.keep_credentials) flags.insert(flags.end(), {"--uid", "65534", "--gid", "65534"});
    if (req.addr_no_randomize) flags.push_back("--no-aslr");
    both("exec-" + c.name, flags, req.argv);
  }

  for (const auto& name : ts::ldso_case_names()) {
    ts::FixtureDir dir;
    auto lc = ts::build_ldso_case(name, dir);
    if (!lc) {
      ++skipped;
      continue;
    }
    std::vector<std::string> flags{"--clear-env", "--env", "PATH=/usr/bin:/bin"};
    if (!lc->cwd.empty()) flags.insert(flags.end(), {"-C", lc->cwd});
    for (const auto& e : lc->env) flags.insert(flags.end(), {"--env", e});
    if (lc->secure) flags.insert(flags.end(), {"--uid", "65534", "--gid", "65534"});
    both("ldso-" + name, flags, {lc->program});
  }
  ts::SharedEnv::get().teardown();
  std::printf("%d snapshots written to %s, %d cases not expressible as an explain command line\n", written, out.c_str(),
              skipped);
  if (argc != 4) return 0;
  for (const auto& f : differ) std::printf("differs: %s\n", f.c_str());
  std::printf("%zu of %d outputs differ between %s and %s\n", differ.size(), written, argv[2], argv[3]);
  return differ.empty() ? 0 : 1;
}
