#include "mtrec/tasks/fusion.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mtrec/core/check.h"

namespace mtrec {

std::vector<float> normalize_scores(const std::vector<float>& s, FusionNorm norm) {
  std::vector<float> out(s.size(), 0.0f);
  if (s.size() < 2) return out;
  if (norm == FusionNorm::MinMax) {
    auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    double range = static_cast<double>(*hi) - *lo;
    if (range <= 0) return out;
    for (size_t k = 0; k < s.size(); ++k) out[k] = static_cast<float>((s[k] - *lo) / range);
    return out;
  }
  double mean = 0, var = 0;
  for (float v : s) mean += v;
  mean /= s.size();
  for (float v : s) var += (v - mean) * (v - mean);
  double sd = std::sqrt(var / s.size());  // population sd: the list is the whole population
  if (sd <= 1e-12) return out;
  for (size_t k = 0; k < s.size(); ++k) out[k] = static_cast<float>((s[k] - mean) / sd);
  return out;
}

std::vector<float> fuse_scores(const std::vector<float>& cf, const std::vector<float>& model, double alpha,
                               FusionNorm norm) {
  MTREC_CHECK(cf.size() == model.size(), "fuse_scores: ", cf.size(), " CF scores but ", model.size(), " model scores");
  MTREC_CHECK(alpha >= 0 && alpha <= 1, "fusion alpha must be in [0, 1], got ", alpha);
  auto a = normalize_scores(cf, norm), b = normalize_scores(model, norm);
  std::vector<float> out(a.size());
  for (size_t k = 0; k < a.size(); ++k) out[k] = static_cast<float>(alpha * a[k] + (1 - alpha) * b[k]);
  return out;
}

ScoreFn fuse_score_fns(ScoreFn cf, ScoreFn model, double alpha, FusionNorm norm) {
  MTREC_CHECK(alpha >= 0 && alpha <= 1, "fusion alpha must be in [0, 1], got ", alpha);
  return [cf = std::move(cf), model = std::move(model), alpha, norm](int32_t user, const std::vector<int32_t>& items,
                                                                     std::vector<float>& out) {
    std::vector<float> a, b;
    cf(user, items, a);
    model(user, items, b);
    out = fuse_scores(a, b, alpha, norm);
  };
}

AlphaChoice choose_alpha(const std::function<double(double)>& validation_metric, const std::vector<double>& grid) {
  MTREC_CHECK(!grid.empty(), "choose_alpha needs a non-empty grid");
  AlphaChoice c;
  c.metric = -std::numeric_limits<double>::infinity();
  for (double a : grid) {
    MTREC_CHECK(a >= 0 && a <= 1, "choose_alpha: grid value ", a, " outside [0, 1]");
    double m = validation_metric(a);
    c.curve.emplace_back(a, m);
    if (m > c.metric) {
      c.metric = m;
      c.alpha = a;
    }
  }
  return c;
}

}  // namespace mtrec
