// The few facts about an ELF file the profiler needs to place its stops:
// e_type, e_entry, PT_INTERP, and the values of _dl_debug_state and _r_debug
// (ld.so), main, exit and __libc_start_main. Symbols come from .symtab when the
// file has one, else from .dynsym: ld.so exports _dl_debug_state@@GLIBC_PRIVATE
// and _r_debug@@GLIBC_2.2.5 in every glibc since 2.2 (reference 2.3), libc
// exports exit and __libc_start_main, so stripped system files still work;
// main is only in .symtab (or .dynsym with -rdynamic).
// Files are read once per process (cached by device, inode, mtime and size,
// not by path: the program is named /proc/PID/exe, a new name every run, and
// reading a Rust program whole (4 MiB with std's symbols) each run, while
// the tracee waited, was most of the tracer's overhead on it).
#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>
#include <tuple>

#include "ldso/relocations.hpp"
#include "procforge/elf.hpp"
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

constexpr const char* kWanted[] = {"_dl_debug_state",
                                   "_r_debug",
                                   "main",
                                   "exit",
                                   "__libc_start_main",
                                   "runtime.main",
                                   "main.main",
                                   "__dls3",
                                   "runtime.gcenable",
                                   "runtime.printlock",
                                   "runtime.funcpkgpath"};

// Go: "fmt.init", "os.init.0", not methods ("internal/poll.(*pollDesc).init"). Returns the package.
std::optional<std::string> go_init_package(std::string_view n) {
  if (n.find('(') != std::string_view::npos) return std::nullopt;
  auto at = n.rfind(".init");
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  const std::string_view rest = n.substr(at + 5);
  if (!rest.empty() &&
      (rest[0] != '.' || rest.size() < 2 || rest.find_first_not_of("0123456789", 1) != std::string_view::npos))
    return std::nullopt;
  return std::string(n.substr(0, at));
}

// Rust: the user's main is <crate>::main, mangled _ZN<len><crate>4main17h<16 hex>E.
bool is_rust_user_main(std::string_view n) {
  if (!n.starts_with("_ZN") || !n.ends_with("E")) return false;
  std::size_t i = 3, len = 0;
  while (i < n.size() && std::isdigit(static_cast<unsigned char>(n[i]))) len = len * 10 + (n[i++] - '0');
  if (len == 0 || i + len > n.size()) return false;
  const std::string_view crate = n.substr(i, len);
  if (crate == "std" || crate == "core" || crate == "alloc") return false;
  return n.substr(i + len).starts_with("4main17h") && n.size() == i + len + 8 + 16 + 1;
}

// runtime/proc.go doInit() with GODEBUG=inittrace=1: start = nanotime()
// before the package's init functions, end = nanotime() after them (then
// findfunc() and funcpkgpath() name the package, and it prints). nanotime()
// is inlined: doInit's code calls runtime.nanotime1 (".abi0": assembly)
// twice, as a near call (E8 rel32). The instructions those calls return to
// are where the clock has just been read.
std::optional<std::pair<std::uint64_t, std::uint64_t>> inittrace_clock(const elf::File& f,
                                                                       const std::optional<elf::Symbol>& do_init,
                                                                       std::optional<std::uint64_t> nanotime) {
  if (!do_init || !nanotime) return std::nullopt;
  const auto off = f.vaddr_to_offset(do_init->value);
  const auto bytes = f.view().bytes();
  if (!off || *off > bytes.size() || do_init->size > bytes.size() - *off) return std::nullopt;
  std::vector<std::uint64_t> returns;
  for (std::uint64_t i = 0; i + 5 <= do_init->size; ++i) {
    if (bytes[*off + i] != 0xe8) continue;
    std::int32_t rel = 0;
    std::memcpy(&rel, &bytes[*off + i + 1], 4);
    const std::uint64_t next = do_init->value + i + 5;
    if (next + static_cast<std::uint64_t>(static_cast<std::int64_t>(rel)) == *nanotime) returns.push_back(next);
  }
  if (returns.size() != 2) return std::nullopt;
  return std::pair{returns[0], returns[1]};
}

struct Key {
  dev_t dev;
  ino_t ino;
  std::int64_t mtime_ns;
  off_t size;
  bool operator<(const Key& o) const {
    return std::tie(dev, ino, mtime_ns, size) < std::tie(o.dev, o.ino, o.mtime_ns, o.size);
  }
};

std::mutex cache_mutex;
std::map<Key, ImageFacts> cache;

}  // namespace

Result<const ImageFacts*> image_facts(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return Error{errno, "stat " + file + ": " + errno_name(errno)};
  Key key{st.st_dev, st.st_ino, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          st.st_size};
  std::lock_guard<std::mutex> g(cache_mutex);
  if (auto it = cache.find(key); it != cache.end()) return &it->second;

  auto bytes = ldso::read_object_bytes(file);
  if (!bytes) return bytes.error().with_context("reading " + file);
  auto f = elf::File::parse(*bytes);
  if (!f) return f.error().with_context(file);
  ImageFacts facts;
  facts.path = file;
  facts.type = f->header().type;
  facts.entry = f->header().entry;
  if (auto in = f->interpreter(); in && *in) facts.interp = std::string(**in);
  std::optional<elf::Symbol> do_init;     // runtime.doInit, for inittrace_clock()
  std::optional<std::uint64_t> nanotime;  // runtime.nanotime1's address
  for (auto table : {elf::SymbolTable::symtab, elf::SymbolTable::dynsym}) {
    auto syms = f->symbols(table);
    if (!syms) continue;
    if (table == elf::SymbolTable::symtab && !syms->empty()) facts.has_symtab = true;
    for (const auto& s : *syms) {
      if (s.shndx == 0 || s.value == 0) continue;  // undefined
      if (table == elf::SymbolTable::symtab && s.type() == STT_FUNC) {
        if (auto pkg = go_init_package(s.name)) facts.go_inits.emplace_back(*pkg, s.value);
        if (!facts.rust_main && is_rust_user_main(s.name)) facts.rust_main = s.value;
        if (!facts.lang_start && s.name.starts_with("_ZN3std2rt19lang_start_internal17h")) facts.lang_start = s.value;
        if (s.name == "runtime.doInit" && s.size > 0) do_init = s;
        if (s.name == "runtime.nanotime1.abi0" || (s.name == "runtime.nanotime1" && !nanotime)) nanotime = s.value;
      }
      for (const char* w : kWanted)
        if (s.name == w && !facts.symbols.count(w)) {
          facts.symbols[w] = s.value;
          facts.symbol_table[w] = table == elf::SymbolTable::symtab ? ".symtab" : ".dynsym";
        }
    }
  }
  std::sort(facts.go_inits.begin(), facts.go_inits.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  if (!facts.go_inits.empty()) facts.go_inittrace_clock = inittrace_clock(*f, do_init, nanotime);
  auto [it, _] = cache.emplace(key, std::move(facts));
  return &it->second;
}

}  // namespace procforge::profile::detail
