#include "mtrec/eval/protocols.h"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/ctr_examples.h"
#include "mtrec/data/labels.h"

namespace mtrec {
namespace {

bool contains(const std::vector<int32_t>& sorted, int32_t x) {
  return std::binary_search(sorted.begin(), sorted.end(), x);
}

}  // namespace

Split protocol_split(const Interactions& x, const std::string& name, uint64_t seed) {
  if (name == "loo") return leave_one_out_split(x, seed);
  if (name == "temporal") return temporal_split(x, 0.8, 0.1);
  MTREC_CHECK(name == "random", "unknown split '", name, "' (expected loo, temporal or random)");
  return random_split(x, 0.1, 0.1, seed);
}

Split fold_split(const Split& fold, double valid_fraction, uint64_t seed) {
  return with_validation(fold, valid_fraction, derive_seed(seed, "valid"));
}

std::vector<size_t> known_rows(const Split& s) {
  std::vector<size_t> rows = s.train;
  rows.insert(rows.end(), s.valid.begin(), s.valid.end());
  std::sort(rows.begin(), rows.end());
  return rows;
}

RankingOptions ranking_protocol(int sampled_negatives, uint64_t seed) {
  return RankingOptions().ks({5, 10, 20}).sampled_negatives(sampled_negatives).seed(seed);
}

std::vector<int32_t> ranking_negatives(int32_t user, const std::vector<int32_t>& seen,
                                       const std::vector<int32_t>& targets, int32_t num_items, int n, uint64_t seed) {
  MTREC_CHECK(n >= 0, "sampled negatives must be >= 0, got ", n);
  auto excluded = [&](int32_t i) { return contains(seen, i) || contains(targets, i); };
  std::vector<int32_t> out;
  if (n == 0) {
    out.reserve(static_cast<size_t>(std::max(0, num_items)));
    for (int32_t i = 0; i < num_items; ++i)
      if (!excluded(i)) out.push_back(i);
    return out;
  }
  Rng rng(derive_seed(seed, "ranking-negatives/" + std::to_string(user)));
  int64_t available = num_items;
  for (int32_t i : seen) available -= !contains(targets, i);
  available -= static_cast<int64_t>(targets.size());
  if (available <= 2 * int64_t(n) || available * 4 < num_items) {
    // Few unseen items (rejection would mostly hit seen ones): enumerate them and take a
    // partial shuffle (all of them when <= n).
    std::vector<int32_t> pool;
    for (int32_t i = 0; i < num_items; ++i)
      if (!excluded(i)) pool.push_back(i);
    const size_t take = std::min(pool.size(), size_t(n));
    for (size_t j = 0; j < take; ++j) {
      std::uniform_int_distribution<size_t> pick(j, pool.size() - 1);
      std::swap(pool[j], pool[pick(rng)]);
    }
    pool.resize(take);
    return pool;
  }
  // Rejection sampling without replacement: cheap when unseen items are plentiful.
  std::uniform_int_distribution<int32_t> pick(0, num_items - 1);
  std::unordered_set<int32_t> chosen;
  out.reserve(size_t(n));
  while (static_cast<int>(chosen.size()) < n) {
    const int32_t i = pick(rng);
    if (excluded(i) || !chosen.insert(i).second) continue;
    out.push_back(i);
  }
  return out;
}

Interactions ctr_positives(const Dataset& ds, const Interactions& x) {
  return implicit_positives(ds, x, kCtrMinRating);
}

NegativeSampler ctr_test_sampler(const Interactions& all_rows, int32_t num_users, int32_t num_items, uint64_t seed) {
  return ctr_negative_sampler(all_rows, num_users, num_items, derive_seed(seed, "ctr-test"));
}

CtrExamples ctr_test_examples(const Interactions& all_rows, const Interactions& test_positives, int32_t num_users,
                              int32_t num_items, int ratio, uint64_t seed) {
  NegativeSampler sampler = ctr_test_sampler(all_rows, num_users, num_items, seed);
  return sample_ctr_examples(test_positives, sampler, ratio);
}

}  // namespace mtrec
