#pragma once
// Exploration: stochastic slate policies over a model's scores, each returning a top-K slate
// together with the exact probabilities that off-policy estimators divide by.
//
//   auto dist = mtrec::explore(mtrec::parse_exploration("softmax:temperature=0.5,epsilon=0.1"),
//                              scores.data(), int64_t(scores.size()), /*k=*/10);
//   mtrec::Rng rng(7);
//   mtrec::Slate s = dist.sample(rng);   // s.items, s.propensity[k] = P(s.items[k] at position k)
//
// Every policy is one SlateDistribution: with probability 1 - epsilon a ranking, with
// probability epsilon a uniformly random ordered K-subset of the n items. The ranking is either
// deterministic (greedy: the top K scores) or Plackett–Luce over weights w (drawn without
// replacement, item i next with probability w_i / (weights of the items left)):
//   greedy          the top K by score (epsilon_greedy: with the uniform mixture)
//   softmax         w_i ∝ exp(score_i / temperature) (in log space: any temperature > 0)
//   squarecb        inverse-gap weighting (Foster & Rakhlin 2020) on scores read as rewards:
//                   w_i = 1 / (n + gamma (max score - score_i)) for every item but the best, the
//                   best takes the rest, so with epsilon 0 the first position is exactly
//                   SquareCB's distribution
//   uniform         epsilon = 1
// Propensities are exact: the prefix probability (cascade) is a product of the sampler's
// conditionals; the marginal P(item i at position k) of a Plackett–Luce ranking has no closed
// form, and is computed from the exponential-race identity (item i is at position k when exactly
// k of the others arrive before it, arrival times E_j ~ Exp(w_j)):
//   P(i at k) = ∫_0^∞ w_i e^{-w_i t} P(exactly k of the others have E_j < t) dt,
// a one-dimensional integral of a Poisson-binomial probability, by composite Gauss–Legendre
// quadrature in log t on unit panels (relative error below 1e-8 against enumeration on small
// catalogues; every position's marginals sum to 1). Cost O(n K) per quadrature node, a few
// hundred nodes when the log-weights span a few units: about 6 ms for n = 1,000 and K = 10 on
// one core, paid once per distribution; the panels grow with the span of the log-weights.
#include <torch/arg.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/random.h"

namespace mtrec {

/// A drawn slate, best position first.
struct Slate {
  std::vector<int32_t> items;
  std::vector<double> propensity;  // P(items[k] at position k): its marginal (item-position IPS)
  std::vector<double> prefix;      // P(items[0..k] at positions 0..k): cascade IPS; the last is the slate's
};

class SlateDistribution {
 public:
  /// A deterministic ranking (its first k items), mixed with a uniform slate with probability epsilon.
  static SlateDistribution ranking(std::vector<int32_t> order, int32_t items, int64_t k, double epsilon,
                                   bool marginals = true);
  /// Plackett–Luce over `weights` (non-negative, finite, at least k of them positive; normalised
  /// here), mixed with a uniform slate with probability epsilon. Without `marginals` (a learner
  /// that only samples) the quadrature is skipped: marginal(), marginals(), expected() and the
  /// sampled slates' `propensity` are then unavailable (empty), prefix probabilities are not.
  static SlateDistribution plackett_luce(std::vector<double> weights, int64_t k, double epsilon, bool marginals = true);
  /// The same from log-weights (finite, or -inf for an item never drawn): no weight underflows,
  /// however far apart (a softmax at a very low temperature).
  static SlateDistribution plackett_luce_log(std::vector<double> log_weights, int64_t k, double epsilon,
                                             bool marginals = true);

  int32_t items() const { return n_; }
  int64_t k() const { return k_; }
  double epsilon() const { return epsilon_; }
  bool deterministic() const { return log_weights_.empty() && epsilon_ == 0; }

  /// Seeded: the same generator state gives the same slate.
  Slate sample(Rng& rng) const;
  bool has_marginals() const { return !marginals_.empty(); }
  /// P(item at position), exact.
  double marginal(int32_t item, int64_t position) const;
  /// [items x k], row-major: every column sums to 1, every row to P(item in the slate).
  const std::vector<double>& marginals() const { return marginals_; }
  /// P(the slate's first `length` positions are slate[0..length)), exact.
  double prefix_probability(const int32_t* slate, int64_t length) const;
  /// prefix_probability(slate, j) for j = 1..length, in one pass.
  std::vector<double> prefix_probabilities(const int32_t* slate, int64_t length) const;
  /// Σ_k position_weight[k] Σ_i P(i at k) value[i]: the expected reward of a position-additive
  /// reward (`position_weight` has k entries, `value` items entries).
  double expected(const std::vector<double>& position_weight, const std::vector<double>& value) const;

 private:
  int32_t n_ = 0;
  int64_t k_ = 0;
  double epsilon_ = 0;
  std::vector<int32_t> order_;       // deterministic ranking (first k), when log_weights_ is empty
  std::vector<double> log_weights_;  // Plackett–Luce log-weights, their log-sum-exp 0
  std::vector<double> weights_;      // exp(log_weights_): the fast path of prefix probabilities
  std::vector<double> marginals_;
};

/// Exact Plackett–Luce marginals: [n x k] row-major, P(item i at position p) for weights `w`
/// (non-negative, at least k positive; normalised here). See the header comment for the method.
std::vector<double> plackett_luce_marginals(const std::vector<double>& w, int64_t k);
/// The same from log-weights (-inf: weight 0).
std::vector<double> plackett_luce_marginals_log(const std::vector<double>& log_w, int64_t k);

#define MTREC_EXPLORATION_OPTIONS(X)                           \
  /* greedy | epsilon_greedy | softmax | squarecb | uniform */ \
  X(std::string, kind, "greedy")                               \
  /* share of slates drawn uniformly at random */              \
  X(double, epsilon, 0.0)                                      \
  /* softmax: w ∝ exp(score / temperature) */                \
  X(double, temperature, 1.0)                                  \
  /* squarecb: larger exploits more */                         \
  X(double, gamma, 100.0)

struct ExplorationOptions {
  MTREC_OPTIONS(MTREC_EXPLORATION_OPTIONS)
};

/// "kind" or "kind:key=value,key=value" (keys: epsilon, temperature, gamma), e.g.
/// "softmax:temperature=0.5,epsilon=0.1", "epsilon_greedy:epsilon=0.05". Throws mtrec::Error
/// naming the spec and the bad part.
ExplorationOptions parse_exploration(std::string_view spec);
/// The spec parse_exploration reads back.
std::string to_string(const ExplorationOptions& options);

/// The policy's slate distribution over `n` scores (higher is better); `marginals` as in
/// SlateDistribution::plackett_luce.
SlateDistribution explore(const ExplorationOptions& options, const float* scores, int32_t n, int64_t k,
                          bool marginals = true);

}  // namespace mtrec
