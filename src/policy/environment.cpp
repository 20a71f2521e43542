#include "mtrec/policy/environment.h"

#include <cmath>
#include <map>
#include <numeric>

#include "../core/parallel.h"
#include "mtrec/core/check.h"
#include "mtrec/core/random.h"

namespace mtrec {
namespace {

// A standard normal fixed by a 64-bit key (Box–Muller on two hashed uniforms).
double hashed_normal(uint64_t key) {
  const uint64_t a = splitmix64(key), b = splitmix64(a);
  const double u1 = (double(a >> 11) + 0.5) * 0x1.0p-53, u2 = double(b >> 11) * 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

}  // namespace

std::vector<std::vector<size_t>> group_by_request(const std::vector<PolicyRequest>& requests) {
  std::map<std::pair<int32_t, int32_t>, size_t> group;
  std::vector<std::vector<size_t>> out;
  for (size_t n = 0; n < requests.size(); ++n) {
    auto [it, fresh] = group.emplace(std::make_pair(requests[n].user, requests[n].scenario), out.size());
    if (fresh) out.emplace_back();
    out[it->second].push_back(n);
  }
  return out;
}

Policy scored_policy(RequestScorer scorer, ExplorationOptions options, int64_t k) {
  return [scorer = std::move(scorer), options = std::move(options), k](const PolicyRequest& r) {
    std::vector<float> scores;
    scorer(r, scores);
    return explore(options, scores.data(), int32_t(scores.size()), k);
  };
}

WorldEnvironment::WorldEnvironment(const SyntheticWorld& world, EnvironmentOptions options)
    : options_(std::move(options)), truth_(world.truth) {
  users_ = world.data.users.size();
  items_ = world.data.items.size();
  const auto S = int32_t(truth_.scenario_bias.size());
  MTREC_CHECK(users_ > 0 && items_ > 0 && S > 0, "environment: the world has ", users_, " users, ", items_,
              " items and ", S, " scenarios");
  MTREC_CHECK(options_.k() >= 1 && options_.k() <= items_, "environment: slate size k=", options_.k(),
              " must lie in [1, items=", items_, "]");
  auto weights = options_.scenario_weights();
  if (weights.empty()) weights.assign(size_t(S), 1.0);
  MTREC_CHECK(int32_t(weights.size()) == S, "environment: ", weights.size(), " scenario weights for ", S, " scenarios");
  double total = 0;
  for (double w : weights) {
    MTREC_CHECK(std::isfinite(w) && w >= 0, "environment: scenario weights must be finite and >= 0, got ", w);
    total += w;
  }
  MTREC_CHECK(total > 0, "environment: the scenario weights are all zero");
  for (double& w : weights) w /= total;
  scenario_weight_ = std::move(weights);
  for (int64_t j = 0; j < options_.k(); ++j) examination_.push_back(1.0 / std::log2(double(j) + 2));
  user_ids_ = world.data.users;
  item_ids_ = world.data.items;
  scenario_ids_ = world.data.scenarios;
}

PolicyRequest WorldEnvironment::draw_request(Rng& rng) const {
  std::uniform_int_distribution<int32_t> user(0, users_ - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  PolicyRequest r;
  r.user = user(rng);
  double u = unit(rng), acc = 0;
  r.scenario = scenarios() - 1;
  for (int32_t s = 0; s < scenarios(); ++s) {
    acc += scenario_weight_[size_t(s)];
    if (u < acc) {
      r.scenario = s;
      break;
    }
  }
  return r;
}

std::vector<double> WorldEnvironment::click_probabilities(const PolicyRequest& r) const {
  MTREC_CHECK(r.user >= 0 && r.user < users_ && r.scenario >= 0 && r.scenario < scenarios(),
              "environment: request (user ", r.user, ", scenario ", r.scenario, ") outside ", users_, " users and ",
              scenarios(), " scenarios");
  std::vector<double> p(static_cast<size_t>(items_));
  for (int32_t i = 0; i < items_; ++i) p[size_t(i)] = truth_.click_probability(r.user, i, r.scenario);
  return p;
}

std::vector<uint8_t> WorldEnvironment::draw_clicks(const PolicyRequest& r, const std::vector<int32_t>& slate,
                                                   Rng& rng) const {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<uint8_t> clicks(slate.size());
  for (size_t j = 0; j < slate.size(); ++j) {
    const double theta = j < examination_.size() ? examination_[j] : 1.0 / std::log2(double(j) + 2);
    clicks[j] = unit(rng) < theta * truth_.click_probability(r.user, slate[j], r.scenario);
  }
  return clicks;
}

double WorldEnvironment::expected_clicks(const PolicyRequest& r, const SlateDistribution& d) const {
  MTREC_CHECK(d.items() == items_ && d.k() == k(), "environment: a distribution over ", d.items(),
              " items with k=", d.k(), " for a world of ", items_, " items and k=", k());
  return d.expected(examination_, click_probabilities(r));
}

double WorldEnvironment::value(const Policy& policy, std::vector<double>* per_scenario) const {
  const int32_t S = scenarios();
  const size_t n = size_t(users_) * size_t(S);
  std::vector<double> clicks(n);
  detail::parallel_for(n, options_.threads(), 1, [&](size_t at) {
    PolicyRequest r;
    r.user = int32_t(at / size_t(S));
    r.scenario = int32_t(at % size_t(S));
    if (scenario_weight_[size_t(r.scenario)] == 0) return;
    clicks[at] = expected_clicks(r, policy(r));
  });
  std::vector<double> per(size_t(S), 0.0);
  for (size_t at = 0; at < n; ++at) per[at % size_t(S)] += clicks[at] / users_;  // index order: thread-independent
  double v = 0;
  for (int32_t s = 0; s < S; ++s) v += scenario_weight_[size_t(s)] * per[size_t(s)];
  if (per_scenario) *per_scenario = per;
  return v;
}

Policy WorldEnvironment::oracle() const {
  return scored_policy(truth_scorer(*this), ExplorationOptions().kind("greedy"), k());
}

RequestScorer truth_scorer(const WorldEnvironment& env) { return noisy_truth_scorer(env, 0.0, 0); }

RequestScorer noisy_truth_scorer(const WorldEnvironment& env, double sigma, uint64_t seed) {
  MTREC_CHECK(sigma >= 0 && std::isfinite(sigma), "scorer noise sigma must be >= 0, got ", sigma);
  return [&env, sigma, seed](const PolicyRequest& r, std::vector<float>& scores) {
    const std::vector<double> p = env.click_probabilities(r);
    scores.resize(p.size());
    const uint64_t base = splitmix64(seed ^ splitmix64((uint64_t(uint32_t(r.user)) << 20) ^ uint64_t(r.scenario)));
    for (size_t i = 0; i < p.size(); ++i) {
      const double pc = std::clamp(p[i], 1e-12, 1 - 1e-12);
      const double noise = sigma > 0 ? sigma * hashed_normal(base + i) : 0.0;
      scores[i] = float(std::log(pc / (1 - pc)) + noise);
    }
  };
}

RewardModel sigmoid_reward_model(RequestScorer logits) {
  return [logits = std::move(logits)](const PolicyRequest& r, std::vector<double>& p) {
    std::vector<float> s;
    logits(r, s);
    p.resize(s.size());
    for (size_t i = 0; i < s.size(); ++i) p[i] = 1 / (1 + std::exp(-double(s[i])));
  };
}

ImpressionLog simulate(const WorldEnvironment& env, const Policy& logger, int64_t impressions, uint64_t seed,
                       int threads) {
  MTREC_CHECK(impressions >= 1, "simulate needs impressions >= 1, got ", impressions);
  // Requests first (one stream); then, per distinct request, its distribution once and each of
  // its impressions from the impression's own stream: the log does not depend on the threads,
  // and one distribution per thread is alive at a time.
  Rng rng(derive_seed(seed, "policy-requests"));
  std::vector<PolicyRequest> requests(static_cast<size_t>(impressions));
  for (auto& r : requests) r = env.draw_request(rng);
  const std::vector<std::vector<size_t>> of_key = group_by_request(requests);
  const int64_t K = env.k();
  std::vector<Slate> slates(requests.size());
  std::vector<std::vector<uint8_t>> clicks(requests.size());
  const uint64_t base = derive_seed(seed, "policy-impressions");
  detail::parallel_for(of_key.size(), threads, 1, [&](size_t key) {
    const SlateDistribution d = logger(requests[of_key[key].front()]);
    MTREC_CHECK(d.k() == K && d.items() == env.items(), "simulate: the logger returned k=", d.k(), " over ", d.items(),
                " items for a world of k=", K, " and ", env.items(), " items");
    for (size_t n : of_key[key]) {
      Rng r(splitmix64(base + n));
      slates[n] = d.sample(r);
      clicks[n] = env.draw_clicks(requests[n], slates[n].items, r);
    }
  });
  ImpressionLog log;
  log.k = K;
  log.users = env.user_ids();
  log.items = env.item_ids();
  log.scenarios = env.scenario_ids();
  for (size_t n = 0; n < requests.size(); ++n)
    log.add(requests[n].user, requests[n].scenario, slates[n].items, slates[n].propensity, slates[n].prefix, clicks[n]);
  return log;
}

}  // namespace mtrec
