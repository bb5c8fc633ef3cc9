// libFuzzer target for the ld.so.cache reader: parse arbitrary bytes as a
// cache file (new, old and old+new layouts), then look names up in it, so
// ASan/UBSan see every read parse() and lookup() can be made to do. Beyond
// "no crash", every lookup is held against a plain walk over entries():
//   - a path lookup() returns is the value of an entry whose key matches the
//     name, that ld.so accepts (string offsets in bounds, x86_64 flags);
//   - in a cache sorted the way ldconfig writes it, a name with a plain entry
//     (no hwcap) is found.
// Run: fuzz_ldcache -max_total_time=180 corpus/  (seeds: fuzz/make_seed_corpus.sh, ldconfig's formats)
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "invariant.hpp"
#include "procforge/ldso.hpp"

namespace {

using namespace procforge::ldso;

volatile std::uint64_t g_sink;

constexpr std::int32_t kX8664Flags = 0x0303;  // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64, all ld.so accepts here

bool usable(const CacheEntry& e) { return e.valid && e.flags == kX8664Flags; }

// Sorted as ld.so's binary search needs it (descending by cache_libcmp),
// every entry readable, and no digit run so long that cache_libcmp's
// wrapping arithmetic could make the order inconsistent.
bool searchable(const Cache& c) {
  const auto& es = c.entries();
  for (std::size_t i = 0; i < es.size(); ++i) {
    if (!es[i].valid) return false;
    std::size_t run = 0;
    for (char ch : es[i].key)
      if ((run = (ch >= '0' && ch <= '9') ? run + 1 : 0) > 9) return false;
    if (i > 0 && cache_libcmp(es[i - 1].key, es[i].key) < 0) return false;
  }
  return true;
}

std::uint64_t check_lookup(const Cache& c, const std::string& name, const SystemInfo& sys, bool sorted) {
  const auto found = c.lookup(name, sys);
  bool plain_entry = false;
  bool matches_an_entry = false;
  for (const auto& e : c.entries()) {
    if (!usable(e) || cache_libcmp(name, e.key) != 0) continue;
    if (e.hwcap == 0) plain_entry = true;
    if (found && e.value == *found) matches_an_entry = true;
  }
  if (found)
    FUZZ_CHECK(matches_an_entry, "lookup(\"{}\") returned \"{}\", which no usable entry with that key holds", name,
               *found);
  if (sorted && plain_entry)
    FUZZ_CHECK(found.has_value(), "lookup(\"{}\") found nothing in a sorted cache with a plain entry for it", name);
  return found ? found->size() : 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = Cache::parse(std::span<const std::uint8_t>(data, size));
  if (!c) {
    g_sink = g_sink + c.error().message.size();
    return 0;
  }
  static const SystemInfo sys = [] {
    SystemInfo s;
    s.hwcaps_subdirs = {"x86-64-v3", "x86-64-v2"};
    s.isa_level = 3;
    return s;
  }();
  const bool sorted = searchable(*c);
  std::uint64_t h = c->generator().size();
  for (const auto& n : c->hwcaps_names()) h += n.size();
  std::size_t looked = 0;
  for (const auto& e : c->entries()) {
    h = h * 31 + e.key.size() + e.value.size() + static_cast<std::uint64_t>(e.flags) + e.hwcap;
    // Look the first keys up again (bounded: big caches would be slow).
    if (looked++ < 64) h += check_lookup(*c, e.key, sys, sorted);
  }
  for (const char* name : {"libc.so.6", "", "libm.so.6", "a"}) h += check_lookup(*c, name, sys, sorted);
  g_sink = h;
  return 0;
}
