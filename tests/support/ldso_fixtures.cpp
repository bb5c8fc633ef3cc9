// Builds the ld.so search fixtures (see ldso_fixtures.hpp) with gcc/ld.
// Every library exports <name>_fn() returning 1 plus the sum of its
// dependencies' functions, so the linker records exactly the DT_NEEDED
// entries a case asks for; programs call every library they need and return
// 0, so a run that gets past ld.so prints nothing.
#include "ldso_fixtures.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "procforge/elf.hpp"

namespace procforge::testsupport {

namespace fs = std::filesystem;

FixtureDir::FixtureDir() {
  std::string t = "/tmp/procforge-ldso-XXXXXX";
  if (::mkdtemp(t.data())) {
    dir_ = t;
    ::chmod(dir_.c_str(), 0755);
  }
}

FixtureDir::~FixtureDir() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string FixtureDir::mkdirs(const std::string& rel) {
  std::error_code ec;
  fs::create_directories(at(rel), ec);
  // Every level readable by nobody (the secure-mode case runs as nobody).
  for (fs::path p = at(rel); p.string().size() > dir_.size(); p = p.parent_path()) ::chmod(p.c_str(), 0755);
  return at(rel);
}

std::string FixtureDir::write(const std::string& rel, const std::string& content, unsigned mode) {
  const fs::path p = at(rel);
  if (p.has_parent_path() && p.parent_path().string().size() > dir_.size())
    mkdirs(p.parent_path().string().substr(dir_.size() + 1));
  std::ofstream(p, std::ios::binary) << content;
  ::chmod(p.c_str(), mode);
  return p.string();
}

std::string FixtureDir::symlink(const std::string& rel, const std::string& target) {
  std::error_code ec;
  fs::create_symlink(target, at(rel), ec);
  return at(rel);
}

bool FixtureDir::gcc(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/gcc"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions o;
  o.cwd = dir_;
  o.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  o.timeout_ms = 60000;
  const CommandResult r = run_command(argv, o);
  if (r.exit_code == 0) return true;
  error_ = "gcc";
  for (const auto& a : args) error_ += " " + a;
  error_ += " (exit " + std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") + "): " + r.err;
  return false;
}

std::uint32_t elf_hash(std::string_view name) {
  std::uint32_t h = 0;
  for (unsigned char c : name) {
    h = (h << 4) + c;
    const std::uint32_t g = h & 0xf0000000u;
    if (g) h ^= g >> 24;
    h &= ~g;
  }
  return h;
}

