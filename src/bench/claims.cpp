// Suite "claims": the cost claims procforge's pipeline rests on, each stated
// in one sentence and judged from what the other suites measured in the same
// run (the fastest runs decide; the medians are shown next to them). Every figure is a ratio that names both sides; a
// claim whose figures are missing (a suite not run, a size skipped) is "not measurable here" and says which.
#include <cstdio>
#include <functional>
#include <optional>

#include "bench/detail.hpp"

namespace procforge::bench {

namespace {

class Lookup {
 public:
  explicit Lookup(const std::vector<Measurement>& m) : m_(m) {}

  [[nodiscard]] const Measurement* at(const std::string& series, const std::string& variable, double value) const {
    for (const auto& x : m_)
      if (x.series == series && x.variable == variable && x.value == value && x.runs > 0) return &x;
    return nullptr;
  }
  // The point with the largest (smallest) value of the variable on that series.
  [[nodiscard]] const Measurement* largest(const std::string& series, const std::string& variable) const {
    return extreme(series, variable, true);
  }
  [[nodiscard]] const Measurement* smallest(const std::string& series, const std::string& variable) const {
    return extreme(series, variable, false);
  }

 private:
  [[nodiscard]] const Measurement* extreme(const std::string& series, const std::string& variable, bool large) const {
    const Measurement* best = nullptr;
    for (const auto& x : m_)
      if (x.series == series && x.variable == variable && x.runs > 0 &&
          (!best || (large ? x.value > best->value : x.value < best->value)))
        best = &x;
    return best;
  }
  const std::vector<Measurement>& m_;
};

std::string fmt_us(double us) {
  char b[64];
  if (us >= 10000) std::snprintf(b, sizeof b, "%.1f ms", us / 1000);
  else std::snprintf(b, sizeof b, "%.0f us", us);
  return b;
}

std::string fmt_ratio(double r) {
  char b[32];
  std::snprintf(b, sizeof b, r >= 10 ? "%.0fx" : "%.2fx", r);
  return b;
}

std::string value_text(const Measurement& m) {
  if (!m.label.empty()) return m.label;
  const auto v = static_cast<long long>(m.value);
  if (m.variable == "touched_mib" || m.variable == "reserved_mib")
    return v >= 1024 && v % 1024 == 0 ? std::to_string(v / 1024) + " GiB" : std::to_string(v) + " MiB";
  return std::to_string(v);
}

// "fork alone at 8 GiB touched / at 0 MiB = 412x fastest runs (81.2 ms / 197 us), 380x medians (...)";
// nullopt when a side is missing. The verdict goes by the fastest runs: a
// loaded machine adds scheduler delays (up to a tick, some milliseconds) to
// some runs of any case, which a median carries when they are many, and
// never takes time away.
struct Ratio {
  double value = 0;
  std::string text;
};
std::optional<Ratio> ratio(const Measurement* a, const Measurement* b, const std::string& a_name,
                           const std::string& b_name) {
  if (!a || !b || b->min_us <= 0 || b->median_us <= 0) return std::nullopt;
  Ratio r;
  r.value = a->min_us / b->min_us;
  r.text = a_name + " / " + b_name + " = " + fmt_ratio(r.value) + " fastest runs (" + fmt_us(a->min_us) + " / " +
           fmt_us(b->min_us) + "), " + fmt_ratio(a->median_us / b->median_us) + " medians (" + fmt_us(a->median_us) +
           " / " + fmt_us(b->median_us) + ")";
  return r;
}

// The series' largest point against its smallest.
std::optional<Ratio> along(const Lookup& l, const std::string& series, const std::string& variable,
                           const std::string& what) {
  const Measurement *hi = l.largest(series, variable), *lo = l.smallest(series, variable);
  if (!hi || !lo || hi == lo) return std::nullopt;
  return ratio(hi, lo, series + " at " + value_text(*hi) + " " + what, "at " + value_text(*lo));
}

// The verdict from the figures `holds` is judged on; `contrast` figures are
// shown next to them when measured but do not decide.
Claim judge(std::string id, std::string sentence, const std::vector<std::optional<Ratio>>& figures,
            const std::string& missing, const std::function<bool(const std::vector<double>&)>& holds, std::string rule,
            const std::vector<std::optional<Ratio>>& contrast = {}) {
  Claim c;
  c.id = std::move(id);
  c.sentence = std::move(sentence);
  std::vector<double> values;
  for (const auto& f : figures) {
    if (!f) {
      c.verdict = Verdict::not_measurable;
      c.why = missing;
      return c;
    }
    values.push_back(f->value);
    c.figures += (c.figures.empty() ? "" : "; ") + f->text;
  }
  for (const auto& f : contrast)
    if (f) c.figures += "; for contrast: " + f->text;
  c.verdict = holds(values) ? Verdict::holds : Verdict::does_not_hold;
  c.why = std::move(rule);
  return c;
}

}  // namespace

std::vector<Claim> evaluate_claims(const std::vector<Measurement>& m) {
  const Lookup l(m);
  std::vector<Claim> out;
  const std::string need_create = "needs the create suite's curves (not run, or their sizes were skipped)";
  const std::string need_link = "needs the link suite (not run)";

  out.push_back(judge(
      "fork-grows-with-touched-not-reserved",
      "fork's cost grows with the memory the parent has touched, not with the address space it has only reserved.",
      {along(l, "fork alone", "touched_mib", "touched"), along(l, "fork alone", "reserved_mib", "reserved")},
      need_create, [](const std::vector<double>& v) { return v[0] >= 2 && v[1] <= 1.5; },
      "holds when the touched ratio is at least 2x and the reserved one at most 1.5x"));

  out.push_back(
      judge("vfork-style-flat",
            "vfork-style creation (vfork, posix_spawn, procforge's clone3) costs the same whatever the "
            "parent's size.",
            {along(l, "vfork+exec", "touched_mib", "touched"), along(l, "posix_spawn", "touched_mib", "touched"),
             along(l, "clone3 (procforge)", "touched_mib", "touched")},
            need_create,
            [](const std::vector<double>& v) {
              for (double x : v)
                if (x > 1.5 || x < 1 / 1.5) return false;
              return true;
            },
            "holds when every spawn's ratio is within 1.5x either way (vfork alone, a few tens of microseconds that "
            "a neighbour's load can double, is shown for contrast)",
            {along(l, "vfork alone", "touched_mib", "touched")}));

  {
    auto r = ratio(l.at("exec+ld.so+exit", "link_kind", 2), l.at("vfork alone", "touched_mib", 0),
                   "spawn+exec+ld.so+exit of a dynamic main() that returns 0 (clone3)",
                   "creating and reaping a process alone (vfork, no exec)");
    out.push_back(judge(
        "exec-ldso-dominates", "For a short task, exec and ld.so cost more than creating the process does.", {r},
        "needs the create and link suites", [](const std::vector<double>& v) { return v[0] >= 2; },
        "holds when the whole start costs at least 2x the creation alone (creation under half)"));
  }

  out.push_back(judge(
      "grows-with-libraries", "A start's cost grows with the number of libraries it loads.",
      {along(l, "lazy binding", "libraries", "libraries")}, need_link,
      [](const std::vector<double>& v) { return v[0] >= 1.5; },
      "holds when the most libraries cost at least 1.5x the fewest"));

  {
    const Measurement* s_now = l.largest("BIND_NOW", "exported_symbols");
    const Measurement* s_lazy = s_now ? l.at("lazy binding", "exported_symbols", s_now->value) : nullptr;
    const Measurement* b_now = l.largest("BIND_NOW", "libraries");
    const Measurement* b_lazy = b_now ? l.at("lazy binding", "libraries", b_now->value) : nullptr;
    out.push_back(judge(
        "bind-now-costs-more", "BIND_NOW costs more at start than lazy binding.",
        {ratio(s_now, s_lazy, "BIND_NOW with " + (s_now ? value_text(*s_now) : "") + " PLT slots", "lazy")}, need_link,
        [](const std::vector<double>& v) { return v[0] > 1.05; },
        "holds when BIND_NOW is over 1.05x lazy with the most PLT slots (the libraries figure, about five slots a "
        "library, is shown for contrast)",
        {ratio(b_now, b_lazy, "BIND_NOW with " + (b_now ? value_text(*b_now) : "") + " libraries", "lazy")}));
  }

  {
    const Measurement* warm = l.largest("warm instance", "libraries");
    const Measurement* cold = warm ? l.at("lazy binding", "libraries", warm->value) : nullptr;
    out.push_back(judge(
        "warm-avoids-most-of-a-start", "A warm instance avoids most of a start.",
        {ratio(warm, cold, "warm instance of the " + (warm ? value_text(*warm) : "") + "-library program",
               "its cold start (clone3+exec+ld.so)")},
        "needs the link suite's warm series (see the notes)", [](const std::vector<double>& v) { return v[0] <= 0.5; },
        "holds when the warm instance of the many-library program costs at most half its cold start",
        {ratio(l.at("warm instance", "touched_mib", 0), l.at("clone3 (procforge)", "touched_mib", 0),
               "warm instance of /bin/true", "its cold start")}));
  }

  {
    const Measurement* relr = l.largest("RELR", "relative_relocs");
    const Measurement* rela = relr ? l.at("RELA", "relative_relocs", relr->value) : nullptr;
    out.push_back(judge(
        "relr-cheaper-than-rela", "DT_RELR relocations cost a start less than the same RELA ones.",
        {ratio(relr, rela, "RELR with " + (relr ? value_text(*relr) : "") + " relative relocations", "RELA")},
        need_link, [](const std::vector<double>& v) { return v[0] < 1.0; }, "holds when the RELR start is cheaper"));
  }

  std::string path_series;  // named after the program it runs
  for (const auto& x : m)
    if (x.variable == "ld_library_path_dirs") path_series = x.series;
  out.push_back(judge(
      "search-grows-with-path",
      "Library search cost grows with the directories of LD_LIBRARY_PATH times the libraries.",
      {along(l, path_series, "ld_library_path_dirs", "dirs")}, need_link,
      [](const std::vector<double>& v) { return v[0] >= 1.2; },
      "holds when the longest path costs at least 1.2x none"));

  {
    const Measurement* huge = l.largest("fork alone, THP", "touched_mib");
    const Measurement* small = huge ? l.at("fork alone", "touched_mib", huge->value) : nullptr;
    out.push_back(judge(
        "thp-cheapens-fork", "Transparent huge pages make forking a large parent cheaper.",
        {ratio(huge, small, "fork alone at " + (huge ? value_text(*huge) : "") + " in huge pages", "in 4 KiB pages")},
        "needs the create suite's THP curves (skipped: see the notes)",
        [](const std::vector<double>& v) { return v[0] < 1.0; }, "holds when the THP fork is cheaper"));
  }

  {
    std::vector<std::optional<Ratio>> f;
    for (const auto& x : m)
      if (x.suite == "faults" && x.series == "page cache cold")
        f.push_back(ratio(&x, l.at("page cache warm", "program", x.value), x.label + ": cold page cache", "warm"));
    if (f.empty()) f.push_back(std::nullopt);
    out.push_back(judge(
        "cold-cache-costs-more", "A start with its files out of the page cache costs more.", f,
        "needs the faults suite",
        [](const std::vector<double>& v) {
          for (double x : v)
            if (x <= 1.0) return false;
          return true;
        },
        "holds when every cold start is slower than the warm one"));
  }
  return out;
}

}  // namespace procforge::bench
