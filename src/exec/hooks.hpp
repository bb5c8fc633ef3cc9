// What the user-space exec (src/user_exec/) asks of the exec model beyond a
// prediction: its own process's vDSO and mmap area stay where they are (user
// space cannot move the mmap base, and keeps the vDSO), and the files the
// plan maps are handed over open. Library-internal: exec::Request points here
// (Request::hooks) without the public header naming the fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace procforge::exec::detail {

struct ExecHooks {
  std::optional<std::uint64_t> vdso_base;  // keep this existing vDSO instead of mapping one
  std::optional<std::uint64_t> mmap_base;  // use this mmap base (the process's own) instead of drawing one
  // Out: when set, a close-on-exec duplicate of every file the plan maps
  // (the program, the PT_INTERP interpreter), keyed by Mapping::object, for
  // the caller to close: the very files the model examined, not reopened.
  std::vector<std::pair<std::string, int>>* mapped_files = nullptr;
};

}  // namespace procforge::exec::detail
