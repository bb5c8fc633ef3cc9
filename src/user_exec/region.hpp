// The stub region: one anonymous mapping holding the stub's code page and
// everything it reads (the op table, the initial stack image, the XSAVE area,
// the saved signal mask ...). It is the only part of the old address space
// that survives the point of no return, so it must not overlap any mapping
// of the new image.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "user_exec/stub.hpp"

namespace procforge::user_exec {

struct MmMap {  // struct prctl_mm_map, include/uapi/linux/prctl.h
  std::uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  std::uint64_t arg_start, arg_end, env_start, env_end;
  std::uint64_t auxv;
  std::uint32_t auxv_size;
  std::uint32_t exe_fd;
};

struct Region {
  std::uint8_t* base = nullptr;
  std::size_t size = 0;
  std::uint8_t* code = nullptr;
  std::uint64_t* zero_word = nullptr;
  std::uint64_t* saved_mask = nullptr;
  std::uint8_t* xsave = nullptr;
  std::uint8_t* dents = nullptr;
  std::size_t dents_size = 0;
  int* keep_fds = nullptr;
  std::size_t keep_count = 0;
  Op* ops = nullptr;

  [[nodiscard]] bool contains(std::uint64_t start, std::uint64_t end) const {
    const auto b = reinterpret_cast<std::uint64_t>(base);
    return start < b + size && b < end;
  }
};

}  // namespace procforge::user_exec
