// Software breakpoints: an int3 (0xCC) written over the first byte of an
// instruction with PTRACE_POKETEXT. The kernel writes through FOLL_FORCE, so
// read-only text is copied on write in the tracee only (reference 4.3: this
// pre-faults the page; the fault is a GUP fault, not counted in minflt).
// When the tracee executes it, it stops with SIGTRAP and rip one past the
// breakpoint; tracer.cpp restores the byte and rewinds rip.
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <cerrno>

#include "profile/detail.hpp"

namespace procforge::profile::detail {

std::optional<std::uint64_t> peek(pid_t pid, std::uint64_t addr) {
  errno = 0;
  long w = ptrace(PTRACE_PEEKDATA, pid, reinterpret_cast<void*>(addr), nullptr);
  if (errno != 0) return std::nullopt;
  return static_cast<std::uint64_t>(w);
}

bool poke(pid_t pid, std::uint64_t addr, std::uint64_t word) {
  return ptrace(PTRACE_POKEDATA, pid, reinterpret_cast<void*>(addr), reinterpret_cast<void*>(word)) == 0;
}

std::string read_string(pid_t pid, std::uint64_t addr, std::size_t max) {
  std::string out;
  char buf[256];
  while (out.size() < max) {
    iovec local{buf, sizeof buf};
    iovec remote{reinterpret_cast<void*>(addr + out.size()), sizeof buf};
    // Never cross a page boundary in one read: the next page may be unmapped.
    std::uint64_t here = addr + out.size();
    std::size_t to_page = 4096 - (here & 4095);
    if (to_page < sizeof buf) local.iov_len = remote.iov_len = to_page;
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\0') return out;
      out.push_back(buf[i]);
    }
  }
  return out;
}

bool Breakpoints::insert(pid_t pid, std::uint64_t addr, int tag) {
  if (bps_.count(addr)) return true;
  auto w = peek(pid, addr);
  if (!w) return false;
  if (!poke(pid, addr, (*w & ~std::uint64_t{0xff}) | 0xcc)) return false;
  bps_[addr] = Bp{*w, tag};
  return true;
}

bool Breakpoints::remove(pid_t pid, std::uint64_t addr) {
  auto it = bps_.find(addr);
  if (it == bps_.end()) return false;
  // Only the low byte was changed: put back that byte and keep the rest as it
  // is now (ld.so may have relocated a neighbouring word in a TEXTREL object).
  auto w = peek(pid, addr);
  bool ok = w && poke(pid, addr, (*w & ~std::uint64_t{0xff}) | (it->second.orig & 0xff));
  bps_.erase(it);
  return ok;
}

void Breakpoints::restore_in_copy(pid_t pid) const {
  for (const auto& [addr, bp] : bps_)
    if (auto w = peek(pid, addr)) poke(pid, addr, (*w & ~std::uint64_t{0xff}) | (bp.orig & 0xff));
}

std::optional<int> Breakpoints::tag_at(std::uint64_t addr) const {
  auto it = bps_.find(addr);
  if (it == bps_.end()) return std::nullopt;
  return it->second.tag;
}

std::optional<std::uint64_t> Breakpoints::original(std::uint64_t addr) const {
  auto it = bps_.find(addr);
  if (it == bps_.end()) return std::nullopt;
  return it->second.orig;
}

}  // namespace procforge::profile::detail
