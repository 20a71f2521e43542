// ItemIndex: exact search against a sort-everything oracle, compact tables' error bounds and
// recall, FAISS HNSW / IVF-PQ recall against exact, filters, and option checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <memory>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mtrec/core/check.h"
#include "mtrec/serve/index.h"

namespace mtrec {
namespace {

/// n vectors around `centres` seeded Gaussian centres (norm ~ sqrt(dim)), noise sigma 0.5:
/// the shape of trained embeddings rather than uniform noise.
std::vector<float> clustered(int64_t n, int64_t dim, int centres, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> c(static_cast<size_t>(centres * dim));
  for (float& x : c) x = g(rng);
  std::uniform_int_distribution<int> pick(0, centres - 1);
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int k = pick(rng);
    for (int64_t j = 0; j < dim; ++j) v[i * dim + j] = c[k * dim + j] + 0.5f * g(rng);
  }
  return v;
}

/// Sort every allowed item: score descending, item ascending.
std::vector<Hit> oracle(const std::vector<float>& v, int64_t dim, const float* q, int64_t k,
                        const uint8_t* allowed = nullptr) {
  const int64_t n = static_cast<int64_t>(v.size()) / dim;
  std::vector<Hit> all;
  for (int64_t i = 0; i < n; ++i) {
    if (allowed && !allowed[i]) continue;
    float s = 0;
    for (int64_t j = 0; j < dim; ++j) s += v[i * dim + j] * q[j];
    all.push_back({static_cast<int32_t>(i), s});
  }
  std::sort(all.begin(), all.end(),
            [](const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.item < b.item); });
  all.resize(std::min<size_t>(all.size(), static_cast<size_t>(k)));
  return all;
}

void expect_same(const std::vector<Hit>& got, const std::vector<Hit>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // Summation order differs from the oracle's; near-ties may swap, so compare scores by rank.
    EXPECT_NEAR(got[i].score, want[i].score, tol * (1 + std::fabs(want[i].score))) << "rank " << i;
  }
  std::set<int32_t> g, w;
  for (size_t i = 0; i < got.size(); ++i) g.insert(got[i].item), w.insert(want[i].item);
  EXPECT_EQ(g.size(), got.size()) << "duplicate items";
}

void expect_valid(const std::vector<Hit>& hits, const uint8_t* allowed) {
  std::set<int32_t> seen;
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_TRUE(seen.insert(hits[i].item).second) << "item " << hits[i].item << " twice";
    EXPECT_TRUE(!allowed || allowed[hits[i].item]) << "disallowed item " << hits[i].item;
    EXPECT_TRUE(i == 0 || hits[i - 1].score >= hits[i].score) << "unsorted at rank " << i;
  }
}

TEST(TopKTest, MatchesSortWithTiesAndFilters) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(0, 5);  // few distinct values: many ties
  std::vector<float> s(10000);
  for (float& x : s) x = static_cast<float>(level(rng));
  std::vector<uint8_t> allowed(s.size());
  for (size_t i = 0; i < s.size(); ++i) allowed[i] = (i % 3) != 0;
  for (int64_t k : {0, 1, 7, 100, 9999, 20000}) {
    for (const uint8_t* a : {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(allowed.data())}) {
      std::vector<Hit> want;
      for (size_t i = 0; i < s.size(); ++i) {
        if (!a || a[i]) want.push_back({static_cast<int32_t>(i), s[i]});
      }
      std::stable_sort(want.begin(), want.end(), [](const Hit& x, const Hit& y) { return x.score > y.score; });
      want.resize(std::min<size_t>(want.size(), static_cast<size_t>(k)));
      std::vector<Hit> got = top_k(s.data(), static_cast<int64_t>(s.size()), k, a);
      ASSERT_EQ(got.size(), want.size()) << "k=" << k;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].item, want[i].item) << "k=" << k << " rank " << i;
        ASSERT_EQ(got[i].score, want[i].score);
      }
    }
  }
}

TEST(TopKTest, RecallAtK) {
  std::vector<std::vector<Hit>> exact{{{1, 3}, {2, 2}}, {{5, 1}, {6, 0}}};
  std::vector<std::vector<Hit>> approx{{{2, 2}, {9, 1}}, {{6, 0}, {5, 1}}};
  EXPECT_DOUBLE_EQ(recall_at_k(approx, exact), 0.75);
  EXPECT_THROW(recall_at_k({}, exact), Error);
}

