// Collaborative-filtering fit speed on a random rating matrix with popularity skew (default 6000
// users x 4000 items, ~1M interactions): similarity computation for item- and user-based KNN, and
// Gibbs sweeps of Bayesian biased MF (cf/bayes_mf.h, d 32), by thread count.
//   bench_knn [USERS ITEMS INTERACTIONS] [--repeats N] [--only "item cosine 0"]
// Prints one row per configuration: median fit seconds over the repeats, neighbours stored,
// and prediction throughput.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "mtrec/cf/bayes_mf.h"
#include "mtrec/cf/knn.h"
#include "mtrec/core/random.h"

namespace {

// Zipf-like popularity: weight of rank r is 1 / (r + offset)^alpha, ids shuffled so popularity is
// not ordered by id.
std::vector<double> skewed_weights(int n, double alpha, double offset, mtrec::Rng& rng) {
  std::vector<double> w(n);
  for (int r = 0; r < n; ++r) w[r] = 1.0 / std::pow(r + offset, alpha);
  std::shuffle(w.begin(), w.end(), rng);
  return w;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int32_t users = 6000, items = 4000;
  int64_t target = 1000000;
  int repeats = 3;
  std::string only;  // run configurations whose "kind similarity max_nb" contains this
  CLI::App app{"KNN fit and top-N timings on a skewed random rating matrix"};
  app.add_option("users", users, "Users")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("items", items, "Items")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("interactions", target, "Ratings to draw")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--repeats", repeats, "Runs per configuration (median)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--only", only, "Only configurations whose \"kind similarity max_nb\" contains this");
  CLI11_PARSE(app, argc, argv);
  const uint64_t seed = 42;
  mtrec::Rng rng(mtrec::derive_seed(seed, "bench-knn"));
  auto uw = skewed_weights(users, 0.6, 50, rng), iw = skewed_weights(items, 0.9, 20, rng);
  std::discrete_distribution<int32_t> pick_u(uw.begin(), uw.end()), pick_i(iw.begin(), iw.end());
  std::uniform_int_distribution<int> rating(1, 5);
  std::unordered_set<int64_t> seen;
  mtrec::Interactions train;
  train.has_rating = true;
  train.reserve(target);
  int64_t attempts = 0;
  while (int64_t(train.size()) < target && attempts++ < 20 * target) {
    int32_t u = pick_u(rng), i = pick_i(rng);
    if (!seen.insert(int64_t(u) * items + i).second) continue;
    train.push_back(u, i, float(rating(rng)));
  }
  std::vector<int64_t> deg_i(items, 0), deg_u(users, 0);
  for (size_t r = 0; r < train.size(); ++r) ++deg_i[train.item[r]], ++deg_u[train.user[r]];
  std::printf("data: %d users x %d items, %zu interactions (seed %llu), max item degree %lld, max user degree %lld\n",
              users, items, train.size(), (unsigned long long)seed,
              (long long)*std::max_element(deg_i.begin(), deg_i.end()),
              (long long)*std::max_element(deg_u.begin(), deg_u.end()));
  std::printf("machine: %u hardware threads; median of %d fits; timings disturbed by other jobs on the host\n\n",
              std::thread::hardware_concurrency(), repeats);
  // cpu_s (process CPU time, all threads) is the steadier figure when the host is shared.
  std::printf("%-6s %-18s %7s %8s %9s %9s %12s %14s\n", "kind", "similarity", "max_nb", "threads", "fit_s", "cpu_s",
              "neighbours", "predict/s");

  mtrec::Interactions queries;
  for (int q = 0; q < 20000; ++q) queries.push_back(pick_u(rng), pick_i(rng));
  struct Cfg {
    mtrec::KnnKind kind;
    mtrec::KnnSimilarity sim;
    int max_nb;
  };
  std::vector<Cfg> cfgs = {{mtrec::KnnKind::Item, mtrec::KnnSimilarity::Cosine, 0},
                           {mtrec::KnnKind::Item, mtrec::KnnSimilarity::Cosine, 200},
                           {mtrec::KnnKind::User, mtrec::KnnSimilarity::Cosine, 200},
                           {mtrec::KnnKind::Item, mtrec::KnnSimilarity::PearsonBaseline, 200},
                           {mtrec::KnnKind::User, mtrec::KnnSimilarity::PearsonBaseline, 200}};
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  for (const auto& c : cfgs) {
    const std::string label = std::string(mtrec::to_string(c.kind)) + " " + std::string(mtrec::to_string(c.sim)) + " " +
                              std::to_string(c.max_nb);
    if (!only.empty() && label.find(only) == std::string::npos) continue;
    for (int threads : {1, hw}) {
      if (threads == hw && hw == 1) continue;
      std::vector<double> times, cpu;
      mtrec::KnnModel m;
      for (int r = 0; r < repeats; ++r) {
        m = mtrec::KnnModel(
            mtrec::KnnOptions().kind(c.kind).similarity(c.sim).max_neighbors(c.max_nb).threads(threads));
        auto t0 = std::chrono::steady_clock::now();
        std::clock_t c0 = std::clock();
        m.fit(train, users, items);
        times.push_back(seconds_since(t0));
        cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
      }
      std::sort(times.begin(), times.end());
      std::sort(cpu.begin(), cpu.end());
      int64_t stored = 0;
      const int32_t rows = c.kind == mtrec::KnnKind::Item ? items : users;
      for (int32_t row = 0; row < rows; ++row) stored += int64_t(m.neighbors(row).size());
      auto t0 = std::chrono::steady_clock::now();
      auto pred = m.predict(queries);
      double qps = queries.size() / seconds_since(t0);
      std::printf("%-6s %-18s %7d %8d %9.3f %9.3f %12lld %14.0f\n", std::string(mtrec::to_string(c.kind)).c_str(),
                  std::string(mtrec::to_string(c.sim)).c_str(), c.max_nb, threads, times[times.size() / 2],
                  cpu[cpu.size() / 2], (long long)stored, qps);
    }
  }
  if (only.empty() || std::string("bayes_mf").find(only) != std::string::npos) {
    // 20 sweeps a fit (the default fit is 200): seconds per sweep, median of the repeats.
    std::printf("\n%-26s %8s %9s %9s %14s\n", "Bayesian MF d32", "threads", "sweep_s", "cpu_s", "200 sweeps, s");
    for (int threads : {1, hw}) {
      if (threads == hw && hw == 1) continue;
      std::vector<double> times, cpu;
      for (int r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        std::clock_t c0 = std::clock();
        mtrec::fit_bayes_mf(train, users, items,
                            mtrec::BayesMfOptions().dim(32).iterations(20).burn_in(10).threads(threads));
        times.push_back(seconds_since(t0) / 20);
        cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC / 20);
      }
      std::sort(times.begin(), times.end());
      std::sort(cpu.begin(), cpu.end());
      std::printf("%-26s %8d %9.3f %9.3f %14.1f\n", "", threads, times[times.size() / 2], cpu[cpu.size() / 2],
                  200 * times[times.size() / 2]);
    }
  }
  return 0;
}
