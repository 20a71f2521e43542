// Reader throughput: writes a 1M-row CSV (header, quoted-free, user,item,rating,timestamp) and a
// 1M-row ML-1M style "::" file to a temporary folder, reads each 5 times, prints medians.
//   ./build/bench/bench_reader [rows]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <unistd.h>

#include "mtrec/core/random.h"
#include "mtrec/data/csv_reader.h"

namespace {

std::string make_rows(int64_t rows, const char* delim, bool header, uint64_t seed) {
  mtrec::Rng rng(mtrec::derive_seed(seed, "bench_reader"));
  std::string out;
  out.reserve(static_cast<size_t>(rows) * 32);
  if (header) out += std::string("user") + delim + "item" + delim + "rating" + delim + "timestamp\n";
  char buf[128];
  for (int64_t r = 0; r < rows; ++r) {
    // ML-1M-like shape: 6k users, 4k items, integer stars, 9-digit unix times.
    auto u = 1 + rng() % 6040;
    auto i = 1 + rng() % 3952;
    auto s = 1 + rng() % 5;
    auto t = 956703932 + rng() % 90000000;
    int n = std::snprintf(buf, sizeof buf, "%llu%s%llu%s%llu%s%llu\n", (unsigned long long)u, delim,
                          (unsigned long long)i, delim, (unsigned long long)s, delim, (unsigned long long)t);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 1000000;
  CLI::App app{"CSV / MovieLens reader throughput on generated files"};
  app.add_option("rows", rows, "Rows per generated file")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const int repeats = 5;
  const uint64_t seed = 42;
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("mtrec-bench-reader-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  struct Case {
    std::string name, file;
    mtrec::CsvOptions options;
    std::string content;
  };
  std::vector<Case> cases = {
      {"csv (header, ',')", (dir / "ratings.csv").string(), mtrec::CsvOptions(), make_rows(rows, ",", true, seed)},
      {"ml-1m ('::', latin1)", (dir / "ratings.dat").string(),
       mtrec::CsvOptions().delimiter("::").has_header(false).encoding(mtrec::Encoding::Latin1),
       make_rows(rows, "::", false, seed)},
  };
  std::printf("bench_reader: %lld rows per file, %d reads each, seed %llu, 1 thread, CPU\n", (long long)rows, repeats,
              (unsigned long long)seed);
  // CPU seconds beside wall seconds: on a shared machine the wall time includes waiting.
  std::printf("%-22s %8s %10s %10s %14s %8s\n", "file", "MiB", "median s", "cpu s", "rows/s", "users");
  for (auto& c : cases) {
    { std::ofstream(c.file, std::ios::binary) << c.content; }
    std::vector<double> secs, cpu;
    int32_t users = 0;
    for (int r = 0; r < repeats; ++r) {
      std::clock_t c0 = std::clock();
      auto t0 = std::chrono::steady_clock::now();
      mtrec::Dataset ds = mtrec::read_csv(c.file, c.options);
      auto t1 = std::chrono::steady_clock::now();
      cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
      if (static_cast<int64_t>(ds.interactions.size()) != rows) {
        std::fprintf(stderr, "read %zu rows, expected %lld\n", ds.interactions.size(), (long long)rows);
        return 1;
      }
      users = ds.num_users();
      secs.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    double m = median(secs);
    std::printf("%-22s %8.1f %10.4f %10.4f %14.0f %8d\n", c.name.c_str(), double(c.content.size()) / (1 << 20), m,
                median(cpu), double(rows) / m, users);
  }
  fs::remove_all(dir);
  return 0;
}
