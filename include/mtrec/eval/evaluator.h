#pragma once
// Ranking evaluation for leave-one-out style protocols (EVALUATION.md, S and D).
// A model is seen only through a scoring callback, so every head (and any user code) can be
// evaluated the same way:
//   mtrec::RankingEvaluator ev(train, ds.num_users(), ds.num_items(),
//                              mtrec::RankingOptions().ks({5, 10, 20}).sampled_negatives(100));
//   mtrec::RankingReport r = ev.evaluate(test, [&](int32_t u, const std::vector<int32_t>& items,
//                                                  std::vector<float>& out) { ... });
//   r.at("HR@10"), r.at("NDCG@10")
#include <torch/arg.h>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/score_fn.h"
#include "mtrec/data/schema.h"

namespace mtrec {

#define MTREC_RANKING_OPTIONS(X)                              \
  X(std::vector<int>, ks, (std::vector<int>{5, 10, 20}))      \
  /* 0: full ranking over every item the user has not seen */ \
  X(int, sampled_negatives, 0)                                \
  X(uint64_t, seed, 42)                                       \
  /* 0: hardware concurrency */                               \
  X(int, threads, 0)

struct RankingOptions {
  MTREC_OPTIONS(MTREC_RANKING_OPTIONS)
};

struct RankingReport {
  std::map<std::string, double> metrics;  // "HR@10", "NDCG@10", "MRR", ...
  int64_t users = 0;                      // users evaluated
  int64_t targets = 0;                    // test rows evaluated (>= users)
  std::string protocol;                   // e.g. "full ranking, seen items excluded"
  double at(const std::string& name) const;
};

/// Merges the reports of disjoint sets of users evaluated under one protocol, as if evaluated
/// at once: HR, NDCG and MRR weighted by targets, Recall by users.
RankingReport merge_ranking_reports(const std::vector<RankingReport>& parts);

class RankingEvaluator {
 public:
  /// `seen` holds the interactions excluded from the candidates (normally train + valid).
  RankingEvaluator(const Interactions& seen, int32_t num_users, int32_t num_items, RankingOptions options = {});
  /// One target per test row (leave-one-out). Full ranking: the target against every item
  /// not in `seen` for that user; sampled: against N uniform unseen items (seeded per user).
  /// A user's other test items are never negatives. HR@K, NDCG@K and MRR rank each target
  /// against the negatives and are averaged over test rows; Recall@K is |distinct targets in
  /// the top K of all the user's candidates| / |distinct targets| (metrics.h), averaged over
  /// users, so it equals HR@K only with one target per user (leave-one-out). Ties rank the
  /// target behind (pessimistic); a NaN negative ranks ahead of every target, a NaN target is
  /// a miss. Results do not depend on threads.
  RankingReport evaluate(const Interactions& test, const ScoreFn& score) const;

 private:
  std::vector<std::vector<int32_t>> seen_;  // per user, sorted
  int32_t num_items_;
  RankingOptions options_;
};

}  // namespace mtrec
