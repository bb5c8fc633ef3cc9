// How `procforge batch` shows a command's outcome: a GNU parallel joblog
// line, a JSON object, the message of a command that could not start.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "procforge/batch.hpp"

namespace procforge::cli {

// parallel(1) --joblog: TAB-separated, this header first.
inline constexpr const char* kJoblogHeader =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
std::string joblog_line(const batch::Command& c, const batch::Outcome& o);

// {index, line, argv, status, signal, warm, fallback_reason, wall_us, stdout, stderr}.
// WARM_ASKED: --warm was given (fallback_reason is null otherwise).
nlohmann::json batch_json(const batch::Command& c, const batch::Outcome& o, bool warm_asked);

// What goes on a command's stderr when it could not be started.
std::string start_failure_text(const Error& e);

}  // namespace procforge::cli
