#include "mtrec/policy/ope.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "../core/parallel.h"
#include "mtrec/core/check.h"

namespace mtrec {
namespace {

enum Est { kDm, kIps, kSnips, kDr, kSndr, kSwitchDr, kDros, kRips, kSlateIps, kCount };

// What each impression contributes; an estimate is a function of their sums, so a bootstrap
// replicate only re-weights impressions.
struct Terms {
  int64_t K = 0;
  // per impression, mean-type terms
  std::vector<double> dm, ips, dr_corr, switch_corr, dros_corr, rips, slate_ips;
  // per impression and position: w, w r, w (r - q̂)
  std::vector<double> w, wr, wres;
};

std::vector<double> estimate(const Terms& t, const std::vector<double>& count) {
  const size_t N = t.dm.size();
  const auto K = size_t(t.K);
  double n = 0;
  std::vector<double> mean(7, 0.0);
  std::vector<double> sw(K, 0.0), swr(K, 0.0), swres(K, 0.0);
  for (size_t i = 0; i < N; ++i) {
    const double c = count.empty() ? 1.0 : count[i];
    if (c == 0) continue;
    n += c;
    mean[0] += c * t.dm[i], mean[1] += c * t.ips[i], mean[2] += c * t.dr_corr[i], mean[3] += c * t.switch_corr[i];
    mean[4] += c * t.dros_corr[i], mean[5] += c * t.rips[i], mean[6] += c * t.slate_ips[i];
    for (size_t k = 0; k < K; ++k) {
      sw[k] += c * t.w[i * K + k], swr[k] += c * t.wr[i * K + k], swres[k] += c * t.wres[i * K + k];
    }
  }
  for (double& m : mean) m /= n;
  double snips = 0, sn_corr = 0;
  for (size_t k = 0; k < K; ++k) {
    if (sw[k] > 0) snips += swr[k] / sw[k], sn_corr += swres[k] / sw[k];
  }
  std::vector<double> e(kCount);
  e[kDm] = mean[0];
  e[kIps] = mean[1];
  e[kSnips] = snips;
  e[kDr] = mean[0] + mean[2];
  e[kSndr] = mean[0] + sn_corr;
  e[kSwitchDr] = mean[0] + mean[3];
  e[kDros] = mean[0] + mean[4];
  e[kRips] = mean[5];
  e[kSlateIps] = mean[6];
  return e;
}

// Mean and variance of the mean of dm_n + Σ_k shrink(w) res over impressions, and the variance
// of its difference from dr's.
struct Moments {
  double mean = 0, var = 0, var_diff = 0;
};
template <class Shrink>
Moments shrunk_dr(const std::vector<double>& dm, const std::vector<double>& w, const std::vector<double>& res,
                  const std::vector<double>& dr, int64_t K, Shrink shrink) {
  const size_t N = dm.size();
  std::vector<double> v(N), d(N);
  double mv = 0, md = 0;
  for (size_t n = 0; n < N; ++n) {
    double x = dm[n];
    for (int64_t k = 0; k < K; ++k) x += shrink(w[n * size_t(K) + size_t(k)]) * res[n * size_t(K) + size_t(k)];
    v[n] = x, d[n] = x - dr[n];
    mv += x, md += d[n];
  }
  mv /= double(N), md /= double(N);
  Moments m;
  m.mean = mv;
  for (size_t n = 0; n < N; ++n) m.var += (v[n] - mv) * (v[n] - mv), m.var_diff += (d[n] - md) * (d[n] - md);
  const double denom = double(N) * double(std::max<size_t>(N - 1, 1));
  m.var /= denom, m.var_diff /= denom;
  return m;
}

// The grid value with the smallest estimated MSE against the dr pilot.
template <class Shrink>
double tune(const std::vector<double>& grid, const std::vector<double>& dm, const std::vector<double>& w,
            const std::vector<double>& res, const std::vector<double>& dr, int64_t K, double dr_mean, Shrink shrink) {
  double best = grid.front(), best_mse = std::numeric_limits<double>::infinity();
  for (double h : grid) {
    const Moments m = shrunk_dr(dm, w, res, dr, K, [&](double x) { return shrink(h, x); });
    const double bias2 = std::max(0.0, (m.mean - dr_mean) * (m.mean - dr_mean) - m.var_diff);
    if (bias2 + m.var < best_mse) best_mse = bias2 + m.var, best = h;
  }
  return best;
}

}  // namespace

const std::vector<std::string>& ope_estimators() {
  static const std::vector<std::string> names = {"dm",        "ips",  "snips", "dr",       "sndr",
                                                 "switch_dr", "dros", "rips",  "slate_ips"};
  return names;
}

const OpeEstimate& OpeResult::operator[](const std::string& estimator) const {
  for (const auto& e : estimates)
    if (e.estimator == estimator) return e;
  MTREC_FAIL("no estimate named '", estimator, "'");
}

OpeResult evaluate_off_policy(const ImpressionLog& log, const Policy& target, const RewardModel& reward_model,
                              const OpeOptions& o) {
  const int64_t N = log.size(), K = log.k;
  MTREC_CHECK(N > 0 && K > 0, "off-policy evaluation of an empty log (", N, " impressions, k=", K, ")");
  MTREC_CHECK(o.confidence() > 0 && o.confidence() < 1, "confidence must lie in (0, 1), got ", o.confidence());
  MTREC_CHECK(o.bootstrap() >= 0, "bootstrap replicates must be >= 0, got ", o.bootstrap());
  const auto I = size_t(log.items.size());

  // Per distinct request: the target's distribution and the reward model, once.
  std::vector<PolicyRequest> requests(static_cast<size_t>(N));
  for (size_t n = 0; n < size_t(N); ++n) requests[n] = {log.user[n], log.scenario[n]};
  const std::vector<std::vector<size_t>> of_key = group_by_request(requests);
  const auto NK = size_t(N * K);
  std::vector<double> pi(NK), pi_prefix(NK), phat(NK);
  std::vector<double> target_phat(NK);  // per impression and position: Σ_i π(i at k) p̂(i)
  detail::parallel_for(of_key.size(), o.threads(), 1, [&](size_t key) {
    const PolicyRequest& r = requests[of_key[key].front()];
    const SlateDistribution d = target(r);
    MTREC_CHECK(d.k() == K && size_t(d.items()) == I, "off-policy evaluation: the target returned k=", d.k(), " over ",
                d.items(), " items for a log of k=", K, " over ", I, " items");
    std::vector<double> p;
    reward_model(r, p);
    MTREC_CHECK(p.size() == I, "off-policy evaluation: the reward model returned ", p.size(), " values for ", I,
                " items");
    std::vector<double> per_position(size_t(K), 0.0);
    const std::vector<double>& M = d.marginals();
    for (size_t i = 0; i < I; ++i)
      for (size_t k = 0; k < size_t(K); ++k) per_position[k] += M[i * size_t(K) + k] * p[i];
    for (size_t n : of_key[key]) {
      const int32_t* slate = log.item.data() + n * size_t(K);
      const std::vector<double> prefix = d.prefix_probabilities(slate, K);
      for (int64_t k = 0; k < K; ++k) {
        const size_t at = n * size_t(K) + size_t(k);
        pi[at] = d.marginal(slate[k], k);
        pi_prefix[at] = prefix[size_t(k)];
        phat[at] = p[size_t(slate[k])];
        target_phat[at] = per_position[size_t(k)];
      }
    }
  });

  OpeResult out;
  out.impressions = N;
  out.logged_value = log.mean_reward();
  // θ̂_k: clicks at k over the reward model's expected clicks there.
  out.position_factor.assign(size_t(K), 0.0);
  for (int64_t k = 0; k < K; ++k) {
    double clicks = 0, expected = 0;
    for (int64_t n = 0; n < N; ++n) clicks += log.click[size_t(n * K + k)], expected += phat[size_t(n * K + k)];
    out.position_factor[size_t(k)] = expected > 0 ? clicks / expected : 0;
  }

  Terms t;
  t.K = K;
  for (auto* v : {&t.dm, &t.ips, &t.dr_corr, &t.switch_corr, &t.dros_corr, &t.rips, &t.slate_ips})
    v->assign(size_t(N), 0.0);
  t.w.resize(NK), t.wr.resize(NK), t.wres.resize(NK);
  double ess = 0;
  std::vector<double> sw(static_cast<size_t>(K), 0.0), sw2(static_cast<size_t>(K), 0.0), res_all(NK);
  std::vector<double> dr_n(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    double slate_reward = 0;
    for (int64_t k = 0; k < K; ++k) {
      const size_t at = size_t(n * K + k);
      const double r = log.click[at], theta = out.position_factor[size_t(k)];
      const double w = pi[at] / log.propensity[at];
      const double res = r - theta * phat[at];
      t.dm[size_t(n)] += theta * target_phat[at];
      t.ips[size_t(n)] += w * r;
      t.dr_corr[size_t(n)] += w * res;
      t.rips[size_t(n)] += pi_prefix[at] / log.prefix[at] * r;
      t.w[at] = w, t.wr[at] = w * r, t.wres[at] = w * res, res_all[at] = res;
      sw[size_t(k)] += w, sw2[size_t(k)] += w * w;
      out.max_weight = std::max(out.max_weight, w);
      slate_reward += r;
    }
    dr_n[size_t(n)] = t.dm[size_t(n)] + t.dr_corr[size_t(n)];
    const size_t last = size_t(n * K + K - 1);
    t.slate_ips[size_t(n)] = pi_prefix[last] / log.prefix[last] * slate_reward;
  }
  for (int64_t k = 0; k < K; ++k) ess += sw2[size_t(k)] > 0 ? sw[size_t(k)] * sw[size_t(k)] / sw2[size_t(k)] / K : 0;
  out.effective_sample_size = ess;

  // τ and λ: given, or by estimated MSE against dr.
  double dr_mean = 0;
  for (double x : dr_n) dr_mean += x / double(N);
  const auto cut = [](double tau, double w) { return w <= tau ? w : 0.0; };
  const auto shrink = [](double lambda, double w) { return lambda * w / (w * w + lambda); };
  double tau = o.switch_threshold(), lambda = o.dros_lambda();
  if (tau <= 0) {
    std::vector<double> ws;
    for (double w : t.w)
      if (w > 0) ws.push_back(w);
    std::sort(ws.begin(), ws.end());
    std::vector<double> grid = {std::numeric_limits<double>::infinity()};
    for (double q : {0.5, 0.75, 0.9, 0.95, 0.99, 0.999})
      if (!ws.empty()) grid.push_back(ws[size_t(q * double(ws.size() - 1))]);
    tau = tune(grid, t.dm, t.w, res_all, dr_n, K, dr_mean, cut);
  }
  if (lambda <= 0) {
    std::vector<double> grid;
    for (double e = -2; e <= 6.01; e += 0.5) grid.push_back(std::pow(10.0, e));
    lambda = tune(grid, t.dm, t.w, res_all, dr_n, K, dr_mean, shrink);
  }
  out.switch_threshold = tau, out.dros_lambda = lambda;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const size_t at = size_t(n * K + k);
      t.switch_corr[size_t(n)] += cut(tau, t.w[at]) * res_all[at];
      t.dros_corr[size_t(n)] += shrink(lambda, t.w[at]) * res_all[at];
    }

