// Placeholder while the template machinery is written: every spawn goes cold
// and says so. Replaced by the real pool before this lands.
#include "procforge/warm.hpp"

namespace procforge::warm {

struct Pool::Impl {
  Limits limits;
};

Pool::Pool(Limits limits) : impl_(std::make_unique<Impl>(Impl{limits})) {}
Pool::~Pool() = default;

Result<spawn::Child> Pool::spawn(const spawn::Options& o, Report* report) {
  if (report) {
    *report = Report{};
    report->fallback_reason = "warm starts are not built yet";
  }
  return spawn::spawn(o);
}

Result<TemplateFacts> Pool::facts(const spawn::Options&) {
  return Error{ENOSYS, "warm starts are not built yet"};
}

void Pool::clear() {}

}  // namespace procforge::warm