TEST(ItemIndexTest, ExactMatchesOracleWithFiltersAndTies) {
  const int64_t n = 9000, dim = 24;  // more than two blocks, and a partial one
  std::vector<float> v = clustered(n, dim, 30, 1);
  for (int64_t j = 0; j < dim; ++j) v[10 * dim + j] *= 10;  // long enough to top query 0
  // Exact duplicates of items 10 and 4100 (other block) tie; the lower item must come first.
  std::copy_n(v.begin() + 10 * dim, dim, v.begin() + 8999 * dim);
  std::copy_n(v.begin() + 10 * dim, dim, v.begin() + 4100 * dim);
  std::vector<float> q = clustered(20, dim, 30, 2);
  std::copy_n(v.begin() + 10 * dim, dim, q.begin());  // query 0 scores item 10's copies highest
  std::vector<uint8_t> allowed(n), few(n, 0);
  std::mt19937 rng(5);
  for (auto& a : allowed) a = rng() % 4 != 0;
  for (int i = 0; i < 5; ++i) few[i * 1777] = 1;
  for (int threads : {1, 2}) {
    ItemIndex index(v.data(), n, dim, IndexOptions().threads(threads));
    EXPECT_EQ(index.description(), "exact");
    EXPECT_EQ(index.memory_bytes(), n * dim * 4);
    for (int64_t qi = 0; qi < 20; ++qi) {
      const float* qq = q.data() + qi * dim;
      expect_same(index.search(qq, 10), oracle(v, dim, qq, 10), 1e-5f);
      expect_same(index.search(qq, 10, allowed.data()), oracle(v, dim, qq, 10, allowed.data()), 1e-5f);
      expect_valid(index.search(qq, 10, allowed.data()), allowed.data());
      std::vector<Hit> f = index.search(qq, 10, few.data());  // k > allowed count
      EXPECT_EQ(f.size(), 5u);
      expect_valid(f, few.data());
    }
    std::vector<Hit> top = index.search(q.data(), 3);
    ASSERT_EQ(top.size(), 3u);
    EXPECT_EQ(top[0].item, 10);
    EXPECT_EQ(top[1].item, 4100);
    EXPECT_EQ(top[2].item, 8999);
    EXPECT_EQ(top[0].score, top[1].score);
    EXPECT_EQ(index.search(q.data(), n + 5).size(), static_cast<size_t>(n));
    EXPECT_TRUE(index.search(q.data(), 0).empty());
  }
}

TEST(ItemIndexTest, BatchEqualsSingleQueries) {
  const int64_t n = 5000, dim = 16, nq = 150;  // nq: several query chunks
  std::vector<float> v = clustered(n, dim, 20, 7), q = clustered(nq, dim, 20, 8);
  std::vector<uint8_t> allowed(n);
  for (int64_t i = 0; i < n; ++i) allowed[i] = i % 5 != 1;
  std::vector<const uint8_t*> per_query(nq, nullptr);
  for (int64_t i = 0; i < nq; i += 2) per_query[i] = allowed.data();
  for (const char* p : {"fp32", "fp16", "int8"}) {
    ItemIndex index(v.data(), n, dim, IndexOptions().precision(p).threads(2));
    auto batch = index.search_batch(q.data(), nq, 12, &per_query);
    ASSERT_EQ(batch.size(), static_cast<size_t>(nq));
    for (int64_t i = 0; i < nq; ++i) {
      auto single = index.search(q.data() + i * dim, 12, per_query[i]);
      ASSERT_EQ(batch[i].size(), single.size());
      for (size_t r = 0; r < single.size(); ++r) {
        EXPECT_EQ(batch[i][r].item, single[r].item) << p << " query " << i << " rank " << r;
        EXPECT_NEAR(batch[i][r].score, single[r].score, 1e-4f * (1 + std::fabs(single[r].score)));
      }
    }
    // score() reads the same table search ranks with.
    std::vector<int32_t> items;
    for (const Hit& h : batch[1]) items.push_back(h.item);
    std::vector<float> s(items.size());
    index.score(q.data() + dim, items.data(), static_cast<int64_t>(items.size()), s.data());
    for (size_t r = 0; r < items.size(); ++r) EXPECT_NEAR(s[r], batch[1][r].score, 1e-4f * (1 + std::fabs(s[r])));
  }
}

