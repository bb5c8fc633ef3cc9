// The spawn server's messages (protocol.hpp): fields are tag (u16), length
// (u32), value, in host byte order (the socket is local). Unknown tags are
// refused, not skipped: a client of a newer version says so in its hello.
#include "server/protocol.hpp"

#include <csignal>
#include <cstring>
#include <set>

namespace procforge::server::proto {

namespace {

using Tag = pfw_tag;

// ---- writing ----

class Writer {
 public:
  Writer(std::uint64_t id, Kind kind) {
    Header h;
    h.kind = kind;
    h.id = id;
    out_.append(reinterpret_cast<const char*>(&h), sizeof h);
  }
  Writer& bytes(Tag tag, const void* p, std::size_t n) {
    std::uint16_t t = tag;
    auto len = static_cast<std::uint32_t>(n);
    out_.append(reinterpret_cast<const char*>(&t), sizeof t);
    out_.append(reinterpret_cast<const char*>(&len), sizeof len);
    out_.append(static_cast<const char*>(p), n);
    return *this;
  }
  template <class T>
  Writer& value(Tag tag, T v) {
    return bytes(tag, &v, sizeof v);
  }
  Writer& text(Tag tag, std::string_view s) { return bytes(tag, s.data(), s.size()); }
  Writer& flag(Tag tag, bool on) { return on ? bytes(tag, nullptr, 0) : *this; }
  std::string done() { return std::move(out_); }

 private:
  std::string out_;
};

// ---- reading ----

const char* tag_name(std::uint16_t t) {
  switch (t) {
    case PFW_T_MIN_VERSION: return "min_version";
    case PFW_T_MAX_VERSION: return "max_version";
    case PFW_T_VERSION: return "version";
    case PFW_T_SERVER_PID: return "server_pid";
    case PFW_T_BACKEND: return "backend";
    case PFW_T_PATH: return "path";
    case PFW_T_NO_SEARCH: return "no_search";
    case PFW_T_ARG: return "arg";
    case PFW_T_ENV: return "env";
    case PFW_T_CWD: return "cwd";
    case PFW_T_FD: return "fd";
    case PFW_T_UMASK: return "umask";
    case PFW_T_NICE: return "nice";
    case PFW_T_RLIMIT: return "rlimit";
    case PFW_T_SIGNAL_MASK: return "signal_mask";
    case PFW_T_KEEP_DISPOSITIONS: return "keep_dispositions";
    case PFW_T_IGNORE_SIGNAL: return "ignore_signal";
    case PFW_T_SETSID: return "setsid";
    case PFW_T_PROCESS_GROUP: return "process_group";
    case PFW_T_NO_NEW_PRIVS: return "no_new_privs";
    case PFW_T_UID: return "uid";
    case PFW_T_GID: return "gid";
    case PFW_T_GROUPS: return "groups";
    case PFW_T_WARM: return "warm";
    case PFW_T_DETACH: return "detach";
    case PFW_T_PID: return "pid";
    case PFW_T_FALLBACK: return "fallback";
    case PFW_T_EXITED: return "exited";
    case PFW_T_STATUS: return "status";
    case PFW_T_CORE: return "core";
    case PFW_T_USAGE: return "usage";
    case PFW_T_ERRNO: return "errno";
    case PFW_T_MESSAGE: return "message";
    case PFW_T_SIGNAL: return "signal";
    default: return nullptr;
  }
}

struct Field {
  std::uint16_t tag = 0;
  std::string_view value;
  std::size_t offset = 0;  // of the field in the message, for errors

  [[nodiscard]] std::string name() const {
    const char* n = tag_name(tag);
    return n ? n : "tag " + std::to_string(tag);
  }
  [[nodiscard]] Error bad(const std::string& what) const {
    return Error{EPROTO, "field " + name() + " (offset " + std::to_string(offset) + "): " + what};
  }
  template <class T>
  Result<T> as() const {
    if (value.size() != sizeof(T))
      return bad("length " + std::to_string(value.size()) + ", expected " + std::to_string(sizeof(T)));
    T v;
    std::memcpy(&v, value.data(), sizeof v);
    return v;
  }
  Result<bool> empty_flag() const {
    if (!value.empty()) return bad("length " + std::to_string(value.size()) + ", expected 0 (a flag)");
    return true;
  }
  // A string without NUL bytes (it becomes a C string in the child).
  Result<std::string> text() const {
    if (value.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
    return std::string(value);
  }
};

// Walks the fields of a message; each call of next() gives one, or an error
// when the rest is not a whole field.
class Reader {
 public:
  explicit Reader(std::string_view fields) : rest_(fields) {}
  [[nodiscard]] bool done() const { return rest_.empty(); }
  Result<Field> next() {
    Field f;
    f.offset = sizeof(Header) + consumed_;
    std::uint32_t len = 0;
    if (rest_.size() < sizeof f.tag + sizeof len)
      return Error{EPROTO, "offset " + std::to_string(f.offset) + ": " + std::to_string(rest_.size()) +
                               " bytes left, too few for a field's tag and length"};
    std::memcpy(&f.tag, rest_.data(), sizeof f.tag);
    std::memcpy(&len, rest_.data() + sizeof f.tag, sizeof len);
    const std::size_t head = sizeof f.tag + sizeof len;
    if (len > rest_.size() - head)
      return f.bad("length " + std::to_string(len) + " runs past the end of the message (" +
                   std::to_string(rest_.size() - head) + " bytes left)");
    f.value = rest_.substr(head, len);
    rest_.remove_prefix(head + len);
    consumed_ += head + len;
    return f;
  }

