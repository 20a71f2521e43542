// `mtrec train --task knn`: user/item KNN collaborative filtering (cf/knn.h).
//   mtrec train --task knn --dataset ml-100k --data-dir DIR --split u1 --json k.json       RMSE/MAE
//   mtrec train --task knn --dataset ml-100k --data-dir DIR --split loo --out knn.ckpt     HR/NDCG@10
//   mtrec eval --checkpoint knn.ckpt --dataset ml-100k --data-dir DIR --split loo
// Defaults follow the two protocols: rating folds use item-based Pearson-baseline similarity,
// k 40, shrinkage 100, with baseline (bench/quality_knn's best row); leave-one-out ranking
// treats every rating as a positive and uses cosine, k 50, no shrinkage, no baseline (the
// sums of similarities are the score; a baseline would only add the item bias).
// The checkpoint (model/io.h's knn_checkpoint) stores KnnModel::to_bytes as the tensor "knn".
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "mtrec/cf/knn.h"
#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/eval/protocols.h"
#include "train_registry.h"

namespace mtrec::cli {
namespace {

struct KnnArgs {
  std::string kind, similarity;  // empty: per-protocol default
  int k = 0;                     // 0: per-protocol default
  double shrinkage = -1;         // < 0: per-protocol default
  int baseline = -1;             // -1: per-protocol default, 0 off, 1 on
};
KnnArgs& knn_args() {
  static KnnArgs a;
  return a;
}

void add_knn_options(CLI::App* cmd) {
  auto& a = knn_args();
  cmd->add_option("--knn-kind", a.kind, "knn: user|item (default item)");
  cmd->add_option("--similarity", a.similarity,
                  "knn: cosine|adjusted_cosine|pearson|pearson_baseline (default: pearson_baseline for ratings, "
                  "cosine for loo)");
  cmd->add_option("--k", a.k, "knn: neighbours per prediction (default 40 ratings, 50 loo)");
  cmd->add_option("--shrinkage", a.shrinkage, "knn: similarity shrinkage (default 100 ratings, 0 loo)");
  cmd->add_option("--baseline", a.baseline,
                  "knn: 1 predicts residuals around mu + b_u + b_i, 0 not "
                  "(default 1 ratings, 0 loo)");
}

bool ranking_split(const TrainArgs& a) { return a.split == "loo"; }

KnnOptions knn_options(const TrainArgs& t) {
  const auto& a = knn_args();
  const bool rank = ranking_split(t);
  KnnOptions o;
  o.kind(a.kind.empty() ? KnnKind::Item : parse_knn_kind(a.kind));
  o.similarity(!a.similarity.empty() ? parse_knn_similarity(a.similarity)
                                     : (rank ? KnnSimilarity::Cosine : KnnSimilarity::PearsonBaseline));
  o.k(a.k > 0 ? a.k : (rank ? 50 : 40));
  o.shrinkage(a.shrinkage >= 0 ? a.shrinkage : (rank ? 0 : 100));
  o.baseline(a.baseline >= 0 ? a.baseline != 0 : !rank);
  return o;
}

nlohmann::json options_json(const KnnOptions& o) {
  return {{"kind", std::string(to_string(o.kind()))},
          {"similarity", std::string(to_string(o.similarity()))},
          {"k", o.k()},
          {"shrinkage", o.shrinkage()},
          {"baseline", o.baseline()}};
}

/// RMSE / MAE of the model's predictions on rated `test` rows.
nlohmann::json rating_metrics(const KnnModel& m, const Interactions& test) {
  MTREC_CHECK(test.has_rating, "knn rating evaluation needs rated test rows");
  auto pred = m.predict(test);
  double se = 0, ae = 0;
  for (size_t k = 0; k < pred.size(); ++k) {
    const double e = double(pred[k]) - test.rating[k];
    se += e * e;
    ae += std::fabs(e);
  }
  const double n = std::max<double>(1, double(pred.size()));
  return {{"rmse", std::sqrt(se / n)}, {"mae", ae / n}, {"test_count", pred.size()}};
}

/// HR/NDCG@10 of KnnModel::score, full ranking and among 100 sampled negatives.
nlohmann::json ranking_metrics(const KnnModel& m, const Interactions& seen, const Interactions& test, int32_t users,
                               int32_t items, uint64_t seed) {
  nlohmann::json j;
  ScoreFn fn = [&m](int32_t u, const std::vector<int32_t>& c, std::vector<float>& out) { m.score(u, c, out); };
  for (int neg : {0, kRankingNegatives}) {
    RankingEvaluator ev(seen, users, items, ranking_protocol(neg, seed));
    auto r = ev.evaluate(test, fn);
    const std::string key = neg ? "sampled100" : "full";
    j[key] = ranking_json(r);
    j["hr@10_" + key] = r.at("HR@10");
    j["ndcg@10_" + key] = r.at("NDCG@10");
    log_info("knn ({}): HR@10 {:.4f}, NDCG@10 {:.4f} ({} users)", neg ? "100 sampled negatives" : "full ranking",
             r.at("HR@10"), r.at("NDCG@10"), r.users);
  }
  return j;
}

nlohmann::json train_knn(const TrainArgs& args, const CliContext& ctx) {
  TrainArgs a = args;
  const bool rank = ranking_split(a);
  a.positives_only = rank;  // synthetic: drop impressions for top-N
  auto d = load_data(a, ctx);
  auto t0 = std::chrono::steady_clock::now();
  const KnnOptions o = knn_options(a);
  auto& x = d.data.interactions;
  Interactions train = x.subset(known_rows(d.split)), test = x.subset(d.split.test);
  if (rank) train.has_rating = test.has_rating = false;  // every interaction is a positive
  KnnModel m(o);
  m.fit(train, d.data.num_users(), d.data.num_items());
  const double fit_s = seconds_since(t0);
  auto j = run_info(a, ctx, d);
  j["knn"] = options_json(o);
  j["fit_s"] = fit_s;
  if (rank) {
    j.update(ranking_metrics(m, train, test, d.data.num_users(), d.data.num_items(), ctx.seed));
  } else {
    j.update(rating_metrics(m, test));
    log_info("knn: test RMSE {:.4f}, MAE {:.4f} ({} ratings)", j["rmse"].get<double>(), j["mae"].get<double>(),
             j["test_count"].get<size_t>());
  }
  j["wall_s"] = seconds_since(t0);
  if (!a.out.empty()) save_export(a.out, knn_checkpoint(m, d.data.users, d.data.items, rank), d, ctx);
  return j;
}

nlohmann::json eval_knn(const Checkpoint& ck, const TrainArgs& args, const CliContext& ctx) {
  KnnModel m = knn_from_checkpoint(ck);
  TrainArgs a = args;
  const bool rank = ranking_split(a);
  a.positives_only = rank;
  auto d = load_data(a, ctx);
  int64_t dropped = 0;
  auto& x = d.data.interactions;
  auto test = to_checkpoint_ids(x.subset(d.split.test), d.data, ck, dropped);
  auto j = run_info(a, ctx, d);
  j["knn"] = options_json(m.options());
  if (rank) {
    auto seen = to_checkpoint_ids(x.subset(known_rows(d.split)), d.data, ck, dropped);
    j.update(ranking_metrics(m, seen, test, m.num_users(), m.num_items(), ctx.seed));
  } else {
    j.update(rating_metrics(m, test));
    log_info("knn: RMSE {:.4f}, MAE {:.4f} ({} ratings)", j["rmse"].get<double>(), j["mae"].get<double>(),
             j["test_count"].get<size_t>());
  }
  j["unknown_ids_dropped"] = dropped;
  return j;
}

MTREC_TRAIN_TASK(TrainTask{"knn", "user/item KNN: RMSE/MAE on rating folds, HR/NDCG@10 on --split loo", train_knn,
                           eval_knn, add_knn_options});

}  // namespace
}  // namespace mtrec::cli
