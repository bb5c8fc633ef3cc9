// Which runtime a program starts through (procforge/runtime.hpp), from the
// marks each toolchain leaves in the file:
//   Go     .go.buildinfo, whose header "\xff Go buildinf:" is followed by the
//          pointer size, a flags byte and (flags & 2, Go >= 1.18) the
//          toolchain version as a varint-length string at offset 32, or
//          (older) two pointers to Go strings at offset 16
//          (src/debug/buildinfo/buildinfo.go); cgo when it has PT_INTERP or
//          needs a libc;
//   Rust   std's symbols (std::rt::lang_start, rust_begin_unwind), or, with
//          .symtab stripped, the "RUST_BACKTRACE" string std's panic handler
//          reads;
//   musl   PT_INTERP ld-musl-*, DT_NEEDED libc.so without glibc's version
//          needs, or statically musl's own start symbols (__init_libc,
//          __libc_start_init);
//   glibc  PT_INTERP ld-linux*, DT_NEEDED libc.so.6, or statically the
//          NT_GNU_ABI_TAG note of glibc's crt1.o and its symbols
//          (__libc_setup_tls, _dl_relocate_static_pie).
#include "procforge/runtime.hpp"

#include <elf.h>

#include <algorithm>
#include <string_view>

#include "ldso/relocations.hpp"
#include "procforge/elf.hpp"

