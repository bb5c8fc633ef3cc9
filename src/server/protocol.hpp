// The spawn server's wire protocol (docs/server.md): one message per
// SOCK_SEQPACKET datagram, a fixed header then fields as
// tag/length/value, descriptors as SCM_RIGHTS. Both ends are this library
// (the server and include/procforge/client.hpp); the decoder treats every
// byte as hostile: bounds-checked, no field trusted, every refusal names
// the field and what is wrong with it.
//
//   client -> server  hello     the versions the client speaks (min, max)
//   server -> client  welcome   the version chosen, the server's pid and backend
//   client -> server  spawn     a request (id chosen by the client): program,
//                               argv, envp, cwd, controls, descriptors
//   server -> client  spawned   id, pid, whether warm; the pidfd as SCM_RIGHTS
//   server -> client  exited    id, wait status, rusage
//   server -> client  failed    id, errno, shell status, message (id 0: the
//                               connection itself, which the server then closes)
//   client -> server  kill      id, signal
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"
#include "server/wire.h"

namespace procforge::server::proto {

constexpr std::uint32_t kMagic = PFW_MAGIC;
constexpr std::uint16_t kVersion = PFW_VERSION;
constexpr std::size_t kMaxMessage = PFW_MAX_MESSAGE;
constexpr int kMaxFds = PFW_MAX_FDS;

enum class Kind : std::uint16_t {
  hello = PFW_HELLO,
  welcome = PFW_WELCOME,
  spawn = PFW_SPAWN,
  spawned = PFW_SPAWNED,
  exited = PFW_EXITED,
  failed = PFW_FAILED,
  kill = PFW_KILL
};

struct Header {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  Kind kind = Kind::hello;
  std::uint64_t id = 0;
};
static_assert(sizeof(Header) == PFW_HEADER_SIZE);

// One descriptor of the new process: the passed fd `index` (into the
// message's SCM_RIGHTS list) at `target`, or /dev/null there.
struct FdPlacement {
  int target = -1;
  int index = -1;  // -1: /dev/null
};

struct Rlimit {
  int resource = 0;
  std::uint64_t soft = 0, hard = 0;
};

// A spawn request as decoded; what a client may ask of spawn::Options.
struct Request {
  std::string path;
  bool search_path = true;
  std::vector<std::string> argv, envp;
  std::string cwd;  // absolute: the client's own cwd when it gave none
  std::vector<FdPlacement> fds;
  std::optional<std::uint32_t> umask;
  std::optional<int> nice;
  std::vector<Rlimit> rlimits;
  std::optional<std::uint64_t> signal_mask;  // bits 0..63 for signals 1..64
  bool reset_signal_dispositions = true;
  std::vector<int> ignore_signals;
  bool setsid = false;
  std::optional<int> process_group;
  bool no_new_privs = false;
  std::optional<std::uint32_t> uid, gid;
  std::optional<std::vector<std::uint32_t>> groups;
  bool warm = false;
  bool detach = false;  // keep running when the client goes away
};

struct Hello {
  std::uint16_t min_version = kVersion, max_version = kVersion;
};
struct Welcome {
  std::uint16_t version = kVersion;
  std::int32_t server_pid = 0;
  std::string backend;
};
struct Spawned {
  std::int32_t pid = 0;
  bool warm = false;
  std::string fallback_reason;
};
struct Exited {
  bool exited = false;  // else killed by signal `status`
  std::int32_t status = 0;
  bool core_dumped = false;
  std::uint64_t utime_us = 0, stime_us = 0, maxrss_kb = 0, minflt = 0, majflt = 0, nvcsw = 0, nivcsw = 0;
};
struct Failed {
  std::int32_t err = 0;
  std::int32_t status = 125;  // what a shell would exit with: 125, 126, 127
  std::string message;
};
struct Kill {
  std::int32_t signal = 0;
};

// A message: its header and the raw fields.
struct Message {
  Header header;
  std::string_view fields;
};

// The header of a received datagram; an error naming what is wrong.
Result<Message> parse(std::string_view datagram);

// Encoders: the whole datagram.
std::string encode(std::uint64_t id, const Hello&);
std::string encode(std::uint64_t id, const Welcome&);
std::string encode(std::uint64_t id, const Request&);
std::string encode(std::uint64_t id, const Spawned&);
std::string encode(std::uint64_t id, const Exited&);
std::string encode(std::uint64_t id, const Failed&);
std::string encode(std::uint64_t id, const Kill&);

// Decoders of a parsed message's fields. `nfds`: how many descriptors came
// with the request (every placement must name one of them, each once).
Result<Hello> decode_hello(const Message&);
Result<Welcome> decode_welcome(const Message&);
Result<Request> decode_request(const Message&, int nfds);
Result<Spawned> decode_spawned(const Message&);
Result<Exited> decode_exited(const Message&);
Result<Failed> decode_failed(const Message&);
Result<Kill> decode_kill(const Message&);

}  // namespace procforge::server::proto
