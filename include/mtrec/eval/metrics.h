#pragma once
// Evaluation metrics. Conventions (tested against hand-computed values):
//  - AUC counts ties between a positive and a negative as one half; it is NaN when either
//    class is empty. GAUC is the mean of per-group AUCs weighted by group size, skipping
//    groups with only one class.
//  - Ranking metrics take the 0-based rank of the target among the candidates (0 = top);
//    rank >= k misses. NDCG@K for a single target is 1/log2(rank+2). Ties in score are
//    resolved pessimistically by rank_of_target (the target is placed after every candidate
//    with an equal score), so all-equal scores never flatter a model.
//  - Recall@K with several relevant items: |relevant in top K| / |relevant|; users with no
//    relevant items are skipped by the evaluator (they carry no signal).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mtrec {

double rmse(const std::vector<float>& pred, const std::vector<float>& truth);
double mae(const std::vector<float>& pred, const std::vector<float>& truth);
/// labels are 0/1.
double auc(const std::vector<float>& score, const std::vector<float>& label);
double gauc(const std::vector<float>& score, const std::vector<float>& label, const std::vector<int32_t>& group);
/// Mean binary cross-entropy; probabilities are clipped to [1e-7, 1-1e-7].
double logloss(const std::vector<float>& prob, const std::vector<float>& label);
double accuracy(const std::vector<float>& prob, const std::vector<float>& label, float threshold = 0.5f);
/// F1 of the positive class; 0 when there are no predicted and no true positives.
double f1_score(const std::vector<float>& prob, const std::vector<float>& label, float threshold = 0.5f);

/// 0-based rank of candidate `target` among `scores` (pessimistic on ties).
int64_t rank_of_target(const std::vector<float>& scores, size_t target);
double hit_at_k(int64_t rank, int k);
double ndcg_at_k(int64_t rank, int k);
double mrr(int64_t rank);
/// Recall@K for a ranked list of item ids and a set of relevant ids.
double recall_at_k(const std::vector<int32_t>& ranked, const std::vector<int32_t>& relevant, int k);
/// NDCG@K with several relevant items (binary gains; ideal DCG over min(|relevant|, K)).
double ndcg_at_k(const std::vector<int32_t>& ranked, const std::vector<int32_t>& relevant, int k);

}  // namespace mtrec