namespace {

// A library LIB (exporting LIB_fn) that calls DEPS' functions.
std::string lib_source(const std::string& lib, const std::vector<std::string>& deps) {
  std::string s;
  for (const auto& d : deps) s += "int " + d + "_fn(void);\n";
  s += "int " + lib + "_fn(void) { return 1";
  for (const auto& d : deps) s += " + " + d + "_fn()";
  return s + "; }\n";
}

// PRINT_LINK_MAP: the run prints the l_name of every object of the link
// map, in order (dl_iterate_phdr walks the main namespace's l_next chain),
// which is how a set-uid run (where trace mode is refused) shows what ld.so
// loaded.
std::string prog_source(const std::vector<std::string>& deps, bool print_link_map = false) {
  std::string s;
  if (print_link_map)
    s += "#define _GNU_SOURCE\n#include <link.h>\n#include <stdio.h>\n"
         "static int print(struct dl_phdr_info* i, size_t n, void* d) {\n"
         "  (void)n; (void)d; printf(\"%s\\n\", i->dlpi_name); return 0; }\n";
  for (const auto& d : deps) s += "int " + d + "_fn(void);\n";
  s += "int main(int argc, char** argv) { (void)argv; int r = 0;\n";
  // Calls guarded by argc so a run never does anything visible.
  for (const auto& d : deps) s += "  if (argc > 99) r += " + d + "_fn();\n";
  if (print_link_map) s += "  dl_iterate_phdr(print, 0);\n";
  return s + "  return r; }\n";
}

// Sets VER_FLG_WEAK on PROGRAM's requirement of VERSION (ld sets it on no
// requirement it writes). Walks .gnu.version_r: Elf64_Verneed {vn_version,
// vn_cnt, vn_file, vn_aux, vn_next}, Elf64_Vernaux {vna_hash, vna_flags,
// vna_other, vna_name, vna_next}.
bool mark_version_weak(const std::string& program, const std::string& version, std::string* why) {
  std::string bytes;
  {
    std::ifstream in(program, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto file = elf::File::parse(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (!file) return *why = program + ": " + file.error().message, false;
  auto sections = file->section_headers();
  if (!sections) return *why = program + ": " + sections.error().message, false;
  auto u32 = [&](std::uint64_t off) {
    std::uint32_t v = 0;
    if (off + 4 <= bytes.size()) std::memcpy(&v, bytes.data() + off, 4);
    return v;
  };
  const std::uint32_t hash = elf_hash(version);
  for (const auto& sh : *sections) {
    if (sh.type != SHT_GNU_verneed) continue;
    std::uint64_t need = sh.offset;
    for (std::uint64_t n = 0; n < sh.info && need + sizeof(Elf64_Verneed) <= bytes.size(); ++n) {
      std::uint64_t aux = need + u32(need + offsetof(Elf64_Verneed, vn_aux));
      const std::uint16_t cnt = static_cast<std::uint16_t>(u32(need + offsetof(Elf64_Verneed, vn_cnt)));
      for (std::uint16_t a = 0; a < cnt && aux + sizeof(Elf64_Vernaux) <= bytes.size(); ++a) {
        if (u32(aux + offsetof(Elf64_Vernaux, vna_hash)) == hash) {
          bytes[aux + offsetof(Elf64_Vernaux, vna_flags)] |= VER_FLG_WEAK;
          std::ofstream(program, std::ios::binary | std::ios::trunc) << bytes;
          return true;
        }
        aux += u32(aux + offsetof(Elf64_Vernaux, vna_next));
      }
      need += u32(need + offsetof(Elf64_Verneed, vn_next));
    }
  }
  *why = program + ": no requirement of version " + version;
  return false;
}

class Builder {
 public:
  Builder(FixtureDir& d, std::string* why) : d_(d), why_(why) {}

  // Builds REL (e.g. "a/liba.so") with SONAME from lib_source(NAME, DEPS).
  bool lib(const std::string& rel, const std::string& soname, const std::string& name,
           const std::vector<std::string>& deps, std::vector<std::string> link = {}) {
    const std::string src = d_.write("src/" + name + "_" + std::to_string(counter_++) + ".c", lib_source(name, deps));
    std::vector<std::string> args = {"-shared", "-fPIC", "-o", d_.at(rel), src};
    if (!soname.empty()) args.push_back("-Wl,-soname," + soname);
    args.insert(args.end(), link.begin(), link.end());
    return run(args);
  }

  bool prog(const std::string& rel, const std::vector<std::string>& deps, std::vector<std::string> link,
            bool print_link_map = false) {
    const std::string src =
        d_.write("src/main_" + std::to_string(counter_++) + ".c", prog_source(deps, print_link_map));
    std::vector<std::string> args = {"-o", d_.at(rel), src};
    args.insert(args.end(), link.begin(), link.end());
    if (!run(args)) return false;
    ::chmod(d_.at(rel).c_str(), 0755);
    return true;
  }

  bool run(const std::vector<std::string>& args) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "-o") d_.mkdirs(fs::path(args[i + 1]).parent_path().string().substr(d_.path().size() + 1));
    if (d_.gcc(args)) return true;
    *why_ = d_.error();
    return false;
  }

  bool copy(const std::string& from_rel, const std::string& to_rel) {
    d_.mkdirs(fs::path(to_rel).parent_path().string());
    std::error_code ec;
    if (fs::copy_file(d_.at(from_rel), d_.at(to_rel), ec)) return true;
    *why_ = "copying " + from_rel + " to " + to_rel + ": " + ec.message();
    return false;
  }

  // `ldconfig -X -C CACHE -f CONF` over DIRS (relative to the fixture).
  bool ldconfig(const std::string& cache_rel, const std::vector<std::string>& dirs) {
    std::string conf;
    for (const auto& dir : dirs) conf += d_.at(dir) + "\n";
    const std::string conf_path = d_.write("ld.so.conf", conf);
    CommandOptions o;
    o.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
    o.timeout_ms = 60000;
    const CommandResult r = run_command({"/sbin/ldconfig", "-X", "-C", d_.at(cache_rel), "-f", conf_path}, o);
    if (r.exit_code == 0 && fs::exists(d_.at(cache_rel))) return true;
    *why_ = "/sbin/ldconfig -X -C " + d_.at(cache_rel) + " -f " + conf_path + " (exit " + std::to_string(r.exit_code) +
            "): " + r.err;
    return false;
  }

  bool set_uid_root(const std::string& path) {
    if (::chown(path.c_str(), 0, 0) == 0 && ::chmod(path.c_str(), 04755) == 0) return true;
    *why_ = "cannot make " + path + " set-uid root: " + std::string(std::strerror(errno));
    return false;
  }

 private:
  FixtureDir& d_;
  std::string* why_;
  int counter_ = 0;
};

}  // namespace

std::vector<std::string> ldso_case_names() {
  return {"rpath_transitive",
          "runpath_not_transitive",
          "runpath_on_intermediate_disables_rpath",
          "origin_through_symlinks",
          "ld_library_path_empty_and_semicolon",
          "nodeflib",
          "nodeflib_with_ld_library_path",
          "wrong_class_earlier_in_path",
          "bad_magic_earlier_in_path",
          "missing_library",
          "missing_symbol_version",
          "no_version_information",
          "same_soname_two_spellings_one_file",
          "same_soname_two_spellings_two_files",
          "ld_preload",
          "weak_version_missing",
          "legacy_hwcap_subdirectories",
          "cache_prefers_the_best_glibc_hwcaps_entry",
          "secure_mode_ignores_ld_library_path",
          "secure_mode_ignores_origin_in_the_program_rpath",
          "secure_mode_keeps_origin_in_a_library_rpath",
          "secure_mode_ignores_origin_after_the_start_of_a_library_rpath"};
}

namespace {

std::optional<LdsoCase> build(const std::string& name, FixtureDir& d, std::string* why) {
  if (d.path().empty()) {
    *why = "mkdtemp failed";
    return std::nullopt;
  }
  Builder b(d, why);
  LdsoCase c;
  c.name = name;
  c.cwd = d.path();
  c.program = d.at("bin/prog");
  auto fail = [] { return std::optional<LdsoCase>{}; };
  // main -> liba -> libb, libs in <dir>/a and <dir>/b.
  auto chain = [&](std::vector<std::string> a_link, std::vector<std::string> main_link) {
    if (!b.lib("b/libb.so", "libb.so", "b", {})) return false;
    a_link.insert(a_link.end(), {d.at("b/libb.so")});
    if (!b.lib("a/liba.so", "liba.so", "a", {"b"}, a_link)) return false;
    main_link.insert(main_link.end(), {d.at("a/liba.so"), "-Wl,-rpath-link," + d.at("b")});
    return b.prog("bin/prog", {"a"}, main_link);
  };

  if (name == "rpath_transitive") {
    if (!chain({}, {"-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../a:$ORIGIN/../b"})) return fail();
  } else if (name == "runpath_not_transitive") {
    if (!chain({}, {"-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../a:$ORIGIN/../b"})) return fail();
    c.run_for_real = true;
  } else if (name == "runpath_on_intermediate_disables_rpath") {
    if (!chain({"-Wl,--enable-new-dtags", "-Wl,-rpath,/nonexistent-procforge"},
               {"-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../a:$ORIGIN/../b"}))
      return fail();
    c.run_for_real = true;
  } else if (name == "origin_through_symlinks") {
    // real/bin/prog (RPATH $ORIGIN/../lib) run as link/prog -> ../real/bin/prog:
    // the kernel's /proc/self/exe gives real/bin. liba sits behind a
    // symlinked directory and finds libb through its own $ORIGIN, which is
    // the (uncanonicalised) path it was opened by.
    if (!b.lib("store/b/libb.so", "libb.so", "b", {})) return fail();
    if (!b.lib("store/a/liba.so", "liba.so", "a", {"b"},
               {d.at("store/b/libb.so"), "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../b"}))
      return fail();
    d.mkdirs("real/lib");
    d.symlink("real/lib/a", "../../store/a");
    if (!b.prog("real/bin/prog", {"a"},
                {d.at("store/a/liba.so"), "-Wl,-rpath-link," + d.at("store/b"), "-Wl,--disable-new-dtags",
                 "-Wl,-rpath,$ORIGIN/../lib/a"}))
      return fail();
    d.mkdirs("link");
    c.program = d.symlink("link/prog", "../real/bin/prog");
  } else if (name == "ld_library_path_empty_and_semicolon") {
    // libone in the cwd (the empty element), libtwo in a relative dir named
    // after a ';'.
    if (!b.lib("work/libone.so", "libone.so", "one", {})) return fail();
    if (!b.lib("work/rel/libtwo.so", "libtwo.so", "two", {})) return fail();
    if (!b.prog("bin/prog", {"one", "two"}, {d.at("work/libone.so"), d.at("work/rel/libtwo.so")})) return fail();
    c.cwd = d.at("work");
    c.env = {"LD_LIBRARY_PATH=/nonexistent-procforge::/also-missing;rel"};
  } else if (name == "nodeflib" || name == "nodeflib_with_ld_library_path") {
    // libz comes from the cache and the default dirs only; -z nodefaultlib
    // refuses both (libc too).
    const std::string src = d.write("src/z.c",
                                    "int zlibVersion(void);\nint main(int c, char** v) { (void)v; "
                                    "return c > 99 ? zlibVersion() != 0 : 0; }\n");
    if (!b.run({"-o", d.at("bin/prog"), src, "-lz", "-Wl,-z,nodefaultlib"})) return fail();
    if (name == "nodeflib") c.run_for_real = true;
    else c.env = {"LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu"};
  } else if (name == "wrong_class_earlier_in_path" || name == "bad_magic_earlier_in_path") {
    if (!b.lib("good/libw.so", "libw.so", "w", {})) return fail();
    if (name == "wrong_class_earlier_in_path") {
      const std::string src = d.write("src/w32.c", "int w_fn(void) { return 1; }\n");
      if (!b.run({"-m32", "-nostdlib", "-shared", "-fPIC", "-o", d.at("bad/libw.so"), src})) return fail();
    } else {
      d.write("bad/libw.so", std::string(4096, 'x'), 0755);
      c.run_for_real = true;
    }
    if (!b.prog("bin/prog", {"w"},
                {d.at("good/libw.so"), "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../bad:$ORIGIN/../good"}))
      return fail();
  } else if (name == "missing_library") {
    if (!b.lib("gone/libgone.so", "libgone.so", "gone", {})) return fail();
    if (!b.prog("bin/prog", {"gone"}, {d.at("gone/libgone.so")})) return fail();
    std::error_code ec;
    fs::remove(d.at("gone/libgone.so"), ec);
    c.run_for_real = true;
  } else if (name == "missing_symbol_version" || name == "no_version_information") {
    // Linked against libv with V1 and V2; at run time libv has only V1 (or
    // no version definitions at all).
    const std::string src = d.write("src/v.c", "int v1_fn(void) { return 1; }\nint v2_fn(void) { return 2; }\n");
    const std::string v1 = d.write("src/v1.map", "V1 { global: v1_fn; local: *; };\n");
    const std::string v2 = d.write("src/v2.map", "V1 { global: v1_fn; local: *; };\nV2 { global: v2_fn; } V1;\n");
    if (!b.run({"-shared", "-fPIC", "-o", d.at("linktime/libv.so"), src, "-Wl,-soname,libv.so",
                "-Wl,--version-script=" + v2}))
      return fail();
    std::vector<std::string> runtime = {"-shared", "-fPIC", "-o", d.at("lib/libv.so"), src, "-Wl,-soname,libv.so"};
    if (name == "missing_symbol_version") runtime.push_back("-Wl,--version-script=" + v1);
    if (!b.run(runtime)) return fail();
    const std::string psrc = d.write("src/vmain.c",
                                     "int v1_fn(void); int v2_fn(void);\nint main(int c, char** a) "
                                     "{ (void)a; return c > 99 ? v1_fn() + v2_fn() : 0; }\n");
    if (!b.run({"-o", d.at("bin/prog"), psrc, d.at("linktime/libv.so"), "-Wl,--disable-new-dtags",
                "-Wl,-rpath,$ORIGIN/../lib"}))
      return fail();
    c.run_for_real = name == "missing_symbol_version";
  } else if (name == "same_soname_two_spellings_one_file" || name == "same_soname_two_spellings_two_files") {
    // main needs libdup.so.1 (its SONAME); liba needs "libdup.so" (linked
    // against a copy without SONAME). At run time lib/libdup.so is a symlink
    // to libdup.so.1 (same inode: one object) or a separate copy (two).
    if (!b.lib("lib/libdup.so.1", "libdup.so.1", "dup", {})) return fail();
    if (!b.lib("nosoname/libdup.so", "", "dup", {})) return fail();
    if (!b.lib("lib/liba.so", "liba.so", "a", {"dup"}, {"-L" + d.at("nosoname"), "-ldup"})) return fail();
    if (name == "same_soname_two_spellings_one_file") {
      d.symlink("lib/libdup.so", "libdup.so.1");
    } else {
      std::error_code ec;
      fs::copy_file(d.at("lib/libdup.so.1"), d.at("lib/libdup.so"), ec);
    }
    if (!b.prog("bin/prog", {"dup", "a"},
                {d.at("lib/libdup.so.1"), d.at("lib/liba.so"), "-Wl,-rpath-link," + d.at("nosoname"),
                 "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}))
      return fail();
  } else if (name == "ld_preload") {
    if (!b.lib("pre/libpre.so", "libpre.so", "pre", {})) return fail();
    if (!b.lib("lib/libm2.so", "libm2.so", "m2", {})) return fail();
    if (!b.prog("bin/prog", {"m2"}, {d.at("lib/libm2.so"), "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}))
      return fail();
    // An absolute preload, one found through the program's RPATH, one missing.
    if (!b.lib("lib/libpre2.so", "libpre2.so", "pre2", {})) return fail();
    c.env = {"LD_PRELOAD=" + d.at("pre/libpre.so") + " libpre2.so:libmissingpre.so"};
  } else if (name == "weak_version_missing") {
    // As missing_symbol_version, with the requirement of V2 marked weak: a
    // warning, and the run goes on (elf/dl-version.c match_symbol).
    const std::string src = d.write("src/v.c", "int v1_fn(void) { return 1; }\nint v2_fn(void) { return 2; }\n");
    const std::string v1 = d.write("src/v1.map", "V1 { global: v1_fn; local: *; };\n");
    const std::string v2 = d.write("src/v2.map", "V1 { global: v1_fn; local: *; };\nV2 { global: v2_fn; } V1;\n");
    if (!b.run({"-shared", "-fPIC", "-o", d.at("linktime/libv.so"), src, "-Wl,-soname,libv.so",
                "-Wl,--version-script=" + v2}) ||
        !b.run({"-shared", "-fPIC", "-o", d.at("lib/libv.so"), src, "-Wl,-soname,libv.so",
                "-Wl,--version-script=" + v1}) ||
        !b.prog("bin/prog", {"v1", "v2"},
                {d.at("linktime/libv.so"), "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}) ||
        !mark_version_weak(c.program, "V2", why))
      return fail();
    c.run_for_real = true;
  } else if (name == "legacy_hwcap_subdirectories") {
    // glibc <= 2.36 tries tls/, $PLATFORM/ and hwcap-named subdirectories of
    // every search directory (elf/dl-hwcaps.c _dl_important_hwcaps): liblegacy
    // is in b/tls/ and b/x86_64/, libgone nowhere, so the trace and the
    // files ld.so tries for libgone (LD_DEBUG=libs) show the order.
    if (!b.lib("b/tls/liblegacy.so", "liblegacy.so", "legacy", {}) ||
        !b.copy("b/tls/liblegacy.so", "b/x86_64/liblegacy.so") || !b.lib("gone/libgone.so", "libgone.so", "gone", {}))
      return fail();
    d.mkdirs("a/x86_64/x86_64");
    if (!b.prog("bin/prog", {"legacy", "gone"},
                {d.at("b/tls/liblegacy.so"), d.at("gone/libgone.so"), "-Wl,--disable-new-dtags",
                 "-Wl,-rpath,$ORIGIN/../a:$ORIGIN/../b"}))
      return fail();
    std::error_code ec;
    fs::remove(d.at("gone/libgone.so"), ec);
  } else if (name == "cache_prefers_the_best_glibc_hwcaps_entry") {
    // libq.so.1 in lib/ and in lib/glibc-hwcaps/x86-64-v2/ and x86-64-v3/,
    // known only through the generated cache (the program has no RPATH):
    // elf/dl-cache.c search_cache() takes the best active glibc-hwcaps entry.
    if (!b.lib("lib/libq.so.1", "libq.so.1", "q", {}) ||
        !b.copy("lib/libq.so.1", "lib/glibc-hwcaps/x86-64-v2/libq.so.1") ||
        !b.copy("lib/libq.so.1", "lib/glibc-hwcaps/x86-64-v3/libq.so.1") ||
        !b.prog("bin/prog", {"q"}, {d.at("lib/libq.so.1")}) || !b.ldconfig("ld.so.cache", {"lib"}))
      return fail();
    c.cache = d.at("ld.so.cache");
  } else if (name == "secure_mode_ignores_ld_library_path") {
    if (!b.lib("s/libs.so", "libs.so", "s", {})) return fail();
    if (!b.prog("bin/prog", {"s"}, {d.at("s/libs.so")}) || !b.set_uid_root(c.program)) return fail();
    c.env = {"LD_LIBRARY_PATH=" + d.at("s")};
  } else if (name == "secure_mode_ignores_origin_in_the_program_rpath") {
    // The program's $ORIGIN must expand into a trusted system directory in
    // secure mode (elf/dl-load.c _dl_dst_substitute, is_trusted_path_normalize):
    // a program under /tmp loses the element.
    if (!b.lib("lib/libs.so", "libs.so", "s", {}) ||
        !b.prog("bin/prog", {"s"}, {d.at("lib/libs.so"), "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"},
                true) ||
        !b.set_uid_root(c.program))
      return fail();
  } else if (name == "secure_mode_keeps_origin_in_a_library_rpath" ||
             name == "secure_mode_ignores_origin_after_the_start_of_a_library_rpath") {
    // The trusted-directory check is for the program only; a library's
    // $ORIGIN is kept when it starts the element, dropped anywhere else
    // (_dl_dst_substitute: "name != start + 1").
    const bool first = name == "secure_mode_keeps_origin_in_a_library_rpath";
    const std::string b_dir = first ? "b" : "nest" + d.at("a");
    if (!b.lib(b_dir + "/libb.so", "libb.so", "b", {}) ||
        !b.lib("a/liba.so", "liba.so", "a", {"b"},
               {d.at(b_dir + "/libb.so"), "-Wl,--disable-new-dtags",
                "-Wl,-rpath," + (first ? std::string("$ORIGIN/../b") : d.at("nest") + "$ORIGIN")}) ||
        !b.prog(
            "bin/prog", {"a"},
            {d.at("a/liba.so"), "-Wl,-rpath-link," + d.at(b_dir), "-Wl,--disable-new-dtags", "-Wl,-rpath," + d.at("a")},
            true) ||
        !b.set_uid_root(c.program))
      return fail();
  } else if (name == "dt_audit") {
    // la_version() writes the canary: if anything runs this library, we see it.
    c.canary = d.at("canary");
    const std::string src = d.write("src/canary.c",
                                    "#include <fcntl.h>\n#include <unistd.h>\nunsigned la_version(unsigned v) {\n"
                                    "  int fd = open(\"" +
                                        c.canary +
                                        "\", O_WRONLY | O_CREAT, 0644);\n"
                                        "  if (fd >= 0) close(fd);\n  return v;\n}\n");
    if (!b.run({"-shared", "-fPIC", "-o", d.at("audit/libcanary.so"), src, "-Wl,-soname,libcanary.so"})) return fail();
    const std::string psrc = d.write("src/amain.c", "int main(void) { return 0; }\n");
    if (!b.run({"-o", d.at("bin/prog"), psrc, "-Wl,--audit=" + d.at("audit/libcanary.so")})) return fail();
  } else {
    *why = "unknown case " + name;
    return fail();
  }
  if (name.rfind("secure_mode_", 0) == 0) {
    // Set-uid root run by nobody: AT_SECURE. Trace mode exits with status 5
    // there (elf/rtld.c process_envvars), so only a real run shows anything.
    c.secure = true;
    c.run_for_real = true;
    c.prints_link_map = name != "secure_mode_ignores_ld_library_path";
    c.list_with_ldso = false;  // ld.so run as a command by nobody is not secure
  }
  return c;
}

// Cases that run as another user, set-uid root or in a mount namespace.
bool needs_root(const std::string& name) { return name.rfind("secure_mode_", 0) == 0 || name.rfind("cache_", 0) == 0; }

}  // namespace

Result<LdsoCase> build_ldso_case(const std::string& name, FixtureDir& d) {
  if (needs_root(name) && ::geteuid() != 0)
    return Error(EPERM, name + " needs root (a set-uid root program run as nobody, or a bind mount)");
  std::string why;
  auto c = build(name, d, &why);
  if (!c) return Error(0, name + ": " + why);
  return *c;
}

}  // namespace procforge::testsupport
