#include "probe_copy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#ifndef PROCFORGE_PROBE_DIR
#error "PROCFORGE_PROBE_DIR must name the directory holding the probes"
#endif

namespace procforge::testsupport {
namespace {

namespace fs = std::filesystem;

// The directory of the copies; removed at exit by the process that made it
// (not by a forked child that happens to run exit()).
struct CopyDir {
  std::string path;
  std::string error;
  pid_t owner = 0;
  std::map<std::string, std::string> copies;  // original path -> copy

  CopyDir() {
    char tmpl[] = "/tmp/pf-probes-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      error = std::string("mkdtemp /tmp/pf-probes-XXXXXX: ") + std::strerror(errno);
      return;
    }
    path = tmpl;
    owner = ::getpid();
    if (::chmod(path.c_str(), 0755) != 0) error = "chmod 0755 " + path + ": " + std::strerror(errno);
  }
  ~CopyDir() {
    std::error_code ec;
    if (!path.empty() && ::getpid() == owner) fs::remove_all(path, ec);
  }
  CopyDir(const CopyDir&) = delete;
  CopyDir& operator=(const CopyDir&) = delete;
};

}  // namespace

std::string executable_for_anyone(const std::string& path, std::string* why) {
  static CopyDir dir;
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return std::string();
  };
  if (!dir.error.empty()) return fail(dir.error);
  if (auto it = dir.copies.find(path); it != dir.copies.end()) return it->second;
  // Named after the original (argv[0] and comm stay recognisable), in a
  // subdirectory of its own when another file already has that name.
  std::string to = dir.path + "/" + fs::path(path).filename().string();
  if (fs::exists(to)) {
    const std::string sub = dir.path + "/" + std::to_string(dir.copies.size());
    if (::mkdir(sub.c_str(), 0755) != 0) return fail("mkdir " + sub + ": " + std::strerror(errno));
    to = sub + "/" + fs::path(path).filename().string();
  }
  std::error_code ec;
  if (!fs::copy_file(path, to, fs::copy_options::overwrite_existing, ec))
    return fail("copying " + path + " to " + to + ": " + ec.message());
  if (::chmod(to.c_str(), 0755) != 0) return fail("chmod 0755 " + to + ": " + std::strerror(errno));
  dir.copies.emplace(path, to);
  return to;
}

std::string probe_for_anyone(const std::string& name, std::string* why) {
  return executable_for_anyone(std::string(PROCFORGE_PROBE_DIR) + "/" + name, why);
}

}  // namespace procforge::testsupport
