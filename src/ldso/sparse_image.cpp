#include "ldso/sparse_image.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace procforge::ldso::detail {

namespace {

// Large images are anonymous mappings of their own: calloc() would take them
// from the heap once malloc's dynamic mmap threshold has grown (to 32 MiB
// after the first large free) and zero them, touching every page; a batch
// over /usr/bin then kept the largest file's size resident.
constexpr std::size_t kOwnMappingFrom = 256 * 1024;

}  // namespace

SparseImage::SparseImage(std::size_t n) : size(n), capacity_(n) {
  if (n >= kOwnMappingFrom) {
    void* m = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      p = static_cast<std::uint8_t*>(m);
      mapped_ = true;
      return;
    }
  }
  p = static_cast<std::uint8_t*>(std::calloc(n ? n : 1, 1));
  if (!p) size = 0;
}

SparseImage::~SparseImage() {
  if (mapped_) ::munmap(p, capacity_);
  else std::free(p);
}

ssize_t read_range(int fd, SparseImage& img, std::uint64_t off, std::uint64_t len) {
  if (off >= img.size) return 0;
  len = std::min<std::uint64_t>(len, img.size - off);
  std::uint64_t got = 0;
  while (got < len) {
    const ssize_t r = pread(fd, img.p + off + got, len - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += static_cast<std::uint64_t>(r);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace procforge::ldso::detail
