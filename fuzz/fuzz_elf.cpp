// libFuzzer target for the ELF reader: parse arbitrary bytes, then call every
// accessor, so ASan/UBSan see every read the reader can be made to do. The
// results are folded into a checksum the optimiser cannot drop, and every
// returned view is touched so an out-of-bounds view would trip ASan here.
// Run: fuzz_elf -max_total_time=180 corpus/  (seeds: fuzz/make_seed_corpus.sh)
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "procforge/elf.hpp"

namespace {

using namespace procforge::elf;

volatile std::uint64_t g_sink;

std::uint64_t touch(std::span<const std::uint8_t> s) {
  std::uint64_t h = s.size();
  for (auto b : s) h = h * 31 + b;
  return h;
}

std::uint64_t touch(std::string_view s) {
  return touch(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

template <class T>
std::uint64_t status(const procforge::Result<T>& r) {
  // Errors are ordinary outcomes; their messages are built, so format them too.
  return r ? 1 : r.error().message.size() + static_cast<std::uint64_t>(r.error().err);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  std::uint64_t h = 0;

  // The exec model's path: header from a prefix, then a table it read itself.
  if (auto hdr = parse_header(bytes.first(std::min<std::size_t>(size, 256)))) {
    const std::uint64_t off = hdr->phoff < size ? hdr->phoff : 0;
    auto ph = parse_program_headers(bytes.subspan(off), *hdr, off);
    h += status(ph);
  }

  auto file = File::parse(bytes);
  h += status(file);
  if (!file) {
    g_sink = h;
    return 0;
  }
  const File& f = *file;

  auto phdrs = f.program_headers();
  h += status(phdrs);
  if (phdrs) {
    for (std::size_t i = 0; i < phdrs->size(); ++i) {
      const auto& p = (*phdrs)[i];
      h += p.offset ^ p.filesz;
      h += segment_type_name(p.type).size() + segment_flags_string(p.flags).size();
      // Addresses at and around the first segments' edges (each call decodes
      // the table again, so probing all of a huge table would be quadratic
      // in the harness, not in the reader).
      if (i >= 8) continue;
      for (std::uint64_t a : {p.vaddr, p.vaddr + p.filesz - 1, p.vaddr + p.filesz}) {
        h += f.vaddr_to_offset(a).value_or(0);
      }
    }
  }
  h += f.vaddr_to_offset(0).value_or(0) + f.vaddr_to_offset(UINT64_MAX).value_or(0) +
       f.vaddr_to_offset(f.header().entry).value_or(0);
  h += type_name(f.header().type).size() + machine_name(f.header().machine).size();

  auto shdrs = f.section_headers();
  h += status(shdrs);
  if (shdrs) {
    for (const auto& s : *shdrs) h += touch(s.name) + s.size;
  }

  if (auto interp = f.interpreter(); interp && *interp) h += touch(**interp);

  if (auto dyn = f.dynamic()) {
    for (const auto& e : *dyn) h += dynamic_tag_name(e.tag).size() + e.value;
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
    for (const auto& n : *notes) h += touch(n.name) + touch(n.desc);
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

  g_sink = h;
  return 0;
}