  const std::vector<double> point = estimate(t, {});
  // Bootstrap: each replicate draws N impressions with replacement from its own stream.
  const auto B = size_t(o.bootstrap());
  std::vector<std::vector<double>> reps(B);
  detail::parallel_for(B, o.threads(), 1, [&](size_t b) {
    Rng rng(derive_seed(o.seed() + b, "ope-bootstrap"));
    std::uniform_int_distribution<int64_t> pick(0, N - 1);
    std::vector<double> count(size_t(N), 0.0);
    for (int64_t j = 0; j < N; ++j) count[size_t(pick(rng))] += 1;
    reps[b] = estimate(t, count);
  });
  const double alpha = (1 - o.confidence()) / 2;
  for (int e = 0; e < kCount; ++e) {
    OpeEstimate est;
    est.estimator = ope_estimators()[size_t(e)];
    est.value = est.low = est.high = point[size_t(e)];
    if (B > 0) {
      std::vector<double> v(B);
      for (size_t b = 0; b < B; ++b) v[b] = reps[b][size_t(e)];
      std::sort(v.begin(), v.end());
      const auto q = [&](double a) {
        const double pos = a * double(B - 1);
        const auto lo = size_t(std::floor(pos));
        const size_t hi = std::min(B - 1, lo + 1);
        return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
      };
      est.low = q(alpha), est.high = q(1 - alpha);
    }
    out.estimates.push_back(est);
  }
  return out;
}

}  // namespace mtrec
