#pragma once

#include <vector>

#include "common/unique_fd.hpp"
#include "procforge/user_exec.hpp"
#include "user_exec/region.hpp"

namespace procforge::user_exec {

// prepare.cpp: gives a Prepared's region back; the next prepare() may take it.
void release_region(Region& r);

struct detail::PreparedImpl {
  exec::Prediction pred;
  std::vector<Step> steps;
  std::vector<std::string> differences;
  std::vector<UniqueFd> fds;  // files to map: the stub closes them; if enter() is never called, this
  Region region;

  PreparedImpl() = default;
  PreparedImpl(const PreparedImpl&) = delete;
  PreparedImpl& operator=(const PreparedImpl&) = delete;
  // What enter() would have consumed: the region (the files close themselves).
  ~PreparedImpl() { release_region(region); }
};

}  // namespace procforge::user_exec
