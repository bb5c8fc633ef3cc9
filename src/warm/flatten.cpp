// A spawn plan's Block as one request message (wire.hpp): the Block, then
// every array and string it points to, pointers turned into offsets + 1.
#include <cstring>

#include "warm/detail.hpp"

namespace procforge::warm {

namespace {

class Writer {
 public:
  explicit Writer(std::vector<char>& out) : out_(out) {}

  std::size_t put(const void* p, std::size_t n, std::size_t align) {
    std::size_t at = (out_.size() + align - 1) / align * align;
    out_.resize(at + n);
    if (n) std::memcpy(out_.data() + at, p, n);
    return at;
  }
  template <class T>
  T* encode(const T* p, long count) {
    if (!p || count <= 0) return nullptr;
    return reinterpret_cast<T*>(put(p, sizeof(T) * static_cast<std::size_t>(count), alignof(T)) + 1);
  }
  const char* string(const char* s) {
    if (!s) return nullptr;
    return reinterpret_cast<const char*>(put(s, std::strlen(s) + 1, 1) + 1);
  }
  char* const* strings(char* const* v) {
    std::vector<std::uintptr_t> offsets;
    for (; v && *v; ++v) offsets.push_back(reinterpret_cast<std::uintptr_t>(string(*v)));
    offsets.push_back(0);
    return reinterpret_cast<char* const*>(
        put(offsets.data(), offsets.size() * sizeof(std::uintptr_t), alignof(std::uintptr_t)) + 1);
  }
  spawn::Block& block(std::size_t at) { return *reinterpret_cast<spawn::Block*>(out_.data() + at); }

 private:
  std::vector<char>& out_;
};

}  // namespace

Status flatten(const spawn::Plan& plan, std::vector<char>& message, std::vector<int>& fds) {
  const spawn::Block& b = plan.block;
  message.clear();
  fds.clear();
  Writer w(message);
  wire::Header h{wire::kMagic, wire::Kind::spawn};
  w.put(&h, sizeof h, 1);
  // The Block is copied as bytes (its report is volatile: no copy constructor),
  // then its pointers are rewritten; every field set below is re-fetched
  // through block(), since the vector may move as it grows.
  const std::size_t at = w.put(&b, sizeof b, alignof(spawn::Block));
  auto* argv = w.strings(b.argv);
  auto* envp = w.strings(b.envp);
  auto* cwd = w.string(b.cwd);
  std::vector<spawn::FdOp> ops(b.fd_ops, b.fd_ops + b.nfd_ops);
  for (auto& op : ops) {
    op.path = w.string(op.path);
    if (op.kind == spawn::FdOp::dup) {
      fds.push_back(op.source);
      op.source = -1;  // the agent puts the received fd here
    }
  }
  auto* fd_ops = w.encode(ops.data(), static_cast<long>(ops.size()));
  auto* kept = w.encode(b.kept, b.nkept);
  auto* ignore = w.encode(b.ignore, b.nignore);
  auto* rlimits = w.encode(b.rlimits, b.nrlimits);
  auto* groups = w.encode(b.groups, b.ngroups);
  if (fds.size() > static_cast<std::size_t>(wire::kMaxFds))
    return Error{E2BIG, "a warm spawn passes at most " + std::to_string(wire::kMaxFds) + " descriptors"};
  if (message.size() > wire::kMaxMessage)
    return Error{E2BIG, "arguments and environment larger than a warm request (" + std::to_string(wire::kMaxMessage) +
                            " bytes)"};
  spawn::Block& out = w.block(at);
  out.argv = argv;
  out.envp = envp;
  out.cwd = cwd;
  out.fd_ops = fd_ops;
  out.kept = kept;
  out.ignore = ignore;
  out.rlimits = rlimits;
  out.groups = groups;
  // What an instance never does (rules.cpp refuses such options), or what the
  // agent sets itself.
  out.candidates = nullptr;
  out.ncandidates = 0;
  out.keep_fds = nullptr;
  out.nkeep_fds = 0;
  out.replace = nullptr;
  out.replace_arg = nullptr;
  out.filter = nullptr;
  out.nfilter = 0;
  out.cgroup_procs = nullptr;
  out.ncgroup_procs = 0;
  out.v2_procs = nullptr;
  out.ctty = nullptr;
  out.hostname = nullptr;
  out.sync_fd = out.sync_peer_fd = out.err_fd = -1;
  out.pdeathsig = 0;
  return ok_status();
}

}  // namespace procforge::warm
