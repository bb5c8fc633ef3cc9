#include "elf_builder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace procforge::testsupport {
namespace {

void put(Bytes& out, std::uint64_t off, std::uint64_t v, int width) {
  if (out.size() < off + static_cast<std::uint64_t>(width)) out.resize(off + static_cast<std::uint64_t>(width));
  for (int i = 0; i < width; ++i) out[off + static_cast<std::uint64_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

void put_bytes(Bytes& out, std::uint64_t off, const Bytes& b) {
  if (out.size() < off + b.size()) out.resize(off + b.size());
  std::copy(b.begin(), b.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
}

void append_le32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

ElfSpec& ElfSpec::blob(std::uint64_t offset, Bytes bytes) {
  blobs.push_back({offset, std::move(bytes)});
  return *this;
}

ElfSpec& ElfSpec::blob(std::uint64_t offset, std::string_view bytes) {
  return blob(offset, Bytes(bytes.begin(), bytes.end()));
}

Phdr* ElfSpec::first(std::uint32_t t) {
  for (auto& p : phdrs)
    if (p.type == t) return &p;
  return nullptr;
}

Bytes code_exit(int status) {
  Bytes b{0xbf};  // mov edi, imm32
  append_le32(b, static_cast<std::uint32_t>(status));
  b.push_back(0xb8);  // mov eax, 231 (exit_group)
  append_le32(b, 231);
  b.insert(b.end(), {0x0f, 0x05});  // syscall
  b.push_back(0xf4);                // hlt (never reached)
  return b;
}

Bytes code_exit_with_byte_at(std::uint64_t addr) {
  Bytes b{0x0f, 0xb6, 0x3c, 0x25};  // movzx edi, byte [disp32]
  append_le32(b, static_cast<std::uint32_t>(addr));
  b.push_back(0xb8);
  append_le32(b, 231);
  b.insert(b.end(), {0x0f, 0x05, 0xf4});
  return b;
}

ElfSpec minimal_exec(int exit_status) {
  ElfSpec s;
  s.type = kEtExec;
  s.entry = kExecBase + kCodeOffset;
  s.phdrs.push_back(Phdr{kPtLoad, kPfR | kPfX, 0, kExecBase, kExecBase, kAuto, kAuto, 0x1000});
  s.blob(kCodeOffset, code_exit(exit_status));
  s.min_size = kMinimalSize;
  return s;
}

ElfSpec minimal_pie(int exit_status) {
  ElfSpec s = minimal_exec(exit_status);
  s.type = kEtDyn;
  s.entry = kCodeOffset;
  s.phdrs[0].vaddr = s.phdrs[0].paddr = 0;
  return s;
}

ElfSpec& interp_raw(ElfSpec& spec, std::string_view bytes, std::uint64_t offset) {
  Phdr p{kPtInterp, kPfR, offset, 0, 0, bytes.size(), bytes.size(), 1};
  // Give the segment a plausible address inside the image when there is one.
  if (const Phdr* load = spec.first(kPtLoad)) p.vaddr = p.paddr = load->vaddr + offset;
  auto it = std::find_if(spec.phdrs.begin(), spec.phdrs.end(), [](const Phdr& q) { return q.type == kPtLoad; });
  spec.phdrs.insert(it, p);
  spec.blob(offset, bytes);
  return spec;
}

ElfSpec& with_interp(ElfSpec& spec, std::string_view path) {
  std::string bytes(path);
  bytes.push_back('\0');
  return interp_raw(spec, bytes);
}

Bytes build(const ElfSpec& s) {
  Bytes out(64, 0);
  std::copy(s.ident.begin(), s.ident.end(), out.begin());
  const auto phnum = s.phnum.value_or(static_cast<std::uint16_t>(s.phdrs.size()));
  put(out, 16, s.type, 2);
  put(out, 18, s.machine, 2);
  put(out, 20, s.version, 4);
  put(out, 24, s.entry, 8);
  put(out, 32, s.phoff, 8);
  put(out, 40, s.shoff, 8);
  put(out, 48, s.flags, 4);
  put(out, 52, s.ehsize, 2);
  put(out, 54, s.phentsize, 2);
  put(out, 56, phnum, 2);
  put(out, 58, s.shentsize, 2);
  put(out, 60, s.shnum, 2);
  put(out, 62, s.shstrndx, 2);

  for (const auto& b : s.blobs) put_bytes(out, b.offset, b.bytes);
  if (out.size() < s.min_size) out.resize(s.min_size);

  // The table goes in last so that its entries can refer to the final size;
  // entries are always 56 bytes apart whatever e_phentsize claims.
  const std::uint64_t table_end = s.phoff + 56 * s.phdrs.size();
  const std::uint64_t size = std::max<std::uint64_t>(out.size(), s.write_phdrs ? table_end : 0);
  if (s.write_phdrs) {
    for (std::size_t i = 0; i < s.phdrs.size(); ++i) {
      const Phdr& p = s.phdrs[i];
      const std::uint64_t o = s.phoff + 56 * i;
      const std::uint64_t auto_size = size > p.offset ? size - p.offset : 0;
      put(out, o + 0, p.type, 4);
      put(out, o + 4, p.flags, 4);
      put(out, o + 8, p.offset, 8);
      put(out, o + 16, p.vaddr, 8);
      put(out, o + 24, p.paddr, 8);
      put(out, o + 32, p.filesz == kAuto ? auto_size : p.filesz, 8);
      put(out, o + 40, p.memsz == kAuto ? auto_size : p.memsz, 8);
      put(out, o + 48, p.align, 8);
    }
  }
  if (s.truncate_to && *s.truncate_to < out.size()) out.resize(*s.truncate_to);
  return out;
}

bool write_file(const std::string& path, const Bytes& bytes, unsigned mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0;
  return ::close(fd) == 0 && ok;
}

bool write_file(const std::string& path, std::string_view bytes, unsigned mode) {
  return write_file(path, Bytes(bytes.begin(), bytes.end()), mode);
}

}  // namespace procforge::testsupport
