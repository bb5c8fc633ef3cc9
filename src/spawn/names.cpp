// Names for the values the spawn options take: strategies, namespaces
// (as unshare(1) and /proc/PID/ns spell them) and resource limits (as
// prlimit(1) spells them, lower case without RLIMIT_).
#include <linux/sched.h>
#include <sched.h>
#include <sys/resource.h>

#include <string_view>

#include "procforge/spawn.hpp"

namespace procforge::spawn {

namespace {

struct Named {
  std::string_view name;
  int value;
};

constexpr Named kStrategies[] = {
    {"automatic", static_cast<int>(Strategy::automatic)},
    {"clone3", static_cast<int>(Strategy::clone3)},
    {"clone_vfork", static_cast<int>(Strategy::clone_vfork)},
    {"posix_spawn", static_cast<int>(Strategy::posix_spawn)},
    {"fork", static_cast<int>(Strategy::fork)},
    {"vfork", static_cast<int>(Strategy::vfork)},
};

constexpr Named kNamespaces[] = {
    {"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS},      {"net", CLONE_NEWNET},
    {"uts", CLONE_NEWUTS},   {"ipc", CLONE_NEWIPC}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

constexpr Named kRlimits[] = {
    {"cpu", RLIMIT_CPU},           {"fsize", RLIMIT_FSIZE},
    {"data", RLIMIT_DATA},         {"stack", RLIMIT_STACK},
    {"core", RLIMIT_CORE},         {"rss", RLIMIT_RSS},
    {"nproc", RLIMIT_NPROC},       {"nofile", RLIMIT_NOFILE},
    {"memlock", RLIMIT_MEMLOCK},   {"as", RLIMIT_AS},
    {"locks", RLIMIT_LOCKS},       {"sigpending", RLIMIT_SIGPENDING},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"rtprio", RLIMIT_RTPRIO},     {"rttime", RLIMIT_RTTIME},
};

template <std::size_t N>
std::optional<int> find(const Named (&table)[N], std::string_view name) {
  for (const auto& n : table)
    if (n.name == name) return n.value;
  return std::nullopt;
}

template <std::size_t N>
const char* name_of(const Named (&table)[N], int value) {
  for (const auto& n : table)
    if (n.value == value) return n.name.data();
  return "?";
}

}  // namespace

const char* strategy_name(Strategy s) { return name_of(kStrategies, static_cast<int>(s)); }

std::optional<Strategy> strategy_from_name(const std::string& name) {
  std::string n = name;
  for (auto& c : n)
    if (c == '-') c = '_';
  if (n == "auto") n = "automatic";
  if (n == "clone") n = "clone_vfork";
  if (auto v = find(kStrategies, n)) return static_cast<Strategy>(*v);
  return std::nullopt;
}

std::optional<int> namespace_from_name(const std::string& name) {
  if (name == "mnt") return CLONE_NEWNS;
  return find(kNamespaces, name);
}

const char* namespace_name(int flag) { return name_of(kNamespaces, flag); }

std::optional<int> rlimit_from_name(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (n.rfind("rlimit_", 0) == 0) n = n.substr(7);
  return find(kRlimits, n);
}

const char* rlimit_name(int resource) { return name_of(kRlimits, resource); }

}  // namespace procforge::spawn
