#include "support/system_elf.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include "procforge/elf.hpp"

namespace procforge::testsupport {

namespace fs = std::filesystem;
std::vector<Candidate> system_elf_files(bool elf32_too) {
  std::vector<std::string> files;
  auto add_dir = [&](const char* root, bool recursive) {
    std::error_code ec;
    if (recursive) {
      for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
           !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path().string());
    } else {
      for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path().string());
    }
  };
  add_dir("/usr/bin", false);
  add_dir("/usr/sbin", false);
  add_dir("/usr/lib/x86_64-linux-gnu", true);
  add_dir("/usr/libexec", true);
  std::sort(files.begin(), files.end());
  auto le = [](const unsigned char* p, int n) {
    std::uint64_t v = 0;
    for (int i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
  };
  std::vector<Candidate> out;
  for (const auto& p : files) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    unsigned char eh[sizeof(Elf64_Ehdr)] = {};
    const bool elf =
        pread(fd, eh, EI_NIDENT, 0) == EI_NIDENT && std::memcmp(eh, ELFMAG, SELFMAG) == 0 && eh[EI_DATA] == ELFDATA2LSB;
    const bool elf64 = elf && eh[EI_CLASS] == ELFCLASS64;
    const bool elf32 = elf && eh[EI_CLASS] == ELFCLASS32;
    Candidate c{p, false, false};
    if (elf64 && pread(fd, eh, sizeof eh, 0) == static_cast<ssize_t>(sizeof eh) &&
        le(eh + offsetof(Elf64_Ehdr, e_type), 2) == ET_EXEC) {
      const std::uint64_t phoff = le(eh + offsetof(Elf64_Ehdr, e_phoff), 8);
      const std::uint64_t phentsize = le(eh + offsetof(Elf64_Ehdr, e_phentsize), 2);
      const std::uint64_t phnum = le(eh + offsetof(Elf64_Ehdr, e_phnum), 2);
      bool dynamic = false;
      for (std::uint64_t i = 0; i < phnum && phentsize >= 4 && !dynamic; ++i) {
        unsigned char type[4];
        if (pread(fd, type, 4, static_cast<off_t>(phoff + i * phentsize)) != 4) break;
        dynamic = le(type, 4) == PT_DYNAMIC;
      }
      c.static_exec = !dynamic;
    }
    ::close(fd);
    c.elf32 = elf32;
    if (elf64 || (elf32_too && elf32)) out.push_back(c);
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> read_whole(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<std::vector<std::uint8_t>> buf;
  if (fstat(fd, &st) == 0) {
    buf.emplace(static_cast<std::size_t>(st.st_size));
    if (pread(fd, buf->data(), buf->size(), 0) != static_cast<ssize_t>(buf->size())) buf.reset();
  }
  ::close(fd);
  return buf;
}

Result<bool> read_audit(const std::vector<std::uint8_t>& bytes) {
  auto f = elf::File::parse(bytes);
  if (!f) return f.error();
  auto ph = f->program_headers();
  if (!ph) return ph.error();
  bool dyn = false;
  for (const auto& h : *ph) dyn |= h.type == PT_DYNAMIC;
  if (!dyn) return false;
  auto di = f->dynamic_info();
  if (!di) return di.error();
  return !di->audit.empty();
}

}  // namespace procforge::testsupport
