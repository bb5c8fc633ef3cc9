// The HTML and SVG pieces the reports share (cli/html.hpp).
#include "cli/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace procforge::cli {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, int d) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", d, v);
  return b;
}

std::string waterfall(const std::vector<Bar>& bars, const std::string& unit_note) {
  const int label_w = 260, chart_w = 620, row_h = 22, top = 24;
  double end = 0;
  for (const auto& b : bars) end = std::max({end, b.start + b.len, b.start2 + b.len2});
  if (end <= 0) end = 1;
  const int h = top + static_cast<int>(bars.size()) * row_h + 10;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << label_w + chart_w + 90 << "' height='" << h
    << "' role='img'>\n";
  // Grid: 5 ticks.
  for (int t = 0; t <= 4; ++t) {
    const double x = label_w + chart_w * t / 4.0;
    o << "<line x1='" << num(x) << "' y1='" << top - 6 << "' x2='" << num(x) << "' y2='" << h - 6
      << "' stroke='#ddd'/><text x='" << num(x) << "' y='" << top - 10 << "' font-size='11' text-anchor='middle'>"
      << num(end * t / 4.0, 0) << "</text>\n";
  }
  o << "<text x='" << label_w + chart_w + 30 << "' y='" << top - 10 << "' font-size='11'>" << esc(unit_note)
    << "</text>\n";
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const int y = top + static_cast<int>(i) * row_h;
    std::string label = b.label.size() > 40 ? "…" + b.label.substr(b.label.size() - 39) : b.label;
    o << "<text x='" << label_w - 6 << "' y='" << y + 15 << "' font-size='12' text-anchor='end'>" << esc(label)
      << "</text>\n";
    auto rect = [&](double s, double l, const std::string& c) {
      const double x = label_w + chart_w * s / end;
      const double w = std::max(1.0, chart_w * l / end);
      o << "<rect x='" << num(x) << "' y='" << y + 3 << "' width='" << num(w) << "' height='" << row_h - 6 << "' fill='"
        << c << "'><title>" << esc(b.title) << "</title></rect>\n";
    };
    rect(b.start, b.len, b.color);
    if (b.len2 > 0) rect(b.start2, b.len2, "#fc8d62");
    o << "<text x='" << num(label_w + chart_w * (std::max(b.start + b.len, b.start2 + b.len2)) / end + 4) << "' y='"
      << y + 15 << "' font-size='11'>" << num(b.len + b.len2) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string html_page_head(const std::string& title) {
  return "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>" + esc(title) +
         "</title>\n<style>"
         "body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
         "h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:18px 0 6px}"
         "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
         "td:first-child,th:first-child{text-align:left}.meta,.dim{color:#666}.notes{color:#555}"
         ".holds{color:#1a7f37}.fails{color:#b3261e}.unknown{color:#666}"
         "svg text{font-family:system-ui,sans-serif;fill:#333}</style></head><body>\n<h1>" +
         esc(title) + "</h1>\n";
}

std::string html_page_tail() { return "</body></html>\n"; }

namespace {

std::string us_text(double us) {
  if (us == 0) return "0";
  if (us >= 1e6) return num(us / 1e6, us >= 1e7 ? 0 : 1) + " s";
  if (us >= 1000) return num(us / 1000, us >= 10000 ? 0 : 1) + " ms";
  return num(us, us >= 10 ? 0 : 1) + " µs";
}

// Maps a value to [0, 1] along an axis, linear or logarithmic.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1, zero_at = 0;  // log: where a 0 goes (a decade below the smallest)
  [[nodiscard]] double at(double v) const {
    if (log) {
      const double lv = v > 0 ? std::log10(v) : zero_at;
      return (lv - lo) / (hi - lo);
    }
    return (v - lo) / (hi - lo);
  }
};

}  // namespace

