// KNN rating prediction on MovieLens 100K, protocol R (EVALUATION.md): the official folds
// u1..u5, RMSE and MAE per fold and their mean.
//   quality_knn [DATA_DIR] [--all | --only SUBSTRING]      DATA_DIR holds ml-100k/ (default ../shared/data)
//   quality_knn --data-dir DATA_DIR/ml-100k [--topn]      the same, naming the ML-100K folder itself
// Without --all only the default configuration (item-based, pearson_baseline, k=40, baseline)
// runs; --all adds a sweep over kind and similarity.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mtrec/cf/knn.h"
#include "mtrec/core/random.h"
#include "mtrec/data/movielens.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/eval/protocols.h"

namespace {

int run_topn(const std::string& dir) {
  const uint64_t seed = 42;
  mtrec::Dataset ds = mtrec::read_movielens_100k(dir);
  mtrec::Split split = mtrec::protocol_split(ds.interactions, "loo", seed);
  // Protocol D holds out the latest item only: validation rows go back into training.
  mtrec::Interactions train = ds.interactions.subset(mtrec::known_rows(split)),
                      test = ds.interactions.subset(split.test);
  train.has_rating = test.has_rating = false;
  const int32_t users = ds.num_users(), items = ds.num_items();
  std::printf(
      "protocol D: MovieLens 100K u.data, every rating a positive, latest item per user held out "
      "(timestamp ties: seeded shuffle, seed %llu); %zu train, %zu test\n",
      (unsigned long long)seed, train.size(), test.size());
  std::printf("%-34s %-10s %8s %8s %8s %8s %8s\n", "model", "protocol", "HR@10", "NDCG@10", "HR@20", "MRR", "wall_s");
  std::vector<int64_t> pop(items, 0);
  for (size_t j = 0; j < train.size(); ++j) ++pop[train.item[j]];
  struct TopN {
    std::string name;
    mtrec::ScoreFn fn;
  };
  std::vector<TopN> models;
  models.push_back({"most popular", [&](int32_t, const std::vector<int32_t>& c, std::vector<float>& out) {
                      out.resize(c.size());
                      for (size_t j = 0; j < c.size(); ++j) out[j] = float(pop[c[j]]);
                    }});
  std::vector<std::unique_ptr<mtrec::KnnModel>> knns;
  for (auto kind : {mtrec::KnnKind::Item, mtrec::KnnKind::User}) {
    for (int k : {50, 200}) {
      auto t0 = std::chrono::steady_clock::now();
      knns.push_back(std::make_unique<mtrec::KnnModel>(
          mtrec::KnnOptions().kind(kind).similarity(mtrec::KnnSimilarity::Cosine).shrinkage(0).baseline(false).k(k)));
      knns.back()->fit(train, users, items);
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const mtrec::KnnModel* m = knns.back().get();
      models.push_back(
          {std::string(mtrec::to_string(kind)) + "-KNN cosine k=" + std::to_string(k) + " (fit " +
               std::to_string(t).substr(0, 4) + "s)",
           [m](int32_t u, const std::vector<int32_t>& c, std::vector<float>& out) { m->score(u, c, out); }});
    }
  }
  for (const auto& model : models) {
    for (int neg : {0, mtrec::kRankingNegatives}) {
      auto t0 = std::chrono::steady_clock::now();
      mtrec::RankingEvaluator ev(train, users, items, mtrec::ranking_protocol(neg, seed));
      auto rep = ev.evaluate(test, model.fn);
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%-34s %-10s %8.4f %8.4f %8.4f %8.4f %8.2f\n", model.name.c_str(), neg ? "100 neg" : "full",
                  rep.at("HR@10"), rep.at("NDCG@10"), rep.at("HR@20"), rep.at("MRR"), t);
    }
  }
  return 0;
}

struct Config {
  std::string name;
  mtrec::KnnOptions options;
};

}  // namespace