TEST(ItemIndexTest, CompactTablesReconstructionAndRecall) {
  const int64_t n = 20000, dim = 32, nq = 200;
  std::vector<float> v = clustered(n, dim, 200, 11), q = clustered(nq, dim, 200, 12);
  ItemIndex f16(v.data(), n, dim, IndexOptions().precision("fp16"));
  ItemIndex i8(v.data(), n, dim, IndexOptions().precision("int8"));
  EXPECT_EQ(f16.description(), "exact:fp16");
  EXPECT_EQ(i8.description(), "exact:int8");
  EXPECT_EQ(f16.memory_bytes(), n * dim * 2);
  EXPECT_EQ(i8.memory_bytes(), n * dim + n * 4);
  // Reconstruction: score(e_j, i) is element j of row i as the table holds it.
  std::vector<int32_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = static_cast<int32_t>(i);
  std::vector<float> e(dim, 0.f), r16(n), r8(n);
  for (int64_t j = 0; j < dim; ++j) {
    std::fill(e.begin(), e.end(), 0.f);
    e[j] = 1.f;
    f16.score(e.data(), rows.data(), n, r16.data());
    i8.score(e.data(), rows.data(), n, r8.data());
    for (int64_t i = 0; i < n; ++i) {
      const float x = v[i * dim + j];
      // fp16: relative error 2^-11 for normals, absolute 2^-25 for subnormals.
      EXPECT_LE(std::fabs(r16[i] - x), std::max(std::fabs(x) * 0x1p-11f, 0x1p-25f)) << i << "," << j;
      float m = 0;
      for (int64_t t = 0; t < dim; ++t) m = std::max(m, std::fabs(v[i * dim + t]));
      EXPECT_LE(std::fabs(r8[i] - x), m / 127.f / 2.f * 1.0001f) << i << "," << j;
    }
  }
  ItemIndex exact(v.data(), n, dim);
  auto truth = exact.search_batch(q.data(), nq, 10);
  EXPECT_GE(recall_at_k(f16.search_batch(q.data(), nq, 10), truth), 0.95);
  EXPECT_GE(recall_at_k(i8.search_batch(q.data(), nq, 10), truth), 0.9);
}

TEST(ItemIndexTest, Fp16RoundsToNearestEven) {
  // One value per row (dim 1), read back through score() with query {1}.
  const float one_ulp = 0x1p-10f;
  const std::vector<std::pair<float, float>> cases = {
      {1.0f, 1.0f},
      {1.0f + one_ulp / 2, 1.0f},                         // tie: to even (down)
      {1.0f + 3 * one_ulp / 2, 1.0f + 2 * one_ulp},       // tie: to even (up)
      {1.0f + one_ulp * 0.51f, 1.0f + one_ulp},           // above the tie: up
      {-2.0f - 2 * one_ulp * 0.49f, -2.0f},               // below the tie: down (ulp 2^-9 at 2)
      {65504.f, 65504.f},                                 // the largest half
      {65519.f, 65504.f},                                 // rounds down to it
      {65520.f, std::numeric_limits<float>::infinity()},  // the tie rounds to even: overflow
      {1e-6f, 17 * 0x1p-24f},                             // subnormal half: 16.78 ulps of 2^-24
      {-2.5e-8f, -0.0f},                                  // below half the smallest subnormal
      {0x1p-14f, 0x1p-14f},                               // the smallest normal
      {0x1p-14f - 0x1p-25f, 0x1p-14f},                    // the largest subnormal's tie rounds up to it
  };
  std::vector<float> v;
  for (const auto& c : cases) v.push_back(c.first);
  ItemIndex index(v.data(), static_cast<int64_t>(v.size()), 1, IndexOptions().precision("fp16"));
  const float q = 1.f;
  for (size_t i = 0; i < cases.size(); ++i) {
    float got = 0;
    const int32_t item = static_cast<int32_t>(i);
    index.score(&q, &item, 1, &got);
    EXPECT_EQ(got, cases[i].second) << "fp16(" << cases[i].first << ")";
  }
}

class ItemIndexAnnTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ItemIndexAnnTest, RecallAndFilters) {
  const int64_t n = 20000, dim = 32, nq = 200;
  std::vector<float> v = clustered(n, dim, 200, 21), q = clustered(nq, dim, 200, 22);
  // Near the defaults; this data (dim 32, 100 items per cluster) is harder than the bench's.
  IndexOptions opt = IndexOptions().kind(GetParam()).threads(2).hnsw_ef_search(128).ivf_nprobe(32).rerank(10);
  std::unique_ptr<ItemIndex> index;
  try {
    index = std::make_unique<ItemIndex>(v.data(), n, dim, opt);
  } catch (const Error& e) {
    if (std::string(e.what()).find("without FAISS") != std::string::npos) GTEST_SKIP() << e.what();
    throw;
  }
  EXPECT_EQ(index->description(), GetParam());
  EXPECT_GT(index->memory_bytes(), n * dim * 4);
  ItemIndex exact(v.data(), n, dim);
  auto truth = exact.search_batch(q.data(), nq, 10);
  auto got = index->search_batch(q.data(), nq, 10);
  const double recall = recall_at_k(got, truth);
  EXPECT_GE(recall, 0.9) << GetParam();
  for (int64_t i = 0; i < nq; ++i) {
    ASSERT_EQ(got[i].size(), 10u);
    expect_valid(got[i], nullptr);
    // Re-ranked scores are exact fp32 inner products.
    std::vector<int32_t> items;
    for (const Hit& h : got[i]) items.push_back(h.item);
    std::vector<float> s(items.size());
    exact.score(q.data() + i * dim, items.data(), static_cast<int64_t>(items.size()), s.data());
    for (size_t r = 0; r < items.size(); ++r) EXPECT_NEAR(s[r], got[i][r].score, 1e-4f * (1 + std::fabs(s[r])));
  }
  // Filters: half the catalogue (selector path), 3% (deeper search), 20 items (exact fallback).
  std::mt19937 rng(9);
  for (int keep_per_1000 : {500, 30, 1}) {
    std::vector<uint8_t> allowed(n, 0);
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += allowed[i] = static_cast<int>(rng() % 1000) < keep_per_1000;
    if (keep_per_1000 == 1) {
      std::fill(allowed.begin(), allowed.end(), 0);
      for (int i = 0; i < 7; ++i) allowed[i * 2857] = 1;
      count = 7;
    }
    std::vector<const uint8_t*> per_query(nq, allowed.data());
    auto ftruth = exact.search_batch(q.data(), nq, 10, &per_query);
    auto fgot = index->search_batch(q.data(), nq, 10, &per_query);
    for (int64_t i = 0; i < nq; ++i) {
      ASSERT_EQ(fgot[i].size(), static_cast<size_t>(std::min<int64_t>(10, count))) << keep_per_1000 << " query " << i;
      expect_valid(fgot[i], allowed.data());
    }
    EXPECT_GE(recall_at_k(fgot, ftruth), 0.85) << GetParam() << " keeping " << keep_per_1000 << "/1000";
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, ItemIndexAnnTest, ::testing::Values("hnsw", "ivfpq"));

TEST(ItemIndexTest, AutoPicksByCatalogueSize) {
  const int64_t dim = 8;
  std::vector<float> v = clustered(300, dim, 5, 31);
  EXPECT_EQ(ItemIndex(v.data(), 300, dim, IndexOptions().kind("auto").auto_ann_min_items(1000)).description(), "exact");
  EXPECT_EQ(ItemIndex(v.data(), 300, dim, IndexOptions().kind("auto").auto_ann_min_items(1000).precision("int8"))
                .description(),
            "exact:int8");
  try {
    ItemIndex a(v.data(), 300, dim, IndexOptions().kind("auto").auto_ann_min_items(100));
    EXPECT_EQ(a.description(), "hnsw");
    EXPECT_EQ(a.search(v.data(), 5).size(), 5u);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without FAISS"), std::string::npos) << e.what();
  }
}

TEST(ItemIndexTest, BadOptionsNameTheOption) {
  const int64_t dim = 8;
  std::vector<float> v = clustered(100, dim, 5, 41);
  auto message = [&](IndexOptions o) {
    try {
      ItemIndex index(v.data(), 100, dim, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(IndexOptions().kind("lsh")).find("kind"), std::string::npos);
  EXPECT_NE(message(IndexOptions().kind("lsh")).find("lsh"), std::string::npos);
  EXPECT_NE(message(IndexOptions().precision("bf16")).find("precision"), std::string::npos);
  EXPECT_NE(message(IndexOptions().precision("bf16")).find("bf16"), std::string::npos);
  EXPECT_NE(message(IndexOptions().kind("hnsw").hnsw_m(1)).find("hnsw_m"), std::string::npos);
  EXPECT_NE(message(IndexOptions().kind("hnsw").hnsw_ef_search(0)).find("hnsw_ef_search"), std::string::npos);
  EXPECT_NE(message(IndexOptions().ivf_nprobe(0)).find("ivf_nprobe"), std::string::npos);
  EXPECT_NE(message(IndexOptions().rerank(0)).find("rerank"), std::string::npos);
  EXPECT_NE(message(IndexOptions().threads(-1)).find("threads"), std::string::npos);
  const std::string pq = message(IndexOptions().kind("ivfpq").pq_subquantizers(3));
  EXPECT_TRUE(pq.find("pq_subquantizers") != std::string::npos || pq.find("without FAISS") != std::string::npos) << pq;
  EXPECT_THROW(ItemIndex(v.data(), 100, 0), Error);
}

}  // namespace
}  // namespace mtrec