 private:
  std::string_view rest_;
  std::size_t consumed_ = 0;
};

Error unexpected(const Field& f, const char* kind) { return f.bad(std::string("does not belong in a ") + kind); }

// Sets `slot` once; a second occurrence is an error.
template <class T>
Status once(std::optional<T>& slot, const Field& f, Result<T> v) {
  if (!v) return v.error();
  if (slot) return f.bad("given twice");
  slot = std::move(*v);
  return ok_status();
}

Status flag_once(bool& slot, bool& seen, const Field& f, bool value) {
  auto ok = f.empty_flag();
  if (!ok) return ok.error();
  if (seen) return f.bad("given twice");
  seen = true;
  slot = value;
  return ok_status();
}

bool valid_signal(int s) { return s >= 1 && s < NSIG; }

}  // namespace

Result<Message> parse(std::string_view datagram) {
  Header h;
  if (datagram.size() < sizeof h)
    return Error{EPROTO, "message of " + std::to_string(datagram.size()) + " bytes, shorter than the " +
                             std::to_string(sizeof h) + "-byte header"};
  if (datagram.size() > kMaxMessage)
    return Error{EMSGSIZE, "message of " + std::to_string(datagram.size()) + " bytes, above the limit of " +
                               std::to_string(kMaxMessage)};
  std::memcpy(&h, datagram.data(), sizeof h);
  if (h.magic != kMagic) return Error{EPROTO, "not a procforge server message (bad magic)"};
  auto k = static_cast<std::uint16_t>(h.kind);
  if (k < static_cast<std::uint16_t>(Kind::hello) || k > static_cast<std::uint16_t>(Kind::kill))
    return Error{EPROTO, "unknown message kind " + std::to_string(k)};
  if (h.version != kVersion && h.kind != Kind::hello)
    return Error{EPROTO, "message of protocol version " + std::to_string(h.version) + ", this end speaks " +
                             std::to_string(kVersion)};
  return Message{h, datagram.substr(sizeof h)};
}

// ---- encoders ----

std::string encode(std::uint64_t id, const Hello& m) {
  return Writer(id, Kind::hello).value(PFW_T_MIN_VERSION, m.min_version).value(PFW_T_MAX_VERSION, m.max_version).done();
}

std::string encode(std::uint64_t id, const Welcome& m) {
  return Writer(id, Kind::welcome)
      .value(PFW_T_VERSION, m.version)
      .value(PFW_T_SERVER_PID, m.server_pid)
      .text(PFW_T_BACKEND, m.backend)
      .done();
}

std::string encode(std::uint64_t id, const Request& r) {
  Writer w(id, Kind::spawn);
  w.text(PFW_T_PATH, r.path).flag(PFW_T_NO_SEARCH, !r.search_path);
  for (const auto& a : r.argv) w.text(PFW_T_ARG, a);
  for (const auto& e : r.envp) w.text(PFW_T_ENV, e);
  if (!r.cwd.empty()) w.text(PFW_T_CWD, r.cwd);
  for (const auto& f : r.fds) {
    std::int32_t v[2] = {f.target, f.index};
    w.bytes(PFW_T_FD, v, sizeof v);
  }
  if (r.umask) w.value(PFW_T_UMASK, *r.umask);
  if (r.nice) w.value(PFW_T_NICE, static_cast<std::int32_t>(*r.nice));
  for (const auto& l : r.rlimits) {
    std::uint64_t v[3] = {static_cast<std::uint64_t>(l.resource), l.soft, l.hard};
    w.bytes(PFW_T_RLIMIT, v, sizeof v);
  }
  if (r.signal_mask) w.value(PFW_T_SIGNAL_MASK, *r.signal_mask);
  w.flag(PFW_T_KEEP_DISPOSITIONS, !r.reset_signal_dispositions);
  for (int s : r.ignore_signals) w.value(PFW_T_IGNORE_SIGNAL, static_cast<std::int32_t>(s));
  w.flag(PFW_T_SETSID, r.setsid);
  if (r.process_group) w.value(PFW_T_PROCESS_GROUP, static_cast<std::int32_t>(*r.process_group));
  w.flag(PFW_T_NO_NEW_PRIVS, r.no_new_privs);
  if (r.uid) w.value(PFW_T_UID, *r.uid);
  if (r.gid) w.value(PFW_T_GID, *r.gid);
  if (r.groups) w.bytes(PFW_T_GROUPS, r.groups->data(), r.groups->size() * sizeof(std::uint32_t));
  w.flag(PFW_T_WARM, r.warm).flag(PFW_T_DETACH, r.detach);
  return w.done();
}

std::string encode(std::uint64_t id, const Spawned& m) {
  Writer w(id, Kind::spawned);
  w.value(PFW_T_PID, m.pid).flag(PFW_T_WARM, m.warm);
  if (!m.fallback_reason.empty()) w.text(PFW_T_FALLBACK, m.fallback_reason);
  return w.done();
}

std::string encode(std::uint64_t id, const Exited& m) {
  std::uint64_t usage[7] = {m.utime_us, m.stime_us, m.maxrss_kb, m.minflt, m.majflt, m.nvcsw, m.nivcsw};
  return Writer(id, Kind::exited)
      .flag(PFW_T_EXITED, m.exited)
      .value(PFW_T_STATUS, m.status)
      .flag(PFW_T_CORE, m.core_dumped)
      .bytes(PFW_T_USAGE, usage, sizeof usage)
      .done();
}

std::string encode(std::uint64_t id, const Failed& m) {
  return Writer(id, Kind::failed)
      .value(PFW_T_ERRNO, m.err)
      .value(PFW_T_STATUS, m.status)
      .text(PFW_T_MESSAGE, m.message)
      .done();
}

std::string encode(std::uint64_t id, const Kill& m) {
  return Writer(id, Kind::kill).value(PFW_T_SIGNAL, m.signal).done();
}

// ---- decoders ----

namespace {

// Runs `each` on every field of m, which must be of `kind`.
template <class F>
Status fields_of(const Message& m, Kind kind, const char* name, F each) {
  if (m.header.kind != kind) return Error{EPROTO, std::string("expected a ") + name + " message"};
  Reader r(m.fields);
  while (!r.done()) {
    auto f = r.next();
    if (!f) return f.error();
    if (auto st = each(*f); !st) return st.error();
  }
  return ok_status();
}

}  // namespace

Result<Hello> decode_hello(const Message& m) {
  Hello h;
  std::optional<std::uint16_t> lo, hi;
  auto st = fields_of(m, Kind::hello, "hello", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_MIN_VERSION: return once(lo, f, f.as<std::uint16_t>());
      case PFW_T_MAX_VERSION: return once(hi, f, f.as<std::uint16_t>());
      default: return unexpected(f, "hello");
    }
  });
  if (!st) return st.error();
  if (!lo || !hi) return Error{EPROTO, "hello without min_version and max_version"};
  if (*lo > *hi) return Error{EPROTO, "hello with min_version above max_version"};
  h.min_version = *lo;
  h.max_version = *hi;
  return h;
}

