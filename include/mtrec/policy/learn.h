#pragma once
// Policy learning in the synthetic world: an online contextual-bandit loop, and offline top-K
// off-policy REINFORCE from an impression log.
//
//   mtrec::OnlineResult r = mtrec::learn_online(env, mtrec::OnlineOptions().exploration("squarecb:gamma=1000"));
//   r.cumulative_regret.back();                       // expected clicks lost to the oracle
//   auto p = mtrec::learn_offline(log, env.users(), env.items(), env.scenarios(), mtrec::OfflineOptions());
//   env.value(p->policy(env.k()));                    // exact value of the learned policy
//
// Online (learn_online): each round a request arrives; the policy shows a slate drawn by its
// exploration (policy/explore.h) over the CTR head's predicted click probabilities; the world
// clicks (position-based model); every `batch` rounds the head takes `updates` Adam steps: one on
// the batch's (user, item, scenario, position, click) rows, the others on as many rows replayed
// from every round so far. The head is the CTR model's factor part
// (tasks/ctr.h CtrFactors: <u, i> + b_i) plus a scenario bias; a click at position k has
// probability θ̂_k σ(logit), with θ̂_0 = 1 and the other θ̂_k learned, so positions do not bias
// the head. SquareCB's γ grows as γ √t with the rounds t so far (Foster & Rakhlin's
// γ ∝ √(A T), the horizon T replaced by t so the learner needs no horizon). Regret of a round: the oracle's expected
// clicks minus the shown slate's (given the slate, over clicks), so the curve is exact up to the slates drawn.
//
// Offline (learn_offline, Chen et al., WSDM 2019): a softmax policy π_θ(i | x) over the
// catalogue, logits <s(x), v_i> + b_i with s(x) = user + scenario embeddings. Each logged click
// at a shown item a contributes −(π/β capped) λ_K log π_θ(a | x) with the top-K factor
// λ_K = K (1 − π_θ(a | x))^{K−1}, both weights held constant in the gradient. β, the logging
// policy's per-draw probability, is a second softmax head on the detached state (its own item
// table), fitted by maximum likelihood on the logged items (behavior = "learned"), or the
// logged propensity of the item at its position ("logged"). The learned policy serves the top k of π_θ.
// `supervised` trains the same architecture as a CTR ranker instead (BCE of θ̂_k σ(logit) on
// every shown item), the baseline of protocol P.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/impressions.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/policy/environment.h"

namespace mtrec {

#define MTREC_ONLINE_OPTIONS(X)                            \
  /* exploration over the head's click probabilities */    \
  X(std::string, exploration, "squarecb:gamma=1000")       \
  /* squarecb: gamma_t = gamma * sqrt(t) at round t */     \
  X(bool, gamma_growth, true)                              \
  X(int64_t, rounds, 1000000)                              \
  /* rounds served with one model between updates */       \
  X(int64_t, batch, 200)                                   \
  /* Adam steps per batch: its rows, then replayed rows */ \
  X(int, updates, 4)                                       \
  X(double, lr, 0.02)                                      \
  X(int64_t, dim, 16)                                      \
  /* points of the regret curve */                         \
  X(int64_t, curve_points, 50)                             \
  X(uint64_t, seed, 1)

struct OnlineOptions {
  MTREC_OPTIONS(MTREC_ONLINE_OPTIONS)
};

struct OnlineResult {
  std::vector<int64_t> rounds;            // curve x
  std::vector<double> cumulative_regret;  // expected clicks lost to the oracle by then
  std::vector<double> cumulative_clicks;  // clicks drawn by then
  double final_greedy_value = 0;          // exact V of the learned head's greedy top k
  double seconds = 0;
};

OnlineResult learn_online(const WorldEnvironment& env, const OnlineOptions& options);

#define MTREC_OFFLINE_OPTIONS(X)                                         \
  /* reinforce | supervised (the CTR ranker baseline) */                 \
  X(std::string, objective, "reinforce")                                 \
  /* learned (a head on the detached state) | logged (its propensity) */ \
  X(std::string, behavior, "learned")                                    \
  /* cap of π / β */                                                   \
  X(double, weight_cap, 10.0)                                            \
  /* the top-K correction λ_K; off: plain off-policy REINFORCE */       \
  X(bool, top_k_correction, true)                                        \
  X(int, epochs, 10)                                                     \
  X(int64_t, batch, 512)                                                 \
  X(double, lr, 0.01)                                                    \
  X(int64_t, dim, 16)                                                    \
  X(uint64_t, seed, 1)

struct OfflineOptions {
  MTREC_OPTIONS(MTREC_OFFLINE_OPTIONS)
};

/// A learned policy head: logits <user[u] + scenario[s], item[i]> + bias[i] of every item.
class FactorPolicy {
 public:
  FactorPolicy(at::Tensor user, at::Tensor scenario, at::Tensor item, at::Tensor bias);
  void score(const PolicyRequest& request, std::vector<float>& logits) const;
  /// The greedy top-k policy of its scores (or any exploration over them); it holds its own
  /// references to the tables, so it may outlive this object.
  Policy policy(int64_t k, const ExplorationOptions& exploration = {}) const;
  /// A checkpoint of task "policy" (model/io.h) that the Recommender serves.
  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items, const IdMap& scenarios) const;

 private:
  at::Tensor user_, scenario_, item_, bias_;
};

/// Trains on `log`, whose ids are dense in [0, users) x [0, items) x [0, scenarios) (e.g. after
/// remap_impressions onto a world), and returns the learned head.
std::shared_ptr<FactorPolicy> learn_offline(const ImpressionLog& log, int32_t users, int32_t items, int32_t scenarios,
                                            const OfflineOptions& options);

}  // namespace mtrec
