// Quality of the single-task heads under the protocols of EVALUATION.md:
//   R  biased MF on the 5 official ML-100K folds (RMSE / MAE, per fold and mean) with both
//      solvers (Bayesian by Gibbs sampling, the default; SGD, the joint model's loss), and the
//      Bayesian MF's blend with item-KNN (Pearson-baseline, k 40, with baseline), α chosen on a
//      validation slice of each training fold
//   D  DMF, leave-one-out latest item, target among 100 sampled unseen items (HR@10 / NDCG@10)
//   C  CTR head: ML-100K u1 with rating >= 4 as positives, and the synthetic world per scenario
// Usage: quality_heads [--data-dir DIR] [--device auto|cpu|cuda] [--seed N] [--threads N] [--only R|D|C]
//                      [--folds N]   (protocol R on folds u1..uN only; default 5)
//                      [--no-movielens]  (only C's synthetic world; otherwise a --data-dir without
//                                         the MovieLens files is an error naming the missing file)
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "mtrec/cf/knn.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/random.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/fit.h"
#include "mtrec/train/fit_dmf.h"

using namespace mtrec;
using Clock = std::chrono::steady_clock;

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Row {
  std::string protocol, system, metric, value, anchor;
  double wall_s;
};
std::vector<Row> rows;

void add(std::string protocol, std::string system, std::string metric, std::string value, std::string anchor,
         double wall) {
  fmt::print("  {:<4} {:<34} {:<18} {:<16} {:>8.1f}s  {}\n", protocol, system, metric, value, wall, anchor);
  std::fflush(stdout);
  rows.push_back(
      {std::move(protocol), std::move(system), std::move(metric), std::move(value), std::move(anchor), wall});
}

std::vector<float> popularity(const Interactions& train, int32_t items) {
  std::vector<float> c(items, 0.0f);
  for (int32_t i : train.item) c[i] += 1;
  return c;
}

struct Errors {
  double rmse = 0, mae = 0;
};
Errors errors(const std::vector<float>& pred, const std::vector<float>& truth) {
  Errors e;
  for (size_t k = 0; k < pred.size(); ++k) {
    const double d = double(pred[k]) - truth[k];
    e.rmse += d * d;
    e.mae += std::fabs(d);
  }
  const double n = std::max<double>(1, double(pred.size()));
  e.rmse = std::sqrt(e.rmse / n);
  e.mae /= n;
  return e;
}