Result<Welcome> decode_welcome(const Message& m) {
  Welcome w;
  std::optional<std::uint16_t> version;
  std::optional<std::int32_t> pid;
  std::optional<std::string> backend;
  auto st = fields_of(m, Kind::welcome, "welcome", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_VERSION: return once(version, f, f.as<std::uint16_t>());
      case PFW_T_SERVER_PID: return once(pid, f, f.as<std::int32_t>());
      case PFW_T_BACKEND: return once(backend, f, f.text());
      default: return unexpected(f, "welcome");
    }
  });
  if (!st) return st.error();
  if (!version || !pid || !backend) return Error{EPROTO, "welcome without version, server_pid or backend"};
  w.version = *version;
  w.server_pid = *pid;
  w.backend = *backend;
  return w;
}

Result<Request> decode_request(const Message& m, int nfds) {
  Request r;
  std::optional<std::string> path, cwd;
  std::optional<std::uint32_t> umask, uid, gid;
  std::optional<std::int32_t> nice, pgid;
  std::optional<std::uint64_t> mask;
  std::optional<std::vector<std::uint32_t>> groups;
  bool seen_search = false, seen_disp = false, seen_setsid = false, seen_nnp = false, seen_warm = false,
       seen_detach = false;
  std::set<int> targets, indexes;
  auto st = fields_of(m, Kind::spawn, "spawn", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_PATH: return once(path, f, f.text());
      case PFW_T_NO_SEARCH: return flag_once(r.search_path, seen_search, f, false);
      case PFW_T_ARG:
      case PFW_T_ENV: {
        auto s = f.text();
        if (!s) return s.error();
        if (f.tag == PFW_T_ENV && s->find('=') == std::string::npos) return f.bad("'" + *s + "' has no '='");
        (f.tag == PFW_T_ARG ? r.argv : r.envp).push_back(std::move(*s));
        return ok_status();
      }
      case PFW_T_CWD: {
        auto s = f.text();
        if (s && (s->empty() || s->front() != '/')) return f.bad("'" + *s + "' is not an absolute path");
        return once(cwd, f, std::move(s));
      }
      case PFW_T_FD: {
        if (f.value.size() != 2 * sizeof(std::int32_t))
          return f.bad("length " + std::to_string(f.value.size()) + ", expected 8");
        std::int32_t v[2];
        std::memcpy(v, f.value.data(), sizeof v);
        if (v[0] < 0 || v[0] >= 1024) return f.bad("target fd " + std::to_string(v[0]) + " outside 0..1023");
        if (v[1] < -1 || v[1] >= nfds)
          return f.bad("descriptor index " + std::to_string(v[1]) + ", but " + std::to_string(nfds) +
                       " descriptors came with the message");
        if (!targets.insert(v[0]).second) return f.bad("target fd " + std::to_string(v[0]) + " placed twice");
        if (v[1] >= 0 && !indexes.insert(v[1]).second)
          return f.bad("descriptor index " + std::to_string(v[1]) + " used twice");
        r.fds.push_back({v[0], v[1]});
        return ok_status();
      }
      case PFW_T_UMASK: {
        auto v = f.as<std::uint32_t>();
        if (v && *v > 0777) return f.bad("mode " + std::to_string(*v) + " above 0777");
        return once(umask, f, v);
      }
      case PFW_T_NICE: {
        auto v = f.as<std::int32_t>();
        if (v && (*v < -20 || *v > 19)) return f.bad("nice " + std::to_string(*v) + " outside -20..19");
        return once(nice, f, v);
      }
      case PFW_T_RLIMIT: {
        if (f.value.size() != 3 * sizeof(std::uint64_t))
          return f.bad("length " + std::to_string(f.value.size()) + ", expected 24");
        std::uint64_t v[3];
        std::memcpy(v, f.value.data(), sizeof v);
        if (v[0] >= 16) return f.bad("resource " + std::to_string(v[0]) + " unknown (RLIMIT_* is 0..15)");
        if (v[1] > v[2]) return f.bad("soft limit above the hard limit");
        r.rlimits.push_back({static_cast<int>(v[0]), v[1], v[2]});
        return ok_status();
      }
      case PFW_T_SIGNAL_MASK: return once(mask, f, f.as<std::uint64_t>());
      case PFW_T_KEEP_DISPOSITIONS: return flag_once(r.reset_signal_dispositions, seen_disp, f, false);
      case PFW_T_IGNORE_SIGNAL: {
        auto v = f.as<std::int32_t>();
        if (!v) return v.error();
        if (!valid_signal(*v) || *v == SIGKILL || *v == SIGSTOP)
          return f.bad("signal " + std::to_string(*v) + " cannot be ignored");
        r.ignore_signals.push_back(*v);
        return ok_status();
      }
      case PFW_T_SETSID: return flag_once(r.setsid, seen_setsid, f, true);
      case PFW_T_PROCESS_GROUP: {
        auto v = f.as<std::int32_t>();
        if (v && *v < 0) return f.bad("process group " + std::to_string(*v) + " is negative");
        return once(pgid, f, v);
      }
      case PFW_T_NO_NEW_PRIVS: return flag_once(r.no_new_privs, seen_nnp, f, true);
      case PFW_T_UID: return once(uid, f, f.as<std::uint32_t>());
      case PFW_T_GID: return once(gid, f, f.as<std::uint32_t>());
      case PFW_T_GROUPS: {
        if (f.value.size() % sizeof(std::uint32_t))
          return f.bad("length " + std::to_string(f.value.size()) + ", not a list of 4-byte ids");
        if (f.value.size() / sizeof(std::uint32_t) > 65536) return f.bad("more than 65536 groups (NGROUPS_MAX)");
        std::vector<std::uint32_t> g(f.value.size() / sizeof(std::uint32_t));
        if (!g.empty()) std::memcpy(g.data(), f.value.data(), f.value.size());
        return once(groups, f, Result<std::vector<std::uint32_t>>(std::move(g)));
      }
      case PFW_T_WARM: return flag_once(r.warm, seen_warm, f, true);
      case PFW_T_DETACH: return flag_once(r.detach, seen_detach, f, true);
      default: return unexpected(f, "spawn request");
    }
  });
  if (!st) return st.error();
  if (!path || path->empty()) return Error{EPROTO, "spawn request without a program path"};
  if (r.setsid && pgid) return Error{EPROTO, "spawn request with both setsid and process_group"};
  if (static_cast<int>(indexes.size()) != nfds)
    return Error{EPROTO, std::to_string(nfds) + " descriptors came with the request, " +
                             std::to_string(indexes.size()) + " of them placed"};
  r.path = std::move(*path);
  if (r.argv.empty()) r.argv.push_back(r.path);
  if (cwd) r.cwd = std::move(*cwd);
  r.umask = umask;
  r.nice = nice;
  r.signal_mask = mask;
  r.process_group = pgid;
  r.uid = uid;
  r.gid = gid;
  r.groups = std::move(groups);
  return r;
}

