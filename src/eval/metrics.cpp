#include "mtrec/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {

void check_pair(const char* metric, size_t a, size_t b) {
  MTREC_CHECK(a == b, metric, ": predictions and labels differ in length (", a, " vs ", b, ")");
  MTREC_CHECK(a > 0, metric, ": empty input");
}

void check_binary(const char* metric, const std::vector<float>& label) {
  for (size_t i = 0; i < label.size(); ++i) {
    MTREC_CHECK(label[i] == 0.0f || label[i] == 1.0f, metric, ": labels must be 0 or 1, got label[", i, "]=", label[i]);
  }
}

// AUC over the rows listed in `idx` (Mann-Whitney U): sort by score, walk the tie groups, and
// credit every positive with the negatives strictly below it plus half of those tied with it.
double auc_of(const std::vector<float>& score, const std::vector<float>& label, std::vector<size_t>& idx) {
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double pairs = 0, neg_below = 0, pos_total = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    double pos = 0, neg = 0;
    while (j < idx.size() && score[idx[j]] == score[idx[i]]) {
      (label[idx[j]] == 1.0f ? pos : neg) += 1;
      ++j;
    }
    pairs += pos * (neg_below + 0.5 * neg);
    neg_below += neg;
    pos_total += pos;
    i = j;
  }
  if (pos_total == 0 || neg_below == 0) return std::numeric_limits<double>::quiet_NaN();
  return pairs / (pos_total * neg_below);
}

void check_scores_finite(const char* metric, const std::vector<float>& score) {
  for (size_t i = 0; i < score.size(); ++i) {
    MTREC_CHECK(!std::isnan(score[i]), metric, ": score[", i, "] is NaN");
  }
}

}  // namespace

double rmse(const std::vector<float>& pred, const std::vector<float>& truth) {
  check_pair("rmse", pred.size(), truth.size());
  double s = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    double d = double(pred[i]) - truth[i];
    s += d * d;
  }
  return std::sqrt(s / pred.size());
}

double mae(const std::vector<float>& pred, const std::vector<float>& truth) {
  check_pair("mae", pred.size(), truth.size());
  double s = 0;
  for (size_t i = 0; i < pred.size(); ++i) s += std::abs(double(pred[i]) - truth[i]);
  return s / pred.size();
}

double auc(const std::vector<float>& score, const std::vector<float>& label) {
  check_pair("auc", score.size(), label.size());
  check_binary("auc", label);
  check_scores_finite("auc", score);
  std::vector<size_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  return auc_of(score, label, idx);
}

double gauc(const std::vector<float>& score, const std::vector<float>& label, const std::vector<int32_t>& group) {
  check_pair("gauc", score.size(), label.size());
  MTREC_CHECK(group.size() == score.size(), "gauc: groups and scores differ in length (", group.size(), " vs ",
              score.size(), ")");
  check_binary("gauc", label);
  check_scores_finite("gauc", score);
  std::unordered_map<int32_t, std::vector<size_t>> rows;
  std::vector<int32_t> order;  // first-seen order keeps the floating-point sum deterministic
  for (size_t i = 0; i < group.size(); ++i) {
    auto& r = rows[group[i]];
    if (r.empty()) order.push_back(group[i]);
    r.push_back(i);
  }
  double weighted = 0, weight = 0;
  for (int32_t g : order) {
    auto& idx = rows[g];
    double a = auc_of(score, label, idx);
    if (std::isnan(a)) continue;  // one class only: no pair to order
    weighted += a * idx.size();
    weight += idx.size();
  }
  return weight > 0 ? weighted / weight : std::numeric_limits<double>::quiet_NaN();
}

double logloss(const std::vector<float>& prob, const std::vector<float>& label) {
  check_pair("logloss", prob.size(), label.size());
  check_binary("logloss", label);
  constexpr double eps = 1e-7;
  double s = 0;
  for (size_t i = 0; i < prob.size(); ++i) {
    MTREC_CHECK(!std::isnan(prob[i]), "logloss: prob[", i, "] is NaN");
    double p = std::clamp(double(prob[i]), eps, 1 - eps);
    s -= label[i] == 1.0f ? std::log(p) : std::log(1 - p);
  }
  return s / prob.size();
}

