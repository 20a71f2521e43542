// Retrieval index speed and quality (serve/index.h): for each catalogue size and index kind,
// build seconds, memory, single-query latency on one thread, batch throughput on all threads,
// and recall@10 against exact fp32.
//   bench_serve [--sizes 10000,100000,1000000] [--dim 64] [--queries 1000] [--kinds exact,fp16,int8,hnsw,ivfpq]
//               [--hnsw-m 32] [--ef-construction 80] [--ef-search 64] [--rerank 4] [--nprobe 16] [--k 10]
// Vectors are clustered like trained embeddings: 1000 seeded Gaussian centres N(0, I) plus
// N(0, 0.5^2 I) noise; queries are drawn the same way under another seed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mtrec/core/check.h"
#include "mtrec/serve/index.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<float> clustered(int64_t n, int64_t dim, int centres, uint64_t centre_seed, uint64_t seed) {
  std::mt19937_64 crng(centre_seed), rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> c(static_cast<size_t>(centres * dim));
  for (float& x : c) x = g(crng);
  std::uniform_int_distribution<int> pick(0, centres - 1);
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int k = pick(rng);
    for (int64_t j = 0; j < dim; ++j) v[i * dim + j] = c[k * dim + j] + 0.5f * g(rng);
  }
  return v;
}

template <class T>
std::vector<T> parse_list(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    std::stringstream is(item);
    T v;
    is >> v;
    out.push_back(v);
  }
  return out;
}

struct Row {
  std::string name, params;
  double build_s = 0, mb = 0, p50 = 0, p99 = 0, qps = 0, recall = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes{10000, 100000, 1000000};
  std::vector<std::string> kinds{"exact", "fp16", "int8", "hnsw", "ivfpq"};
  int64_t dim = 64, nq = 1000, k = 10, rerank = 4;
  int hnsw_m = 32, ef_construction = 80, ef_search = 64, nprobe = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      MTREC_CHECK(i + 1 < argc, "bench_serve: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--sizes")
      sizes = parse_list<int64_t>(next());
    else if (a == "--kinds")
      kinds = parse_list<std::string>(next());
    else if (a == "--dim")
      dim = std::stoll(next());
    else if (a == "--queries")
      nq = std::stoll(next());
    else if (a == "--k")
      k = std::stoll(next());
    else if (a == "--hnsw-m")
      hnsw_m = std::stoi(next());
    else if (a == "--ef-construction")
      ef_construction = std::stoi(next());
    else if (a == "--ef-search")
      ef_search = std::stoi(next());
    else if (a == "--rerank")
      rerank = std::stoll(next());
    else if (a == "--nprobe")
      nprobe = std::stoi(next());
    else {
      std::fprintf(stderr, "bench_serve: unknown argument %s (see the header of bench/bench_serve.cpp)\n", a.c_str());
      return 2;
    }
  }
  const unsigned cores = std::thread::hardware_concurrency();
  std::printf("# bench_serve: top-%lld inner-product retrieval, dim %lld, %lld queries, %u hardware threads\n",
              static_cast<long long>(k), static_cast<long long>(dim), static_cast<long long>(nq), cores);
  std::printf(
      "# data: 1000 seeded Gaussian centres N(0, I) + N(0, 0.5^2 I) noise per item; queries drawn the same way\n");
  std::printf(
      "# latency: one query at a time on 1 thread; throughput: batches of 256 on all threads; recall@%lld vs exact "
      "fp32\n\n",
      static_cast<long long>(k));
  std::printf("| items | index | parameters | build s | memory MB | p50 µs | p99 µs | batch q/s | recall@%lld |\n",
              static_cast<long long>(k));
  std::printf("|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);

  for (int64_t n : sizes) {
    const std::vector<float> items = clustered(n, dim, 1000, 1, 2);
    const std::vector<float> queries = clustered(nq, dim, 1000, 1, 3);
    std::vector<std::vector<mtrec::Hit>> truth;
    {
      mtrec::ItemIndex exact(items.data(), n, dim);
      truth = exact.search_batch(queries.data(), nq, k);
    }
    for (const std::string& kind : kinds) {
      mtrec::IndexOptions opt;
      Row row;
      row.name = kind == "fp16" || kind == "int8" ? "exact:" + kind : kind;
      if (kind == "fp16" || kind == "int8")
        opt.precision(kind);
      else
        opt.kind(kind);
      if (kind == "hnsw") {
        opt.hnsw_m(hnsw_m).hnsw_ef_construction(ef_construction).hnsw_ef_search(ef_search).rerank(rerank);
        row.params = "M=" + std::to_string(hnsw_m) + " efC=" + std::to_string(ef_construction) +
                     " efS=" + std::to_string(ef_search) + " rerank=" + std::to_string(rerank);
      } else if (kind == "ivfpq") {
        opt.ivf_nprobe(nprobe).rerank(rerank);
        row.params = "lists=4√n pq=dim/4×8b nprobe=" + std::to_string(nprobe) + " rerank=" + std::to_string(rerank);
      }
      // Batch throughput and recall: all threads.
      auto t0 = Clock::now();
      mtrec::ItemIndex index(items.data(), n, dim, opt);
      row.build_s = seconds_since(t0);
      row.mb = static_cast<double>(index.memory_bytes()) / (1 << 20);
      std::vector<std::vector<mtrec::Hit>> got;
      t0 = Clock::now();
      for (int64_t q0 = 0; q0 < nq; q0 += 256) {
        const int64_t b = std::min<int64_t>(256, nq - q0);
        auto part = index.search_batch(queries.data() + q0 * dim, b, k);
        for (auto& h : part) got.push_back(std::move(h));
      }
      row.qps = static_cast<double>(nq) / seconds_since(t0);
      row.recall = mtrec::recall_at_k(got, truth);
      // Latency: one thread (the exact kinds split one query over threads, so rebuild with 1).
      std::unique_ptr<mtrec::ItemIndex> single;
      if (kind == "exact" || kind == "fp16" || kind == "int8") {
        single = std::make_unique<mtrec::ItemIndex>(items.data(), n, dim, mtrec::IndexOptions(opt).threads(1));
      }
      const mtrec::ItemIndex& one = single ? *single : index;
      for (int64_t q = 0; q < std::min<int64_t>(nq, 20); ++q) one.search(queries.data() + q * dim, k);  // warm
      std::vector<double> us(static_cast<size_t>(nq));
      for (int64_t q = 0; q < nq; ++q) {
        const auto s = Clock::now();
        auto hits = one.search(queries.data() + q * dim, k);
        us[q] = seconds_since(s) * 1e6;
        if (hits.empty()) std::abort();
      }
      std::sort(us.begin(), us.end());
      row.p50 = us[us.size() / 2];
      row.p99 = us[std::min(us.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(us.size())))];
      std::printf("| %lld | %s | %s | %.2f | %.1f | %.0f | %.0f | %.0f | %.4f |\n", static_cast<long long>(n),
                  row.name.c_str(), row.params.empty() ? "-" : row.params.c_str(), row.build_s, row.mb, row.p50,
                  row.p99, row.qps, row.recall);
      std::fflush(stdout);
    }
  }
  return 0;
}
