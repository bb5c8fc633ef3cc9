// libFuzzer target for the spawn server's message decoder (server/protocol.cpp):
// the first byte says how many descriptors came with the message (0-7), the
// rest is the datagram. Whatever it refuses must say why; whatever it
// accepts must keep the request's guarantees (no NUL in a string, every
// descriptor placed once, values in range) and encode back to itself.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "invariant.hpp"
#include "server/protocol.hpp"

using namespace procforge;
namespace proto = server::proto;

namespace {

bool no_nul(const std::string& s) { return s.find('\0') == std::string::npos; }

void check_request(const proto::Request& r, int nfds) {
  FUZZ_CHECK(!r.path.empty() && no_nul(r.path), "path '{}'", r.path);
  FUZZ_CHECK(!r.argv.empty(), "an accepted request without argv");
  for (const auto& a : r.argv) FUZZ_CHECK(no_nul(a), "argv entry with a NUL");
  for (const auto& e : r.envp) FUZZ_CHECK(no_nul(e) && e.find('=') != std::string::npos, "env entry '{}'", e);
  FUZZ_CHECK(r.cwd.empty() || r.cwd.front() == '/', "cwd '{}' not absolute", r.cwd);
  std::uint64_t seen = 0;
  int placed = 0;
  for (const auto& f : r.fds) {
    FUZZ_CHECK(f.target >= 0 && f.target < 1024, "target {}", f.target);
    FUZZ_CHECK(f.index >= -1 && f.index < nfds, "index {} of {}", f.index, nfds);
    if (f.index >= 0) {
      FUZZ_CHECK(!(seen & (1ULL << f.index)), "index {} twice", f.index);
      seen |= 1ULL << f.index;
      ++placed;
    }
  }
  FUZZ_CHECK(placed == nfds, "{} of {} descriptors placed", placed, nfds);
  if (r.umask) FUZZ_CHECK(*r.umask <= 0777, "umask {}", *r.umask);
  if (r.nice) FUZZ_CHECK(*r.nice >= -20 && *r.nice <= 19, "nice {}", *r.nice);
  for (const auto& l : r.rlimits) FUZZ_CHECK(l.soft <= l.hard && l.resource >= 0 && l.resource < 16, "rlimit");
  FUZZ_CHECK(!(r.setsid && r.process_group), "setsid and a process group");
}

bool same(const proto::Request& a, const proto::Request& b) {
  auto fds = [](const proto::Request& r) {
    std::string s;
    for (const auto& f : r.fds) s += std::to_string(f.target) + ":" + std::to_string(f.index) + ",";
    return s;
  };
  auto limits = [](const proto::Request& r) {
    std::string s;
    for (const auto& l : r.rlimits)
      s += std::to_string(l.resource) + ":" + std::to_string(l.soft) + ":" + std::to_string(l.hard) + ",";
    return s;
  };
  return a.path == b.path && a.search_path == b.search_path && a.argv == b.argv && a.envp == b.envp && a.cwd == b.cwd &&
         fds(a) == fds(b) && a.umask == b.umask && a.nice == b.nice && limits(a) == limits(b) &&
         a.signal_mask == b.signal_mask && a.reset_signal_dispositions == b.reset_signal_dispositions &&
         a.ignore_signals == b.ignore_signals && a.setsid == b.setsid && a.process_group == b.process_group &&
         a.no_new_privs == b.no_new_privs && a.uid == b.uid && a.gid == b.gid && a.groups == b.groups &&
         a.warm == b.warm && a.detach == b.detach;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int nfds = data[0] & 7;
  std::string_view datagram(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = proto::parse(datagram);
  if (!m) {
    FUZZ_CHECK(!m.error().message.empty() && m.error().err != 0, "a refusal without a reason");
    return 0;
  }
  switch (m->header.kind) {
    case proto::Kind::spawn: {
      auto r = proto::decode_request(*m, nfds);
      if (!r) {
        FUZZ_CHECK(!r.error().message.empty() && r.error().err == EPROTO, "refusal: '{}'", r.error().message);
        return 0;
      }
      check_request(*r, nfds);
      std::string again = proto::encode(m->header.id, *r);
      auto m2 = proto::parse(again);
      FUZZ_CHECK(static_cast<bool>(m2), "re-encoded request does not parse");
      auto r2 = proto::decode_request(*m2, nfds);
      FUZZ_CHECK(static_cast<bool>(r2), "re-encoded request refused: {}", r2 ? std::string() : r2.error().message);
      FUZZ_CHECK(same(*r, *r2), "re-encoded request differs");
      FUZZ_CHECK(m2->header.id == m->header.id, "id changed");
      break;
    }
    case proto::Kind::hello: {
      auto h = proto::decode_hello(*m);
      if (h) FUZZ_CHECK(h->min_version <= h->max_version, "hello {}..{}", h->min_version, h->max_version);
      break;
    }
    case proto::Kind::kill: {
      auto k = proto::decode_kill(*m);
      if (k) FUZZ_CHECK(k->signal >= 1 && k->signal < 65, "signal {}", k->signal);
      break;
    }
    case proto::Kind::welcome: (void)proto::decode_welcome(*m); break;
    case proto::Kind::spawned: {
      auto s = proto::decode_spawned(*m);
      if (s) FUZZ_CHECK(s->pid > 0, "pid {}", s->pid);
      break;
    }
    case proto::Kind::exited: (void)proto::decode_exited(*m); break;
    case proto::Kind::failed: (void)proto::decode_failed(*m); break;
  }
  return 0;
}
