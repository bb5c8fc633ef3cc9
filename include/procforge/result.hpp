// Result<T>: a value or an Error, the library's only way to report failure.
// The library never throws across its API, never prints and never exits; an
// Error carries the errno the kernel would return plus a message that names the
// step and the object, and gains context as it rises (with_context).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge {

struct Error {
  int err = 0;          // errno value, 0 when the failure has no errno
  std::string message;  // "opening /x/y: ENOENT", "e_phoff 0x1000 past end of file"

  Error() = default;
  Error(int e, std::string m) : err(e), message(std::move(m)) {}

  // Prefix the message with what the caller was doing ("reading /bin/ls: ...").
  [[nodiscard]] Error with_context(const std::string& what) const { return Error{err, what + ": " + message}; }
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
