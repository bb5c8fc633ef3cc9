// libFuzzer target for the pool's reader of a template's ready message
// (warm/template.cpp parse_facts()): the template runs someone else's
// program, so any bytes may arrive. Whatever it reads must be self-consistent:
// one object path per identity, thread counts as read.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "warm/detail.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  procforge::warm::Template t;
  procforge::warm::parse_facts(t, std::string_view(reinterpret_cast<const char*>(data), size));
  if (t.facts.objects.size() != t.objects.size()) abort();
  for (std::size_t i = 0; i < t.objects.size(); ++i)
    if (t.facts.objects[i] != t.objects[i].path) abort();
  return 0;
}
