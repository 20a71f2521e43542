#pragma once
// The evaluation protocols of EVALUATION.md in one place: how each one splits the data and builds
// its test set. The CLI, the benches and the tests call these, so that a number measured by one
// is a number of the same protocol in the others.
//   R  rating: the official ML-100K folds u1..u5 (fold_split adds the validation rows every task
//      early-stops on), RMSE / MAE on the fold's test rows; elsewhere a seeded random 80/10/10
//   S  next-item and D implicit top-N: leave-one-out by time with seeded ties
//      (protocol_split "loo"); the target ranked over every unseen item or among 100 sampled
//      unseen items (ranking_protocol, whose draw is ranking_negatives)
//   C  click-through: rating >= 4 positives (ctr_positives) against `ratio` sampled items the
//      user has no row for (ctr_test_examples)
//   M  multi-task: one split (protocol_split, fold_split) from which every task takes its labels;
//      the model knows known_rows at test time
//
//   mtrec::Split s = mtrec::protocol_split(ds.interactions, "loo", /*seed=*/42);
//   mtrec::Interactions known = ds.interactions.subset(mtrec::known_rows(s));
//   mtrec::RankingEvaluator ev(known, ds.num_users(), ds.num_items(),
//                              mtrec::ranking_protocol(mtrec::kRankingNegatives, 42));
//   mtrec::RankingReport r = ev.evaluate(ds.interactions.subset(s.test), score);
#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/data/ctr_examples.h"
#include "mtrec/data/schema.h"
#include "mtrec/data/split.h"
#include "mtrec/eval/evaluator.h"

namespace mtrec {

class NegativeSampler;

// ---- splits ---------------------------------------------------------------------------------

/// The one split of `x` by name (protocol M: every task of a run takes its labels from it):
///   "loo"       leave_one_out_split(x, seed): each user's last item is the test target, the one
///               before it the validation target (protocols S and D)
///   "temporal"  80/10/10 by time (temporal_split): items released late are first seen in test
///   "random"    a seeded random 80/10/10 (random_split): R and C where there are no official folds
Split protocol_split(const Interactions& x, const std::string& name, uint64_t seed);

/// Share of a fold's training rows that becomes its validation rows (R, C and M on ML-100K).
constexpr double kFoldValidFraction = 0.05;

/// A fold without validation rows (ML-100K u1..u5, ua, ub; kfold_split) with a seeded
/// `valid_fraction` of its training rows moved to validation, drawn once so that every task
/// early-stops on the same rows; test rows are the fold's own. A split that has validation
/// rows is returned unchanged.
Split fold_split(const Split& fold, double valid_fraction, uint64_t seed);

/// The rows a model may know when it is tested: train + valid, sorted. Its histories read them
/// and their items are not ranking candidates.
std::vector<size_t> known_rows(const Split& s);

// ---- ranking (S, D) -------------------------------------------------------------------------

/// Sampled unseen items each target is ranked among (protocols S and D).
constexpr int kRankingNegatives = 100;

/// The ranking of protocols S and D: HR and NDCG at 5, 10 and 20 and MRR; `sampled_negatives`
/// uniform unseen items per user (0: full ranking over every unseen item), seeded by `seed`.
RankingOptions ranking_protocol(int sampled_negatives, uint64_t seed);

/// The negatives one user's targets are ranked against (RankingEvaluator draws them here): the
/// items in [0, num_items) in neither `seen` nor `targets` (both sorted ascending), all of them
/// in id order when n == 0 (full ranking), else min(n, their number) distinct ones drawn
/// uniformly from an RNG seeded by (seed, user) alone, so that the draw depends neither on the
/// thread count nor on the order users are evaluated in.
std::vector<int32_t> ranking_negatives(int32_t user, const std::vector<int32_t>& seen,
                                       const std::vector<int32_t>& targets, int32_t num_items, int n, uint64_t seed);

// ---- click-through (C) ----------------------------------------------------------------------

/// Protocol C's positive threshold on explicit ratings.
constexpr float kCtrMinRating = 4.0f;

/// Protocol C's positives among `x`: rated >= 4 on rating-only data (MovieLens), every row but
/// an impression on data with behaviours (the synthetic world's clicks).
Interactions ctr_positives(const Dataset& ds, const Interactions& x);

/// Protocol C's pool of test negatives: for user u, the items u has no row for in `all_rows`
/// (every row of the data set, any rating, impressions aside), so that a test negative is unseen
/// in training and test alike; uniform, seeded by derive_seed(seed, "ctr-test").
NegativeSampler ctr_test_sampler(const Interactions& all_rows, int32_t num_users, int32_t num_items, uint64_t seed);

/// Protocol C's test set: every row of `test_positives` with label 1, each followed by `ratio`
/// negatives from ctr_test_sampler(all_rows, ...).
CtrExamples ctr_test_examples(const Interactions& all_rows, const Interactions& test_positives, int32_t num_users,
                              int32_t num_items, int ratio, uint64_t seed);

}  // namespace mtrec
