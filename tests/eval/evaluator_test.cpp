#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <set>

#include "test_data.h"
#include "test_util.h"
#include "mtrec/core/check.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/metrics.h"

namespace mtrec {
namespace {

// Score = item id: the higher the id, the better, so every rank is known by hand.
void score_by_id(int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
  out.resize(items.size());
  for (size_t j = 0; j < items.size(); ++j) out[j] = float(items[j]);
}

}  // namespace

TEST(RankingEvaluator, FullRankingOnTinyCatalogue) {
  // 10 items. User 0 saw {8, 9}, target 5: unseen items ahead are 6, 7 -> rank 2.
  // User 1 saw nothing, target 9 -> rank 0. User 2 saw {1, 2}, target 3: 4..9 ahead -> rank 6.
  // User 3 has no test row and is not evaluated.
  Interactions seen = test::interactions_of({{0, 8}, {0, 9}, {2, 1}, {2, 2}, {3, 0}});
  Interactions test = test::interactions_of({{0, 5}, {1, 9}, {2, 3}});
  for (int threads : {1, 4}) {
    RankingEvaluator ev(seen, 4, 10, RankingOptions().ks({1, 3, 20}).threads(threads));
    RankingReport r = ev.evaluate(test, score_by_id);
    EXPECT_EQ(r.users, 3);
    EXPECT_EQ(r.protocol, "full ranking, seen items excluded");
    EXPECT_NEAR(r.at("HR@1"), 1.0 / 3, 1e-12);
    EXPECT_NEAR(r.at("HR@3"), 2.0 / 3, 1e-12);
    EXPECT_NEAR(r.at("HR@20"), 1.0, 1e-12);  // K larger than the candidate list
    EXPECT_NEAR(r.at("Recall@3"), 2.0 / 3, 1e-12);
    EXPECT_NEAR(r.at("NDCG@3"), (0.5 + 1.0 + 0.0) / 3, 1e-12);
    EXPECT_NEAR(r.at("NDCG@20"), (0.5 + 1.0 + 1.0 / std::log2(8.0)) / 3, 1e-12);
    EXPECT_NEAR(r.at("MRR"), (1.0 / 3 + 1.0 + 1.0 / 7) / 3, 1e-12);
    EXPECT_THROW(r.at("HR@7"), Error);
  }
}

TEST(RankingEvaluator, FullRankingExcludesSeenAndOtherTargets) {
  // User 0 saw {0, 1}; targets 4 and 6. Candidates must be the targets then items 2,3,5,7,8,9.
  Interactions seen = test::interactions_of({{0, 0}, {0, 1}});
  Interactions test = test::interactions_of({{0, 4}, {0, 6}});
  RankingEvaluator ev(seen, 1, 10, RankingOptions().ks({2}).threads(1));
  std::vector<int32_t> got;
  RankingReport r = ev.evaluate(test, [&](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    got = items;
    score_by_id(0, items, out);
  });
  EXPECT_EQ(got, (std::vector<int32_t>{4, 6, 2, 3, 5, 7, 8, 9}));
  // Target 4 ranks behind 5,7,8,9 (rank 4); target 6 behind 7,8,9 (rank 3); the other target
  // never counts. Metrics average over the two targets.
  EXPECT_NEAR(r.at("MRR"), (1.0 / 5 + 1.0 / 4) / 2, 1e-12);
  EXPECT_NEAR(r.at("HR@2"), 0.0, 1e-12);
}

TEST(RankingEvaluator, AllEqualScoresArePessimistic) {
  Interactions seen = test::interactions_of({{0, 0}});
  Interactions test = test::interactions_of({{0, 4}});
  RankingEvaluator ev(seen, 1, 10, RankingOptions().ks({5, 9}).threads(1));
  RankingReport r = ev.evaluate(test, [](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.assign(items.size(), 1.0f);
  });
  // 8 negatives all tie with the target: rank 8.
  EXPECT_DOUBLE_EQ(r.at("HR@5"), 0.0);
  EXPECT_DOUBLE_EQ(r.at("HR@9"), 1.0);
  EXPECT_DOUBLE_EQ(r.at("NDCG@9"), 1.0 / std::log2(10.0));
  EXPECT_DOUBLE_EQ(r.at("MRR"), 1.0 / 9);
}

TEST(RankingEvaluator, SampledNegativesAreUnseenDistinctAndThreadIndependent) {
  const int32_t users = 40, items = 60, n_neg = 15;
  std::mt19937 rng(3);
  Interactions seen, test;
  std::vector<std::set<int32_t>> seen_sets(users);
  for (int32_t u = 0; u < users; ++u) {
    int n = u == 0 ? 50 : 5 + int(rng() % 20);  // user 0 has only 9 unseen items besides its target
    std::vector<int32_t> perm(items);
    for (int32_t i = 0; i < items; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < n; ++j) {
      seen.push_back(u, perm[j]);
      seen_sets[u].insert(perm[j]);
    }
    test.push_back(u, perm[n]);
  }
  auto run = [&](int threads, uint64_t seed, std::vector<std::vector<int32_t>>& cands) {
    cands.assign(users, {});
    std::mutex mu;
    RankingEvaluator ev(seen, users, items,
                        RankingOptions().ks({1, 5, 10}).sampled_negatives(n_neg).seed(seed).threads(threads));
    return ev.evaluate(test, [&](int32_t u, const std::vector<int32_t>& it, std::vector<float>& out) {
      {
        std::lock_guard<std::mutex> lock(mu);
        cands[u] = it;
      }
      score_by_id(u, it, out);
    });
  };
  std::vector<std::vector<int32_t>> c1, c4, c_other;
  RankingReport r1 = run(1, 42, c1), r4 = run(4, 42, c4), r_other = run(4, 43, c_other);
  EXPECT_EQ(c1, c4);
  EXPECT_EQ(r1.metrics, r4.metrics);  // bitwise identical, not just close
  EXPECT_NE(c1, c_other);
  EXPECT_NE(r1.protocol.find("15 sampled"), std::string::npos) << r1.protocol;

  double mrr_sum = 0;
  for (int32_t u = 0; u < users; ++u) {
    const auto& c = c1[u];
    ASSERT_FALSE(c.empty());
    EXPECT_EQ(c[0], test.item[u]);
    size_t expect = u == 0 ? 9 : n_neg;  // fewer unseen items than N: all of them
    EXPECT_EQ(c.size(), expect + 1) << "user " << u;
    std::set<int32_t> negs(c.begin() + 1, c.end());
    EXPECT_EQ(negs.size(), c.size() - 1) << "duplicate negatives for user " << u;
    for (int32_t i : negs) {
      EXPECT_EQ(seen_sets[u].count(i), 0u) << "seen item " << i << " sampled for user " << u;
      EXPECT_NE(i, c[0]);
    }
    int64_t rank = 0;
    for (int32_t i : negs) rank += i >= c[0];
    mrr_sum += 1.0 / (rank + 1);
  }
  EXPECT_NEAR(r1.at("MRR"), mrr_sum / users, 1e-12);
  EXPECT_EQ(r1.users, users);
}

TEST(RankingEvaluator, RecallWithSeveralTargetsIsPerUserOverTheTopK) {
  // Score = item id over 10 items, nothing seen. User 0 has targets 9 and 8: each ranks first
  // among the negatives (HR@1 counts both), but only one fits in the top 1 (Recall@1 = 1/2).
  // User 1's target 0 ranks last. User 2 holds item 5 twice: one relevant item, rank 4.
  Interactions test = test::interactions_of({{0, 9}, {0, 8}, {1, 0}, {2, 5}, {2, 5}});
  RankingEvaluator ev(Interactions{}, 3, 10, RankingOptions().ks({1, 2, 5}).threads(2));
  RankingReport r = ev.evaluate(test, score_by_id);
  EXPECT_EQ(r.users, 3);
  EXPECT_EQ(r.targets, 5);
  EXPECT_NEAR(r.at("HR@1"), 2.0 / 5, 1e-12);
  EXPECT_NEAR(r.at("HR@5"), 4.0 / 5, 1e-12);
  EXPECT_NEAR(r.at("Recall@1"), (0.5 + 0 + 0) / 3, 1e-12);
  EXPECT_NEAR(r.at("Recall@2"), (1.0 + 0 + 0) / 3, 1e-12);
  EXPECT_NEAR(r.at("Recall@5"), (1.0 + 0 + 1.0) / 3, 1e-12);
  // The same as metrics.h's recall_at_k on user 0's ranked list.
  EXPECT_NEAR(recall_at_k({9, 8, 7, 6}, {9, 8}, 1), 0.5, 1e-12);
}

TEST(RankingEvaluator, ReportsOfUserChunksMergeToTheWholeReport) {
  // Users with different numbers of targets: a merge weighted by users alone would be wrong.
  Interactions seen = test::interactions_of({{0, 1}, {2, 7}});
  Interactions all = test::interactions_of({{0, 9}, {0, 8}, {0, 2}, {1, 0}, {2, 5}, {2, 6}, {3, 4}});
  RankingEvaluator ev(seen, 4, 10, RankingOptions().ks({1, 3}).threads(1));
  RankingReport whole = ev.evaluate(all, score_by_id);
  RankingReport a = ev.evaluate(test::interactions_of({{0, 9}, {0, 8}, {0, 2}}), score_by_id);
  RankingReport b = ev.evaluate(test::interactions_of({{1, 0}, {2, 5}, {2, 6}, {3, 4}}), score_by_id);
  RankingReport merged = merge_ranking_reports({a, b});
  EXPECT_EQ(merged.users, whole.users);
  EXPECT_EQ(merged.targets, whole.targets);
  EXPECT_EQ(merged.protocol, whole.protocol);
  ASSERT_EQ(merged.metrics.size(), whole.metrics.size());
  for (const auto& [name, v] : whole.metrics) EXPECT_NEAR(merged.at(name), v, 1e-12) << name;
  EXPECT_NE(whole.at("HR@3"), whole.at("Recall@3"));
}

TEST(RankingEvaluator, NanTargetIsAMissAndNanNegativeRanksAhead) {
  // Three items, K=5 longer than the candidate list: a NaN target must still miss. User 1's
  // target (score 2) has a NaN negative ahead of it (pessimistic) and item 1 (score 1) behind.
  Interactions test = test::interactions_of({{0, 0}, {1, 2}});
  RankingEvaluator ev(Interactions{}, 2, 3, RankingOptions().ks({1, 5}).threads(1));
  RankingReport r = ev.evaluate(test, [](int32_t u, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.resize(items.size());
    for (size_t j = 0; j < items.size(); ++j)
      out[j] = items[j] == 0 ? std::numeric_limits<float>::quiet_NaN() : float(items[j]);
  });
  EXPECT_DOUBLE_EQ(r.at("HR@5"), 0.5);
  EXPECT_DOUBLE_EQ(r.at("HR@1"), 0.0);
  EXPECT_DOUBLE_EQ(r.at("Recall@5"), 0.5);
  EXPECT_DOUBLE_EQ(r.at("MRR"), (0.0 + 0.5) / 2);
}

TEST(RankingEvaluator, RejectsBadInput) {
  Interactions seen = test::interactions_of({{0, 1}});
  RankingEvaluator ev(seen, 2, 5, RankingOptions().threads(1));
  EXPECT_THROW(ev.evaluate(Interactions{}, score_by_id), Error);
  EXPECT_THROW(ev.evaluate(test::interactions_of({{2, 1}}), score_by_id), Error);
  EXPECT_THROW(ev.evaluate(test::interactions_of({{0, 5}}), score_by_id), Error);
  EXPECT_THROW(ev.evaluate(test::interactions_of({{0, 2}}),
                           [](int32_t, const std::vector<int32_t>&, std::vector<float>& out) { out.assign(1, 0.f); }),
               Error);
  EXPECT_THROW(RankingEvaluator(test::interactions_of({{0, 7}}), 2, 5), Error);
  EXPECT_THROW(RankingEvaluator(seen, 2, 5, RankingOptions().ks({0})), Error);
  // An exception thrown by the scoring function in a worker thread reaches the caller.
  RankingEvaluator ev4(seen, 2, 5, RankingOptions().threads(4));
  EXPECT_THROW(ev4.evaluate(test::interactions_of({{0, 2}, {1, 3}}),
                            [](int32_t, const std::vector<int32_t>&, std::vector<float>&) { throw Error("boom"); }),
               Error);
}

}  // namespace mtrec
