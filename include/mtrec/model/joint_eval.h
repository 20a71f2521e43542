#pragma once
// Evaluation of the unified model on one split, every task at once, overall, per scenario and
// on cold-start items (protocol M of EVALUATION.md):
//   mtrec::JointReport r = mtrec::evaluate_joint(model, ds, known, test,
//                                                mtrec::JointEvalOptions().context_rows(ctx_rows));
//   r.overall["ctr"]["auc"], r.per_scenario["search"]["ctr"]["auc"], r.cold["ctr"]["auc"]
// `known` is what the model may use as history (train, or train + valid for the test stage);
// its items are excluded from the ranking candidates.
//  - rating: RMSE / MAE on the rows that carry a star (tasks/labels.h's explicit_ratings rule).
//  - ctr: AUC, GAUC (per user), logloss of column "click" on the rows with a CTR label (the
//    exposures: positives against impressions; on rating-only data the rows rated >= the
//    positive threshold against ctr_negatives sampled items the user has no row for), and an
//    AUC per further label column ("auc/<column>").
//  - next_item and match: per user, the first engaged row of `eval` in time (any behaviour but
//    an impression, any star) is the target; full ranking over every item not among the user's
//    engaged rows of `known`; HR@10, NDCG@10. Histories are the engaged rows of `known`.
//  - scenario: accuracy of the scenario classifier on the rows with a context, beside the
//    majority class of `known` ("majority_accuracy").
//  - cold: ctr on the rows whose item training never saw; next-item and match ranked within
//    the cold items: per user, the first engaged row of `eval` on a cold item is the target,
//    ranked among the cold items only (cold_targets, within_items). A cold item competes with
//    the cold catalogue there, not with warm items it cannot outscore from text alone.
#include <torch/arg.h>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/score_fn.h"
#include "mtrec/data/schema.h"
#include "mtrec/model/unified.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

#define MTREC_JOINT_EVAL_OPTIONS(X)                                                               \
  /* rating-only data: sampled negatives per positive */                                          \
  X(int, ctr_negatives, 0)                                                                        \
  /* rating-only data: positives are rated >= this (0: every row) */                              \
  X(float, ctr_min_rating, 0)                                                                     \
  /* tokenised context texts (scenario classifier) */                                             \
  X(std::vector<std::vector<int64_t>>, context_rows, {})                                          \
  X(std::vector<std::string>, ctr_columns, std::vector<std::string>{"click"})                     \
  X(int64_t, batch_size, 2048)                                                                    \
  /* predictions are clipped to the training range */                                             \
  X(float, rating_min, 1)                                                                         \
  X(float, rating_max, 5)                                                                         \
  /* time-order ties (as JointSource's) and sampled negatives */                                  \
  X(uint64_t, seed, 42)                                                                           \
  /* Sharded evaluation (data-parallel validation, train/distributed.h): this process runs the */ \
  /* model for the users u with u % shards == shard only, and `reduce` sums a vector over the */  \
  /* processes in place; every process then reports the same metrics, those of one process. */    \
  X(int, shard, 0)                                                                                \
  X(int, shards, 1)                                                                               \
  X(Reduce, reduce, {})

struct JointEvalOptions {
  using Reduce = std::function<void(std::vector<double>&)>;
  MTREC_OPTIONS(MTREC_JOINT_EVAL_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  JointEvalOptions& rating_range(float lo, float hi) {
    rating_min_ = lo, rating_max_ = hi;
    return *this;
  }
  JointEvalOptions& sharded(int shard, int shards, std::function<void(std::vector<double>&)> reduce) {
    shard_ = shard, shards_ = shards, reduce_ = std::move(reduce);
    return *this;
  }
};

struct JointReport {
  std::map<std::string, Metrics> overall;                              // task -> metrics
  std::map<std::string, std::map<std::string, Metrics>> per_scenario;  // scenario -> task -> metrics
  std::map<std::string, Metrics> cold;                                 // task -> metrics on cold items
  /// The report as JSON text.
  std::string to_json() const;
};

/// Per user, the first engaged row (any behaviour but an impression) of `eval` whose item is
/// cold (cold_item[i] != 0): the targets of the within-cold ranking.
Interactions cold_targets(const Dataset& ds, const Interactions& eval, const std::vector<char>& cold_item);
/// `fn` with every item outside `allowed` (allowed[i] == 0) scored -inf: ranking within a set.
ScoreFn within_items(std::vector<char> allowed, ScoreFn fn);

/// Evaluates every enabled task of `model` (left in eval mode, text cache refreshed).
JointReport evaluate_joint(UnifiedModel& model, const Dataset& ds, const Interactions& known, const Interactions& eval,
                           const JointEvalOptions& options);

/// Every item's score for the users' next interaction in `scenario`, by `head`: ctr (the
/// click probability), rating, next_item or match; [users.size(), I] on the CPU. The users'
/// histories come from `known` (see UserHistories).
at::Tensor score_catalogue(UnifiedModel& model, const Dataset& ds, const Interactions& known,
                           const std::vector<int32_t>& users, int32_t scenario, Head head, uint64_t seed = 42);

}  // namespace mtrec
