// The language runtime and libc an ELF program starts through, read from the
// file alone (nothing is run): glibc or musl (from PT_INTERP, DT_NEEDED,
// the NT_GNU_ABI_TAG note glibc's crt1.o brings, musl's own symbols), Go
// (the .go.buildinfo section, with the toolchain version it records), Rust
// (std's symbols, or with the symbols stripped std's panic-location strings),
// or no libc at all. What it means for the start is said in words: which
// code runs between the kernel's hand-off and the program's own main.
//
//   auto r = procforge::runtime::identify_file("/usr/bin/ls");
//   if (r) fmt::print("{} {}: {}\n", r->name, r->version, r->start);
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)

namespace procforge::runtime {

enum class Language { c, go, rust };  // c: C or anything else on a libc's start
enum class Libc { glibc, musl, none, unknown };

struct Info {
  Language language = Language::c;
  Libc libc = Libc::unknown;
  std::string name;                   // "glibc", "musl", "Go", "Rust", "no libc"
  std::string version;                // Go: "go1.19.8" (build info); musl/glibc: "" (see the loader's)
  bool is_static = true;              // no PT_INTERP: the kernel jumps to the program's entry
  bool cgo = false;                   // Go: linked with a libc (cgo), starts through it
  bool symbols = false;               // has a symbol table (.symtab): profile can find phases
  std::vector<std::string> evidence;  // what said so ("PT_INTERP /lib/ld-musl-x86_64.so.1", ".go.buildinfo")
  std::string start;                  // the start, in words: kernel -> ... -> main
};

const char* language_name(Language l);  // "C", "Go", "Rust"
const char* libc_name(Libc l);          // "glibc", "musl", "none", "unknown"

// From the bytes of a whole ELF file. An Error only when it is not ELF.
Result<Info> identify(std::span<const std::uint8_t> bytes);
// Reads PATH (regular files up to 1 GiB) and identifies it.
Result<Info> identify_file(const std::string& path);

}  // namespace procforge::runtime

#pragma GCC visibility pop
