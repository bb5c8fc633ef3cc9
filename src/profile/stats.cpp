// Summary statistics over runs: median, min, max, the interquartile range as
// the spread, and Tukey's outliers (beyond 1.5 IQR from the quartiles), as
// hyperfine reports them. Quartiles interpolate linearly between ranks.
#include <algorithm>
#include <cmath>

#include "procforge/profile.hpp"

namespace procforge::profile {

namespace {

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.max = v.back();
  s.median = quantile(v, 0.5);
  const double q1 = quantile(v, 0.25), q3 = quantile(v, 0.75);
  s.spread = q3 - q1;
  for (double x : v)
    if (x < q1 - 1.5 * s.spread || x > q3 + 1.5 * s.spread) ++s.outliers;
  return s;
}

}  // namespace procforge::profile
