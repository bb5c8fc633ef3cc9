// ByteView: the only way the ELF reader touches file bytes. Every read names
// an offset and a width, is checked against the span (with the addition done
// so that it cannot wrap), and assembles the integer byte by byte in the
// file's byte order, so the host's endianness and alignment never matter.
#include <algorithm>
#include <cstring>

#include "procforge/elf.hpp"

namespace procforge::elf {

bool range_fits(std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  // Written as two comparisons instead of off + len <= size so that a huge
  // len (e.g. an attacker-chosen p_filesz) cannot wrap the sum.
  return off <= size && len <= size - off;
}

namespace {

template <class T>
std::optional<T> read_uint(std::span<const std::uint8_t> b, std::uint64_t off, bool be) {
  if (!range_fits(off, sizeof(T), b.size())) return std::nullopt;
  const std::uint8_t* p = b.data() + off;
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    const std::size_t shift = be ? (sizeof(T) - 1 - i) * 8 : i * 8;
    v = static_cast<T>(v | static_cast<T>(static_cast<T>(p[i]) << shift));
  }
  return v;
}

}  // namespace

std::optional<std::uint8_t> ByteView::u8(std::uint64_t off) const {
  if (off >= b_.size()) return std::nullopt;
  return b_[off];
}

std::optional<std::uint16_t> ByteView::u16(std::uint64_t off) const { return read_uint<std::uint16_t>(b_, off, be_); }

std::optional<std::uint32_t> ByteView::u32(std::uint64_t off) const { return read_uint<std::uint32_t>(b_, off, be_); }

std::optional<std::uint64_t> ByteView::u64(std::uint64_t off) const { return read_uint<std::uint64_t>(b_, off, be_); }

std::optional<std::uint64_t> ByteView::word(std::uint64_t off, bool is64) const {
  if (is64) return u64(off);
  if (auto v = u32(off)) return *v;
  return std::nullopt;
}

std::optional<std::span<const std::uint8_t>> ByteView::sub(std::uint64_t off, std::uint64_t len) const {
  if (!range_fits(off, len, b_.size())) return std::nullopt;
  return b_.subspan(off, len);
}

std::optional<std::string_view> ByteView::cstr(std::uint64_t off, std::size_t max_len) const {
  if (off >= b_.size()) return std::nullopt;
  const std::size_t avail = b_.size() - off;
  // The NUL may sit at index max_len (max_len bytes before it), hence +1;
  // the cap keeps max_len == SIZE_MAX from overflowing.
  const std::size_t scan = max_len >= avail ? avail : max_len + 1;
  const auto* start = b_.data() + off;
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(start, 0, scan));
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(start), static_cast<std::size_t>(nul - start));
}

}  // namespace procforge::elf
