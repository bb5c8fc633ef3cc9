// libFuzzer target for the ELF reader (and runtime::identify and musl's lookup tables on the same bytes): parse
// arbitrary bytes, then call every accessor, so ASan/UBSan see every read the reader can be made to do. The results are
// folded into a checksum the optimiser cannot drop. Beyond "no crash", the reader's guarantees are checked:
//   - the header decoded from the kernel's 256-byte buffer (parse_header, the
//     exec model's path) is the one File::parse decodes from the whole file,
//     and both equal <elf.h>'s Elf32_Ehdr / Elf64_Ehdr read from the bytes;
//   - every view the reader returns lies inside the input, and every file
//     offset it computes (table entries, dynamic entries, notes, translated
//     addresses) names bytes of the file.
// Run: fuzz_elf -max_total_time=180 corpus/  (seeds: fuzz/make_seed_corpus.sh)
#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <tuple>

#include "invariant.hpp"
#include "ldso/musl_symbols.hpp"
#include "procforge/elf.hpp"
#include "procforge/runtime.hpp"

namespace {

using namespace procforge::elf;

volatile std::uint64_t g_sink;
std::span<const std::uint8_t> g_input;  // the bytes under test

// [off, off + len) names bytes of the input.
void check_in_file(std::uint64_t off, std::uint64_t len, const char* what) {
  FUZZ_CHECK(range_fits(off, len, g_input.size()), "{} at {:#x}+{:#x} is outside the {:#x}-byte file", what, off, len,
             g_input.size());
}

// Folds a view the reader returned into a checksum, after checking that it
// points into the input (an empty view may point anywhere).
std::uint64_t touch(std::span<const std::uint8_t> s) {
  if (!s.empty()) {
    const auto begin = reinterpret_cast<std::uintptr_t>(g_input.data());
    const auto at = reinterpret_cast<std::uintptr_t>(s.data());
    FUZZ_CHECK(at >= begin && at - begin <= g_input.size() && s.size() <= g_input.size() - (at - begin),
               "a returned view of {} bytes at input+{:#x} is outside the {:#x}-byte input", s.size(), at - begin,
               g_input.size());
  }
  std::uint64_t h = s.size();
  for (auto b : s) h = h * 31 + b;
  return h;
}

std::uint64_t touch(std::string_view s) {
  return touch(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// A translated address is a file offset: it must name a byte of the file.
std::uint64_t translate(const File& f, std::uint64_t vaddr) {
  const auto off = f.vaddr_to_offset(vaddr);
  if (off) check_in_file(*off, 1, "vaddr_to_offset's result");
  return off.value_or(0);
}

template <class T>
std::uint64_t status(const procforge::Result<T>& r) {
  // Errors are ordinary outcomes; their messages are built, so format them too.
  return r ? 1 : r.error().message.size() + static_cast<std::uint64_t>(r.error().err);
}

auto fields(const Header& h) {
  return std::tie(h.ei_class, h.ei_data, h.ei_version, h.ei_osabi, h.ei_abiversion, h.is64, h.big_endian, h.type,
                  h.machine, h.version, h.entry, h.phoff, h.shoff, h.flags, h.ehsize, h.phentsize, h.phnum, h.shentsize,
                  h.shnum, h.shstrndx);
}

template <class T>
T in_order(T v, bool big_endian) {
  if (!big_endian || sizeof(T) == 1) return v;
  if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
  if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(v));
  if constexpr (sizeof(T) == 8) return static_cast<T>(__builtin_bswap64(v));
  return v;
}

// The file header as <elf.h> lays it out, with the reader's documented rules
// for the ident bytes: any class but ELFCLASS32 is read as ELF64, EI_DATA
// ELFDATA2MSB is big endian.
template <class Ehdr>
Header header_from_elf_h(std::span<const std::uint8_t> bytes) {
  Ehdr e;
  std::memcpy(&e, bytes.data(), sizeof e);
  Header h;
  h.ei_class = e.e_ident[EI_CLASS];
  h.ei_data = e.e_ident[EI_DATA];
  h.ei_version = e.e_ident[EI_VERSION];
  h.ei_osabi = e.e_ident[EI_OSABI];
  h.ei_abiversion = e.e_ident[EI_ABIVERSION];
  h.is64 = h.ei_class != ELFCLASS32;
  const bool be = h.big_endian = h.ei_data == ELFDATA2MSB;
  h.type = in_order(e.e_type, be);
  h.machine = in_order(e.e_machine, be);
  h.version = in_order(e.e_version, be);
  h.entry = in_order(e.e_entry, be);
  h.phoff = in_order(e.e_phoff, be);
  h.shoff = in_order(e.e_shoff, be);
  h.flags = in_order(e.e_flags, be);
  h.ehsize = in_order(e.e_ehsize, be);
  h.phentsize = in_order(e.e_phentsize, be);
  h.phnum = in_order(e.e_phnum, be);
  h.shentsize = in_order(e.e_shentsize, be);
  h.shnum = in_order(e.e_shnum, be);
  h.shstrndx = in_order(e.e_shstrndx, be);
  return h;
}

// The exec model decodes the header from the first 256 bytes only; that must
// be the header the whole file has, and the one <elf.h> describes.
void check_header(std::span<const std::uint8_t> bytes, const procforge::Result<File>& file) {
  const auto prefix = parse_header(bytes.first(std::min<std::size_t>(bytes.size(), 256)));
  FUZZ_CHECK(static_cast<bool>(prefix) == static_cast<bool>(file), "the 256-byte parse {} but the whole-file parse {}",
             prefix ? "succeeds" : "fails", file ? "succeeds" : "fails");
  if (!file) return;
  FUZZ_CHECK(fields(*prefix) == fields(file->header()), "the 256-byte header differs from the whole file's");
  const bool is64 = file->header().ei_class != ELFCLASS32;
  const Header expected = is64 ? header_from_elf_h<Elf64_Ehdr>(bytes) : header_from_elf_h<Elf32_Ehdr>(bytes);
  const Header& got = file->header();
  FUZZ_CHECK(fields(got) == fields(expected),
             "header differs from <elf.h>'s: e_type {:#x}/{:#x} e_phoff {:#x}/{:#x} e_phnum {}/{} e_shnum {}/{} "
             "e_shstrndx {}/{}",
             got.type, expected.type, got.phoff, expected.phoff, got.phnum, expected.phnum, got.shnum, expected.shnum,
             got.shstrndx, expected.shstrndx);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  g_input = bytes;
  std::uint64_t h = 0;

  // The exec model's path: header from a prefix, then a table it read itself.
  if (auto hdr = parse_header(bytes.first(std::min<std::size_t>(size, 256)))) {
    const std::uint64_t off = hdr->phoff < size ? hdr->phoff : 0;
    auto ph = parse_program_headers(bytes.subspan(off), *hdr, off);
    h += status(ph);
  }

  auto file = File::parse(bytes);
  check_header(bytes, file);
  h += status(file);
  if (!file) {
    g_sink = h;
    return 0;
  }
  const File& f = *file;
  const std::uint64_t word = f.header().is64 ? 8 : 4;

  auto phdrs = f.program_headers();
  h += status(phdrs);
  if (phdrs) {
    for (std::size_t i = 0; i < phdrs->size(); ++i) {
      const auto& p = (*phdrs)[i];
      check_in_file(p.table_offset, f.header().phentsize, "program header table entry");
      h += p.offset ^ p.filesz;
      h += segment_type_name(p.type).size() + segment_flags_string(p.flags).size();
      // Addresses at and around the first segments' edges (each call decodes
      // the table again, so probing all of a huge table would be quadratic
      // in the harness, not in the reader).
      if (i >= 8) continue;
      for (std::uint64_t a : {p.vaddr, p.vaddr + p.filesz - 1, p.vaddr + p.filesz}) {
        h += translate(f, a);
      }
    }
  }
  h += translate(f, 0) + translate(f, UINT64_MAX) + translate(f, f.header().entry);
  h += type_name(f.header().type).size() + machine_name(f.header().machine).size();

  auto shdrs = f.section_headers();
  h += status(shdrs);
  if (shdrs) {
    for (const auto& s : *shdrs) h += touch(s.name) + s.size;
  }

  if (auto interp = f.interpreter(); interp && *interp) h += touch(**interp);

  if (auto dyn = f.dynamic()) {
    for (const auto& e : *dyn) {
      check_in_file(e.offset, 2 * word, "dynamic entry");
      h += dynamic_tag_name(e.tag).size() + e.value;
    }
  }
  if (auto info = f.dynamic_info()) {
    for (auto s : info->needed) h += touch(s);
    for (auto* o : {&info->soname, &info->rpath, &info->runpath}) {
      if (*o) h += touch(**o);
    }
    for (auto s : info->filters) h += touch(s);
    for (auto s : info->auxiliary) h += touch(s);
    for (auto s : info->audit) h += touch(s);
  } else {
    h += status(info);
  }

  if (auto notes = f.notes()) {
    for (const auto& n : *notes) {
      check_in_file(n.offset, 12, "note header");
      h += touch(n.name) + touch(n.desc);
    }
  }
  if (auto props = f.gnu_properties()) {
    for (const auto& p : *props) h += p.type + touch(p.data);
  }

  for (auto which : {SymbolTable::dynsym, SymbolTable::symtab}) {
    auto syms = f.symbols(which);
    h += status(syms);
    if (syms) {
      for (const auto& s : *syms) h += touch(s.name) + s.value;
    }
  }
  if (auto needs = f.version_needs()) {
    for (const auto& n : *needs) {
      h += touch(n.file);
      for (const auto& e : n.entries) h += touch(e.name);
    }
  }
  if (auto defs = f.version_defs()) {
    for (const auto& d : *defs) {
      for (auto s : d.names) h += touch(s);
    }
  }
  if (auto versym = f.version_symbols()) h += versym->size();

  // The runtime's name from the same bytes: whatever they hold, a name, a
  // start in words, and a Go version no longer than the reader takes.
  if (auto rt = procforge::runtime::identify(bytes)) {
    FUZZ_CHECK(!rt->name.empty() && !rt->start.empty(), "runtime {} without name or start", rt->name);
    FUZZ_CHECK(rt->version.size() <= 64, "Go version of {} bytes", rt->version.size());
    FUZZ_CHECK(rt->language == procforge::runtime::Language::go || rt->version.empty(), "version {} outside Go",
               rt->version);
    h += rt->name.size();
  }

  // musl's lookup tables from the same bytes (ldso/musl_symbols.cpp): every
  // name the hash table gives is a symbol of that name, and each relocation
  // entry read took 16 bytes or more of the file (three tables at most).
  const auto musl = procforge::ldso::detail::MuslSymbols::read(bytes);
  for (const auto& [name, index] : musl.findable) {
    FUZZ_CHECK(index < musl.syms.size() && musl.syms[index].name == name, "findable {} names symbol {} of {}", name,
               index, musl.syms.size());
    h += musl.defines(name, true) ? 1 : 0;
  }
  FUZZ_CHECK(musl.relocs.size() <= 3 * (size / 16), "{} relocations from {} bytes", musl.relocs.size(), size);
  h += musl.relocs.size();

  g_sink = h;
  return 0;
}
