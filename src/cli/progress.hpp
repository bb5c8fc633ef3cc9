// The one progress bar the CLI draws on a terminal's stderr (profile's runs,
// batch's commands): "[#########.....................] 9/30".
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

namespace procforge::cli {

inline std::string progress_bar(std::size_t done, std::size_t total) {
  constexpr std::size_t kWidth = 30;
  const std::size_t filled = total ? std::min(done, total) * kWidth / total : kWidth;
  return "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " + std::to_string(done) + "/" +
         std::to_string(total);
}

}  // namespace procforge::cli
