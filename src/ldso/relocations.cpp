// Relocation work of one object at start-up, counted the way glibc 2.36 does
// the work:
//   elf/dynamic-link.h  ELF_DYNAMIC_RELOCATE: DT_RELR (packed relative:
//                       an even word is an address, an odd word a bitmap of
//                       the next 63 words), DT_RELA (minus DT_JMPREL when the
//                       linker counted .rela.plt into DT_RELASZ), DT_JMPREL
//                       (lazy unless BIND_NOW);
//   elf/do-rel.h        the first DT_RELACOUNT entries take the relative fast
//                       path; the others go through elf_machine_rela;
//   elf/dl-reloc.c      RESOLVE_MAP: a relocation whose symbol is neither
//                       STB_LOCAL nor hidden/internal is a symbol lookup
//                       (_dl_lookup_symbol_x, "number of relocations" in
//                       LD_DEBUG=statistics) unless the object's one-entry
//                       cache holds the same symbol with the same type class
//                       ("relocations from cache");
//   sysdeps/x86_64/dl-machine.h  elf_machine_type_class (JUMP_SLOT and the
//                       TLS types are class PLT, COPY is class COPY),
//                       elf_machine_lazy_rel (a lazy JUMP_SLOT is still
//                       written: "+= l_addr"; IRELATIVE runs its resolver).
// Every entry's r_offset is a write, so the distinct pages of all of them
// (plus the RELR addresses) are the pages start-up relocation dirties.
//
// Cost model calibration (CostModel defaults): ONE measurement on this
// project's VM (Debian 12, glibc 2.36, 2 vCPU AMD EPYC, TSC 2596.1 MHz, no
// PMU): LD_DEBUG=statistics of `/usr/bin/cmake --version`, 7 runs, medians:
// relocation 2.4 M cycles (= 925 us), loading 0.39 M cycles for 11 objects
// (= 14 us per object). The model's counts for that run (checked against
// the same statistics in tests/unit/ldso_relocations_test.cpp): 51,385
// relative relocations, 12,134 lookups, 332 dirtied pages. With 1 ns per
// relative relocation and 1 us per COW fault fixed by assumption, lookups get
// the rest: (925 - 51 - 332) us / 12,134 = 45 ns. Caveats: the runs varied
// 3x (0.98-4.1 M cycles); reference/startup-and-ldso.md 2.1 found ld.so's
// cycle counts 6-10x below wall time on this VM, and a synthetic COW-fault
// test there gave 2.8-5 us per fault. So: an order of magnitude, for ranking.
#include "ldso/relocations.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "common/unique_fd.hpp"
#include "ldso/sparse_image.hpp"

#ifndef DT_RELRSZ
#define DT_RELRSZ 35
#define DT_RELR 36
#define DT_RELRENT 37
#endif

namespace procforge::ldso {

namespace {

constexpr std::uint64_t kPageShift = 12;

struct Dyn {
  std::optional<std::uint64_t> rela, relasz, relaent, relacount;
  std::optional<std::uint64_t> rel, relsz, relent, relcount;
  std::optional<std::uint64_t> jmprel, pltrelsz, pltrel;
  std::optional<std::uint64_t> relr, relrsz, relrent;
  std::optional<std::uint64_t> symtab, syment;
  std::uint64_t flags = 0, flags_1 = 0;
  bool textrel = false, bind_now = false;
};

Dyn read_dyn(const std::vector<elf::DynamicEntry>& entries) {
  Dyn d;
  for (const auto& e : entries) {
    const std::uint64_t v = e.value;
    switch (e.tag) {
      case DT_RELA: d.rela = v; break;
      case DT_RELASZ: d.relasz = v; break;
      case DT_RELAENT: d.relaent = v; break;
      case DT_RELACOUNT: d.relacount = v; break;
      case DT_REL: d.rel = v; break;
      case DT_RELSZ: d.relsz = v; break;
      case DT_RELENT: d.relent = v; break;
      case DT_RELCOUNT: d.relcount = v; break;
      case DT_JMPREL: d.jmprel = v; break;
      case DT_PLTRELSZ: d.pltrelsz = v; break;
      case DT_PLTREL: d.pltrel = v; break;
      case DT_RELR: d.relr = v; break;
      case DT_RELRSZ: d.relrsz = v; break;
      case DT_RELRENT: d.relrent = v; break;
      case DT_SYMTAB: d.symtab = v; break;
      case DT_SYMENT: d.syment = v; break;
      case DT_FLAGS: d.flags = v; break;
      case DT_FLAGS_1: d.flags_1 = v; break;
      case DT_TEXTREL: d.textrel = true; break;
      case DT_BIND_NOW: d.bind_now = true; break;
      default: break;
    }
  }
  if (d.flags & DF_TEXTREL) d.textrel = true;
  if ((d.flags & DF_BIND_NOW) || (d.flags_1 & DF_1_NOW)) d.bind_now = true;
  return d;
}

// One REL/RELA table in memory order.
struct Table {
  std::uint64_t vaddr = 0, size = 0, entsize = 0;
  bool rela = true;
  bool plt = false;  // DT_JMPREL
};

class Walker {
 public:
  Walker(const elf::File& f, const Dyn& d, RelocationWork& w, bool record) : f_(f), d_(d), w_(w), record_(record) {}

