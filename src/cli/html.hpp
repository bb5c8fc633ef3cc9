// What the CLI's HTML reports share (profile --html, bench --html): one page
// style, escaping, and SVG charts drawn inline, so that a report is one
// self-contained file with no script and no external resource.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace procforge::cli {

std::string esc(const std::string& s);        // text for HTML: < > & " escaped
std::string num(double v, int decimals = 1);  // "%.*f"

inline constexpr const char* kColors[] = {"#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3", "#a6d854",
                                          "#ffd92f", "#e5c494", "#b3b3b3", "#7f7f7f"};

// "<!doctype html>...<body><h1>TITLE</h1>": the style every report uses.
std::string html_page_head(const std::string& title);
std::string html_page_tail();

// A waterfall: rows of (label, start, length, color), scaled to the largest end.
struct Bar {
  std::string label;
  double start = 0, len = 0;
  std::string color, title;
  double start2 = 0, len2 = 0;  // optional second segment (relocation estimate)
};
std::string waterfall(const std::vector<Bar>& bars, const std::string& unit_note);

// A line chart of microsecond medians with min-max whiskers, one line per
// series. The x axis is logarithmic when log_x (a 0 is drawn one decade
// below the smallest other value, labelled 0); the y axis is logarithmic when
// the medians span more than 30x. The y range follows the medians: a whisker
// past it (one slow run) is cut at the edge.
struct ChartPoint {
  double x = 0, median = 0, min = 0, max = 0;
};
struct ChartSeries {
  std::string name;
  std::string variant_of;          // drawn dashed in this series' colour (the same method with huge pages)
  std::vector<ChartPoint> points;  // in x order
};
struct LineChart {
  std::string x_label;  // "touched memory (MiB)"
  bool log_x = false;
  std::function<std::string(double)> x_tick;  // a tick's text; empty: the number
  std::vector<ChartSeries> series;
};
std::string line_chart(const LineChart& chart);

}  // namespace procforge::cli
