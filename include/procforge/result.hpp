// Result<T>: a value or an Error, the library's only way to report failure.
// The library never throws across its API, never prints and never exits.
//
//   procforge::Result<Child> c = spawn::spawn(opts);
//   if (!c) {
//     const procforge::Error& e = c.error();
//     if (e.step == procforge::ErrorStep::execve)  // decide from the fields...
//       return e.err == ENOENT ? 127 : 126;
//     std::cerr << e.message << "\n";              // ...and show the text
//   }
//
// An Error carries the errno the kernel would return, the step that failed
// and the object it concerned; its message is built from them ("execve /x/y:
// ENOENT") and gains context as it rises (with_context), while the fields stay
// as they were: callers branch on the fields, never on the text.
//
// Thread-safety: Error and Result are plain values; errno_name() and
// step_name() are safe to call from any thread.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge {

// What was being done when the failure happened: the part of an Error that
// callers decide on (exit statuses, hints). Kept coarse on purpose: the
// message names the detail; a step is added only when a caller needs to tell
// it apart.
enum class ErrorStep : std::uint8_t {
  unspecified,  // Error{err, message}: no step named
  options,      // the request itself is invalid, before any system call
  open,         // opening a file or directory
  read,
  write,
  parse,        // the bytes were read but make no sense
  execve,       // the kernel's execve() of the program (spawn: the program could not be run)
  exec_model,   // the exec model's prediction
  ldso,         // the ld.so model
  spawn_setup,  // a control the child applies between clone and execve
  clone,        // creating the child (clone3, clone, vfork, fork, the pipes and stack it needs)
  cgroup,       // creating, joining or removing a cgroup
  wait,         // waiting for, signalling or supervising a child
};
// "execve", "spawn setup"...
const char* step_name(ErrorStep step);

struct Error {
  int err = 0;  // errno value, 0 when the failure has no errno
  ErrorStep step = ErrorStep::unspecified;
  std::string object;   // what the step concerned: a path, "fd 3", a name; may be empty
  std::string message;  // "opening /x/y: ENOENT", "e_phoff 0x1000 past end of file"

  Error() = default;
  Error(int e, std::string m) : err(e), message(std::move(m)) {}
  Error(ErrorStep s, int e, std::string obj, std::string m)
      : err(e), step(s), object(std::move(obj)), message(std::move(m)) {}

  // The common shape of a failed call: "WHAT OBJECT: ENAME" ("opening cgroup
  // /sys/fs/cgroup/x: EACCES"), or "WHAT: ENAME" when there is no object.
  static Error call(ErrorStep s, int e, const std::string& what, std::string obj = {});

  // Prefix the message with what the caller was doing ("reading /bin/ls: ...");
  // the errno, step and object stay those of the failure itself.
  [[nodiscard]] Error with_context(const std::string& what) const {
    return Error{step, err, object, what + ": " + message};
  }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                              // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// For operations that produce nothing but may fail.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

// Symbolic errno name ("ENOENT"); "E?<n>" for values it does not know.
std::string errno_name(int err);

}  // namespace procforge

#pragma GCC visibility pop
