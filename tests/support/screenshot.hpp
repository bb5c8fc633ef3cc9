// Rendering an HTML report in headless Chromium, as the --html tests do: the
// page must draw (a PNG of some size) and the PNG is kept for the docs.
#pragma once

#include <string>

#include "support/run_command.hpp"

namespace procforge::testsupport {

// The Chromium on this machine; empty when none is installed.
std::string find_chromium();

// chromium --headless --screenshot=PNG file://HTML at WIDTHxHEIGHT.
CommandResult chromium_screenshot(const std::string& chromium, const std::string& html, const std::string& png,
                                  int width, int height);

}  // namespace procforge::testsupport
