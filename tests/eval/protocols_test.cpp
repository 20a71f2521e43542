#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "test_data.h"
#include "mtrec/core/check.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/protocols.h"

namespace mtrec {
namespace {

// Timed interactions: user u has 1 + u % 6 rows with distinct timestamps in a shuffled order
// (row order is not time order), except user 7, whose four rows share one timestamp.
Interactions timed_rows(int users) {
  Interactions x;
  x.has_timestamp = true;
  for (int32_t u = 0; u < users; ++u) {
    const int n = u == 7 ? 4 : 1 + u % 6;
    for (int k = 0; k < n; ++k) {
      const int j = (k * 7 + u) % n;  // a permutation of 0..n-1 (n <= 6, gcd(7, n) = 1)
      x.push_back(u, (u * 3 + j) % 40, 1.f, u == 7 ? 500 : 1000 * u + 10 * j);
    }
  }
  return x;
}

std::vector<size_t> all_rows(const Split& s) {
  std::vector<size_t> r = s.train;
  r.insert(r.end(), s.valid.begin(), s.valid.end());
  r.insert(r.end(), s.test.begin(), s.test.end());
  std::sort(r.begin(), r.end());
  return r;
}

void expect_partition(const Split& s, size_t n) {
  std::vector<size_t> want(n);
  for (size_t k = 0; k < n; ++k) want[k] = k;
  EXPECT_EQ(all_rows(s), want) << "train, valid and test must partition the rows";
  for (const auto* part : {&s.train, &s.valid, &s.test}) EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
}

}  // namespace

TEST(Protocols, LeaveOneOutHoldsOutEachUsersLastItem) {
  const Interactions x = timed_rows(30);
  const Split s = protocol_split(x, "loo", 42);
  expect_partition(s, x.size());
  std::map<int32_t, std::vector<size_t>> rows_of;
  for (size_t r = 0; r < x.size(); ++r) rows_of[x.user[r]].push_back(r);
  std::map<int32_t, size_t> test_of, valid_of;
  for (size_t r : s.test) EXPECT_TRUE(test_of.emplace(x.user[r], r).second) << "two test rows for user " << x.user[r];
  for (size_t r : s.valid)
    EXPECT_TRUE(valid_of.emplace(x.user[r], r).second) << "two valid rows for user " << x.user[r];
  for (const auto& [u, rows] : rows_of) {
    if (rows.size() < 3) {  // too short to hold anything out
      EXPECT_FALSE(test_of.count(u) || valid_of.count(u)) << "user " << u;
      continue;
    }
    ASSERT_TRUE(test_of.count(u) && valid_of.count(u)) << "user " << u;
    if (u == 7) continue;  // all tied: any order (below)
    std::vector<int64_t> ts;
    for (size_t r : rows) ts.push_back(x.timestamp[r]);
    std::sort(ts.begin(), ts.end());
    EXPECT_EQ(x.timestamp[test_of[u]], ts.back()) << "user " << u << ": the test row is the latest";
    EXPECT_EQ(x.timestamp[valid_of[u]], ts[ts.size() - 2]) << "user " << u << ": valid is the one before";
    for (size_t r : rows)
      if (r != test_of[u] && r != valid_of[u]) {
        EXPECT_LT(x.timestamp[r], x.timestamp[valid_of[u]]);
      }
  }
}

TEST(Protocols, LeaveOneOutIsSeededAndBreaksTiesBySeedNotById) {
  const Interactions x = timed_rows(30);
  const Split a = protocol_split(x, "loo", 42), b = protocol_split(x, "loo", 42);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_EQ(a.test, b.test);
  // User 7's four rows share a timestamp: which one is the test target depends on the seed.
  std::set<int32_t> targets;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    const Split s = protocol_split(x, "loo", seed);
    for (size_t r : s.test)
      if (x.user[r] == 7) targets.insert(x.item[r]);
  }
  EXPECT_GT(targets.size(), 1u) << "ties must be broken by a seeded order, not by id";
}