  void relr(std::uint64_t vaddr, std::uint64_t size, std::uint64_t entsize) {
    if (entsize != 8) {
      w_.problems.push_back("DT_RELRENT is " + std::to_string(entsize) + ", not 8: RELR not decoded");
      return;
    }
    auto off = f_.vaddr_to_offset(vaddr);
    if (!off) {
      w_.problems.emplace_back("DT_RELR is not backed by the file");
      return;
    }
    std::uint64_t where = 0;
    for (std::uint64_t i = 0; i < size / 8; ++i) {
      auto word = f_.view().u64(*off + 8 * i);
      if (!word) {
        w_.problems.emplace_back("DT_RELR runs past the end of the file");
        return;
      }
      ++w_.relr_words;
      if ((*word & 1) == 0) {
        where = *word;
        touch(where);
        ++w_.relr_relative;
        where += 8;
        continue;
      }
      for (unsigned bit = 1; bit < 64; ++bit)
        if ((*word >> bit) & 1) {
          touch(where + (bit - 1) * 8);
          ++w_.relr_relative;
        }
      where += 63 * 8;
    }
  }

  // elf_dynamic_do_Rel over one range; SKIP_RELATIVE entries first take the
  // relative fast path (no symbol, no lookup).
  void table(const Table& t, std::uint64_t skip_relative, bool lazy) {
    if (t.size == 0) return;
    const std::uint64_t want = t.rela ? 24 : 16;
    if (t.entsize != want) {
      w_.problems.push_back("relocation entry size " + std::to_string(t.entsize) + ", expected " +
                            std::to_string(want));
      return;
    }
    auto off = f_.vaddr_to_offset(t.vaddr);
    if (!off) {
      w_.problems.emplace_back("relocation table at vaddr " + std::to_string(t.vaddr) + " is not backed by the file");
      return;
    }
    const std::uint64_t n = t.size / t.entsize;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t at = *off + i * t.entsize;
      auto r_offset = f_.view().u64(at);
      auto r_info = f_.view().u64(at + 8);
      if (!r_offset || !r_info) {
        w_.problems.emplace_back("relocation table runs past the end of the file");
        return;
      }
      ++w_.entries;
      touch(*r_offset);
      const auto type = static_cast<std::uint32_t>(*r_info & 0xffffffff);
      const auto sym = static_cast<std::uint32_t>(*r_info >> 32);
      count(type, t.plt);
      if (i < skip_relative) continue;  // relative fast path
      if (type == R_X86_64_RELATIVE || type == R_X86_64_NONE) continue;
      if (t.plt && lazy) continue;  // elf_machine_lazy_rel: no lookup
      resolve(sym, type);
    }
  }

  [[nodiscard]] std::uint64_t pages() const {
    std::vector<std::uint64_t> p = pages_;
    std::sort(p.begin(), p.end());
    return static_cast<std::uint64_t>(std::unique(p.begin(), p.end()) - p.begin());
  }

 private:
  void touch(std::uint64_t vaddr) {
    const std::uint64_t page = vaddr >> kPageShift;
    if (pages_.empty() || pages_.back() != page) pages_.push_back(page);
  }

  void count(std::uint32_t type, bool in_plt) {
    switch (type) {
      case R_X86_64_RELATIVE: ++w_.relative; break;
      case R_X86_64_JUMP_SLOT: (in_plt ? w_.plt : w_.symbolic)++; break;
      case R_X86_64_IRELATIVE: ++w_.irelative; break;
      case R_X86_64_DTPMOD64:
      case R_X86_64_DTPOFF64:
      case R_X86_64_TPOFF64:
      case R_X86_64_TPOFF32: ++w_.tls; break;
      case R_X86_64_COPY: ++w_.copy; break;
      case R_X86_64_NONE: ++w_.none; break;
      case R_X86_64_64:
      case R_X86_64_GLOB_DAT:
      case R_X86_64_PC32:
      case R_X86_64_32:
      case R_X86_64_32S:
      case R_X86_64_PC64:
      case R_X86_64_SIZE32:
      case R_X86_64_SIZE64: ++w_.symbolic; break;
      default: ++w_.other; break;
    }
  }

