// The relocation work ld.so does for one object at start-up, read from the
// dynamic section the way glibc 2.36 does it (elf/dynamic-link.h
// ELF_DYNAMIC_RELOCATE, elf/do-rel.h elf_dynamic_do_Rel, elf/dl-reloc.c
// RESOLVE_MAP, sysdeps/x86_64/dl-machine.h elf_machine_rela /
// elf_machine_lazy_rel), plus a documented cost model turning counts into a
// start-up estimate.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/elf.hpp"
#include "procforge/ldso.hpp"
#include "procforge/result.hpp"

namespace procforge::ldso {

struct RelocationWork {
  bool rela = true;  // DT_RELA (x86_64) rather than DT_REL
  // Relative relocations.
  std::uint64_t relative_count_tag = 0;  // DT_RELACOUNT / DT_RELCOUNT: what LD_DEBUG=statistics sums
  std::uint64_t relative = 0;            // R_X86_64_RELATIVE entries in DT_RELA / DT_REL (and DT_JMPREL)
  std::uint64_t relr_words = 0;          // DT_RELRSZ / DT_RELRENT
  std::uint64_t relr_relative = 0;       // addresses those words encode (not counted by LD_DEBUG)
  // Everything else, by kind.
  std::uint64_t symbolic = 0;   // R_X86_64_64, GLOB_DAT, PC32... outside DT_JMPREL
  std::uint64_t plt = 0;        // R_X86_64_JUMP_SLOT in DT_JMPREL (DT_PLTRELSZ)
  std::uint64_t irelative = 0;  // R_X86_64_IRELATIVE: an IFUNC resolver runs at start-up, lazy or not
  std::uint64_t tls = 0;        // DTPMOD64 / DTPOFF64 / TPOFF64 / TPOFF32
  std::uint64_t copy = 0;       // R_X86_64_COPY
  std::uint64_t none = 0;       // R_X86_64_NONE
  std::uint64_t other = 0;      // any other type
  std::uint64_t entries = 0;    // every REL/RELA entry (DT_RELA range + DT_JMPREL), as readelf -r counts them
  // Flags.
  bool textrel = false;        // DT_TEXTREL / DF_TEXTREL: text pages are made writable, relocated, protected again
  bool bind_now_flag = false;  // DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW
  bool lazy = true;            // PLT slots bound on first call (neither the flag nor LD_BIND_NOW)
  // What start-up costs.
  std::uint64_t symbol_lookups = 0;     // _dl_lookup_symbol_x calls ("number of relocations")
  std::uint64_t lookup_cache_hits = 0;  // reused the one-entry cache ("relocations from cache")
  std::uint64_t pages_dirtied = 0;      // distinct 4 KiB pages written by start-up relocation
  std::vector<std::string> problems;    // tables that could not be read (the counts are partial)
  // With RECORD_LOOKUPS: each lookup start-up makes (the one-entry cache's
  // hits included: they bind as the lookup they repeat), in order, as its
  // symbol index and elf_machine_type_class (1 PLT, 2 COPY), the
  // relocation type, and whether the cache answered it (no
  // _dl_lookup_symbol_x call: nothing printed for LD_DEBUG=bindings).
  struct Lookup {
    std::uint32_t sym = 0;
    int type_class = 0;
    std::uint32_t type = 0;
    bool cached = false;
  };
  std::vector<Lookup> lookups;
};

// BIND_NOW from the environment: LD_BIND_NOW set to a non-empty value
// (rtld.c process_envvars; ignored by nothing, even in secure mode).
bool env_bind_now(const std::vector<std::string>& envp);

// Decodes every relocation table of FILE. LD_BIND_NOW: the environment asks
// for eager binding (env_bind_now()). ld.so relocates itself eagerly whatever
// the mode (rtld.c dl_main: _dl_relocate_object(&GL(dl_rtld_map), ..., 0, 0)):
// pass true for the dynamic linker's own file.
RelocationWork analyze_relocations(const elf::File& file, bool ld_bind_now, bool record_lookups = false);
Result<RelocationWork> analyze_relocations(const std::string& path, bool ld_bind_now);

// Symbol lookups ld.so makes for itself during start-up, which
// LD_DEBUG=statistics counts with the relocations' ones: the rtld malloc
// switch (calloc, free, malloc, realloc: elf/dl-minimal.c
// __rtld_malloc_init_real) and the vDSO pointers (__vdso_clock_gettime,
// gettimeofday, time, getcpu, clock_getres: sysdeps/unix/sysv/linux/
// dl-vdso-setup.c). Observed: a C hello world with LD_BIND_NOW=1 counts
// exactly the relocation lookups + 9.
constexpr std::uint64_t kRtldOwnLookups = 9;

// A deliberately simple start-up cost model: time = Σ count × unit cost.
// The defaults come from one calibration on the project's 2-vCPU Debian 12
// VM (relocations.cpp says how); treat the result as an order of magnitude
// for comparing programs, not as a prediction of wall time.
struct CostModel {
  double ns_per_relative = 1.0;    // one load + add + store
  double ns_per_lookup = 45.0;     // _dl_lookup_symbol_x through the scope (bloom filter, chain, strcmp, version)
  double ns_per_page = 1000.0;     // first write to a file-backed private page (COW fault)
  double ns_per_irelative = 20.0;  // an IFUNC resolver call (cpu-features checks)
  double ns_per_object = 14000.0;  // open, read, mmap, mprotect of one object ("time needed to load objects")
};

struct StartupEstimate {
  double relocation_ns = 0;  // relative + lookups + irelative
  double fault_ns = 0;       // pages dirtied
  double loading_ns = 0;     // per-object mapping cost
  // What relocating costs, the COW faults it takes included: the part of
  // start-up that runs after the last object is mapped.
  [[nodiscard]] double relocating_ns() const { return relocation_ns + fault_ns; }
  [[nodiscard]] double total_ns() const { return relocating_ns() + loading_ns; }
};

// The whole file, read with pread() (never mapped or run); INFO gets its
// fstat() when given. Shared by the version check.
Result<std::vector<std::uint8_t>> read_object_bytes(const std::string& path, struct stat* info = nullptr);

// The cost model, the one place its formula is written: one object's
// estimate, and the sum over a link map. profile attributes measured
// relocation time to objects in proportion to estimate_object().relocating_ns().
StartupEstimate estimate_object(const RelocationWork& work, const CostModel& model = {});
StartupEstimate estimate_startup(const std::vector<RelocationWork>& objects, const CostModel& model = {});

// What Prediction shows of WORK (ldso::Relocations).
Relocations summarize(const RelocationWork& work);

}  // namespace procforge::ldso