TEST(Protocols, TemporalSplitCutsByTime) {
  Interactions x;
  x.has_timestamp = true;
  for (int k = 0; k < 100; ++k) x.push_back(k % 7, k % 11, 1.f, (k * 37) % 100);  // distinct times, shuffled
  const Split s = protocol_split(x, "temporal", 1);
  expect_partition(s, x.size());
  EXPECT_EQ(s.train.size(), 80u);
  EXPECT_EQ(s.valid.size(), 10u);
  EXPECT_EQ(s.test.size(), 10u);
  auto max_ts = [&](const std::vector<size_t>& rows) {
    int64_t m = -1;
    for (size_t r : rows) m = std::max(m, x.timestamp[r]);
    return m;
  };
  auto min_ts = [&](const std::vector<size_t>& rows) {
    int64_t m = 1 << 30;
    for (size_t r : rows) m = std::min(m, x.timestamp[r]);
    return m;
  };
  EXPECT_LT(max_ts(s.train), min_ts(s.valid));
  EXPECT_LT(max_ts(s.valid), min_ts(s.test));
}

TEST(Protocols, RandomSplitIsEightyTenTenAndSeeded) {
  const Interactions x = test::interactions_of([] {
    std::vector<std::pair<int32_t, int32_t>> p;
    for (int k = 0; k < 1000; ++k) p.emplace_back(k % 50, k % 97);
    return p;
  }());
  const Split a = protocol_split(x, "random", 3), b = protocol_split(x, "random", 3),
              c = protocol_split(x, "random", 4);
  expect_partition(a, x.size());
  EXPECT_EQ(a.train.size(), 800u);
  EXPECT_EQ(a.valid.size(), 100u);
  EXPECT_EQ(a.test.size(), 100u);
  EXPECT_EQ(a.test, b.test);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_NE(a.test, c.test);
}

TEST(Protocols, UnknownSplitNameIsAnErrorNamingIt) {
  const Interactions x = timed_rows(5);
  try {
    protocol_split(x, "u1", 42);
    FAIL() << "expected mtrec::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'u1'"), std::string::npos) << e.what();
  }
}

TEST(Protocols, FoldSplitCarvesValidationFromTrainOnly) {
  Split fold;
  for (size_t r = 0; r < 200; ++r) (r < 160 ? fold.train : fold.test).push_back(r);
  const Split s = fold_split(fold, kFoldValidFraction, 42), again = fold_split(fold, kFoldValidFraction, 42);
  EXPECT_EQ(s.test, fold.test);
  EXPECT_EQ(s.valid.size(), 8u);  // 5% of 160
  EXPECT_EQ(known_rows(s), fold.train) << "train + valid must be the fold's training rows";
  EXPECT_EQ(s.valid, again.valid);
  EXPECT_NE(s.valid, fold_split(fold, kFoldValidFraction, 43).valid);
  // A split that already has validation rows keeps them.
  const Split kept = fold_split(s, 0.5, 7);
  EXPECT_EQ(kept.valid, s.valid);
  EXPECT_EQ(kept.train, s.train);
}

TEST(Protocols, KnownRowsAreTrainAndValidSorted) {
  Split s;
  s.train = {0, 4, 9};
  s.valid = {2, 7};
  s.test = {1, 3};
  EXPECT_EQ(known_rows(s), (std::vector<size_t>{0, 2, 4, 7, 9}));
}

TEST(Protocols, RankingProtocolIsHrNdcgAtFiveTenTwenty) {
  const RankingOptions o = ranking_protocol(kRankingNegatives, 9);
  EXPECT_EQ(o.ks(), (std::vector<int>{5, 10, 20}));
  EXPECT_EQ(o.sampled_negatives(), 100);
  EXPECT_EQ(o.seed(), 9u);
  EXPECT_EQ(ranking_protocol(0, 9).sampled_negatives(), 0);
}

TEST(Protocols, FullRankingNegativesAreEveryUnseenNonTargetItem) {
  const std::vector<int32_t> seen = {1, 4, 5}, targets = {2, 5};
  EXPECT_EQ(ranking_negatives(3, seen, targets, 8, 0, 42), (std::vector<int32_t>{0, 3, 6, 7}));
}

