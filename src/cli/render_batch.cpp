// Renderers of `procforge batch`. The joblog follows what GNU parallel
// 20221122 writes (its --joblog, checked against a real run in
// tests/e2e/batch_cli_test.cpp): sequence number from 1, ":" for the local
// host, the start as seconds since the epoch with milliseconds, the run time
// in seconds right-aligned in 10 columns, 0 bytes sent, the bytes of stdout
// received, the exit status (0 when a signal ended the job) and the signal.
#include <fmt/format.h>

#include "cli/render_batch.hpp"

namespace procforge::cli {

namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string joblog_line(const batch::Command& c, const batch::Outcome& o) {
  const double start = seconds(o.started_at.time_since_epoch());
  return fmt::format("{}\t:\t{:.3f}\t{:10.3f}\t0\t{}\t{}\t{}\t{}\n", o.index + 1, start, seconds(o.wall), o.out.size(),
                     o.signal ? 0 : o.status, o.signal, c.text);
}

nlohmann::json batch_json(const batch::Command& c, const batch::Outcome& o, bool warm_asked) {
  const bool cold_fallback = warm_asked && !o.warm;
  return {{"index", o.index + 1},
          {"line", c.line},
          {"argv", c.argv},
          {"status", o.status},
          {"signal", o.signal ? nlohmann::json(o.signal) : nlohmann::json(nullptr)},
          {"warm", o.warm},
          {"fallback_reason", cold_fallback ? nlohmann::json(o.fallback_reason) : nlohmann::json(nullptr)},
          {"wall_us", std::chrono::duration_cast<std::chrono::microseconds>(o.wall).count()},
          {"stdout", o.out},
          {"stderr", o.err}};
}

std::string start_failure_text(const Error& e) { return "procforge batch: " + e.message + "\n"; }

}  // namespace procforge::cli
