// libFuzzer target for the warm agent's request decoder (warm/wire.hpp
// rebase_block()): any bytes as a spawn request. Whatever it accepts must
// point only inside the message: every array, every string NUL-terminated
// within it, argv non-empty, and nothing a template must never do.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "warm/wire.hpp"

using namespace procforge;

namespace {

bool inside(const void* p, std::size_t n, const char* base, std::size_t size) {
  auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(base);
  return a >= b && a - b <= size && n <= size - (a - b);
}

bool string_inside(const char* s, const char* base, std::size_t size) {
  if (!s) return true;
  if (!inside(s, 1, base, size)) return false;
  return std::memchr(s, 0, size - static_cast<std::size_t>(s - base)) != nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The agent receives into a page-aligned buffer.
  std::vector<std::max_align_t> storage(size / sizeof(std::max_align_t) + 1);
  char* msg = reinterpret_cast<char*>(storage.data());
  std::memcpy(msg, data, size);
  long argc = 0, envc = 0;
  spawn::Block* b = warm::wire::rebase_block(msg, size, argc, envc);
  if (!b) return 0;
  if (argc < 1 || envc < 0) abort();
  if (!inside(b->argv, sizeof(char*) * static_cast<std::size_t>(argc + 1), msg, size)) abort();
  for (long i = 0; i < argc; ++i)
    if (!string_inside(b->argv[i], msg, size)) abort();
  for (long i = 0; i < envc; ++i)
    if (!string_inside(b->envp[i], msg, size)) abort();
  if (!string_inside(b->cwd, msg, size)) abort();
  if (b->nfd_ops && !inside(b->fd_ops, sizeof(spawn::FdOp) * static_cast<std::size_t>(b->nfd_ops), msg, size)) abort();
  for (int i = 0; i < b->nfd_ops; ++i)
    if (!string_inside(b->fd_ops[i].path, msg, size)) abort();
  if (b->nkept && !inside(b->kept, sizeof(unsigned) * static_cast<std::size_t>(b->nkept), msg, size)) abort();
  if (b->nrlimits && !inside(b->rlimits, sizeof(spawn::RlimitOp) * static_cast<std::size_t>(b->nrlimits), msg, size))
    abort();
  if (b->ngroups && !inside(b->groups, sizeof(gid_t) * static_cast<std::size_t>(b->ngroups), msg, size)) abort();
  // Nothing it accepts lies over the Block, whose fields the rebasing rewrote.
  const char* block_end = reinterpret_cast<const char*>(b) + sizeof *b;
  auto above = [&](const void* p) { return !p || static_cast<const char*>(p) >= block_end; };
  if (!above(b->argv) || !above(b->envp) || !above(b->cwd) || !above(b->fd_ops) || !above(b->kept) ||
      !above(b->groups) || !above(b->rlimits))
    abort();
  if (b->candidates || b->replace || b->filter || b->ctty || b->hostname || b->pdeathsig) abort();
  return 0;
}
