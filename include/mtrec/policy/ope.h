#pragma once
// Off-policy evaluation: the value of a target slate policy (expected clicks per request)
// estimated from an impression log written by another (logging) policy, with bootstrap
// confidence intervals.
//
//   mtrec::OpeResult r = mtrec::evaluate_off_policy(log, target, reward_model, mtrec::OpeOptions());
//   for (const auto& e : r.estimates) std::cout << e.estimator << ' ' << e.value << " [" << e.low << ", " << e.high <<
//   "]\n";
//
// The log's ids must be the target's and the reward model's (remap_impressions). Notation, for
// impression n at position k: r the click, μ the logged propensity (marginal of the shown item
// at k), π the target's marginal of that item at k, w = π / μ; q̂ = θ̂_k p̂(item), where p̂ is the
// reward model's click probability and θ̂_k = Σ_n r_nk / Σ_n p̂(a_nk) the position factor fitted
// on the log (so the reward model need not know positions); DM_n = Σ_k θ̂_k Σ_i π(i at k) p̂(i).
// The item-position estimators are unbiased when a position's click depends only on the item
// shown there (the position-based model of policy/environment.h); rips (cascade) when it depends
// on the items above too; slate_ips always (and has the largest variance).
//   dm         mean DM_n
//   ips        mean Σ_k w r                                  (item-position IPS)
//   snips      Σ_k Σ_n w r / Σ_n w                           (self-normalised per position)
//   dr         mean DM_n + Σ_k w (r − q̂)
//   sndr       mean DM_n + Σ_k Σ_n w (r − q̂) / Σ_n w
//   switch_dr  dr, dropping the correction where w > τ (Wang et al. 2017)
//   dros       dr with w shrunk to λ w / (w² + λ) (Su et al. 2020)
//   rips       mean Σ_k (π(a_1..a_k) / μ(a_1..a_k)) r        (cascade / reward-interaction IPS)
//   slate_ips  mean (π(slate) / μ(slate)) Σ_k r               (whole-slate IPS)
// τ and λ are given, or (0, the default) chosen from a grid by the smallest estimated mean squared
// error, with dr as the unbiased pilot: MSE(h) = max(0, (V̂_h − V̂_dr)² − Var(V̂_h − V̂_dr)) + Var(V̂_h)
// (τ: quantiles 50 … 99.9% of the weights and no cut; λ: 10^-2 … 10^6).
// Intervals: percentile bootstrap over impressions (θ̂, τ and λ held fixed).
#include <torch/arg.h>
#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/impressions.h"
#include "mtrec/policy/environment.h"

namespace mtrec {

#define MTREC_OPE_OPTIONS(X)                       \
  /* bootstrap replicates (0: no intervals) */     \
  X(int64_t, bootstrap, 200)                       \
  X(double, confidence, 0.95)                      \
  /* switch_dr: weights above τ use the direct */ \
  /* method only; 0: chosen by estimated MSE */    \
  X(double, switch_threshold, 0.0)                 \
  /* dros: shrinkage λ; 0: by estimated MSE */    \
  X(double, dros_lambda, 0.0)                      \
  X(uint64_t, seed, 0)                             \
  /* 0: every core */                              \
  X(int, threads, 0)

struct OpeOptions {
  MTREC_OPTIONS(MTREC_OPE_OPTIONS)
};

struct OpeEstimate {
  std::string estimator;
  double value = 0, low = 0, high = 0;  // estimate and its bootstrap interval
};

struct OpeResult {
  std::vector<OpeEstimate> estimates;  // in the order of ope_estimators()
  int64_t impressions = 0;
  double logged_value = 0;              // mean clicks per impression of the log
  std::vector<double> position_factor;  // θ̂ per position
  double max_weight = 0;                // largest item-position weight π / μ
  double effective_sample_size = 0;     // (Σ w)² / Σ w² of the item-position weights, mean over positions
  double switch_threshold = 0;          // τ and λ used (given or chosen)
  double dros_lambda = 0;
  const OpeEstimate& operator[](const std::string& estimator) const;
};

/// The estimators' names, in the order of OpeResult::estimates.
const std::vector<std::string>& ope_estimators();

OpeResult evaluate_off_policy(const ImpressionLog& log, const Policy& target, const RewardModel& reward_model,
                              const OpeOptions& options = {});

}  // namespace mtrec
