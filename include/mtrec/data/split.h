#pragma once
// Train/validation/test splits as row indices into a Dataset's interactions (no copies; use
// Interactions::subset to materialise). Every split is seeded and deterministic.
//   auto s = mtrec::leave_one_out_split(ds.interactions, /*seed=*/42);
//   mtrec::Interactions train = ds.interactions.subset(s.train);
#include <cstdint>
#include <vector>

#include "mtrec/data/schema.h"

namespace mtrec {

struct Split {
  std::vector<size_t> train, valid, test;  // row indices, each sorted ascending
};

/// Random split: each row goes to test with probability test_ratio, to valid with valid_ratio
/// (exact counts: round(n*ratio) rows after a seeded shuffle), the rest to train.
Split random_split(const Interactions& x, double test_ratio, double valid_ratio, uint64_t seed);

/// The split with a validation set for every task: when `s` has none (the ML-100K folds,
/// k-fold), a seeded `fraction` of its training rows (at least one) moves to valid; a split
/// that has one is returned unchanged. Done once, so that all tasks early-stop on the same rows.
Split with_validation(const Split& s, double fraction, uint64_t seed);

/// k folds of a seeded shuffle; fold f's test rows are the f-th slice, train the rest (valid empty).
std::vector<Split> kfold_split(const Interactions& x, int k, uint64_t seed);

/// Leave-one-out by time (EVALUATION.md, protocol S/D): per user, interactions ordered by
/// timestamp with ties broken by a seeded random order per user (never by item id); the last
/// goes to test, the one before to valid, the rest to train. Users with fewer than 3
/// interactions keep everything in train. Requires timestamps.
Split leave_one_out_split(const Interactions& x, uint64_t seed);

/// The per-user chronological order used by leave_one_out_split (same tie-breaking), for
/// building training sequences: result[u] lists the row indices of user u in time order.
std::vector<std::vector<size_t>> user_sequences(const Interactions& x, int32_t num_users, uint64_t seed);

/// Global temporal cut: rows with timestamp < the train_frac quantile go to train, the next
/// valid_frac to valid, the rest to test. Requires timestamps.
Split temporal_split(const Interactions& x, double train_frac, double valid_frac);

}  // namespace mtrec
