#include "support/screenshot.hpp"

#include <unistd.h>

namespace procforge::testsupport {

std::string find_chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(c, X_OK) == 0) return c;
  return {};
}

CommandResult chromium_screenshot(const std::string& chromium, const std::string& html, const std::string& png,
                                  int width, int height) {
  CommandOptions co;
  co.env = {"PATH=/usr/bin:/bin", "HOME=/tmp"};
  co.timeout_ms = 120000;
  return run_command({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                      "--window-size=" + std::to_string(width) + "," + std::to_string(height), "--screenshot=" + png,
                      "file://" + html},
                     co);
}

}  // namespace procforge::testsupport
