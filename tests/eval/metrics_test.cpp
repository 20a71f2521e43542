#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mtrec/core/check.h"
#include "mtrec/eval/metrics.h"

namespace mtrec {

TEST(Metrics, RmseMae) {
  std::vector<float> pred = {3.0f, 4.0f, 1.0f}, truth = {4.0f, 4.0f, 3.0f};
  EXPECT_NEAR(rmse(pred, truth), std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_NEAR(mae(pred, truth), 1.0, 1e-12);
  EXPECT_THROW(rmse({}, {}), Error);
  EXPECT_THROW(mae({1.0f}, {1.0f, 2.0f}), Error);
}

TEST(Metrics, AucHandValues) {
  // Positives 0.35 (beats 0.1, loses to 0.4) and 0.8 (beats both): 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(auc({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 0.75);
  // Positive 0.5 ties negative 0.5 (half) and beats 0.2; positive 0.9 beats both: 3.5 / 4.
  EXPECT_DOUBLE_EQ(auc({0.5f, 0.5f, 0.2f, 0.9f}, {1, 0, 0, 1}), 0.875);
  EXPECT_DOUBLE_EQ(auc({0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, {1, 0, 1, 0, 0}), 0.5);
  EXPECT_DOUBLE_EQ(auc({0.9f, 0.1f}, {0, 1}), 0.0);
}

TEST(Metrics, AucEdgeCases) {
  EXPECT_TRUE(std::isnan(auc({0.1f, 0.2f}, {0, 0})));
  EXPECT_TRUE(std::isnan(auc({0.1f, 0.2f}, {1, 1})));
  EXPECT_THROW(auc({}, {}), Error);
  EXPECT_THROW(auc({0.1f, 0.2f}, {0}), Error);
  EXPECT_THROW(auc({0.1f, 0.2f}, {0, 2}), Error);
  EXPECT_THROW(auc({NAN, 0.2f}, {0, 1}), Error);
}

TEST(Metrics, AucMatchesPairwiseOracleWithManyTies) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(0, 5), coin(0, 1);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> s, l;
    for (int i = 0; i < 60; ++i) {
      s.push_back(level(rng) * 0.1f);
      l.push_back(float(coin(rng)));
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < s.size(); ++i)
      for (size_t j = 0; j < s.size(); ++j)
        if (l[i] == 1 && l[j] == 0) {
          den += 1;
          num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
        }
    EXPECT_NEAR(auc(s, l), num / den, 1e-12);
  }
}

TEST(Metrics, GaucWeightsBySizeAndSkipsOneClassGroups) {
  // group 7: AUC 0.75 over 4 rows; group 3: AUC 0 over 3 rows; group 5: positives only, skipped.
  std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f, 0.9f, 0.2f, 0.3f, 0.7f, 0.1f};
  std::vector<float> l = {0, 0, 1, 1, 0, 1, 0, 1, 1};
  std::vector<int32_t> g = {7, 7, 7, 7, 3, 3, 3, 5, 5};
  EXPECT_NEAR(gauc(s, l, g), (0.75 * 4 + 0.0 * 3) / 7, 1e-12);
  EXPECT_TRUE(std::isnan(gauc({0.1f, 0.2f}, {1, 1}, {0, 1})));
  EXPECT_THROW(gauc(s, l, {1, 2}), Error);
}

TEST(Metrics, Logloss) {
  EXPECT_NEAR(logloss({0.9f, 0.2f}, {1, 0}), -(std::log(0.9) + std::log(0.8)) / 2, 1e-6);
  // Clipping keeps certainty finite: p=0 for a positive costs -log(1e-7).
  EXPECT_NEAR(logloss({0.0f}, {1}), -std::log(1e-7), 1e-6);
  EXPECT_NEAR(logloss({1.0f}, {1}), 1e-7, 1e-9);
  EXPECT_THROW(logloss({}, {}), Error);
}

TEST(Metrics, AccuracyAndF1OnConfusionMatrix) {
  // Threshold 0.5: TP = rows 0,3; FP = rows 1,5; FN = row 2; TN = row 4.
  std::vector<float> p = {0.9f, 0.8f, 0.3f, 0.6f, 0.1f, 0.7f};
  std::vector<float> l = {1, 0, 1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(accuracy(p, l), 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(f1_score(p, l), 2.0 * 2 / (2.0 * 2 + 2 + 1));  // precision 1/2, recall 2/3
  EXPECT_DOUBLE_EQ(f1_score(p, l, 0.85f), 2.0 * 1 / (2.0 * 1 + 0 + 2));
  EXPECT_DOUBLE_EQ(f1_score({0.1f, 0.2f}, {0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(accuracy({0.5f}, {1}), 1.0);  // prob >= threshold is positive
}

TEST(Metrics, RankOfTargetIsPessimisticOnTies) {
  EXPECT_EQ(rank_of_target({0.3f, 0.9f, 0.3f, 0.1f}, 0), 2);
  EXPECT_EQ(rank_of_target({0.3f, 0.9f, 0.3f, 0.1f}, 1), 0);
  EXPECT_EQ(rank_of_target({0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, 2), 4);
  EXPECT_EQ(rank_of_target({NAN, 0.1f, 0.2f}, 0), 2);
  EXPECT_THROW(rank_of_target({0.1f}, 1), Error);
}

TEST(Metrics, SingleTargetRankingMetrics) {
  EXPECT_DOUBLE_EQ(ndcg_at_k(0, 10), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(2, 10), 0.5);  // 1 / log2(4)
  EXPECT_DOUBLE_EQ(ndcg_at_k(9, 10), 1.0 / std::log2(11.0));
  EXPECT_DOUBLE_EQ(ndcg_at_k(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(hit_at_k(4, 5), 1.0);
  EXPECT_DOUBLE_EQ(hit_at_k(5, 5), 0.0);
  EXPECT_DOUBLE_EQ(mrr(2), 1.0 / 3.0);
  EXPECT_THROW(hit_at_k(0, 0), Error);
  EXPECT_THROW(ndcg_at_k(-1, 5), Error);
}

TEST(Metrics, MultiTargetRecallAndNdcg) {
  std::vector<int32_t> ranked = {5, 3, 9, 1, 7};
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, {3, 7, 8}, 3), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, {3, 7, 8}, 100), 2.0 / 3.0);  // K past the list end
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, {3, 7}, 5), (1 / std::log2(3.0) + 1 / std::log2(6.0)) / (1 + 1 / std::log2(3.0)));
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranked, {5}, 1), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k({3, 3, 5}, {3, 5}, 3), (1 + 1 / std::log2(4.0)) / (1 + 1 / std::log2(3.0)));
  EXPECT_THROW(recall_at_k(ranked, {}, 5), Error);
  EXPECT_THROW(ndcg_at_k(ranked, std::vector<int32_t>{3}, 0), Error);
}

}  // namespace mtrec