Result<Spawned> decode_spawned(const Message& m) {
  Spawned s;
  std::optional<std::int32_t> pid;
  std::optional<std::string> why;
  bool seen_warm = false;
  auto st = fields_of(m, Kind::spawned, "spawned", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_PID: return once(pid, f, f.as<std::int32_t>());
      case PFW_T_WARM: return flag_once(s.warm, seen_warm, f, true);
      case PFW_T_FALLBACK: return once(why, f, f.text());
      default: return unexpected(f, "spawned reply");
    }
  });
  if (!st) return st.error();
  if (!pid || *pid <= 0) return Error{EPROTO, "spawned reply without a pid"};
  s.pid = *pid;
  if (why) s.fallback_reason = *why;
  return s;
}

Result<Exited> decode_exited(const Message& m) {
  Exited e;
  std::optional<std::int32_t> status;
  bool seen_exited = false, seen_core = false, seen_usage = false;
  auto st = fields_of(m, Kind::exited, "exited", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_EXITED: return flag_once(e.exited, seen_exited, f, true);
      case PFW_T_STATUS: return once(status, f, f.as<std::int32_t>());
      case PFW_T_CORE: return flag_once(e.core_dumped, seen_core, f, true);
      case PFW_T_USAGE: {
        std::uint64_t v[7];
        if (f.value.size() != sizeof v) return f.bad("length " + std::to_string(f.value.size()) + ", expected 56");
        if (seen_usage) return f.bad("given twice");
        seen_usage = true;
        std::memcpy(v, f.value.data(), sizeof v);
        e.utime_us = v[0], e.stime_us = v[1], e.maxrss_kb = v[2], e.minflt = v[3], e.majflt = v[4], e.nvcsw = v[5],
        e.nivcsw = v[6];
        return ok_status();
      }
      default: return unexpected(f, "exited event");
    }
  });
  if (!st) return st.error();
  if (!status) return Error{EPROTO, "exited event without a status"};
  e.status = *status;
  return e;
}

