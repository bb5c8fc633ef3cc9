// Suite "claims": the cost claims procforge's pipeline rests on, each stated
// in one sentence and judged from what the other suites measured in the same
// run (the fastest runs decide; the medians are shown next to them). Every figure is a ratio that names both sides; a
// claim whose figures are missing (a suite not run, a size skipped) is "not measurable here" and says which.
#include <algorithm>
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
  [[nodiscard]] const Measurement* labelled(const std::string& series, const std::string& variable,
                                            const std::string& label) const {
    for (const auto& x : m_)
      if (x.series == series && x.variable == variable && x.label == label && x.runs > 0) return &x;
    return nullptr;
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
  if (m.variable == "touched_mib" || m.variable == "reserved_mib" || m.variable == "client_mib")
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

// The server suite's claims: what a client gains or pays by spawning through
// `procforge serve`, on each backend measured.
void server_claims(const Lookup& l, std::vector<Claim>& out) {
  const std::string need = "needs the server suite's series (see the notes)";
  const char* const backends[] = {"io_uring", "epoll"};
  auto server = [](const char* b, const std::string& what) { return std::string("server ") + b + ", " + what; };
  auto each_backend = [&](const std::function<std::optional<Ratio>(const char*)>& f) {
    std::vector<std::optional<Ratio>> v;
    for (const char* b : backends)
      if (l.at(server(b, "static target cold"), "client_mib", 0)) v.push_back(f(b));
    if (v.empty()) v.push_back(std::nullopt);
    return v;
  };
  auto all = [](double lo, double hi) {
    return [lo, hi](const std::vector<double>& v) {
      return std::all_of(v.begin(), v.end(), [&](double x) { return x >= lo && x <= hi; });
    };
  };

  out.push_back(
      judge("server-warm-beats-posix-spawn",
            "Through the server, a warm `cmake --version` costs its client a third or less of starting it cold with "
            "posix_spawn.",
            each_backend([&](const char* b) {
              return ratio(l.at("posix_spawn, cmake --version", "client_mib", 0),
                           l.at(server(b, "cmake --version warm"), "client_mib", 0), "posix_spawn of cmake --version",
                           std::string("a warm instance through the ") + b + " server");
            }),
            need, all(3, 1e9), "holds when posix_spawn costs at least 3x the warm round trip on every backend"));

  {
    const std::string shell = "fork+exec from a small process";
    out.push_back(
        judge("server-spawn-client-beats-the-shell",
              "A shell running `procforge-spawn --warm cmake --version` waits a third or less of running `cmake "
              "--version` itself.",
              {ratio(l.labelled(shell, "shell_command", "cmake --version"),
                     l.labelled(shell, "shell_command", "procforge-spawn --warm cmake --version"), "cmake --version",
                     "procforge-spawn --warm cmake --version")},
              need, all(3, 1e9), "holds when the shell's own run costs at least 3x the one through procforge-spawn"));

    const Measurement* client = l.labelled(shell, "shell_command", "procforge-spawn --version");
    const Measurement* floor = l.labelled(shell, "shell_command", "static target");
    const Measurement* cxx = l.labelled(shell, "shell_command", "procforge --version");
    Claim c;
    c.id = "server-spawn-client-starts-in-tens-of-us";
    c.sentence = "procforge-spawn's own start costs tens of microseconds, not the milliseconds of a C++ program.";
    if (!client || !floor) {
      c.why = need;
    } else {
      const double own = client->min_us - floor->min_us;
      c.figures = "procforge-spawn --version - the static target = " + fmt_us(own) + " fastest runs (" +
                  fmt_us(client->min_us) + " - " + fmt_us(floor->min_us) + "), " +
                  fmt_us(client->median_us - floor->median_us) + " medians";
      if (cxx)
        c.figures +=
            "; for contrast: procforge --version - the static target = " + fmt_us(cxx->min_us - floor->min_us) +
            " fastest runs";
      c.verdict = own <= 100 ? Verdict::holds : Verdict::does_not_hold;
      c.why = "holds when procforge-spawn costs at most 100 us more than a static program that only exits";
    }
    out.push_back(c);
  }

  out.push_back(
      judge("server-static-near-posix-spawn",
            "A round trip through the server for the static target costs at most 1.5x the client's own posix_spawn.",
            each_backend([&](const char* b) {
              return ratio(l.at(server(b, "static target cold"), "client_mib", 0),
                           l.at("posix_spawn, static target", "client_mib", 0), std::string("the ") + b + " server",
                           "posix_spawn in the client");
            }),
            need, all(0, 1.5), "holds when every backend's round trip is at most 1.5x posix_spawn"));

  out.push_back(judge(
      "server-flat-with-client-size",
      "A request through the server costs the same from a small client and from one holding gigabytes.",
      each_backend([&](const char* b) { return along(l, server(b, "static target cold"), "client_mib", "touched"); }),
      need, all(0, 1.1), "holds when every backend's ratio is at most 1.1x",
      {along(l, "posix_spawn, static target", "client_mib", "touched")}));

  {
    std::vector<std::optional<Ratio>> f{ratio(l.at(server("io_uring", "static target cold"), "client_mib", 0),
                                              l.at(server("epoll", "static target cold"), "client_mib", 0),
                                              "the io_uring server, one client", "the epoll server")};
    const Measurement* most = l.largest(server("io_uring", "static target"), "clients");
    if (most)
      f.push_back(ratio(most, l.at(server("epoll", "static target"), "clients", most->value),
                        "the io_uring server, " + value_text(*most) + " clients at once", "the epoll server"));
    out.push_back(judge("server-backends-alike",
                        "The io_uring and epoll backends serve a request at about the same cost.", f,
                        "needs both backends (see the notes)", all(1 / 1.2, 1.2),
                        "holds when io_uring is within 1.2x of epoll either way"));
  }
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
  if (std::any_of(m.begin(), m.end(), [](const Measurement& x) { return x.suite == "server"; })) server_claims(l, out);
  return out;
}

}  // namespace procforge::bench
