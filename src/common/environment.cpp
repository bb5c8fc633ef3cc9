// env(1)'s edits of an environment (procforge/environment.hpp).
#include "procforge/environment.hpp"

#include <algorithm>
#include <cerrno>

extern char** environ;

namespace procforge::env {

namespace {

// KV's value when its key is KEY.
std::optional<std::string_view> value_if(std::string_view kv, std::string_view key) {
  if (kv.size() > key.size() && kv[key.size()] == '=' && kv.starts_with(key)) return kv.substr(key.size() + 1);
  return std::nullopt;
}

}  // namespace

std::string_view key_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

bool is_assignment(std::string_view entry) {
  const auto eq = entry.find('=');
  return eq != std::string_view::npos && eq != 0;
}

std::optional<std::string_view> lookup(char* const* envp, std::string_view key) {
  for (char* const* e = envp; e && *e; ++e)
    if (auto v = value_if(*e, key)) return v;
  return std::nullopt;
}

std::optional<std::string_view> lookup(const std::vector<std::string>& envp, std::string_view key) {
  for (const auto& kv : envp)
    if (auto v = value_if(kv, key)) return v;
  return std::nullopt;
}

std::vector<std::string_view> views(char* const* envp) {
  std::vector<std::string_view> out;
  for (char* const* e = envp; e && *e; ++e) out.emplace_back(*e);
  return out;
}

Status apply_edits(std::vector<std::string_view>& env, const std::vector<std::string>& unset,
                   const std::vector<std::string>& set) {
  auto drop = [&](std::string_view key) { std::erase_if(env, [&](std::string_view kv) { return key_of(kv) == key; }); };
  for (const auto& k : unset) drop(k);
  for (const auto& kv : set) {
    if (!is_assignment(kv))
      return Error{ErrorStep::options, EINVAL, kv, "environment entry '" + kv + "' is not KEY=VALUE"};
    drop(key_of(kv));
    env.emplace_back(kv);
  }
  return ok_status();
}

Result<std::vector<std::string>> edited(bool clear, const std::vector<std::string>& unset,
                                        const std::vector<std::string>& set) {
  std::vector<std::string_view> env = clear ? std::vector<std::string_view>{} : views(environ);
  if (auto st = apply_edits(env, unset, set); !st) return st.error();
  return std::vector<std::string>(env.begin(), env.end());
}

}  // namespace procforge::env
