// libFuzzer target for the ld.so.cache reader: parse arbitrary bytes as a
// cache file (new, old and old+new layouts), then look names up in it, so
// ASan/UBSan see every read parse() and lookup() can be made to do.
// Run: fuzz_ldcache -max_total_time=180 corpus/  (seed: a copy of /etc/ld.so.cache)
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "procforge/ldso.hpp"

namespace {

volatile std::uint64_t g_sink;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace procforge::ldso;
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
  std::uint64_t h = c->generator().size();
  for (const auto& n : c->hwcaps_names()) h += n.size();
  std::size_t looked = 0;
  for (const auto& e : c->entries()) {
    h = h * 31 + e.key.size() + e.value.size() + static_cast<std::uint64_t>(e.flags) + e.hwcap;
    // Look the first keys up again (bounded: big caches would be slow).
    if (looked++ < 64)
      if (auto p = c->lookup(e.key, sys)) h += p->size();
  }
  for (const char* name : {"libc.so.6", "", "libm.so.6", "a"})
    if (auto p = c->lookup(name, sys)) h += p->size();
  g_sink = h;
  return 0;
}