TEST(Protocols, SampledNegativesAreDistinctUnseenAndSeededPerUser) {
  // Both ways of drawing: rejection (many unseen items) and a partial shuffle (few).
  for (int32_t num_items : {2000, 150}) {
    std::vector<int32_t> seen;
    for (int32_t i = 0; i < 40; ++i) seen.push_back(i * 3);
    const std::vector<int32_t> targets = {1, 7};
    const auto a = ranking_negatives(5, seen, targets, num_items, 100, 42);
    ASSERT_EQ(a.size(), 100u) << num_items << " items";
    EXPECT_EQ(std::set<int32_t>(a.begin(), a.end()).size(), a.size()) << "negatives must be distinct";
    for (int32_t i : a) {
      EXPECT_TRUE(i >= 0 && i < num_items);
      EXPECT_FALSE(std::binary_search(seen.begin(), seen.end(), i)) << "seen item " << i << " drawn";
      EXPECT_FALSE(std::binary_search(targets.begin(), targets.end(), i)) << "target " << i << " drawn";
    }
    EXPECT_EQ(a, ranking_negatives(5, seen, targets, num_items, 100, 42));
    EXPECT_NE(a, ranking_negatives(6, seen, targets, num_items, 100, 42)) << "the draw is per user";
    EXPECT_NE(a, ranking_negatives(5, seen, targets, num_items, 100, 43)) << "the draw is per seed";
  }
  // Fewer unseen items than asked for: all of them.
  const auto all = ranking_negatives(0, {0, 1, 2}, {3}, 10, 100, 42);
  EXPECT_EQ(std::set<int32_t>(all.begin(), all.end()), (std::set<int32_t>{4, 5, 6, 7, 8, 9}));
}

TEST(Protocols, EvaluatorRanksTargetsAgainstTheProtocolsNegatives) {
  // 300 items; user 0 saw 0..49, its target is 60; user 1 saw nothing, target 5.
  Interactions seen;
  for (int32_t i = 0; i < 50; ++i) seen.push_back(0, i);
  const Interactions test = test::interactions_of({{0, 60}, {1, 5}});
  std::map<int32_t, std::vector<int32_t>> asked;
  RankingEvaluator ev(seen, 2, 300, ranking_protocol(kRankingNegatives, 11).threads(1));
  ev.evaluate(test, [&](int32_t u, const std::vector<int32_t>& items, std::vector<float>& out) {
    asked[u] = items;
    out.assign(items.size(), 0.f);
  });
  std::vector<int32_t> seen0(50);
  for (int32_t i = 0; i < 50; ++i) seen0[size_t(i)] = i;
  std::vector<int32_t> want0 = {60}, neg0 = ranking_negatives(0, seen0, {60}, 300, 100, 11);
  want0.insert(want0.end(), neg0.begin(), neg0.end());
  EXPECT_EQ(asked[0], want0) << "candidates: the target, then ranking_negatives";
  std::vector<int32_t> want1 = {5}, neg1 = ranking_negatives(1, {}, {5}, 300, 100, 11);
  want1.insert(want1.end(), neg1.begin(), neg1.end());
  EXPECT_EQ(asked[1], want1);
}

TEST(Protocols, CtrPositivesAreRatedFourOrMoreOnRatingData) {
  Dataset ds;
  ds.behaviors.intern("rating");
  Interactions x;
  x.has_rating = true;
  for (int k = 0; k < 10; ++k) x.push_back(k % 3, k, float(1 + k % 5));
  const Interactions p = ctr_positives(ds, x);
  ASSERT_EQ(p.size(), 4u);  // ratings 4, 5, 4, 5
  for (float r : p.rating) EXPECT_GE(r, kCtrMinRating);
}

TEST(Protocols, CtrTestNegativesAvoidEveryRowOfTheUserAndAreSeeded) {
  SyntheticWorld w = generate_world(SyntheticOptions().users(40).items(60).interactions(2000).seed(3).threads(1));
  const Dataset& ds = w.data;
  const int32_t imp = ds.behaviors.find("impression");
  ASSERT_GE(imp, 0);
  const Interactions pos = ctr_positives(ds, ds.interactions);
  ASSERT_GT(pos.size(), 0u);
  for (int16_t b : pos.behavior) EXPECT_NE(b, imp) << "an impression is never a positive";
  // The pool rule: a test negative is an item the user has no row for, positive or not.
  std::vector<std::set<int32_t>> rows_of(size_t(ds.num_users()));
  for (size_t r = 0; r < pos.size(); ++r) rows_of[size_t(pos.user[r])].insert(pos.item[r]);
  NegativeSampler a = ctr_test_sampler(pos, ds.num_users(), ds.num_items(), 42);
  NegativeSampler b = ctr_test_sampler(pos, ds.num_users(), ds.num_items(), 42);
  for (int32_t u = 0; u < ds.num_users(); ++u) {
    if (int(rows_of[size_t(u)].size()) >= ds.num_items() - 4) continue;
    const auto na = a.sample(u, 4);
    EXPECT_EQ(na, b.sample(u, 4)) << "same seed, same negatives";
    for (int32_t i : na) EXPECT_FALSE(rows_of[size_t(u)].count(i)) << "user " << u << " has a row for item " << i;
  }
}

}  // namespace mtrec