  static int type_class(std::uint32_t type) {
    // elf_machine_type_class: 1 = ELF_RTYPE_CLASS_PLT, 2 = ELF_RTYPE_CLASS_COPY.
    const bool plt = type == R_X86_64_JUMP_SLOT || type == R_X86_64_DTPMOD64 || type == R_X86_64_DTPOFF64 ||
                     type == R_X86_64_TPOFF64 || type == R_X86_64_TLSDESC;
    return (plt ? 1 : 0) | (type == R_X86_64_COPY ? 2 : 0);
  }

  // RESOLVE_MAP.
  void resolve(std::uint32_t sym, std::uint32_t type) {
    if (!d_.symtab) return;
    const std::uint64_t ent = d_.syment.value_or(24);
    auto sym_off = f_.vaddr_to_offset(*d_.symtab);
    std::optional<std::uint8_t> info, other;
    if (sym_off && ent >= 24 && sym <= (UINT64_MAX - *sym_off) / ent) {
      info = f_.view().u8(*sym_off + sym * ent + 4);
      other = f_.view().u8(*sym_off + sym * ent + 5);
    }
    if (!info || !other) {
      if (!bad_symbol_noted_) w_.problems.emplace_back("a relocation names a symbol outside the file");
      bad_symbol_noted_ = true;
      return;
    }
    if ((*info >> 4) == STB_LOCAL) return;
    const unsigned vis = *other & 3;
    if (vis == STV_HIDDEN || vis == STV_INTERNAL) return;
    const int tc = type_class(type);
    const bool cached = cache_valid_ && cache_sym_ == sym && cache_class_ == tc;
    if (record_) w_.lookups.push_back({sym, tc, type, cached});
    if (cached) {
      ++w_.lookup_cache_hits;
      return;
    }
    cache_valid_ = true;
    cache_sym_ = sym;
    cache_class_ = tc;
    ++w_.symbol_lookups;
  }

  const elf::File& f_;
  const Dyn& d_;
  RelocationWork& w_;
  std::vector<std::uint64_t> pages_;
  bool cache_valid_ = false;
  std::uint32_t cache_sym_ = 0;
  int cache_class_ = 0;
  bool bad_symbol_noted_ = false;
  bool record_ = false;
};

// An object file open for reading, a regular file, with its stat; closed
// when this goes.
struct RegularFile {
  UniqueFd fd;
  struct stat st {};
  Status open(const std::string& path) {
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) return Error(errno, "opening " + path + ": " + errno_name(errno));
    if (::fstat(fd.get(), &st) != 0) return Error(errno, "fstat " + path + ": " + errno_name(errno));
    if (!S_ISREG(st.st_mode)) return Error(EINVAL, path + ": not a regular file");
    return ok_status();
  }
};

}  // namespace

bool env_bind_now(const std::vector<std::string>& envp) {
  // process_envvars() takes the last occurrence; "LD_BIND_NOW=" (empty) is off.
  bool on = false;
  for (const auto& e : envp)
    if (e.rfind("LD_BIND_NOW=", 0) == 0) on = e.size() > 12;
  return on;
}

RelocationWork analyze_relocations(const elf::File& file, bool ld_bind_now, bool record_lookups) {
  RelocationWork w;
  auto entries = file.dynamic();
  if (!entries) {
    w.problems.push_back(entries.error().message);
    return w;
  }
  const Dyn d = read_dyn(*entries);
  w.textrel = d.textrel;
  w.bind_now_flag = d.bind_now;
  w.lazy = !d.bind_now && !ld_bind_now;
  w.rela = !d.rel || d.rela;
  w.relative_count_tag = w.rela ? d.relacount.value_or(0) : d.relcount.value_or(0);

  Walker walk(file, d, w, record_lookups);
  if (d.relr && d.relrsz) walk.relr(*d.relr, *d.relrsz, d.relrent.value_or(8));

  // ELF_DYNAMIC_DO_RELA: the DT_RELA range, less a DT_JMPREL range that ends
  // where it ends (linkers that count .rela.plt into DT_RELASZ).
  Table main_table;
  main_table.rela = w.rela;
  main_table.vaddr = w.rela ? d.rela.value_or(0) : d.rel.value_or(0);
  main_table.size = w.rela ? d.relasz.value_or(0) : d.relsz.value_or(0);
  main_table.entsize = w.rela ? d.relaent.value_or(24) : d.relent.value_or(16);
  if (!(w.rela ? d.rela : d.rel)) main_table.size = 0;
  Table plt;
  plt.plt = true;
  if (d.jmprel && d.pltrelsz) {
    plt.rela = d.pltrel.value_or(DT_RELA) == DT_RELA;
    plt.vaddr = *d.jmprel;
    plt.size = *d.pltrelsz;
    plt.entsize = plt.rela ? 24 : 16;
    if (main_table.size >= plt.size && main_table.vaddr + main_table.size == plt.vaddr + plt.size)
      main_table.size -= plt.size;
  }
  walk.table(main_table, w.relative_count_tag, w.lazy);
  walk.table(plt, 0, w.lazy);
  w.pages_dirtied = walk.pages();
  return w;
}

