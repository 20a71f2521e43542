// Generation rate of the synthetic world (interactions per second, including text and id maps)
// at 100k, 1M and 10M interactions: median of 3 runs for the small sizes, one run for 10M, and
// the process's peak RSS after each size.
//   ./bench_synthetic            # all sizes
//   ./bench_synthetic 1000000    # up to this many interactions
#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "mtrec/data/synthetic.h"

namespace {
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
}  // namespace

int main(int argc, char** argv) {
  int64_t max_n = 10'000'000;
  CLI::App app{"Generation rate of the synthetic world"};
  app.add_option("max_interactions", max_n, "Run the sizes up to this many interactions")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  struct Config {
    int64_t n;
    int32_t users, items;
    int threads, reps;
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const std::vector<Config> configs = {{100'000, 2'000, 1'000, 0, 3},
                                       {1'000'000, 20'000, 5'000, 0, 3},
                                       {1'000'000, 20'000, 5'000, 1, 3},
                                       {10'000'000, 100'000, 20'000, 0, 1}};
  std::printf("bench_synthetic: generate_world, seed 42, 8 topics, 3 scenarios, impressions on, %u hardware threads\n",
              hw);
  std::printf("%12s %8s %7s %8s %5s %12s %14s %13s %11s\n", "target", "users", "items", "threads", "runs", "rows",
              "median s", "rows/s", "peak RSS MiB");
  for (const auto& c : configs) {
    if (c.n > max_n) continue;
    std::vector<double> secs;
    size_t rows = 0;
    for (int r = 0; r < c.reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      auto w = mtrec::generate_world(
          mtrec::SyntheticOptions().users(c.users).items(c.items).interactions(c.n).threads(c.threads).seed(42));
      secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      rows = w.data.interactions.size();
    }
    std::sort(secs.begin(), secs.end());
    const double med = secs[secs.size() / 2];
    std::printf("%12lld %8d %7d %8s %5d %12zu %14.3f %13.0f %11.0f\n", static_cast<long long>(c.n), c.users, c.items,
                c.threads == 0 ? std::to_string(hw).c_str() : std::to_string(c.threads).c_str(), c.reps, rows, med,
                static_cast<double>(rows) / med, peak_rss_mib());
  }
  std::printf(
      "memory: 28 bytes per interaction in the Dataset (int32 user, item, context; float rating; int64"
      " timestamp; int16 scenario, behaviour), plus the distinct context texts\n");
  return 0;
}
