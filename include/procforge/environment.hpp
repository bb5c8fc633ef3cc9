// A new program's environment, edited as env(1) edits one: start from a base
// (this process's environ, an explicit list, or nothing), remove each
// --unset KEY, then put each KEY=VALUE in place of its key's entries. One
// implementation for every caller: spawn's child (spawn::child_environment()),
// the user-space exec attached to a spawn, and the requests that run, exec,
// explain and profile give the exec model.
//
//   std::vector<std::string_view> env = procforge::env::views(environ);
//   const std::vector<std::string> unset{"HOME"}, set{"LANG=C"};  // env points into set: keep it alive
//   if (auto st = procforge::env::apply_edits(env, unset, set); !st) ...;
//
// Thread safety: the functions are pure, except that views(environ) reads
// environ, which another thread's setenv() may change meanwhile (as with
// posix_spawn and environ, that race is the caller's).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::env {

// KEY of an entry: up to its first '=', the whole entry when it has none.
std::string_view key_of(std::string_view entry);

// Whether ENTRY is KEY=VALUE with a non-empty KEY: what a set edit must be.
bool is_assignment(std::string_view entry);

// getenv() in an environment other than ours: the value of the first entry
// with KEY, as the C library of the new program will find it.
std::optional<std::string_view> lookup(char* const* envp, std::string_view key);
std::optional<std::string_view> lookup(const std::vector<std::string>& envp, std::string_view key);

// The entries of a NULL-terminated array such as environ (none for null).
std::vector<std::string_view> views(char* const* envp);

// ENV without the entries of each UNSET key, then each SET entry appended in
// order, replacing the entries of its key. The views keep pointing into
// their strings: ENV's own, and SET's. EINVAL, naming the entry, when a SET
// entry is not KEY=VALUE (ENV is then left partly edited).
Status apply_edits(std::vector<std::string_view>& env, const std::vector<std::string>& unset,
                   const std::vector<std::string>& set);

// This process's environment (an empty one with CLEAR), edited, as strings.
Result<std::vector<std::string>> edited(bool clear, const std::vector<std::string>& unset,
                                        const std::vector<std::string>& set);

}  // namespace procforge::env

#pragma GCC visibility pop
