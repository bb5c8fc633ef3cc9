#include "ldso_stderr.hpp"

#include <algorithm>
#include <sstream>

namespace procforge::testsupport {

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

ExpectedStderr expected_stderr(const ldso::Prediction& p, const ldso::Request& req, bool trace_mode) {
  ExpectedStderr e;
  for (const auto& w : p.warnings)
    if (w.rfind("ERROR: ld.so:", 0) == 0) e.lines.push_back(w);
  const std::string argv0 = p.argv0.value_or(req.program);  // ld.so run as a command: FILE or --argv0
  if (p.error && p.error->stage == ldso::LoaderError::Stage::loading) {
    bool not_found = false;
    for (const auto& o : p.objects)
      if (!o.path && o.name == p.error->object) not_found = true;
    if (!trace_mode || !not_found) {
      e.lines.push_back(ldso::error_line(argv0, *p.error));
      e.exit_code = ldso::exit_status(*p.error);
    }
    return e;
  }
  const ExpectedStderr v = expected_version_lines(p, req);
  e.lines.insert(e.lines.end(), v.lines.begin(), v.lines.end());
  e.version_error = v.version_error;
  if (e.version_error && !trace_mode) e.exit_code = ldso::exit_status(*p.error);
  return e;
}

ExpectedStderr expected_version_lines(const ldso::Prediction& p, const ldso::Request& req) {
  ExpectedStderr e;
  const std::string argv0 = p.argv0.value_or(req.program);  // ld.so run as a command: FILE or --argv0
  for (const auto& w : p.warnings)
    if (w.rfind(argv0 + ": ", 0) == 0 && w.find(" (required by ") != std::string::npos) e.lines.push_back(w);
  if (p.error && p.error->stage == ldso::LoaderError::Stage::versions)
    e.version_error = ldso::error_line(argv0, *p.error);
  return e;
}

::testing::AssertionResult stderr_matches(const std::string& stderr_text, const ExpectedStderr& e) {
  std::vector<std::string> rest = split_lines(stderr_text);
  if (e.version_error) {
    auto it = std::find(rest.begin(), rest.end(), *e.version_error);
    if (it == rest.end())
      return ::testing::AssertionFailure()
             << "missing the version error line \"" << *e.version_error << "\" in stderr:\n"
             << stderr_text;
    rest.erase(it);
  }
  if (rest != e.lines) {
    auto f = ::testing::AssertionFailure() << "stderr:\n" << stderr_text << "predicted lines:";
    for (const auto& l : e.lines) f << "\n  " << l;
    if (e.version_error) f << "\n  (and, anywhere) " << *e.version_error;
    return f;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace procforge::testsupport