/// α·knn + (1−α)·mf. For rating prediction both sides already predict stars on one scale, and
/// RMSE is measured on that scale: the plain convex blend is the right normalisation (a
/// per-user z-score, as fusion.h does for ranking, would throw away the scale being scored).
std::vector<float> blend(const std::vector<float>& knn, const std::vector<float>& mf, double alpha) {
  std::vector<float> out(knn.size());
  for (size_t k = 0; k < knn.size(); ++k) out[k] = float(alpha * knn[k] + (1 - alpha) * mf[k]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, device = "auto", only;
  uint64_t seed = 42;
  int threads = 1;  // intra-op threads; the shared 2-core machine runs slower with more
  int folds = 5;
  bool no_movielens = false;
  if (const char* env = std::getenv("MTREC_DATA_DIR")) dir = std::string(env) + "/ml-100k";
  if (dir.empty()) dir = "../shared/data/ml-100k";
  CLI::App app{"Quality of the single-task heads under protocols R, D and C (EVALUATION.md)"};
  app.add_option("--data-dir", dir, "MovieLens 100K folder (u.data, u1..u5.base/.test)")->capture_default_str();
  app.add_option("--device", device, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--threads", threads, "Intra-op threads (0: LibTorch's default)")->capture_default_str();
  app.add_option("--only", only, "One protocol")->check(CLI::IsMember({"R", "D", "C"}));
  app.add_option("--folds", folds, "Protocol R on folds u1..uN only")->check(CLI::Range(1, 5))->capture_default_str();
  app.add_flag("--no-movielens", no_movielens, "Skip everything that reads MovieLens (only C's synthetic world runs)");
  CLI11_PARSE(app, argc, argv);
  auto want = [&](const char* p) { return only.empty() || only == p; };
  // Every file the requested protocols read: a wrong --data-dir fails here, naming the file,
  // rather than printing a table without the MovieLens rows.
  const bool have_ml = !no_movielens;
  if (have_ml) {
    std::vector<std::string> needed;
    if (want("D")) needed.push_back("u.data");
    if (want("R"))
      for (int f = 1; f <= folds; ++f)
        needed.insert(needed.end(), {fmt::format("u{}.base", f), fmt::format("u{}.test", f)});
    if (want("C")) needed.insert(needed.end(), {"u1.base", "u1.test"});
    for (const auto& f : needed) {
      if (!std::filesystem::exists(dir + "/" + f)) {
        fmt::print(stderr,
                   "quality_heads: {}/{} not found: --data-dir must name the MovieLens 100K folder "
                   "(or pass --no-movielens)\n",
                   dir, f);
        return 1;
      }
    }
  }
  set_log_level(LogLevel::Warn);
  seed_everything(seed);
  if (threads > 0) at::set_num_threads(threads);
  const auto dev = choose_device(device);
  fmt::print("quality_heads: seed {}, device {}, {} intra-op threads, ML-100K {}\n", seed, describe_device(dev),
             at::get_num_threads(), have_ml ? dir : "skipped (--no-movielens)");
  fmt::print("(timings are wall clock on a shared machine while other jobs compile)\n\n");
  fmt::print("  {:<4} {:<34} {:<18} {:<16} {:>9}  {}\n", "prot", "system", "metric", "value", "wall", "anchor");

  if (have_ml && want("R")) {
    Errors mf_sum, sgd_sum, knn_sum, fused_sum;
    auto t_all = Clock::now();
    const KnnOptions knn_options = KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::PearsonBaseline).k(40);
    std::vector<double> grid;
    for (int g = 0; g <= 20; ++g) grid.push_back(g / 20.0);
    for (int f = 1; f <= folds; ++f) {
      auto t = Clock::now();
      auto fold = read_movielens_100k_fold(dir, f);
      auto& x = fold.data.interactions;
      const int32_t users = fold.data.num_users(), items = fold.data.num_items();
      auto train = x.subset(fold.split.train), test = x.subset(fold.split.test);
      // Protocol M: one validation set carved from the fold's training rows serves every model.
      Split sv = fold_split(fold.split, kFoldValidFraction, seed);
      auto fit_part = x.subset(sv.train), valid_part = x.subset(sv.valid);
      auto task = fit_rating(fit_part, valid_part, users, items, RatingTrainOptions().seed(seed).device(device));
      auto mf_test = task.predict(test.user, test.item);
      Errors m = errors(mf_test, test.rating);
      mf_sum.rmse += m.rmse, mf_sum.mae += m.mae;
      add("R", fmt::format("Bayesian biased MF d{} fold u{}", task.model->options.dim(), f), "RMSE / MAE",
          fmt::format("{:.4f} / {:.4f}", m.rmse, m.mae), fmt::format("{} Gibbs sweeps", task.epochs_run), since(t));
      t = Clock::now();
      auto sgd =
          fit_rating(fit_part, valid_part, users, items, RatingTrainOptions().solver("sgd").seed(seed).device(device));
      Errors ms = errors(sgd.predict(test.user, test.item), test.rating);
      sgd_sum.rmse += ms.rmse, sgd_sum.mae += ms.mae;
      add("R", fmt::format("SGD biased MF d{} fold u{}", sgd.model->options.dim(), f), "RMSE / MAE",
          fmt::format("{:.4f} / {:.4f}", ms.rmse, ms.mae), fmt::format("{} epochs", sgd.epochs_run), since(t));

      // Fusion: α from a 5% validation slice of the training fold (both models refit without
      // it), never from the test fold; then both models on the whole training fold.
      t = Clock::now();
      Split vs = random_split(train, 0.05, 0.0, derive_seed(seed, "fusion-valid"));
      auto part = train.subset(vs.train), hold = train.subset(vs.test);
      auto mf_part = fit_rating(part, {}, users, items, RatingTrainOptions().seed(seed).device(device));
      KnnModel knn_part(knn_options);
      knn_part.fit(part, users, items);
      auto mf_hold = mf_part.predict(hold.user, hold.item), knn_hold = knn_part.predict(hold);
      AlphaChoice c =
          choose_alpha([&](double a) { return -errors(blend(knn_hold, mf_hold, a), hold.rating).rmse; }, grid);
      KnnModel knn(knn_options);
      knn.fit(train, users, items);
      auto knn_test = knn.predict(test);
      Errors k = errors(knn_test, test.rating), fu = errors(blend(knn_test, mf_test, c.alpha), test.rating);
      knn_sum.rmse += k.rmse, knn_sum.mae += k.mae;
      fused_sum.rmse += fu.rmse, fused_sum.mae += fu.mae;
      add("R", fmt::format("item-KNN pearson_baseline fold u{}", f), "RMSE / MAE",
          fmt::format("{:.4f} / {:.4f}", k.rmse, k.mae), "", 0);
      add("R", fmt::format("Bayesian MF + item-KNN fold u{}", f), "RMSE / MAE",
          fmt::format("{:.4f} / {:.4f}", fu.rmse, fu.mae),
          fmt::format("alpha {:.2f} (validation RMSE {:.4f}, {} rows)", c.alpha, -c.metric, hold.size()), since(t));
    }
    const double n = folds;
    add("R", fmt::format("Bayesian biased MF, mean of u1..u{}", folds), "RMSE / MAE",
        fmt::format("{:.4f} / {:.4f}", mf_sum.rmse / n, mf_sum.mae / n),
        "target <= .910; Surprise SVD .934/.737, SVD++ .919/.721, MyMediaLite best .891/.700", since(t_all));
    add("R", fmt::format("SGD biased MF, mean of u1..u{}", folds), "RMSE / MAE",
        fmt::format("{:.4f} / {:.4f}", sgd_sum.rmse / n, sgd_sum.mae / n), "", 0);
    add("R", fmt::format("item-KNN, mean of u1..u{}", folds), "RMSE / MAE",
        fmt::format("{:.4f} / {:.4f}", knn_sum.rmse / n, knn_sum.mae / n),
        "target <= .930; Surprise KNNBaseline .931/.733", 0);
    add("R", fmt::format("Bayesian MF + item-KNN, mean u1..u{}", folds), "RMSE / MAE",
        fmt::format("{:.4f} / {:.4f}", fused_sum.rmse / n, fused_sum.mae / n), "target <= .900", 0);
  }

  if (have_ml && want("D")) {
    auto t = Clock::now();
    Dataset ds = read_movielens_100k(dir);
    Split s = protocol_split(ds.interactions, "loo", seed);
    auto& x = ds.interactions;
    auto train = x.subset(s.train);
    RankingEvaluator ev(x.subset(known_rows(s)), ds.num_users(), ds.num_items(),
                        ranking_protocol(kRankingNegatives, seed));
    auto pop = std::make_shared<std::vector<float>>(popularity(train, ds.num_items()));
    auto rp = ev.evaluate(x.subset(s.test), [pop](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
      out.resize(items.size());
      for (size_t k = 0; k < items.size(); ++k) out[k] = (*pop)[items[k]];
    });
    add("D", "most popular (ML-100K, loo)", "HR@10 / NDCG@10",
        fmt::format("{:.4f} / {:.4f}", rp.at("HR@10"), rp.at("NDCG@10")), "", since(t));
    t = Clock::now();
    auto dmf =
        fit_dmf(train, x.subset(s.valid), ds.num_users(), ds.num_items(), DmfTrainOptions().seed(seed).device(device));
    const double fit_s = since(t);
    auto r0 = ev.evaluate(x.subset(s.test), dmf.score_fn());
    add("D", "DMF, towers read train rows only", "HR@10 / NDCG@10",
        fmt::format("{:.4f} / {:.4f}", r0.at("HR@10"), r0.at("NDCG@10")),
        "(the validation item missing from the input)", 0);
    // Scoring the test item, the towers read everything before it, as item-KNN fitted on
    // train + validation does (mtrec train --task knn --split loo).
    dmf.set_inputs(x.subset(known_rows(s)));
    auto r = ev.evaluate(x.subset(s.test), dmf.score_fn());
    add("D", "DMF 256-64 masked (ML-100K, loo)", "HR@10 / NDCG@10",
        fmt::format("{:.4f} / {:.4f}", r.at("HR@10"), r.at("NDCG@10")),
        fmt::format("{} epochs (best {}); ML-1M anchors: NeuMF .7120/.4369, ItemKNN .6596/.3900", dmf.epochs_run,
                    dmf.best_epoch),
        fit_s);
    t = Clock::now();
    // As `mtrec train --task knn --split loo`: every rating a positive (binary cosine).
    Interactions seen = x.subset(known_rows(s));
    seen.has_rating = false;
    KnnModel knn(KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::Cosine).shrinkage(0).baseline(false).k(50));
    knn.fit(seen, ds.num_users(), ds.num_items());
    auto rk = ev.evaluate(x.subset(s.test), [&knn](int32_t u, const std::vector<int32_t>& items,
                                                   std::vector<float>& out) { knn.score(u, items, out); });
    add("D", "item-KNN cosine k50 (ML-100K, loo)", "HR@10 / NDCG@10",
        fmt::format("{:.4f} / {:.4f}", rk.at("HR@10"), rk.at("NDCG@10")), "binary, fit on train + validation",
        since(t));
  }

  if (want("C")) {
    const int ratio = 4;
    if (have_ml) {
      auto t = Clock::now();
      auto fold = read_movielens_100k_fold(dir, 1);
      auto& x = fold.data.interactions;
      // One negative pool rule (ctr_negative_sampler), as `mtrec train --task ctr`: items the
      // user has no rating for (any rating). Training negatives avoid every u1.base row, test
      // negatives every row of u1.base and u1.test.
      auto train_rows = x.subset(fold.split.train);
      auto train_pos = ctr_positives(fold.data, train_rows);
      auto test = ctr_test_examples(x, ctr_positives(fold.data, x.subset(fold.split.test)), fold.data.num_users(),
                                    fold.data.num_items(), ratio, seed);
      // Protocol M: the validation positives come from one split of u1.base, as for R.
      Split sv = fold_split(fold.split, kFoldValidFraction, seed);
      auto ctr = fit_ctr(ctr_positives(fold.data, x.subset(sv.train)), ctr_positives(fold.data, x.subset(sv.valid)),
                         fold.data.num_users(), fold.data.num_items(), 1,
                         CtrTrainOptions().negatives(ratio).seed(seed).device(device), train_rows);
      auto m = ctr.evaluate(test);
      auto pc = popularity(train_pos, fold.data.num_items());
      std::vector<float> ps;
      for (int32_t i : test.item) ps.push_back(pc[i]);
      add("C", "most popular (ML-100K u1, r>=4, 1:4)", "AUC / GAUC",
          fmt::format("{:.4f} / {:.4f}", auc(ps, test.label), gauc(ps, test.label, test.user)), "", 0);
      add("C", "CTR MLP+dot (ML-100K u1, r>=4, 1:4)", "AUC / GAUC / LL",
          fmt::format("{:.4f} / {:.4f} / {:.4f}", m.auc, m.gauc, m.logloss),
          fmt::format("{} epochs, {} test examples", ctr.epochs_run, m.count), since(t));
    }
    auto t = Clock::now();
    auto w = generate_world(SyntheticOptions().users(1000).items(500).interactions(50000).seed(seed));
    Interactions x = implicit_positives(w.data, w.data.interactions);  // clicks; impressions dropped
    Split s = random_split(x, 0.2, 0.05, seed);
    const int32_t scen = std::max<int32_t>(1, w.data.scenarios.size());
    auto ctr = fit_ctr(x.subset(s.train), x.subset(s.valid), w.data.num_users(), w.data.num_items(), scen,
                       CtrTrainOptions().negatives(ratio).seed(seed).device(device));
    // The same rule: the rows here are the clicks (impressions dropped above).
    auto test = ctr_test_examples(x, x.subset(s.test), w.data.num_users(), w.data.num_items(), ratio, seed);
    auto m = ctr.evaluate(test);
    auto pc = popularity(x.subset(s.train), w.data.num_items());
    std::vector<float> ps;
    for (int32_t i : test.item) ps.push_back(pc[i]);
    add("C", "most popular (synthetic 1000x500, 1:4)", "AUC / GAUC",
        fmt::format("{:.4f} / {:.4f}", auc(ps, test.label), gauc(ps, test.label, test.user)), "", 0);
    add("C", "CTR MLP+dot (synthetic clicks, 1:4)", "AUC / GAUC / LL",
        fmt::format("{:.4f} / {:.4f} / {:.4f}", m.auc, m.gauc, m.logloss), fmt::format("{} epochs", ctr.epochs_run),
        since(t));
    for (const auto& [sc, sm] : m.per_scenario)
      add("C",
          fmt::format("  scenario {}", sc < w.data.scenarios.size() ? w.data.scenarios.raw(sc) : std::to_string(sc)),
          "AUC / GAUC / LL", fmt::format("{:.4f} / {:.4f} / {:.4f}", sm.auc, sm.gauc, sm.logloss),
          fmt::format("{} examples", sm.count), 0);
  }
  return 0;
}
