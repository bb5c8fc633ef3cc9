#pragma once

#include <vector>

#include "loader/region.hpp"
#include "procforge/loader.hpp"

namespace procforge::loader {

struct Prepared::Impl {
  exec::Prediction pred;
  std::vector<Step> steps;
  std::vector<std::string> differences;
  std::vector<int> fds;  // files to map, closed by the stub
  Region region;
};

// prepare.cpp: gives a Prepared's region back; the next prepare() may take it.
void release_region(Region& r);

}  // namespace procforge::loader
