// What ld.so reads from one candidate file, and what it decides from it
// (glibc 2.36 elf/dl-load.c):
//   open_verify()            the first 832 bytes (struct filebuf) and the
//                            program headers: a wrong EI_CLASS or e_machine
//                            is skipped (the search goes on); any other
//                            mismatch is fatal with its own message;
//   _dl_map_object_from_fd() the refusals of a file loaded as a library
//                            (misaligned PT_LOAD, no PT_LOAD, ET_EXEC, no
//                            dynamic section, DF_1_PIE);
//   the dynamic section      DT_NEEDED/DT_AUXILIARY/DT_FILTER in order,
//                            DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS_1,
//                            and the x86 ISA-level property.
// Files are read with pread() into a SparseImage (sparse_image.hpp), only at
// the ranges ld.so would look at (and the symbol-version tables), so
// elf::File can decode them without the rest being read. The facts of a file are cached by
// device, inode, size and times, for the life of the process: a batch reads
// each library once.
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <tuple>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "ldso/sparse_image.hpp"
#include "procforge/elf.hpp"

namespace procforge::ldso::detail {

namespace {

constexpr std::size_t kFilebuf = 832;              // FILEBUF_SIZE for ELF64
constexpr std::uint64_t kMaxImage = 1ull << 36;    // refuse absurd sizes rather than reserve them
constexpr std::uint32_t kIsa1Needed = 0xc0008002;  // GNU_PROPERTY_X86_ISA_1_NEEDED

using Image = SparseImage;

using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t>;
std::mutex g_mutex;
std::map<Key, std::shared_ptr<const FileFacts>> g_cache;

std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
std::uint64_t le64(const std::uint8_t* p) { return std::uint64_t{le32(p)} | std::uint64_t{le32(p + 4)} << 32; }

void fatal(FileFacts& f, std::string msg, int err = 0) {
  f.verify = FileFacts::Verify::fatal;
  f.verify_message = std::move(msg);
  f.verify_errno = err;
}

// open_verify()'s tests, in its order, on the bytes read so far.
bool verify(FileFacts& f, const Image& img, std::size_t len, int read_errno) {
  if (len < 64) {
    fatal(f, read_errno == 0 ? "file too short" : "cannot read file data", read_errno);
    return false;
  }
  const std::uint8_t* e = img.p;
  static const std::uint8_t kExpected[EI_NIDENT] = {ELFMAG0,     ELFMAG1,    ELFMAG2,       ELFMAG3, ELFCLASS64,
                                                    ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV, 0};
  // sysdeps/gnu/ldsodefs.h: ELFOSABI_GNU is accepted too, with an ABI
  // version below LIBC_ABI_MAX (4 in 2.36).
  const bool osabi_ok = e[EI_OSABI] == ELFOSABI_SYSV || e[EI_OSABI] == ELFOSABI_GNU;
  const bool abiver_ok = e[EI_ABIVERSION] == 0 || (e[EI_OSABI] == ELFOSABI_GNU && e[EI_ABIVERSION] < 4);
  const bool pad_ok = std::memcmp(e + EI_PAD, kExpected + EI_PAD, EI_NIDENT - EI_PAD) == 0;
  if (std::memcmp(e, kExpected, EI_OSABI) != 0 || !osabi_ok || !abiver_ok || !pad_ok) {
    if (std::memcmp(e, ELFMAG, SELFMAG) != 0) fatal(f, "invalid ELF header");
    else if (e[EI_CLASS] != ELFCLASS64) {
      f.verify = FileFacts::Verify::skip;
      f.other_class = true;
    } else if (e[EI_DATA] != ELFDATA2LSB) fatal(f, "ELF file data encoding not little-endian");
    else if (e[EI_VERSION] != EV_CURRENT) fatal(f, "ELF file version ident does not match current one");
    else if (!osabi_ok) fatal(f, "ELF file OS ABI invalid");
    else if (!abiver_ok) fatal(f, "ELF file ABI version invalid");
    else if (!pad_ok) fatal(f, "nonzero padding in e_ident");
    else fatal(f, "internal error");
    return false;
  }
  f.type = le16(e + 16);
  if (le32(e + 20) != EV_CURRENT) {
    fatal(f, "ELF file version does not match current one");
    return false;
  }
  if (le16(e + 18) != EM_X86_64) {
    f.verify = FileFacts::Verify::skip;
    return false;
  }
  if (f.type != ET_DYN && f.type != ET_EXEC) {
    fatal(f, "only ET_DYN and ET_EXEC can be loaded");
    return false;
  }
  if (le16(e + 54) != sizeof(Elf64_Phdr)) {
    fatal(f, "ELF file's phentsize not the expected size");
    return false;
  }
  return true;
}

// The Elf_Verneed / Elf_Verdef chains DT_VERNEED / DT_VERDEF point to, read
// piece by piece as elf::File will walk them (vn_aux/vn_next, vd_aux/vd_next,
// at most *NUM entries, within the same budget), then decoded into
// FileFacts::versions for the version check: a program is never read whole.
void read_versions(int fd, Image& img, const elf::File& file, const std::vector<elf::DynamicEntry>& entries,
                   FileFacts& f) {
  std::optional<std::uint64_t> need, neednum, def, defnum;
  for (const auto& e : entries) {
    if (e.tag == DT_VERNEED) need = e.value;
    if (e.tag == DT_VERNEEDNUM) neednum = e.value;
    if (e.tag == DT_VERDEF) def = e.value;
    if (e.tag == DT_VERDEFNUM) defnum = e.value;
  }
  constexpr std::uint64_t kWindow = 4096;  // one read covers the usual table
  auto walk = [&](std::uint64_t vaddr, std::optional<std::uint64_t> count, bool is_def) {
    auto start = file.vaddr_to_offset(vaddr);
    if (!start) return;
    const std::uint64_t head = is_def ? 20 : 16, aux_size = is_def ? 8 : 16;
    const std::uint64_t window_end = std::min<std::uint64_t>(*start + kWindow, img.size);
    read_range(fd, img, *start, kWindow);
    auto piece = [&](std::uint64_t off, std::uint64_t len) {
      if (!elf::range_fits(off, len, img.size)) return false;
      if (off < *start || off + len > window_end) read_range(fd, img, off, len);
      return true;
    };
    std::uint64_t budget = img.size / aux_size + 1;
    std::uint64_t off = *start;
    for (std::uint64_t i = 0; (!count || i < *count) && budget-- > 0; ++i) {
      if (!piece(off, head)) return;
      const std::uint16_t cnt = le16(img.p + off + (is_def ? 6 : 2));
      const std::uint32_t aux = le32(img.p + off + (is_def ? 12 : 8));
      const std::uint32_t next = le32(img.p + off + (is_def ? 16 : 12));
      std::uint64_t a = off + aux;
      for (std::uint16_t j = 0; j < cnt && budget-- > 0; ++j) {
        if (!piece(a, aux_size)) return;
        const std::uint32_t anext = le32(img.p + a + aux_size - 4);
        if (anext == 0) break;
        a += anext;
      }
      if (next == 0) break;
      off += next;
    }
  };
  if (need) walk(*need, neednum, false);
  if (def) walk(*def, defnum, true);
  auto tables = VersionTables::from_file(file);
  if (tables) f.versions = std::make_shared<const VersionTables>(std::move(*tables));
  else f.versions_problem = tables.error().message;
}

// open_verify(): read() until at least an Ehdr is there (a directory fails
// here with EISDIR: "cannot read file data"), check it, then read the
// program headers. SIZE: the file's, 0 when it is not a regular file. False
// when the file is refused or skipped (F says which).
bool read_headers(int fd, std::uint64_t size, FileFacts& f, Image& img) {
  std::size_t len = 0;
  int read_errno = 0;
  while (len < 64) {
    const ssize_t r = ::read(fd, img.p + len, kFilebuf - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) read_errno = errno;
    if (r <= 0) break;
    len += static_cast<std::size_t>(r);
  }
  if (!verify(f, img, len, read_errno)) return false;
  const std::uint64_t phoff = le64(img.p + 32);
  const std::uint64_t phlen = std::uint64_t{le16(img.p + 56)} * sizeof(Elf64_Phdr);
  if (size < len) img.size = len;  // a FIFO or special file: what was read is all there is
  if (!elf::range_fits(phoff, phlen, img.size) ||
      (phoff + phlen > len && read_range(fd, img, phoff, phlen) != static_cast<ssize_t>(phlen))) {
    fatal(f, "cannot read file data");
    return false;
  }
  return true;
}

// _dl_map_object_from_fd()'s walk over the program headers: the refusals of
// a file loaded as a library (the first one wins, as the loop stops there)
// and PT_DYNAMIC. Returns the file ranges the rest of the reading needs.
std::vector<std::pair<std::uint64_t, std::uint64_t>> check_program_headers(FileFacts& f, const Image& img) {
  const std::uint64_t phoff = le64(img.p + 32);
  const std::uint16_t phnum = le16(img.p + 56);
  bool any_load = false, misaligned = false, dyn = false, empty_dyn = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    const std::uint8_t* ph = img.p + phoff + std::uint64_t{i} * sizeof(Elf64_Phdr);
    const std::uint32_t type = le32(ph);
    const std::uint64_t off = le64(ph + 8), vaddr = le64(ph + 16), filesz = le64(ph + 32);
    switch (type) {
      case PT_LOAD:
        if (((vaddr - off) & 4095) != 0) misaligned = true;
        any_load = true;
        break;
      case PT_DYNAMIC:
        if (filesz == 0) empty_dyn = true;
        else dyn = true;
        ranges.emplace_back(off, filesz);
        break;
      case PT_INTERP:
      case PT_NOTE:
      case PT_GNU_PROPERTY: ranges.emplace_back(off, filesz); break;
      default: break;
    }
    if (misaligned && f.map_message.empty()) f.map_message = "ELF load command address/offset not page-aligned";
  }
  if (f.map_message.empty()) {
    if (!any_load) f.map_message = "object file has no loadable segments";
    else if (f.type != ET_DYN) f.map_message = "cannot dynamically load executable";
    else if (!dyn || empty_dyn) f.map_message = "object file has no dynamic section";
  }
  f.has_dynamic = dyn;
  return ranges;
}

// DT_NEEDED / DT_AUXILIARY / DT_FILTER in dynamic-section order, DT_SONAME,
// DT_RPATH, DT_RUNPATH, DT_FLAGS_1 (then the DF_1_PIE refusal).
void read_dynamic_info(const elf::File& file, const std::vector<elf::DynamicEntry>& entries, FileFacts& f) {
  auto info = file.dynamic_info();
  if (!info) {
    f.read_problem = info.error().message;
  } else {
    std::size_t n = 0, a = 0, fl = 0;
    for (const auto& e : entries) {
      if (e.tag == DT_NEEDED && n < info->needed.size())
        f.deps.push_back({DepEntry::Kind::needed, std::string(info->needed[n++])});
      else if (e.tag == DT_AUXILIARY && a < info->auxiliary.size())
        f.deps.push_back({DepEntry::Kind::auxiliary, std::string(info->auxiliary[a++])});
      else if (e.tag == DT_FILTER && fl < info->filters.size())
        f.deps.push_back({DepEntry::Kind::filter, std::string(info->filters[fl++])});
    }
    if (info->soname) f.soname = std::string(*info->soname);
    if (info->rpath) f.rpath = std::string(*info->rpath);
    if (info->runpath) f.runpath = std::string(*info->runpath);
    f.flags_1 = info->flags_1;
  }
  // DF_1_PIE comes after the dynamic section is read.
  if (f.map_message.empty() && (f.flags_1 & DF_1_PIE))
    f.map_message = "cannot dynamically load position-independent executable";
}

// What ld.so reads of the segments: PT_INTERP, the dynamic section with its
// string table and version tables, the x86 ISA-level property. A part that
// cannot be decoded is a read_problem (the object is then treated as having
// no dynamic section), not a refusal.
void read_segments(int fd, Image& img, FileFacts& f) {
  auto file = elf::File::parse(std::span<const std::uint8_t>(img.p, img.size));
  if (!file) {
    f.read_problem = file.error().message;
    return;
  }
  if (auto interp = file->interpreter(); interp && *interp) f.interp = std::string(**interp);
  auto entries = file->dynamic();
  if (!entries) {
    f.read_problem = entries.error().message;
    return;
  }
  // The string table: read where DT_STRTAB points (DT_STRSZ bytes).
  std::optional<std::uint64_t> strtab, strsz;
  for (const auto& e : *entries) {
    if (e.tag == DT_STRTAB) strtab = e.value;
    if (e.tag == DT_STRSZ) strsz = e.value;
  }
  if (strtab) {
    if (auto off = file->vaddr_to_offset(*strtab)) read_range(fd, img, *off, strsz.value_or(1u << 20));
  }
  read_versions(fd, img, *file, *entries, f);
  read_dynamic_info(*file, *entries, f);
  if (auto props = file->gnu_properties()) {
    for (const auto& p : *props)
      if (p.type == kIsa1Needed && p.data.size() >= 4) f.isa_1_needed = le32(p.data.data());
  }
}

// Everything ld.so would read from the open file FD, in its order.
std::shared_ptr<const FileFacts> inspect(int fd, const struct stat& st) {
  auto f = std::make_shared<FileFacts>();
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->mode = st.st_mode;
  const std::uint64_t size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (size > kMaxImage) {
    fatal(*f, "cannot read file data", EFBIG);
    return f;
  }
  Image img(static_cast<std::size_t>(std::max<std::uint64_t>(size, kFilebuf)));
  if (!read_headers(fd, size, *f, img)) return f;
  for (const auto& [off, range_len] : check_program_headers(*f, img)) read_range(fd, img, off, range_len);
  read_segments(fd, img, *f);
  return f;
}

}  // namespace

bool same_file(const FileFacts& a, const FileFacts& b) { return a.dev == b.dev && a.ino == b.ino; }

Opened open_file(int cwd_fd, const std::string& path) {
  Opened o;
  // open("") fails with ENOENT, as in ld.so.
  const UniqueFd fd(::openat(cwd_fd, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) {
    o.err = errno;
    return o;
  }
  const Key key{st.st_dev, st.st_ino, st.st_size,
                static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) {
      o.facts = it->second;
      return o;
    }
  }
  o.facts = inspect(fd.get(), st);
  if (S_ISREG(st.st_mode)) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_cache.size() > 20000) g_cache.clear();
    g_cache.emplace(key, o.facts);
  }
  return o;
}

}  // namespace procforge::ldso::detail
