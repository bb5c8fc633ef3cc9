// A file's bytes as ld.so sees them when it reads only what it needs: a
// zero-filled buffer the size of the file, filled with pread() at the ranges
// asked for, so elf::File can decode those ranges and the rest costs nothing
// (fresh anonymous memory: untouched pages are never made resident). Used by
// object_file.cpp (what the search reads) and relocations.cpp (relocation
// tables and the symbols they name). Nothing is ever mapped from the file.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace procforge::ldso::detail {

class SparseImage {
 public:
  explicit SparseImage(std::size_t n);
  ~SparseImage();
  SparseImage(const SparseImage&) = delete;
  SparseImage& operator=(const SparseImage&) = delete;

  std::uint8_t* p = nullptr;
  std::size_t size = 0;  // what the file holds (may shrink for special files)

  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return {p, size}; }

 private:
  std::size_t capacity_ = 0;
  bool mapped_ = false;
};

// Reads [off, off+len) of FD into IMG, clipped to the file; returns the bytes
// read, -1 on error.
ssize_t read_range(int fd, SparseImage& img, std::uint64_t off, std::uint64_t len);

}  // namespace procforge::ldso::detail
