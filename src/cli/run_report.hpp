// What `procforge run --report` prints after the run: the strategy, the
// timings and the child's resource usage, as text or JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "procforge/spawn.hpp"
#include "procforge/warm.hpp"

namespace procforge::cli {

struct RunReport {
  std::string program;
  std::optional<spawn::Strategy> strategy;  // empty when spawn failed
  pid_t pid = -1;
  spawn::Timings timings;
  std::optional<spawn::Child::Exit> exit;
  std::optional<Error> error;
  int status = 0;                    // procforge run's own exit status
  std::optional<warm::Report> warm;  // --warm
  struct Server {
    std::string socket, backend;
    pid_t pid = -1;
  };
  std::optional<Server> server;  // --server: the process is the server's child
};

std::string render_run_text(const RunReport& r);
nlohmann::json render_run_json(const RunReport& r);

}  // namespace procforge::cli
