// The one reader of /proc/PID/maps (see maps.hpp).
#include "common/maps.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace procforge {

namespace {

// Parses one line; false when it is not a mapping line.
bool parse_line(char* line, MapsLine& m) {
  char* p = line;
  char* end = nullptr;
  auto hex = [&](std::uint64_t& v, char stop) {
    v = std::strtoull(p, &end, 16);
    if (end == p || *end != stop) return false;
    p = end + 1;
    return true;
  };
  if (!hex(m.start, '-') || !hex(m.end, ' ')) return false;
  char* perms = p;
  while (*p && *p != ' ') ++p;
  if (*p != ' ') return false;
  m.perms = std::string_view(perms, static_cast<std::size_t>(p - perms));
  ++p;
  std::uint64_t major = 0, minor = 0;
  if (!hex(m.offset, ' ') || !hex(major, ':') || !hex(minor, ' ')) return false;
  m.dev_major = static_cast<unsigned>(major);
  m.dev_minor = static_cast<unsigned>(minor);
  m.inode = std::strtoull(p, &end, 10);
  if (end == p) return false;
  p = end;
  while (*p == ' ') ++p;
  std::size_t n = std::strlen(p);
  while (n && (p[n - 1] == '\n' || p[n - 1] == ' ')) --n;
  m.path = std::string_view(p, n);
  return true;
}

}  // namespace

bool for_each_mapping(int fd, const std::function<bool(const MapsLine&)>& each) {
  if (fd < 0) return false;
  std::FILE* f = fdopen(fd, "r");
  if (!f) {
    ::close(fd);
    return false;
  }
  char* line = nullptr;
  std::size_t cap = 0;
  MapsLine m;
  while (getline(&line, &cap, f) > 0)
    if (parse_line(line, m) && !each(m)) break;
  std::free(line);
  std::fclose(f);
  return true;
}

bool for_each_mapping(const char* path, const std::function<bool(const MapsLine&)>& each) {
  return for_each_mapping(::open(path, O_RDONLY | O_CLOEXEC), each);
}

}  // namespace procforge
