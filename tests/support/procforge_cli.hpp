// Starting the real procforge binary from a test: its stdout and stderr go to
// files, so that a test can read them whole after it ends.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "procforge/spawn.hpp"

namespace procforge::testing {

// procforge ARGS..., or an empty Child (and a test failure) when it cannot start.
inline spawn::Child start_procforge(const std::vector<std::string>& args, const std::string& out_file,
                                    const std::string& err_file) {
  spawn::Options o;
  o.path = PROCFORGE_BINARY;
  o.argv = {PROCFORGE_BINARY};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::file;
  o.stdout_.path = out_file;
  o.stderr_.path = err_file;
  auto c = spawn::spawn(o);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c ? std::move(*c) : spawn::Child{};
}

}  // namespace procforge::testing