namespace procforge::runtime {

const char* language_name(Language l) {
  switch (l) {
    case Language::go: return "Go";
    case Language::rust: return "Rust";
    case Language::c: break;
  }
  return "C";
}

const char* libc_name(Libc l) {
  switch (l) {
    case Libc::glibc: return "glibc";
    case Libc::musl: return "musl";
    case Libc::none: return "none";
    case Libc::unknown: break;
  }
  return "unknown";
}

namespace {

bool contains(std::span<const std::uint8_t> hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// The Go toolchain version recorded in .go.buildinfo ("" when unreadable).
std::string go_version(const elf::File& f, std::span<const std::uint8_t> bytes) {
  auto sections = f.section_headers();
  if (!sections) return "";
  for (const auto& s : *sections) {
    if (s.name != ".go.buildinfo" || !elf::range_fits(s.offset, 32, bytes.size())) continue;
    const std::uint8_t* b = bytes.data() + s.offset;
    if (std::string_view(reinterpret_cast<const char*>(b), 14) != "\xff Go buildinf:") return "";
    const unsigned ptr = b[14];
    if (b[15] & 2) {  // inline strings: uvarint length, then the bytes
      std::uint64_t len = 0, off = s.offset + 32;
      for (unsigned shift = 0; off < bytes.size() && shift < 64; shift += 7) {
        const std::uint8_t c = bytes[off++];
        len |= std::uint64_t{c & 0x7fu} << shift;
        if (!(c & 0x80)) break;
      }
      if (!elf::range_fits(off, len, bytes.size()) || len > 64) return "";
      return {reinterpret_cast<const char*>(bytes.data() + off), static_cast<std::size_t>(len)};
    }
    // Pointers (little-endian, PTR bytes) to a Go string header {data, len}.
    if (ptr != 8) return "";
    auto word = [&](std::uint64_t at) -> std::optional<std::uint64_t> {
      auto o = f.vaddr_to_offset(at);
      if (!o || !elf::range_fits(*o, 8, bytes.size())) return std::nullopt;
      std::uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = v << 8 | bytes[*o + static_cast<std::uint64_t>(i)];
      return v;
    };
    std::uint64_t vptr = 0;
    for (int i = 7; i >= 0; --i) vptr = vptr << 8 | b[16 + i];
    auto data = word(vptr);
    auto len = word(vptr + 8);
    if (!data || !len || *len > 64) return "";
    auto o = f.vaddr_to_offset(*data);
    if (!o || !elf::range_fits(*o, *len, bytes.size())) return "";
    return {reinterpret_cast<const char*>(bytes.data() + *o), static_cast<std::size_t>(*len)};
  }
  return "";
}

struct Marks {
  std::string interp;
  std::vector<std::string> needed;
  bool abi_tag = false;  // NT_GNU_ABI_TAG
  bool go_buildinfo = false;
  bool rust_symbols = false, musl_symbols = false, glibc_symbols = false;
  bool symtab = false;
};

Marks read_marks(const elf::File& f, std::span<const std::uint8_t> bytes) {
  Marks m;
  if (auto i = f.interpreter(); i && *i) m.interp = std::string(**i);
  if (auto d = f.dynamic_info())
    for (auto n : d->needed) m.needed.emplace_back(n);
  if (auto notes = f.notes())
    for (const auto& n : *notes) m.abi_tag |= n.name == "GNU" && n.type == NT_GNU_ABI_TAG;
  if (auto sections = f.section_headers())
    for (const auto& s : *sections) {
      m.go_buildinfo |= s.name == ".go.buildinfo";
      m.symtab |= s.type == SHT_SYMTAB;
    }
  for (auto table : {elf::SymbolTable::symtab, elf::SymbolTable::dynsym}) {
    auto syms = f.symbols(table);
    if (!syms) continue;
    for (const auto& s : *syms) {
      m.rust_symbols |= s.name.starts_with("_ZN3std2rt10lang_start") || s.name == "rust_begin_unwind";
      m.musl_symbols |= s.name == "__init_libc" || s.name == "__libc_start_init";
      m.glibc_symbols |= s.name == "__libc_setup_tls" || s.name == "_dl_relocate_static_pie";
    }
  }
  (void)bytes;
  return m;
}

Libc libc_of(const Marks& m, std::vector<std::string>& evidence) {
  const std::string base = m.interp.substr(m.interp.rfind('/') + 1);
  if (base.starts_with("ld-musl-")) {
    evidence.push_back("PT_INTERP " + m.interp);
    return Libc::musl;
  }
  if (base.starts_with("ld-linux")) {
    evidence.push_back("PT_INTERP " + m.interp);
    return Libc::glibc;
  }
  for (const auto& n : m.needed) {
    if (n == "libc.so.6") {
      evidence.push_back("DT_NEEDED libc.so.6");
      return Libc::glibc;
    }
    if (n == "libc.so" || n.starts_with("libc.musl-")) {
      evidence.push_back("DT_NEEDED " + n);
      return Libc::musl;
    }
  }
  if (m.musl_symbols) {
    evidence.emplace_back("musl's start symbols (__init_libc)");
    return Libc::musl;
  }
  if (m.abi_tag || m.glibc_symbols) {
    evidence.emplace_back(m.abi_tag ? "NT_GNU_ABI_TAG note (glibc's crt1.o)" : "glibc's static start symbols");
    return Libc::glibc;
  }
  return m.symtab ? Libc::none : Libc::unknown;
}

std::string start_words(const Info& r) {
  const std::string loader = r.is_static ? "the kernel jumps to _start"
                                         : "the kernel starts the dynamic linker, which "
                                           "maps the libraries and jumps to _start";
  switch (r.language) {
    case Language::go:
      return r.cgo ? loader + " -> glibc/musl start (__libc_start_main, constructors, among them the Go runtime's " +
                         "cgo set-up) -> main -> runtime.rt0_go (arguments, OS and scheduler set-up, heap) -> " +
                         "runtime.main (package init tasks in dependency order) -> main.main -> exit"
                   : "the kernel jumps to _rt0_amd64_linux (no libc, no dynamic linker) -> runtime.rt0_go " +
                         std::string("(arguments, OS and scheduler set-up, heap) -> runtime.main (package init ") +
                         "tasks in dependency order) -> main.main -> runtime exit (no atexit handlers)";
    case Language::rust:
      return loader + " -> " + libc_name(r.libc) +
             " start (__libc_start_main, constructors) -> main (rustc's shim) -> std::rt::lang_start " +
             "(arguments, stack guard, the main thread's data, SIGPIPE ignored) -> the program's fn main -> " +
             "cleanup (stdout flushed) -> exit";
    case Language::c: break;
  }
  switch (r.libc) {
    case Libc::glibc:
      return loader + " -> __libc_start_main (IRELATIVE, TLS and libc set-up, constructors) -> main -> exit " +
             "(atexit handlers, destructors)";
    case Libc::musl:
      return loader + " -> _start_c -> __libc_start_main (__init_libc: auxv, TLS, then constructors) -> main -> " +
             "exit; musl's loader has no ld.so.cache and treats DT_RPATH and DT_RUNPATH alike";
    case Libc::none: return "the kernel jumps to the entry point: no libc and no runtime run before the program";
    case Libc::unknown: break;
  }
  return loader + " -> whatever its entry point does (no symbols say which libc or runtime)";
}

}  // namespace

Result<Info> identify(std::span<const std::uint8_t> bytes) {
  auto f = elf::File::parse(bytes);
  if (!f) return f.error();
  const Marks m = read_marks(*f, bytes);
  Info r;
  r.is_static = m.interp.empty();
  r.symbols = m.symtab;
  r.libc = libc_of(m, r.evidence);
  if (m.go_buildinfo) {
    r.language = Language::go;
    r.version = go_version(*f, bytes);
    r.evidence.push_back(".go.buildinfo" + (r.version.empty() ? "" : " (" + r.version + ")"));
    r.cgo = !r.is_static || !m.needed.empty();
    if (!r.cgo) r.libc = Libc::none;
  } else if (m.rust_symbols || contains(bytes, "RUST_BACKTRACE")) {
    r.language = Language::rust;
    r.evidence.emplace_back(m.rust_symbols ? "std::rt::lang_start symbols" : "std's RUST_BACKTRACE string");
  }
  r.name =
      r.language == Language::c ? (r.libc == Libc::none ? "no libc" : libc_name(r.libc)) : language_name(r.language);
  r.start = start_words(r);
  return r;
}

Result<Info> identify_file(const std::string& path) {
  auto bytes = ldso::read_object_bytes(path);
  if (!bytes) return bytes.error();
  return identify(*bytes);
}

}  // namespace procforge::runtime