Result<Failed> decode_failed(const Message& m) {
  Failed r;
  std::optional<std::int32_t> err, status;
  std::optional<std::string> text;
  auto st = fields_of(m, Kind::failed, "failed", [&](const Field& f) -> Status {
    switch (f.tag) {
      case PFW_T_ERRNO: return once(err, f, f.as<std::int32_t>());
      case PFW_T_STATUS: return once(status, f, f.as<std::int32_t>());
      case PFW_T_MESSAGE: return once(text, f, f.text());
      default: return unexpected(f, "failed reply");
    }
  });
  if (!st) return st.error();
  if (!err || !status || !text) return Error{EPROTO, "failed reply without errno, status or message"};
  r.err = *err;
  r.status = *status;
  r.message = *text;
  return r;
}

Result<Kill> decode_kill(const Message& m) {
  std::optional<std::int32_t> sig;
  auto st = fields_of(m, Kind::kill, "kill", [&](const Field& f) -> Status {
    if (f.tag != PFW_T_SIGNAL) return unexpected(f, "kill request");
    auto v = f.as<std::int32_t>();
    if (v && !valid_signal(*v)) return f.bad("signal " + std::to_string(*v) + " does not exist");
    return once(sig, f, v);
  });
  if (!st) return st.error();
  if (!sig) return Error{EPROTO, "kill request without a signal"};
  return Kill{*sig};
}

}  // namespace procforge::server::proto
