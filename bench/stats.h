#pragma once
// Statistics the benchmarks print (EVALUATION.md, "Statistics"): medians, and the mean of
// paired per-seed differences with its 95% t-interval.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace mtrec::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double mean(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x / double(v.size());
  return v.empty() ? std::nan("") : m;
}

/// "mean [lo, hi]": the mean of `d` (paired differences) and its 95% t-interval.
inline std::string mean_ci(const std::vector<double>& d, double scale = 1) {
  static const double t975[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228};
  const size_t n = d.size();
  const double m = mean(d);
  double sq = 0;
  for (double x : d) sq += (x - m) * (x - m);
  if (n < 2) return fmt::format("{:+.4g} (one seed)", scale * m);
  const double half = (n - 1 <= 10 ? t975[n - 1] : 1.96) * std::sqrt(sq / double(n - 1) / double(n));
  return fmt::format("{:+.4g} [{:+.4g}, {:+.4g}]", scale * m, scale * (m - half), scale * (m + half));
}

}  // namespace mtrec::bench
