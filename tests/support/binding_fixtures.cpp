#include "support/binding_fixtures.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace procforge::testsupport {

namespace {

// Sets DF_SYMBOLIC in the DT_FLAGS entry of the shared object at PATH: the
// linker's -Bsymbolic would also bind the object's own references at link
// time, leaving ld.so nothing to look up.
bool set_df_symbolic(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (b.size() < sizeof(Elf64_Ehdr)) return false;
  Elf64_Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    const std::size_t at = eh.e_phoff + std::size_t{i} * eh.e_phentsize;
    if (at + sizeof ph > b.size()) return false;
    std::memcpy(&ph, b.data() + at, sizeof ph);
    if (ph.p_type != PT_DYNAMIC) continue;
    for (std::size_t o = ph.p_offset; o + sizeof(Elf64_Dyn) <= ph.p_offset + ph.p_filesz && o + 16 <= b.size();
         o += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      std::memcpy(&d, b.data() + o, sizeof d);
      if (d.d_tag != DT_FLAGS) continue;
      d.d_un.d_val |= DF_SYMBOLIC;
      f.seekp(static_cast<std::streamoff>(o));
      f.write(reinterpret_cast<const char*>(&d), sizeof d);
      return static_cast<bool>(f);
    }
  }
  return false;
}

// An object with DF_1_GROUP (ld -Bgroup) and its dependencies, where the
// group's rule (Solaris: lookups from the group's members only inside the
// group, in its DT_NEEDED breadth-first order) and the global scope give
// other objects: libgroup.so needs libgdep1.so, libgdep2.so (both define
// g_sym and dep_order, libgdep1.so also g_data, which it reads); the
// program needs libother.so (g_sym, g_data), libgdep2.so, libgdep1.so,
// libgroup.so, so the global scope has libother.so first and libgdep2.so
// before libgdep1.so, and libgroup.so, last of the four, is where the
// relocation order's depth-first walk first meets both of its dependencies
// (their order there is DT_NEEDED's). The program built with -Bgroup too,
// and a preload that defines g_sym.
bool add_group_cases(FixtureDir& dir, std::vector<BindingCase>& cases) {
  dir.mkdirs("group");
  dir.write("group/other.c", "int g_sym(void) { return 10; }\nint g_data = 10;\n");
  dir.write("group/gdep1.c",
            "int g_sym(void) { return 1; }\nint g_data = 1;\nint dep_order(void) { return 1; }\n"
            "int gdep1_reads(void) { return g_data; }\n");
  dir.write("group/gdep2.c", "int g_sym(void) { return 2; }\nint dep_order(void) { return 2; }\n");
  dir.write("group/group.c",
            "extern int g_sym(void), dep_order(void), gdep1_reads(void);\n"
            "int group_calls(void) { return g_sym() + dep_order() + gdep1_reads(); }\n");
  dir.write("group/pre.c", "int g_sym(void) { return 3; }\n");
  dir.write("group/main.c",
            "extern int group_calls(void), g_sym(void);\nint main(void) { return group_calls() + g_sym(); }\n");
  const std::string rpath = "-Wl,-rpath," + dir.at("group");
  const std::vector<std::string> main_libs = {
      "-Wl,--no-as-needed", "-Lgroup", "-lother", "-lgdep2", "-lgdep1", "-lgroup", rpath};
  std::vector<std::string> plain{"-o", "group/main", "group/main.c"},
      grouped{"-o", "group/main_group", "group/main.c", "-Wl,-Bgroup"};
  plain.insert(plain.end(), main_libs.begin(), main_libs.end());
  grouped.insert(grouped.end(), main_libs.begin(), main_libs.end());
  if (!dir.gcc({"-shared", "-fPIC", "-o", "group/libother.so", "group/other.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "group/libgdep1.so", "group/gdep1.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "group/libgdep2.so", "group/gdep2.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "group/libpre.so", "group/pre.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "group/libgroup.so", "group/group.c", "-Wl,--no-as-needed", "-Lgroup",
                "-lgdep1", "-lgdep2", "-Wl,-Bgroup", rpath}) ||
      !dir.gcc(plain) || !dir.gcc(grouped))
    return false;
  cases.push_back({"df_1_group_library_and_its_dependencies", dir.at("group/main"), {}, true});
  cases.push_back({"df_1_group_program_interposed_by_ld_preload",
                   dir.at("group/main_group"),
                   {"LD_PRELOAD=" + dir.at("group/libpre.so")},
                   true});
  return true;
}