Result<std::vector<std::uint8_t>> read_object_bytes(const std::string& path, struct stat* info) {
  RegularFile f;
  if (auto opened = f.open(path); !opened) return opened.error();
  const int fd = f.fd.get();
  const struct stat& st = f.st;
  if (info) *info = st;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error(errno, "reading " + path + ": " + errno_name(errno));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  bytes.resize(got);
  return bytes;
}

Result<RelocationWork> analyze_relocations(const std::string& path, bool ld_bind_now) {
  // Only what the walk reads, into a sparse image: the headers, the dynamic
  // section, the relocation tables and the symbol table up to the highest
  // index they name. libLLVM is 100 MiB; its relocation tables are not.
  RegularFile f;
  if (auto opened = f.open(path); !opened) return opened.error();
  const int fd = f.fd.get();
  const struct stat& st = f.st;
  detail::SparseImage img(static_cast<std::size_t>(st.st_size));
  if (img.size != static_cast<std::size_t>(st.st_size)) return Error(ENOMEM, path + ": no memory for its image");
  const elf::ByteView v(img.bytes(), false);
  auto read = [&](std::optional<std::uint64_t> off, std::uint64_t len) {
    if (off) detail::read_range(fd, img, *off, len);
  };
  read(0, 64);
  read(v.u64(32), std::uint64_t{v.u16(56).value_or(0)} * 56);  // e_phoff, e_phnum program headers
  read(v.u64(40), std::uint64_t{v.u16(60).value_or(0)} * 64);  // e_shoff, e_shnum section headers
  auto file = elf::File::parse(img.bytes());
  if (!file) return file.error().with_context(path);
  if (auto ph = file->program_headers())
    for (const auto& h : *ph)
      if (h.type == PT_DYNAMIC) read(h.offset, h.filesz);
  if (auto entries = file->dynamic()) {
    const Dyn d = read_dyn(*entries);
    std::uint64_t max_sym = 0;
    auto table = [&](std::optional<std::uint64_t> vaddr, std::optional<std::uint64_t> size, std::uint64_t ent) {
      if (!vaddr || !size) return;
      auto off = file->vaddr_to_offset(*vaddr);
      if (!off) return;
      read(*off, *size);
      // Elf64_Rel and Elf64_Rela alike: r_info at +8, the symbol in its high half.
      for (std::uint64_t at = *off; ent >= 16 && at + ent <= *off + *size; at += ent)
        if (auto info = v.u64(at + 8)) max_sym = std::max<std::uint64_t>(max_sym, *info >> 32);
    };
    table(d.rela, d.relasz, d.relaent.value_or(24));
    table(d.rel, d.relsz, d.relent.value_or(16));
    table(d.jmprel, d.pltrelsz, d.pltrel.value_or(DT_RELA) == DT_RELA ? 24 : 16);
    if (d.relr && d.relrsz)
      if (auto off = file->vaddr_to_offset(*d.relr)) read(*off, *d.relrsz);
    if (d.symtab)
      if (auto off = file->vaddr_to_offset(*d.symtab)) read(*off, (max_sym + 1) * d.syment.value_or(24));
  }
  return analyze_relocations(*file, ld_bind_now);
}

StartupEstimate estimate_object(const RelocationWork& w, const CostModel& m) {
  StartupEstimate e;
  e.relocation_ns = static_cast<double>(w.relative + w.relr_relative) * m.ns_per_relative +
                    static_cast<double>(w.symbol_lookups) * m.ns_per_lookup +
                    static_cast<double>(w.irelative) * m.ns_per_irelative;
  e.fault_ns = static_cast<double>(w.pages_dirtied) * m.ns_per_page;
  e.loading_ns = m.ns_per_object;
  return e;
}

StartupEstimate estimate_startup(const std::vector<RelocationWork>& objects, const CostModel& m) {
  StartupEstimate sum;
  for (const auto& w : objects) {
    const StartupEstimate e = estimate_object(w, m);
    sum.relocation_ns += e.relocation_ns;
    sum.fault_ns += e.fault_ns;
    sum.loading_ns += e.loading_ns;
  }
  return sum;
}

Relocations summarize(const RelocationWork& w) {
  Relocations r;
  r.relative = w.relative + w.relr_relative;
  r.symbolic = w.symbolic;
  r.plt = w.plt;
  r.irelative = w.irelative;
  r.tls = w.tls;
  r.copy = w.copy;
  r.symbol_lookups = w.symbol_lookups;
  r.textrel = w.textrel;
  r.bind_now = !w.lazy;
  r.pages_dirtied = w.pages_dirtied;
  return r;
}

}  // namespace procforge::ldso
