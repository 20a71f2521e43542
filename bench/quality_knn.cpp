// KNN rating prediction on MovieLens 100K, protocol R (EVALUATION.md): the official folds
// u1..u5, RMSE and MAE per fold and their mean.
//   quality_knn [DATA_DIR] [--all | --only SUBSTRING]      DATA_DIR holds ml-100k/ (default ../shared/data)
// Without --all only the default configuration (item-based, pearson_baseline, k=40, baseline)
// runs; --all adds a sweep over kind and similarity.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "mtrec/cf/knn.h"
#include "mtrec/eval/metrics.h"

namespace {

// Minimal reader for u*.base / u*.test (user \t item \t rating \t timestamp).
// TODO(lead): switch to the library's MovieLens reader at merge.
mtrec::Interactions read_split(const std::string& path, int32_t& users, int32_t& items) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  mtrec::Interactions x;
  x.has_rating = true;
  int32_t u, i;
  float r;
  long long ts;
  while (in >> u >> i >> r >> ts) {
    x.push_back(u - 1, i - 1, r);
    users = std::max(users, u);
    items = std::max(items, i);
  }
  return x;
}

struct Config {
  std::string name;
  mtrec::KnnOptions options;
};

}  // namespace

int main(int argc, char** argv) {
  std::string base = "../shared/data";
  bool all = false;
  std::string only;
  for (int a = 1; a < argc; ++a) {
    std::string s = argv[a];
    if (s == "--all") all = true;
    else if (s == "--only" && a + 1 < argc) only = argv[++a], all = true;
    else base = s;
  }
  const std::string dir = base + "/ml-100k";
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
    configs.push_back({"user pearson_baseline k40 +bl",
                       KnnOptions().kind(KnnKind::User).similarity(KnnSimilarity::PearsonBaseline)});
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
      int32_t users = 0, items = 0;
      auto train = read_split(dir + "/u" + std::to_string(fold) + ".base", users, items);
      auto test = read_split(dir + "/u" + std::to_string(fold) + ".test", users, items);
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