// LD_DYNAMIC_WEAK: libweak.so, first in the scope, defines wk_fn and wk_obj
// (2 ints, which the program copies: it was linked against this one) weak
// and calls wk_fn itself; libstrong.so, later, defines both global (wk_obj
// of 4 ints); wk_only is weak in both. main_u uses only wk_fn and wk_obj
// (ldd -u: one of its two libraries is unused, which one is the rule's).
bool add_dynamic_weak_cases(FixtureDir& dir, std::vector<BindingCase>& cases) {
  dir.mkdirs("weak");
  dir.write(
      "weak/weak.c",
      "__attribute__((weak)) int wk_fn(void) { return 1; }\n__attribute__((weak)) int wk_obj[2] = {1, 1};\n"
      "__attribute__((weak)) int wk_only(void) { return 1; }\nint weak_calls(void) { return wk_fn() + wk_only(); }\n");
  dir.write("weak/strong.c",
            "int wk_fn(void) { return 2; }\nint wk_obj[4] = {2, 2, 2, 2};\n"
            "__attribute__((weak)) int wk_only(void) { return 2; }\n");
  dir.write("weak/main.c",
            "extern int wk_fn(void), wk_obj[2], wk_only(void), weak_calls(void);\n"
            "int main(void) { return wk_fn() + wk_obj[0] + wk_only() + weak_calls(); }\n");
  dir.write("weak/main_u.c", "extern int wk_fn(void), wk_obj[2];\nint main(void) { return wk_fn() + wk_obj[0]; }\n");
  const std::vector<std::string> libs = {"-Wl,--no-as-needed", "-Lweak", "-lweak", "-lstrong",
                                         "-Wl,-rpath," + dir.at("weak")};
  std::vector<std::string> full{"-o", "weak/main", "-fno-PIC", "-no-pie", "weak/main.c"},
      few{"-o", "weak/main_u", "weak/main_u.c"};
  full.insert(full.end(), libs.begin(), libs.end());
  few.insert(few.end(), libs.begin(), libs.end());
  if (!dir.gcc({"-shared", "-fPIC", "-o", "weak/libweak.so", "weak/weak.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "weak/libstrong.so", "weak/strong.c"}) || !dir.gcc(full) || !dir.gcc(few))
    return false;
  for (const char* program : {"main", "main_u"}) {
    const std::string path = dir.at("weak/" + std::string(program)), suffix = "_" + std::string(program);
    cases.push_back({"weak_definition_taken_first_by_default" + suffix, path, {}, true});
    cases.push_back({"ld_dynamic_weak_prefers_a_later_global_definition" + suffix, path, {"LD_DYNAMIC_WEAK=1"}, true});
    cases.push_back({"ld_dynamic_weak_empty_value_counts_too" + suffix, path, {"LD_DYNAMIC_WEAK="}, true});
  }
  return true;
}

// In DIR/SUB: prot_pie and prot_nopie, which copy a data symbol pd of
// libSUB.so (a copy relocation) and take the address of its function pf (a
// GLOB_DAT; without PIE a canonical PLT entry), linked while both had
// default visibility (ld refuses copy relocations against protected data);
// libSUB.so is then rebuilt with both protected and its own pointers to
// them (R_X86_64_64 against its protected symbols: lookups through a
// protected reference), with LIB_FLAGS. The programs print "before", given
// an argument compare both sides' views, then print "after".
bool build_protected_refs(FixtureDir& dir, const std::string& sub, const std::vector<std::string>& lib_flags) {
  const std::string d = sub + "/";
  dir.mkdirs(sub);
  auto lib = [&](const std::string& vis) {
    return "__attribute__((visibility(\"" + vis + "\"))) int pd = 5;\n" + "__attribute__((visibility(\"" + vis +
           "\"))) int pf(void) { return 1; }\n" +
           "int *pd_ptr = &pd;\nint (*pf_ptr)(void) = pf;\nint get_pd(void) { return pd; }\n"
           "int (*get_pf(void))(void) { return pf; }\n";
  };
  dir.write(d + "stand_in.c", lib("default"));
  dir.write(d + "protected.c", lib("protected"));
  dir.write(d + "main.c",
            "#include <stdio.h>\n"
            "extern int pd, get_pd(void), pf(void), (*get_pf(void))(void), *pd_ptr, (*pf_ptr)(void);\n"
            "int main(int argc, char **argv) {\n  (void)argv;\n  puts(\"before\");\n  fflush(stdout);\n"
            "  if (argc > 1) printf(\"%d %d %d %d\\n\", get_pd() == pd, get_pf() == pf, *pd_ptr == pd, pf_ptr == pf);\n"
            "  puts(\"after\");\n  return 0;\n}\n");
  const std::string so = d + "lib" + sub + ".so", rpath = "-Wl,-rpath," + dir.at(sub);
  std::vector<std::string> final_lib{"-shared", "-fPIC", "-o", so, d + "protected.c"};
  final_lib.insert(final_lib.end(), lib_flags.begin(), lib_flags.end());
  return dir.gcc({"-shared", "-fPIC", "-o", so, d + "stand_in.c"}) &&
         dir.gcc({"-o", d + "prot_pie", "-fPIE", "-pie", d + "main.c", "-L" + sub, "-l" + sub, rpath}) &&
         dir.gcc({"-o", d + "prot_nopie", "-fno-PIC", "-no-pie", d + "main.c", "-L" + sub, "-l" + sub, rpath}) &&
         dir.gcc(final_lib);
}

}  // namespace

Result<std::vector<BindingCase>> build_binding_cases(FixtureDir& dir) {
  auto fail = [&](const std::string& what) { return Error(EIO, what + ": " + dir.error()); };
  const std::string rpath = "-Wl,-rpath," + dir.path();
  // Definitions.
  dir.write("base.c",
            "int shared_fn(void) { return 1; }\nint shared_data = 1;\n"
            "int base_calls(void) { return shared_fn(); }\n");
  dir.write("pre.c", "int shared_fn(void) { return 2; }\n");
  dir.write("prot.c",
            "__attribute__((visibility(\"protected\"))) int prot_data = 5;\n"
            "__attribute__((visibility(\"protected\"))) int prot_fn(void) { return 1; }\n"
            "int get_prot(void) { return prot_data + prot_fn(); }\n");
  dir.write("ver.c",
            "int vfn_1(void) { return 1; }\nint vfn_2(void) { return 2; }\nint vfn_3(void) { return 3; }\n"
            "__asm__(\".symver vfn_1,vfn@V1\");\n__asm__(\".symver vfn_2,vfn@@V2\");\n"
            "__asm__(\".symver vfn_3,vfn@V3\");\n");
  dir.write("ver.map", "V1 { global: vfn; local: *; };\nV2 { global: vfn; } V1;\nV3 { global: vfn; } V2;\n");
  dir.write("copy.c", "int copied[4] = {1, 2, 3, 4};\nint copied_small[2] = {1, 2};\n");
  dir.write("ifunc.c",
            "static int impl(void) { return 7; }\n"
            "static int (*pick(void))(void) { return impl; }\n"
            "int chosen(void) __attribute__((ifunc(\"pick\")));\n");
  dir.write("sym.c", "int sym_fn(void) { return 1; }\nint sym_calls(void) { return sym_fn(); }\n");
  dir.write("tls.c", "__thread int tls_var = 3;\n");
  dir.write("uniq1.c",
            "__asm__(\".globl uobj\\n.type uobj, @gnu_unique_object\\n.data\\nuobj: .long 1\\n.size uobj, 4\");\n");
  dir.write("uniq2.c",
            "__asm__(\".globl uobj\\n.type uobj, @gnu_unique_object\\n.data\\nuobj: .long 2\\n.size uobj, 4\");\n");
  dir.write("uniquse.c", "extern int uobj; int *uniq_addr(void) { return &uobj; }\n");
  const std::vector<std::vector<std::string>> libs = {
      {"-shared", "-fPIC", "-o", "libbase.so", "base.c"},
      {"-shared", "-fPIC", "-o", "libpre.so", "pre.c"},
      {"-shared", "-fPIC", "-o", "libprot.so", "prot.c"},
      {"-shared", "-fPIC", "-o", "libver.so", "ver.c", "-Wl,--version-script=ver.map"},
      {"-shared", "-fPIC", "-o", "libcopy.so", "copy.c"},
      {"-shared", "-fPIC", "-o", "libifunc.so", "ifunc.c"},
      {"-shared", "-fPIC", "-o", "libsym.so", "sym.c", "-Wl,-z,now"},
      {"-shared", "-fPIC", "-o", "libtls.so", "tls.c"},
      {"-shared", "-fPIC", "-o", "libuniq1.so", "uniq1.c", "uniquse.c"},
      {"-shared", "-fPIC", "-o", "libuniq2.so", "uniq2.c"},
  };
  for (const auto& l : libs)
    if (!dir.gcc(l)) return fail(l[3]);
  if (!set_df_symbolic(dir.at("libsym.so"))) return Error(EIO, "libsym.so: no DT_FLAGS to set DF_SYMBOLIC in");
  // The program uses every one; it defines sym_fn too (exported), which
  // libsym.so's DT_SYMBOLIC passes over.
  dir.write("main.c",
            "extern int shared_fn(void), base_calls(void), shared_data, get_prot(void), prot_fn(void);\n"
            "extern int vfn(void), copied[4], chosen(void), sym_calls(void), *uniq_addr(void), uobj;\n"
            "extern __thread int tls_var;\n"
            "extern int not_there(void) __attribute__((weak));\n"
            "int sym_fn(void) { return 9; }\n"
            "int main(void) { return shared_fn() + base_calls() + shared_data + get_prot() + prot_fn() +\n"
            "  vfn() + copied[1] + chosen() + sym_calls() + *uniq_addr() + uobj + tls_var + (not_there ? 1 : 0); }\n");
  dir.write("old.c", "extern int vfn(void);\n__asm__(\".symver vfn,vfn@V1\");\nint main(void) { return vfn(); }\n");
  const std::vector<std::string> all = {
      "-L.",   "-lbase",  "-lprot",  "-lver", "-lcopy",    "-lifunc",           "-lsym",
      "-ltls", "-luniq1", "-luniq2", rpath,   "-rdynamic", "-Wl,--no-as-needed"};
  std::vector<std::string> pie{"-o", "main_pie", "-fPIE", "-pie", "main.c"};
  std::vector<std::string> nopie{"-o", "main_nopie", "-fno-PIC", "-no-pie", "main.c"};
  pie.insert(pie.end(), all.begin(), all.end());
  nopie.insert(nopie.end(), all.begin(), all.end());
  if (!dir.gcc(pie) || !dir.gcc(nopie)) return fail("main");
  if (!dir.gcc({"-o", "old_version", "old.c", "-L.", "-lver", rpath})) return fail("old_version");
  // An unversioned reference (built against an unversioned stand-in) to a
  // symbol whose definitions are versioned: one default version; a hidden
  // (non-default) one beside a default one.
  dir.write("uv_stub.c", "int uvfn(void) { return 0; }\n");
  dir.write("uv_one.c", "int uvfn(void) { return 1; }\n");
  dir.write("uv_one.map", "V1 { local: *; };\nV2 { global: uvfn; } V1;\n");
  dir.write("uv_two.c",
            "int uv_a(void) { return 2; }\nint uv_b(void) { return 3; }\n"
            "__asm__(\".symver uv_a,uvfn@V2\");\n__asm__(\".symver uv_b,uvfn@@V3\");\n");
  dir.write("uv_two.map", "V1 { local: *; };\nV2 { global: uvfn; } V1;\nV3 { global: uvfn; } V2;\n");
  dir.write("uv_main.c", "extern int uvfn(void);\nint main(void) { return uvfn(); }\n");
  dir.mkdirs("uv1");
  dir.mkdirs("uv2");
  for (const char* d : {"uv1", "uv2"})
    if (!dir.gcc({"-shared", "-fPIC", "-o", std::string(d) + "/libuv.so", "uv_stub.c"}) ||
        !dir.gcc(
            {"-o", std::string(d) + "/main", "uv_main.c", "-L" + std::string(d), "-luv", "-Wl,-rpath," + dir.at(d)}))
      return fail(d);
  if (!dir.gcc({"-shared", "-fPIC", "-o", "uv1/libuv.so", "uv_one.c", "-Wl,--version-script=uv_one.map"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "uv2/libuv.so", "uv_two.c", "-Wl,--version-script=uv_two.map"}))
    return fail("versioned libuv.so");
  std::vector<BindingCase> cases = {
      {"unversioned_reference_takes_the_one_default_version", dir.at("uv1/main"), {}, true},
      {"unversioned_reference_passes_a_hidden_version", dir.at("uv2/main"), {}, true},
      {"every_rule_pie", dir.at("main_pie"), {}, true},
      {"every_rule_no_pie_copy_relocations", dir.at("main_nopie"), {}, true},
      {"interposed_by_ld_preload", dir.at("main_pie"), {"LD_PRELOAD=" + dir.at("libpre.so")}, true},
      {"older_version_named_by_symver", dir.at("old_version"), {}, true},
  };
  if (!build_protected_refs(dir, "protref", {})) return fail("protref");
  cases.push_back({"protected_references_pie_copy_relocation", dir.at("protref/prot_pie"), {}, true});
  cases.push_back({"protected_references_no_pie_canonical_plt", dir.at("protref/prot_nopie"), {}, true});
  // Undefined references: built against stand-ins, which are then replaced
  // by objects that lack the symbols (or have other sizes).
  dir.write("stub.c", "int gone_fn(void) { return 0; }\nint gone_data;\n");
  dir.write("empty.c", "int unrelated;\n");
  dir.write("copy_big.c", "int copied[8] = {1};\nint copied_small[1] = {1};\n");
  dir.write("undef.c",
            "extern int gone_fn(void), gone_data, vfn(void), copied[4], copied_small[2];\n"
            "extern int weak_gone(void) __attribute__((weak));\n"
            "int main(void) { return gone_fn() + gone_data + vfn() + copied[0] + copied_small[0] +\n"
            "  (weak_gone ? weak_gone() : 0); }\n");
  dir.write("libuser.c", "extern int gone_fn(void), gone_data;\nint use(void) { return gone_fn() + gone_data; }\n");
  dir.mkdirs("undef");
  if (!dir.gcc({"-shared", "-fPIC", "-o", "undef/libstub.so", "stub.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libver.so", "ver.c", "-Wl,--version-script=ver.map"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libcopy.so", "copy.c"}) ||
      !dir.gcc({"-o", "undef/main", "-fno-PIC", "-no-pie", "undef.c", "-Lundef", "-lstub", "-lver", "-lcopy",
                "-Wl,-rpath," + dir.at("undef")}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libuser.so", "libuser.c", "-Lundef", "-lstub",
                "-Wl,-rpath," + dir.at("undef")}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libstub.so", "empty.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libver.so", "base.c"}) ||
      !dir.gcc({"-shared", "-fPIC", "-o", "undef/libcopy.so", "copy_big.c"}))
    return fail("undefined-symbol cases");
  cases.push_back({"undefined_function_data_version_and_copy_sizes", dir.at("undef/main"), {}, false});
  cases.push_back({"library_with_undefined_symbols", dir.at("undef/libuser.so"), {}, false});
  if (!add_group_cases(dir, cases)) return fail("DF_1_GROUP cases");
  if (!add_dynamic_weak_cases(dir, cases)) return fail("LD_DYNAMIC_WEAK cases");
  return cases;
}

Result<std::vector<BindingCase>> build_lookup_error_cases(FixtureDir& dir) {
  auto fail = [&](const std::string& what) { return Error(EIO, what + ": " + dir.error()); };
  dir.mkdirs("lookup");
  const std::string rpath = "-Wl,-rpath," + dir.at("lookup");
  dir.write("lookup/gone.c", "int gone_fn(void) { return 0; }\nint gone_data = 1;\nint kept(void) { return 1; }\n");
  dir.write("lookup/kept.c", "int kept(void) { return 1; }\n");
  dir.write("lookup/v1.map", "V1 { global: *; };\n");
  dir.write("lookup/user.c", "extern int gone_fn(void);\nint use(void) { return gone_fn(); }\n");
  // BODY: what the program does given an argument.
  auto program = [&](const std::string& name, const std::string& decl, const std::string& body) {
    dir.write("lookup/" + name + ".c", "#include <stdio.h>\n" + decl +
                                           "\nint main(int argc, char **argv) {\n  (void)argv;\n  int r = 0;\n"
                                           "  puts(\"before\");\n  fflush(stdout);\n  if (argc > 1) " +
                                           body + ";\n  puts(\"after\");\n  return r;\n}\n");
  };
  program("call", "extern int gone_fn(void);", "r = gone_fn()");
  program("versioned", "extern int gone_fn(void);", "r = gone_fn()");
  program("data", "extern int gone_data;", "r = gone_data");
  program("lib_call", "extern int use(void);", "r = use()");
  program("weak", "extern int gone_fn(void) __attribute__((weak));", "r = gone_fn ? gone_fn() : 0");
  // Built in DIR: every file under lookup/.
  const std::string l = "lookup/", lib = "-lgone", libdir = "-Llookup";
  const std::vector<std::vector<std::string>> builds = {
      {"-shared", "-fPIC", "-o", l + "libgone.so", l + "gone.c"},
      {"-shared", "-fPIC", "-o", l + "libvgone.so", l + "gone.c", "-Wl,--version-script=" + l + "v1.map"},
      {"-shared", "-fPIC", "-o", l + "libuser.so", l + "user.c", libdir, lib, rpath},
      {"-shared", "-fPIC", "-o", l + "libuser_now.so", l + "user.c", libdir, lib, rpath, "-Wl,-z,now"},
      {"-o", l + "call_lazy", l + "call.c", libdir, lib, rpath},
      {"-o", l + "call_now", l + "call.c", libdir, lib, rpath, "-Wl,-z,now"},
      {"-o", l + "versioned", l + "versioned.c", libdir, "-lvgone", rpath},
      {"-o", l + "data_got", "-fPIC", l + "data.c", libdir, lib, rpath},
      {"-o", l + "data_copy", "-fno-PIC", "-no-pie", l + "data.c", libdir, lib, rpath},
      {"-o", l + "lib_call_lazy", l + "lib_call.c", libdir, "-luser", rpath},
      {"-o", l + "lib_call_now", l + "lib_call.c", libdir, "-luser_now", rpath},
      {"-o", l + "weak", l + "weak.c", libdir, lib, rpath},
      // The stand-ins give way to libraries without the symbols (libvgone.so
      // keeps its version V1).
      {"-shared", "-fPIC", "-o", l + "libgone.so", l + "kept.c"},
      {"-shared", "-fPIC", "-o", l + "libvgone.so", l + "kept.c", "-Wl,--version-script=" + l + "v1.map"},
  };
  for (const auto& b : builds)
    if (!dir.gcc(b)) return fail(b[b[0] == "-o" ? 1 : 3]);
  std::vector<BindingCase> cases;
  for (const char* p : {"call_lazy", "call_now", "versioned", "data_got", "data_copy", "lib_call_lazy", "lib_call_now"})
    cases.push_back({p, dir.at(std::string("lookup/") + p), {}, false});
  cases.push_back({"weak", dir.at("lookup/weak"), {}, true});
  // Protected symbols the executable copies or takes the address of: a
  // warning; an error when their library needs indirect extern access.
  if (!build_protected_refs(dir, "protwarn", {}) ||
      !build_protected_refs(dir, "protiea", {"-mno-direct-extern-access"}))
    return fail("protected references");
  for (const char* p : {"protwarn/prot_pie", "protwarn/prot_nopie"}) cases.push_back({p, dir.at(p), {}, true});
  for (const char* p : {"protiea/prot_pie", "protiea/prot_nopie"}) cases.push_back({p, dir.at(p), {}, false});
  return cases;
}

}  // namespace procforge::testsupport