std::string line_chart(const LineChart& chart) {
  const int left = 80, right = 220, top = 16, bottom = 48, plot_w = 560, plot_h = 260;
  double xmin_pos = 0, xmax = 0, ymin = 0;
  bool any = false;
  std::vector<double> xs;
  for (const auto& s : chart.series)
    for (const auto& p : s.points) {
      if (p.x > 0 && (xmin_pos == 0 || p.x < xmin_pos)) xmin_pos = p.x;
      xmax = std::max(xmax, p.x);
      ymin = any ? std::min(ymin, p.min) : p.min;
      any = true;
      if (std::find(xs.begin(), xs.end(), p.x) == xs.end()) xs.push_back(p.x);
    }
  if (!any) return {};
  Axis x, y;
  x.log = chart.log_x && xmin_pos > 0;
  if (x.log) {
    x.zero_at = std::log10(xmin_pos) - 1;
    const bool has_zero = std::find(xs.begin(), xs.end(), 0.0) != xs.end();
    x.lo = has_zero ? x.zero_at : std::log10(xmin_pos);
    x.hi = std::log10(std::max(xmax, xmin_pos));
  } else {
    x.lo = 0;
    x.hi = xmax;
  }
  if (x.hi <= x.lo) x.hi = x.lo + 1;
  double med_lo = 0, med_hi = 0;
  bool first = true;
  for (const auto& s : chart.series)
    for (const auto& p : s.points) {
      med_lo = first ? p.median : std::min(med_lo, p.median);
      med_hi = first ? p.median : std::max(med_hi, p.median);
      first = false;
    }
  y.log = med_lo > 0 && med_hi / med_lo > 30;
  if (y.log) {
    y.lo = std::floor(std::log10(std::max(std::min(ymin, med_lo), 0.1)));
    y.hi = std::ceil(std::log10(std::max(med_hi * 1.5, 1.0)));
    if (y.hi <= y.lo) y.hi = y.lo + 1;
  } else {
    y.lo = 0;
    y.hi = med_hi > 0 ? med_hi * 1.4 : 1;
  }
  auto px = [&](double v) { return left + plot_w * std::clamp(x.at(v), 0.0, 1.0); };
  auto py = [&](double v) { return top + plot_h * (1 - std::clamp(y.at(v), 0.0, 1.0)); };

  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << left + plot_w + right << "' height='"
    << top + plot_h + bottom << "' role='img'>\n";
  o << "<rect x='" << left << "' y='" << top << "' width='" << plot_w << "' height='" << plot_h
    << "' fill='none' stroke='#999'/>\n";
  // y ticks: decades on a log axis, fifths on a linear one.
  std::vector<double> yt;
  if (y.log)
    for (double e = y.lo; e <= y.hi; ++e) yt.push_back(std::pow(10.0, e));
  else {
    // A round step (1, 2 or 5 times a power of ten) giving about five ticks.
    const double raw = y.hi / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag > 5 ? 10 * mag : raw / mag > 2 ? 5 * mag : raw / mag > 1 ? 2 * mag : mag;
    for (double v = 0; v <= y.hi; v += step) yt.push_back(v);
  }
  for (double v : yt)
    o << "<line x1='" << left << "' x2='" << left + plot_w << "' y1='" << num(py(v)) << "' y2='" << num(py(v))
      << "' stroke='#eee'/><text x='" << left - 6 << "' y='" << num(py(v) + 4) << "' font-size='11' text-anchor='end'>"
      << esc(us_text(v)) << "</text>\n";
  for (double v : xs)
    o << "<line x1='" << num(px(v)) << "' x2='" << num(px(v)) << "' y1='" << top << "' y2='" << top + plot_h
      << "' stroke='#eee'/><text x='" << num(px(v)) << "' y='" << top + plot_h + 16
      << "' font-size='11' text-anchor='middle'>" << esc(chart.x_tick ? chart.x_tick(v) : num(v, 0)) << "</text>\n";
  o << "<text x='" << left + plot_w / 2 << "' y='" << top + plot_h + 38 << "' font-size='12' text-anchor='middle'>"
    << esc(chart.x_label) << (x.log ? " (log scale)" : "") << "</text>\n";
  o << "<text transform='translate(16," << top + plot_h / 2 << ") rotate(-90)' font-size='12' text-anchor='middle'>"
    << "median time, min-max bars" << (y.log ? " (log scale)" : "") << "</text>\n";
  std::vector<std::string> colors;  // a colour per series; a variant takes its original's
  for (const auto& s : chart.series) {
    std::string c;
    for (std::size_t j = 0; j < colors.size() && !s.variant_of.empty(); ++j)
      if (chart.series[j].name == s.variant_of) c = colors[j];
    if (c.empty()) {
      const auto own = static_cast<std::size_t>(
          std::count_if(chart.series.begin(), chart.series.begin() + static_cast<std::ptrdiff_t>(colors.size()),
                        [](const ChartSeries& other) { return other.variant_of.empty(); }));
      c = kColors[own % std::size(kColors)];
    }
    colors.push_back(c);
  }
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const auto& s = chart.series[i];
    const std::string& color = colors[i];
    std::string pts;
    for (const auto& p : s.points) pts += num(px(p.x)) + "," + num(py(p.median)) + " ";
    const char* dash = s.variant_of.empty() ? "" : "' stroke-dasharray='6,3";
    o << "<polyline fill='none' stroke='" << color << dash << "' stroke-width='2' points='" << pts << "'/>\n";
    for (const auto& p : s.points)
      o << "<line x1='" << num(px(p.x)) << "' x2='" << num(px(p.x)) << "' y1='" << num(py(p.min)) << "' y2='"
        << num(py(p.max)) << "' stroke='" << color << "'/><circle cx='" << num(px(p.x)) << "' cy='" << num(py(p.median))
        << "' r='3' fill='" << color << "'><title>" << esc(s.name) << ": " << esc(us_text(p.median)) << " (min "
        << esc(us_text(p.min)) << ", max " << esc(us_text(p.max)) << ")</title></circle>\n";
    const int ly = top + 14 + static_cast<int>(i) * 18;
    o << "<line x1='" << left + plot_w + 14 << "' x2='" << left + plot_w + 34 << "' y1='" << ly - 4 << "' y2='"
      << ly - 4 << "' stroke='" << color << dash << "' stroke-width='3'/><text x='" << left + plot_w + 40 << "' y='"
      << ly << "' font-size='12'>" << esc(s.name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace procforge::cli
