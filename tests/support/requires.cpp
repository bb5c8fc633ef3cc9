// See requires.hpp.
#include "requires.hpp"

#include <unistd.h>

#include <filesystem>
#include <string_view>
#include <utility>

namespace procforge::testsupport {

namespace {

// The Debian package each program comes with, for the skip's sentence.
const char* package_of(std::string_view path) {
  static constexpr std::pair<std::string_view, const char*> kPackages[] = {
      {"/usr/bin/gcc", "gcc"},
      {"/usr/bin/cc", "gcc"},
      {"/usr/bin/g++", "g++"},
      {"/usr/bin/cmake", "cmake"},
      {"/usr/bin/readelf", "binutils"},
      {"/usr/bin/python3", "python3"},
      {"/usr/bin/setarch", "util-linux"},
      {"/usr/bin/parallel", "parallel"},
      {"/usr/bin/musl-gcc", "musl-tools"},
      {"/lib/ld-musl-x86_64.so.1", "musl"},
      {"/usr/bin/go", "golang-go"},
      {"/usr/bin/rustc", "rustc"},
  };
  for (const auto& [p, package] : kPackages)
    if (p == path) return package;
  return nullptr;
}

}  // namespace

std::string missing_programs(std::initializer_list<const char*> paths) {
  std::string missing;
  for (const char* p : paths) {
    if (::access(p, X_OK) == 0) continue;
    missing += missing.empty() ? "not installed: " : ", ";
    missing += p;
    if (const char* package = package_of(p)) missing += std::string(" (Debian package ") + package + ")";
  }
  return missing;
}

std::size_t regular_files_in(std::initializer_list<const char*> dirs, bool recursive) {
  namespace fs = std::filesystem;
  std::size_t n = 0;
  auto count = [&n](const fs::directory_entry& e) {
    std::error_code ec;
    if (!e.is_symlink(ec) && e.is_regular_file(ec)) ++n;
  };
  for (const char* dir : dirs) {
    std::error_code ec;
    if (recursive) {
      for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
           !ec && it != end; it.increment(ec))
        count(*it);
    } else {
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) count(*it);
    }
  }
  return n;
}

}  // namespace procforge::testsupport
