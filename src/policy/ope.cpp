#include "mtrec/policy/ope.h"

#include <algorithm>
#include <cmath>
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
  std::map<std::pair<int32_t, int32_t>, int32_t> distinct;
  std::vector<std::vector<size_t>> of_key;
  for (size_t n = 0; n < size_t(N); ++n) {
    auto [it, fresh] = distinct.emplace(std::make_pair(log.user[n], log.scenario[n]), int32_t(of_key.size()));
    if (fresh) of_key.emplace_back();
    of_key[size_t(it->second)].push_back(n);
  }
  const auto NK = size_t(N * K);
  std::vector<double> pi(NK), pi_prefix(NK), phat(NK);
  std::vector<double> target_phat(NK);  // per impression and position: Σ_i π(i at k) p̂(i)
  detail::parallel_for(of_key.size(), o.threads(), 1, [&](size_t key) {
    const size_t first = of_key[key].front();
    PolicyRequest r;
    r.user = log.user[first];
    r.scenario = log.scenario[first];
    const SlateDistribution d = target(r);
    MTREC_CHECK(d.k() == K && size_t(d.items()) == I, "off-policy evaluation: the target returned k=", d.k(), " over ",
                d.items(), " items for a log of k=", K, " over ", I, " items");
    std::vector<double> p;
    reward_model(r, p);
    MTREC_CHECK(p.size() == I, "off-policy evaluation: the reward model returned ", p.size(), " values for ", I,
                " items");
    std::vector<double> per_position(size_t(K), 0.0);
    for (size_t i = 0; i < I; ++i)
      for (int64_t k = 0; k < K; ++k) per_position[size_t(k)] += d.marginal(int32_t(i), k) * p[i];
    for (size_t n : of_key[key]) {
      const int32_t* slate = log.item.data() + n * size_t(K);
      for (int64_t k = 0; k < K; ++k) {
        const size_t at = n * size_t(K) + size_t(k);
        pi[at] = d.marginal(slate[k], k);
        pi_prefix[at] = d.prefix_probability(slate, k + 1);
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
  const double lambda = o.dros_lambda();
  double ess = 0;
  std::vector<double> sw(size_t(K), 0.0), sw2(size_t(K), 0.0);
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
      if (w <= o.switch_threshold()) t.switch_corr[size_t(n)] += w * res;
      t.dros_corr[size_t(n)] += lambda * w / (w * w + lambda) * res;
      t.rips[size_t(n)] += pi_prefix[at] / log.prefix[at] * r;
      t.w[at] = w, t.wr[at] = w * r, t.wres[at] = w * res;
      sw[size_t(k)] += w, sw2[size_t(k)] += w * w;
      out.max_weight = std::max(out.max_weight, w);
      slate_reward += r;
    }
    const size_t last = size_t(n * K + K - 1);
    t.slate_ips[size_t(n)] = pi_prefix[last] / log.prefix[last] * slate_reward;
  }
  for (int64_t k = 0; k < K; ++k) ess += sw2[size_t(k)] > 0 ? sw[size_t(k)] * sw[size_t(k)] / sw2[size_t(k)] / K : 0;
  out.effective_sample_size = ess;

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
