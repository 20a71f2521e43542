#include "mtrec/eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "../core/parallel.h"

#include "mtrec/core/check.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/eval/protocols.h"

namespace mtrec {

double RankingReport::at(const std::string& name) const {
  auto it = metrics.find(name);
  if (it == metrics.end()) {
    std::string have;
    for (const auto& [k, v] : metrics) have += (have.empty() ? "" : ", ") + k;
    MTREC_CHECK(false, "ranking report has no metric '", name, "' (has: ", have, ")");
  }
  return it->second;
}

RankingEvaluator::RankingEvaluator(const Interactions& seen, int32_t num_users, int32_t num_items,
                                   RankingOptions options)
    : num_items_(num_items), options_(std::move(options)) {
  MTREC_CHECK(num_users > 0 && num_items > 0, "RankingEvaluator needs a non-empty catalogue, got ", num_users,
              " users and ", num_items, " items");
  MTREC_CHECK(!options_.ks().empty(), "RankingEvaluator needs at least one K");
  for (int k : options_.ks()) MTREC_CHECK(k > 0, "RankingEvaluator: every K must be > 0, got ", k);
  MTREC_CHECK(options_.sampled_negatives() >= 0, "sampled_negatives must be >= 0, got ", options_.sampled_negatives());
  MTREC_CHECK(options_.threads() >= 0, "threads must be >= 0, got ", options_.threads());
  seen.check_consistent();
  seen_.resize(num_users);
  for (size_t r = 0; r < seen.size(); ++r) {
    int32_t u = seen.user[r], i = seen.item[r];
    MTREC_CHECK(u >= 0 && u < num_users, "seen interaction ", r, ": user ", u, " outside [0, ", num_users, ")");
    MTREC_CHECK(i >= 0 && i < num_items, "seen interaction ", r, ": item ", i, " outside [0, ", num_items, ")");
    seen_[u].push_back(i);
  }
  for (auto& v : seen_) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
}

namespace {

// Sums of per-target metrics for one user (hr, ndcg, mrr) and the user's Recall@K, in the
// report's K order.
struct UserSums {
  std::vector<double> hr, ndcg, recall;
  double mrr = 0;
  int64_t targets = 0;
};

}  // namespace

RankingReport RankingEvaluator::evaluate(const Interactions& test, const ScoreFn& score) const {
  MTREC_CHECK(!test.empty(), "RankingEvaluator::evaluate: no test interactions");
  MTREC_CHECK(static_cast<bool>(score), "RankingEvaluator::evaluate: empty scoring function");
  test.check_consistent();
  const int32_t num_users = static_cast<int32_t>(seen_.size());
  std::vector<std::vector<int32_t>> targets(num_users);
  for (size_t r = 0; r < test.size(); ++r) {
    int32_t u = test.user[r], i = test.item[r];
    MTREC_CHECK(u >= 0 && u < num_users, "test interaction ", r, ": user ", u, " outside [0, ", num_users, ")");
    MTREC_CHECK(i >= 0 && i < num_items_, "test interaction ", r, ": item ", i, " outside [0, ", num_items_, ")");
    targets[u].push_back(i);
  }
  std::vector<int32_t> users;
  for (int32_t u = 0; u < num_users; ++u) {
    if (!targets[u].empty()) users.push_back(u);
  }

  const auto& ks = options_.ks();
  const int n_neg = options_.sampled_negatives();
  // Per user: candidates = the user's targets, then negatives (items neither seen nor a target
  // of that user, so one held-out item never counts against another). Each target is ranked
  // against the negatives only.
  auto eval_user = [&](int32_t u, UserSums& out) {
    std::vector<int32_t> tgt = targets[u];
    std::vector<int32_t> tgt_sorted = tgt;
    std::sort(tgt_sorted.begin(), tgt_sorted.end());
    tgt_sorted.erase(std::unique(tgt_sorted.begin(), tgt_sorted.end()), tgt_sorted.end());
    // Targets first, then the negatives (protocols.h draws them).
    std::vector<int32_t> cand = tgt;
    const size_t n_tgt = tgt.size();
    const std::vector<int32_t> neg = ranking_negatives(u, seen_[u], tgt_sorted, num_items_, n_neg, options_.seed());
    cand.insert(cand.end(), neg.begin(), neg.end());

    std::vector<float> s;
    score(u, cand, s);
    MTREC_CHECK(s.size() == cand.size(), "scoring function returned ", s.size(), " scores for ", cand.size(),
                " candidates of user ", u);
    out.hr.assign(ks.size(), 0.0);
    out.ndcg.assign(ks.size(), 0.0);
    out.recall.assign(ks.size(), 0.0);
    // Per target: its rank among the negatives (HR, NDCG, MRR), pessimistic on ties; a NaN
    // negative ranks ahead of every target, a NaN target is a miss whatever K.
    std::vector<int64_t> neg_rank(n_tgt, 0);
    for (size_t t = 0; t < n_tgt; ++t) {
      const float st = s[t];
      if (std::isnan(st)) {
        neg_rank[t] = std::numeric_limits<int64_t>::max();
        continue;
      }
      int64_t rank = 0;
      for (size_t j = n_tgt; j < s.size(); ++j) rank += !(s[j] < st);
      neg_rank[t] = rank;
      for (size_t k = 0; k < ks.size(); ++k) {
        out.hr[k] += hit_at_k(rank, ks[k]);
        out.ndcg[k] += ndcg_at_k(rank, ks[k]);
      }
      out.mrr += mrr(rank);
    }
    // Recall@K = |distinct targets in the top K| / |distinct targets| over one list of all the
    // candidates (targets and negatives together): negatives come first on ties, and targets
    // keep score order among themselves, so a target's position is its rank among the
    // negatives plus the number of distinct targets before it.
    std::vector<size_t> distinct;  // first copy of each distinct target item
    {
      std::vector<int32_t> met;
      for (size_t t = 0; t < n_tgt; ++t) {
        auto at = std::lower_bound(met.begin(), met.end(), tgt[t]);
        if (at != met.end() && *at == tgt[t]) continue;
        met.insert(at, tgt[t]);
        distinct.push_back(t);
      }
    }
    std::stable_sort(distinct.begin(), distinct.end(), [&](size_t a, size_t b) {
      if (std::isnan(s[a]) || std::isnan(s[b])) return !std::isnan(s[a]) && std::isnan(s[b]);
      return s[a] > s[b];
    });
    for (size_t p = 0; p < distinct.size(); ++p) {
      const int64_t r = neg_rank[distinct[p]];
      if (r == std::numeric_limits<int64_t>::max()) continue;  // NaN target
      for (size_t k = 0; k < ks.size(); ++k) out.recall[k] += (r + static_cast<int64_t>(p) < ks[k]) ? 1.0 : 0.0;
    }
    for (auto& v : out.recall) v /= static_cast<double>(distinct.size());
    out.targets = static_cast<int64_t>(n_tgt);
  };

  std::vector<UserSums> sums(users.size());
  detail::parallel_for(users.size(), options_.threads(), 1, [&](size_t j) { eval_user(users[j], sums[j]); });

  // Reduce in user order: identical sums whatever the thread count.
  RankingReport report;
  std::vector<double> hr(ks.size(), 0.0), ndcg(ks.size(), 0.0), recall(ks.size(), 0.0);
  double total_mrr = 0;
  int64_t total = 0;
  for (const auto& us : sums) {
    for (size_t k = 0; k < ks.size(); ++k) {
      hr[k] += us.hr[k];
      ndcg[k] += us.ndcg[k];
      recall[k] += us.recall[k];
    }
    total_mrr += us.mrr;
    total += us.targets;
  }
  const double n_users = static_cast<double>(users.size());
  for (size_t k = 0; k < ks.size(); ++k) {
    const std::string suffix = "@" + std::to_string(ks[k]);
    report.metrics["HR" + suffix] = hr[k] / total;
    report.metrics["NDCG" + suffix] = ndcg[k] / total;
    report.metrics["Recall" + suffix] = recall[k] / n_users;  // per user (metrics.h)
  }
  report.metrics["MRR"] = total_mrr / total;
  report.targets = total;
  report.users = static_cast<int64_t>(users.size());
  report.protocol = n_neg == 0 ? "full ranking, seen items excluded"
                               : std::to_string(n_neg) + " sampled unseen negatives per user (seed " +
                                     std::to_string(options_.seed()) + "), seen items excluded";
  return report;
}

RankingReport merge_ranking_reports(const std::vector<RankingReport>& parts) {
  RankingReport total;
  for (const auto& r : parts) {
    if (r.users == 0) continue;
    MTREC_CHECK(r.targets >= r.users, "merge_ranking_reports: a report of ", r.users, " users has ", r.targets,
                " targets (at least one per user expected)");
    if (total.users == 0) {
      total.protocol = r.protocol;
    } else {
      MTREC_CHECK(r.protocol == total.protocol, "merge_ranking_reports: protocols differ ('", total.protocol, "' and '",
                  r.protocol, "')");
    }
    for (const auto& [name, v] : r.metrics) {
      const bool per_user = name.rfind("Recall@", 0) == 0;
      total.metrics[name] += v * static_cast<double>(per_user ? r.users : r.targets);
    }
    total.users += r.users;
    total.targets += r.targets;
  }
  for (auto& [name, v] : total.metrics) {
    const bool per_user = name.rfind("Recall@", 0) == 0;
    v /= static_cast<double>(per_user ? total.users : total.targets);
  }
  return total;
}

}  // namespace mtrec
