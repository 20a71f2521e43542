#pragma once
// Negative sampling for implicit feedback: items a user has not interacted with, drawn
// uniformly or in proportion to popularity (count^alpha), seeded and reproducible.
//   mtrec::NegativeSampler neg(train, ds.num_users(), ds.num_items(),
//                              mtrec::NegativeSampler::Kind::Uniform, 42);
//   std::vector<int32_t> items = neg.sample(user, 4);
#include <cstdint>
#include <vector>

#include "mtrec/core/random.h"
#include "mtrec/data/schema.h"

namespace mtrec {

class NegativeSampler {
 public:
  enum class Kind { Uniform, Popularity };
  /// `positives` defines both what is excluded per user and, for Popularity, the weights.
  NegativeSampler(const Interactions& positives, int32_t num_users, int32_t num_items, Kind kind, uint64_t seed,
                  double popularity_alpha = 1.0);
  /// n items the user has not interacted with (with replacement across calls, without
  /// repeats inside one call when n <= the number of unseen items). Throws mtrec::Error when
  /// the user has interacted with every item.
  std::vector<int32_t> sample(int32_t user, int n);
  bool is_positive(int32_t user, int32_t item) const;
  /// Items of `user` in the positives, sorted ascending.
  const std::vector<int32_t>& positives(int32_t user) const;
  int32_t num_items() const { return num_items_; }
  /// Reseeds the generator (e.g. per epoch or per worker).
  void reseed(uint64_t seed) { rng_.seed(seed); }

 private:
  int32_t num_items_;
  Kind kind_;
  std::vector<std::vector<int32_t>> pos_;  // per user, sorted
  std::vector<double> cdf_;                // Popularity: cumulative weights over items
  Rng rng_;
};

}  // namespace mtrec