int main(int argc, char** argv) {
  std::string base = "../shared/data", dir;
  bool all = false, topn = false;
  std::string only;
  CLI::App app{"Protocol R (and --topn) for user/item KNN on the MovieLens 100K folds"};
  auto* positional =
      app.add_option("base", base, "Folder holding ml-100k/ (as --data-dir BASE/ml-100k)")->capture_default_str();
  app.add_option("--data-dir", dir, "MovieLens 100K folder (u1.base ... u5.test)")->excludes(positional);
  app.add_flag("--all", all, "Every configuration, not only the default");
  app.add_option("--only", only, "Configurations whose name contains this (implies --all)");
  app.add_flag("--topn", topn, "Top-N ranking instead of protocol R");
  CLI11_PARSE(app, argc, argv);
  if (!only.empty()) all = true;
  if (dir.empty()) dir = base + "/ml-100k";
  for (const char* f : {"u.data", "u1.base", "u1.test", "u2.base", "u2.test", "u3.base", "u3.test", "u4.base",
                        "u4.test", "u5.base", "u5.test"}) {
    if (!std::filesystem::exists(dir + "/" + f)) {
      std::fprintf(stderr, "quality_knn: %s/%s not found: --data-dir must name the MovieLens 100K folder\n",
                   dir.c_str(), f);
      return 1;
    }
  }
  if (topn) return run_topn(dir);
  using mtrec::KnnKind;
  using mtrec::KnnOptions;
  using mtrec::KnnSimilarity;
  std::vector<Config> configs = {
      {"item pearson_baseline k40 +bl", KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::PearsonBaseline)}};
  if (all) {
    configs.push_back({"item adjusted_cosine k40 +bl", KnnOptions().similarity(KnnSimilarity::AdjustedCosine)});
    configs.push_back({"item pearson k40 +bl", KnnOptions().similarity(KnnSimilarity::Pearson)});
    configs.push_back({"item cosine k40 +bl", KnnOptions().similarity(KnnSimilarity::Cosine)});
    configs.push_back({"item pearson_baseline k40 +bl max_nb 100",
                       KnnOptions().similarity(KnnSimilarity::PearsonBaseline).max_neighbors(100)});
    configs.push_back({"item pearson k40 no-bl", KnnOptions().similarity(KnnSimilarity::Pearson).baseline(false)});
    configs.push_back(
        {"user pearson_baseline k40 +bl", KnnOptions().kind(KnnKind::User).similarity(KnnSimilarity::PearsonBaseline)});
    configs.push_back({"user pearson k40 no-bl",
                       KnnOptions().kind(KnnKind::User).similarity(KnnSimilarity::Pearson).baseline(false)});
  }
  std::printf("protocol R: MovieLens 100K official folds u1..u5, RMSE/MAE on u*.test; deterministic (no seed used)\n");
  std::printf("threads: %u (hardware); timings include similarity fit + prediction of 20000 ratings\n\n",
              std::thread::hardware_concurrency());
  std::printf("%-42s %5s %8s %8s %8s\n", "config", "fold", "RMSE", "MAE", "wall_s");
  for (const auto& cfg : configs) {
    if (!only.empty() && cfg.name.find(only) == std::string::npos) continue;
    double sum_rmse = 0, sum_mae = 0, sum_t = 0;
    for (int fold = 1; fold <= 5; ++fold) {
      mtrec::MovieLensFold f = mtrec::read_movielens_100k_fold(dir, fold);
      auto train = f.data.interactions.subset(f.split.train), test = f.data.interactions.subset(f.split.test);
      const int32_t users = f.data.num_users(), items = f.data.num_items();
      auto t0 = std::chrono::steady_clock::now();
      mtrec::KnnModel m(cfg.options);
      m.fit(train, users, items);
      auto pred = m.predict(test);
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double r = mtrec::rmse(pred, test.rating), e = mtrec::mae(pred, test.rating);
      std::printf("%-42s %5d %8.4f %8.4f %8.2f\n", cfg.name.c_str(), fold, r, e, t);
      sum_rmse += r;
      sum_mae += e;
      sum_t += t;
    }
    std::printf("%-42s %5s %8.4f %8.4f %8.2f\n\n", cfg.name.c_str(), "mean", sum_rmse / 5, sum_mae / 5, sum_t / 5);
  }
  return 0;
}
