// What the libFuzzer targets do when a parser breaks one of its guarantees:
// say which, then trap, so that libFuzzer reports the input as a crash and
// saves it. "No crash" alone would let a reader return wrong answers forever.
#pragma once

#include <cstdio>
#include <utility>

#include <fmt/format.h>

template <class... Args>
[[noreturn]] void violated(fmt::format_string<Args...> what, Args&&... args) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s\n", fmt::format(what, std::forward<Args>(args)...).c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// Checks COND; on failure reports the condition's text and WHAT.
#define FUZZ_CHECK(cond, ...)                                         \
  do {                                                                \
    if (!(cond)) violated("{}: {}", #cond, fmt::format(__VA_ARGS__)); \
  } while (0)
