#pragma once
// The synthetic world as a recommendation environment: requests, slates, clicks drawn from the
// world's true click probabilities, and the exact value of any slate policy.
//
//   mtrec::SyntheticWorld world = mtrec::generate_world(mtrec::SyntheticOptions().users(500).items(1000));
//   mtrec::WorldEnvironment env(world, mtrec::EnvironmentOptions().k(10));
//   mtrec::Policy logger = mtrec::scored_policy(mtrec::noisy_truth_scorer(env, 1.0, 7),
//                                               mtrec::parse_exploration("softmax:epsilon=0.1"), env.k());
//   mtrec::ImpressionLog log = mtrec::simulate(env, logger, 100000, /*seed=*/1);
//   double v = env.value(logger);   // expected clicks per request, exact
//
// A request is a (user, scenario) pair: the user uniformly from the world's users, the scenario
// from `scenario_weights` (uniform by default); the world's context text is not part of it.
// Position model (position-based, PBM): the item at position k (0-based) is examined with
// probability θ_k = 1 / log2(k + 2) (the DCG discount) and, when examined, clicked with the
// world's P(click | user, item, scenario) (SyntheticTruth::click_probability); positions click
// independently. The reward of a slate is its number of clicks, so
//   V(π) = E_request Σ_k θ_k Σ_i P_π(i at k | request) P(click | user, i, scenario),
// computed exactly by summing over every (user, scenario) with the policy's exact marginals.
#include <torch/arg.h>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/random.h"
#include "mtrec/data/impressions.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/policy/explore.h"

namespace mtrec {

struct PolicyRequest {
  int32_t user = 0, scenario = 0;
  bool operator==(const PolicyRequest& o) const { return user == o.user && scenario == o.scenario; }
};

/// Indices of `requests` grouped by request (user, scenario), groups in order of first appearance:
/// the unit of work where a policy's distribution is computed once per request.
std::vector<std::vector<size_t>> group_by_request(const std::vector<PolicyRequest>& requests);

/// A slate policy: the slate distribution it draws from for a request.
using Policy = std::function<SlateDistribution(const PolicyRequest&)>;
/// Scores of every catalogue item for a request (higher is better), resized by the callee.
using RequestScorer = std::function<void(const PolicyRequest&, std::vector<float>& scores)>;
/// Predicted click probability of every catalogue item for a request, position aside (what DM
/// and DR use), resized by the callee.
using RewardModel = std::function<void(const PolicyRequest&, std::vector<double>& p)>;

/// The policy that draws from explore(options, scorer(request), k).
Policy scored_policy(RequestScorer scorer, ExplorationOptions options, int64_t k);

#define MTREC_ENVIRONMENT_OPTIONS(X)                    \
  /* slate size */                                      \
  X(int64_t, k, 10)                                     \
  /* per scenario; empty: uniform over the scenarios */ \
  X(std::vector<double>, scenario_weights, {})          \
  /* threads for exact values (0: every core) */        \
  X(int, threads, 0)

struct EnvironmentOptions {
  MTREC_OPTIONS(MTREC_ENVIRONMENT_OPTIONS)
};

class WorldEnvironment {
 public:
  WorldEnvironment(const SyntheticWorld& world, EnvironmentOptions options = {});

  int64_t k() const { return options_.k(); }
  int32_t users() const { return users_; }
  int32_t items() const { return items_; }
  int32_t scenarios() const { return int32_t(scenario_weight_.size()); }
  const SyntheticTruth& truth() const { return truth_; }
  /// θ_k, the examination probability of each position.
  const std::vector<double>& examination() const { return examination_; }
  /// The probability of drawing a request of this scenario (per user: 1 / users).
  double scenario_probability(int32_t scenario) const { return scenario_weight_[size_t(scenario)]; }

  PolicyRequest draw_request(Rng& rng) const;
  /// True P(click | user, item, scenario) for every item.
  std::vector<double> click_probabilities(const PolicyRequest& request) const;
  /// Clicks of a shown slate under the position model.
  std::vector<uint8_t> draw_clicks(const PolicyRequest& request, const std::vector<int32_t>& slate, Rng& rng) const;
  /// Expected clicks of the request under the distribution, exact.
  double expected_clicks(const PolicyRequest& request, const SlateDistribution& slates) const;
  /// V(π): expected clicks per request over the request distribution, exact; per scenario with
  /// `per_scenario` (the expected clicks of that scenario's requests; 0 for a scenario of weight 0).
  double value(const Policy& policy, std::vector<double>* per_scenario = nullptr) const;
  /// The oracle: the top k items by true click probability (the best slate under the PBM,
  /// since θ decreases with the position).
  Policy oracle() const;
  /// The world's ids ("u0", "i0", scenario names), in the environment's dense order.
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& item_ids() const { return item_ids_; }
  const IdMap& scenario_ids() const { return scenario_ids_; }

 private:
  EnvironmentOptions options_;
  SyntheticTruth truth_;
  int32_t users_ = 0, items_ = 0;
  std::vector<double> scenario_weight_;
  std::vector<double> examination_;
  IdMap user_ids_, item_ids_, scenario_ids_;
};

/// Logs `impressions` requests served by `logger` in the world: requests, slates and their
/// propensities, clicks. Seeded, and identical for a seed whatever the thread count (0: every core).
ImpressionLog simulate(const WorldEnvironment& env, const Policy& logger, int64_t impressions, uint64_t seed,
                       int threads = 0);

/// The world's true click logits (log-odds), the scores of the oracle ranking. These scorers (and
/// oracle()) refer to `env`, which must outlive them.
RequestScorer truth_scorer(const WorldEnvironment& env);
/// True logits plus N(0, sigma²) noise fixed per (user, item, scenario) by `seed`: a stand-in
/// for a model of known error (sigma 0: the truth).
RequestScorer noisy_truth_scorer(const WorldEnvironment& env, double sigma, uint64_t seed);
/// sigmoid of a scorer's logits, as a reward model.
RewardModel sigmoid_reward_model(RequestScorer logits);

}  // namespace mtrec
