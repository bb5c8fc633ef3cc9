#pragma once

#include <unistd.h>

#include <vector>

#include "procforge/user_exec.hpp"
#include "user_exec/region.hpp"

namespace procforge::user_exec {

// prepare.cpp: gives a Prepared's region back; the next prepare() may take it.
void release_region(Region& r);

struct detail::PreparedImpl {
  exec::Prediction pred;
  std::vector<Step> steps;
  std::vector<std::string> differences;
  std::vector<int> fds;  // files to map, closed by the stub
  Region region;

  PreparedImpl() = default;
  PreparedImpl(const PreparedImpl&) = delete;
  PreparedImpl& operator=(const PreparedImpl&) = delete;
  // What enter() would have consumed: the region and the files.
  ~PreparedImpl() {
    release_region(region);
    for (int fd : fds) ::close(fd);
  }
};

}  // namespace procforge::user_exec