// A prediction is positive when prob >= threshold.
double accuracy(const std::vector<float>& prob, const std::vector<float>& label, float threshold) {
  check_pair("accuracy", prob.size(), label.size());
  check_binary("accuracy", label);
  size_t correct = 0;
  for (size_t i = 0; i < prob.size(); ++i) correct += (prob[i] >= threshold) == (label[i] == 1.0f);
  return double(correct) / prob.size();
}

double f1_score(const std::vector<float>& prob, const std::vector<float>& label, float threshold) {
  check_pair("f1_score", prob.size(), label.size());
  check_binary("f1_score", label);
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < prob.size(); ++i) {
    bool p = prob[i] >= threshold, t = label[i] == 1.0f;
    tp += p && t;
    fp += p && !t;
    fn += !p && t;
  }
  double denom = 2 * tp + fp + fn;
  return denom > 0 ? 2 * tp / denom : 0.0;
}

// Every other candidate that does not score strictly below the target is ranked ahead of it:
// ties are pessimistic and a NaN (on either side) never helps the target.
int64_t rank_of_target(const std::vector<float>& scores, size_t target) {
  MTREC_CHECK(target < scores.size(), "rank_of_target: target index ", target, " out of range for ", scores.size(),
              " candidates");
  const float t = scores[target];
  int64_t rank = 0;
  for (size_t i = 0; i < scores.size(); ++i) rank += i != target && !(scores[i] < t);
  return rank;
}

double hit_at_k(int64_t rank, int k) {
  MTREC_CHECK(k > 0, "HR@K needs k > 0, got k=", k);
  MTREC_CHECK(rank >= 0, "HR@K: rank must be >= 0, got ", rank);
  return rank < k ? 1.0 : 0.0;
}

double ndcg_at_k(int64_t rank, int k) {
  MTREC_CHECK(k > 0, "NDCG@K needs k > 0, got k=", k);
  MTREC_CHECK(rank >= 0, "NDCG@K: rank must be >= 0, got ", rank);
  return rank < k ? 1.0 / std::log2(double(rank) + 2.0) : 0.0;
}

double mrr(int64_t rank) {
  MTREC_CHECK(rank >= 0, "MRR: rank must be >= 0, got ", rank);
  return 1.0 / (double(rank) + 1.0);
}

namespace {
std::vector<int32_t> sorted_unique(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
}  // namespace

double recall_at_k(const std::vector<int32_t>& ranked, const std::vector<int32_t>& relevant, int k) {
  MTREC_CHECK(k > 0, "Recall@K needs k > 0, got k=", k);
  MTREC_CHECK(!relevant.empty(), "Recall@K: no relevant items (such users carry no signal and must be skipped)");
  auto rel = sorted_unique(relevant);
  size_t n = std::min(ranked.size(), size_t(k));
  auto top = sorted_unique(std::vector<int32_t>(ranked.begin(), ranked.begin() + n));
  std::vector<int32_t> common;
  std::set_intersection(top.begin(), top.end(), rel.begin(), rel.end(), std::back_inserter(common));
  return double(common.size()) / rel.size();
}

double ndcg_at_k(const std::vector<int32_t>& ranked, const std::vector<int32_t>& relevant, int k) {
  MTREC_CHECK(k > 0, "NDCG@K needs k > 0, got k=", k);
  MTREC_CHECK(!relevant.empty(), "NDCG@K: no relevant items (such users carry no signal and must be skipped)");
  auto rel = sorted_unique(relevant);
  size_t n = std::min(ranked.size(), size_t(k));
  std::vector<int32_t> credited;  // an item listed twice earns its gain once
  double dcg = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t it = ranked[i];
    if (!std::binary_search(rel.begin(), rel.end(), it)) continue;
    if (std::find(credited.begin(), credited.end(), it) != credited.end()) continue;
    credited.push_back(it);
    dcg += 1.0 / std::log2(double(i) + 2.0);
  }
  double idcg = 0;
  for (size_t i = 0; i < std::min(rel.size(), size_t(k)); ++i) idcg += 1.0 / std::log2(double(i) + 2.0);
  return dcg / idcg;
}

}  // namespace mtrec
