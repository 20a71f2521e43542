#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "mtrec/cf/knn.h"
#include "mtrec/data/movielens.h"
#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/model/io.h"
#include "mtrec/nn/checkpoint.h"
#include "test_util.h"

namespace mtrec {
namespace {

constexpr float kNa = NAN;

// 6 users x 5 items, NaN = not rated.
const std::vector<std::vector<float>> kDense = {
    {5, 3, kNa, 1, 4},  //
    {4, kNa, 2, 1, kNa}, {1, 1, kNa, 5, 2}, {kNa, 2, 4, 4, 1}, {3, kNa, 5, kNa, 3}, {2, 4, 1, 3, kNa},
};

Interactions from_dense(const std::vector<std::vector<float>>& d) {
  Interactions x;
  x.has_rating = true;
  for (size_t u = 0; u < d.size(); ++u)
    for (size_t i = 0; i < d[u].size(); ++i)
      if (!std::isnan(d[u][i])) x.push_back(int32_t(u), int32_t(i), d[u][i]);
  return x;
}

// Brute-force similarity between two rows given as dense vectors (NaN = missing), following the
// definitions in knn.h. `centre` holds the per-column value subtracted first (adjusted cosine,
// pearson baseline), `ca`/`cb` per-entry centring for the baseline variant.
double oracle_sim(const std::vector<float>& a, const std::vector<float>& b, KnnSimilarity sim,
                  const std::vector<float>& ca, const std::vector<float>& cb, int* n_common) {
  double ab = 0, aa = 0, bb = 0, sa = 0, sb = 0, full_a = 0, full_b = 0;
  int n = 0;
  for (size_t x = 0; x < a.size(); ++x) {
    if (!std::isnan(a[x])) full_a += double(a[x]) * a[x];
    if (!std::isnan(b[x])) full_b += double(b[x]) * b[x];
    if (std::isnan(a[x]) || std::isnan(b[x])) continue;
    double va = a[x] - ca[x], vb = b[x] - cb[x];
    ++n;
    ab += va * vb;
    aa += va * va;
    bb += vb * vb;
    sa += va;
    sb += vb;
  }
  *n_common = n;
  if (n == 0) return 0;
  switch (sim) {
    case KnnSimilarity::Cosine:
      return ab / std::sqrt(full_a * full_b);
    case KnnSimilarity::Pearson: {
      double ma = sa / n, mb = sb / n, num = 0, da = 0, db = 0;
      for (size_t x = 0; x < a.size(); ++x) {
        if (std::isnan(a[x]) || std::isnan(b[x])) continue;
        num += (a[x] - ma) * (b[x] - mb);
        da += (a[x] - ma) * (a[x] - ma);
        db += (b[x] - mb) * (b[x] - mb);
      }
      return da * db > 1e-12 ? num / std::sqrt(da * db) : 0.0;
    }
    default:
      return aa * bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
  }
}

Interactions rated(std::initializer_list<std::tuple<int32_t, int32_t, float>> rows) {
  Interactions x;
  x.has_rating = true;
  for (auto [u, i, r] : rows) x.push_back(u, i, r);
  return x;
}

// Uniform ratings 1..5 on about one cell in `every`.
Interactions random_ratings(int users, int items, unsigned every, unsigned seed) {
  std::mt19937 rng(seed);
  Interactions y;
  y.has_rating = true;
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < items; ++i)
      if (rng() % every == 0) y.push_back(u, i, float(1 + rng() % 5));
  return y;
}

std::map<int32_t, float> as_map(const std::vector<KnnNeighbor>& nb) {
  std::map<int32_t, float> m;
  for (auto& n : nb) m[n.index] = n.sim;
  return m;
}

void expect_matches_oracle(KnnKind kind, KnnSimilarity sim, double shrink, int min_support) {
  SCOPED_TRACE(std::string(to_string(kind)) + "/" + std::string(to_string(sim)));
  KnnModel m(KnnOptions().kind(kind).similarity(sim).shrinkage(shrink).min_support(min_support).threads(2));
  m.fit(from_dense(kDense), 6, 5);
  const bool item = kind == KnnKind::Item;
  const size_t rows = item ? 5 : 6, cols = item ? 6 : 5;
  auto row = [&](size_t r) {
    std::vector<float> v(cols);
    for (size_t c = 0; c < cols; ++c) v[c] = item ? kDense[c][r] : kDense[r][c];
    return v;
  };
  auto mean_of = [&](const std::vector<float>& v) {
    double s = 0;
    int n = 0;
    for (float x : v)
      if (!std::isnan(x)) s += x, ++n;
    return float(s / n);
  };
  std::vector<float> col_mean(cols, 0.0f);  // the other side's mean, for adjusted cosine
  for (size_t c = 0; c < cols; ++c) {
    std::vector<float> v(rows);
    for (size_t r = 0; r < rows; ++r) v[r] = row(r)[c];
    col_mean[c] = mean_of(v);
  }
  int checked = 0;
  for (size_t a = 0; a < rows; ++a) {
    auto got = as_map(m.neighbors(int32_t(a)));
    for (size_t b = 0; b < rows; ++b) {
      if (a == b) continue;
      std::vector<float> ca(cols, 0.0f), cb(cols, 0.0f);
      for (size_t c = 0; c < cols; ++c) {
        if (sim == KnnSimilarity::AdjustedCosine) ca[c] = cb[c] = col_mean[c];
        if (sim == KnnSimilarity::PearsonBaseline) {
          ca[c] = item ? m.baseline(int32_t(c), int32_t(a)) : m.baseline(int32_t(a), int32_t(c));
          cb[c] = item ? m.baseline(int32_t(c), int32_t(b)) : m.baseline(int32_t(b), int32_t(c));
        }
      }
      int n = 0;
      double want = oracle_sim(row(a), row(b), sim, ca, cb, &n);
      if (shrink > 0) want *= n / (n + shrink);
      if (n < min_support) want = 0;
      float have = got.count(int32_t(b)) ? got[int32_t(b)] : 0.0f;
      EXPECT_NEAR(have, want, 1e-5) << "rows " << a << ", " << b << " (n=" << n << ")";
      checked += want != 0;
    }
  }
  EXPECT_GT(checked, 4);
}

}  // namespace

TEST(Knn, SimilaritiesMatchDenseOracle) {
  for (auto kind : {KnnKind::Item, KnnKind::User}) {
    for (auto sim : {KnnSimilarity::Cosine, KnnSimilarity::AdjustedCosine, KnnSimilarity::Pearson,
                     KnnSimilarity::PearsonBaseline}) {
      expect_matches_oracle(kind, sim, 0, 1);
      expect_matches_oracle(kind, sim, 3, 1);  // shrinkage sim * n / (n + 3)
      expect_matches_oracle(kind, sim, 0, 3);  // fewer than 3 co-ratings -> 0
    }
  }
}

TEST(Knn, ImplicitCosineIsOverlapOverGeometricMean) {
  // item 0: users {0,1,2}; item 1: users {1,2}; item 2: user {3}.
  Interactions x;
  for (auto [u, i] : std::vector<std::pair<int, int>>{{0, 0}, {1, 0}, {2, 0}, {1, 1}, {2, 1}, {3, 2}})
    x.push_back(u, i);
  KnnModel m(KnnOptions().similarity(KnnSimilarity::Cosine).shrinkage(0).baseline(false));
  m.fit(x, 4, 3);
  auto nb = m.neighbors(0);
  ASSERT_EQ(nb.size(), 1u);
  EXPECT_EQ(nb[0].index, 1);
  EXPECT_NEAR(nb[0].sim, 2 / std::sqrt(6.0), 1e-6);
  EXPECT_TRUE(m.neighbors(2).empty());
  // Implicit top-N score: candidate 1's only neighbour is item 0, held by user 0.
  std::vector<float> s;
  m.score(0, {1, 2, 0}, s);
  EXPECT_NEAR(s[0], 2 / std::sqrt(6.0), 1e-6);
  EXPECT_EQ(s[1], 0.0f);
}

TEST(Knn, TopNScoreMatchesOracleOverNeighbourLists) {
  Interactions x = from_dense(kDense);
  for (auto kind : {KnnKind::Item, KnnKind::User}) {
    KnnModel m(KnnOptions().kind(kind).similarity(KnnSimilarity::Cosine).shrinkage(0).k(2));
    m.fit(x, 6, 5);
    const std::vector<int32_t> all = {4, 0, 3, 1, 2};
    for (int32_t u = 0; u < 6; ++u) {
      std::vector<float> got;
      m.score(u, all, got);
      ASSERT_EQ(got.size(), all.size());
      for (size_t c = 0; c < all.size(); ++c) {
        const int32_t i = all[c];
        double want = 0;
        auto nb = m.neighbors(kind == KnnKind::Item ? i : u);
        for (size_t j = 0; j < std::min<size_t>(2, nb.size()); ++j) {
          float r = kind == KnnKind::Item ? kDense[u][nb[j].index] : kDense[nb[j].index][i];
          if (!std::isnan(r)) want += nb[j].sim;
        }
        EXPECT_NEAR(got[c], want, 1e-6) << to_string(kind) << " u=" << u << " i=" << i;
      }
    }
    std::vector<float> out;
    EXPECT_THROW(m.score(0, {5}, out), Error);
    EXPECT_THROW(m.score(6, {0}, out), Error);
  }
}

TEST(Knn, TopNeighborTruncationKeepsTheMostSimilar) {
  KnnModel full(KnnOptions().kind(KnnKind::User).similarity(KnnSimilarity::Pearson).shrinkage(0));
  KnnModel cut(KnnOptions().kind(KnnKind::User).similarity(KnnSimilarity::Pearson).shrinkage(0).max_neighbors(2));
  full.fit(from_dense(kDense), 6, 5);
  cut.fit(from_dense(kDense), 6, 5);
  for (int32_t u = 0; u < 6; ++u) {
    auto a = full.neighbors(u), b = cut.neighbors(u);
    ASSERT_GE(a.size(), 2u);
    ASSERT_EQ(b.size(), 2u);
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_EQ(a[j].index, b[j].index);
      EXPECT_EQ(a[j].sim, b[j].sim);
    }
    for (size_t j = 1; j < a.size(); ++j) EXPECT_GE(a[j - 1].sim, a[j].sim);
  }
}

TEST(Knn, PredictionIsSimilarityWeightedMean) {
  // Items as vectors over users: i0 = (5,4,0), i1 = (3,0,4), i2 = (0,2,1) (0 = missing).
  Interactions x = rated({{0, 0, 5}, {0, 1, 3}, {1, 0, 4}, {1, 2, 2}, {2, 1, 4}, {2, 2, 1}});
  const double s01 = 15 / (std::sqrt(41.0) * 5), s02 = 8 / (std::sqrt(41.0) * std::sqrt(5.0));
  KnnModel m(KnnOptions().similarity(KnnSimilarity::Cosine).shrinkage(0).baseline(false).k(2));
  m.fit(x, 4, 3);
  // User 2 rated i1 = 4 and i2 = 1.
  EXPECT_NEAR(m.predict(2, 0), (s01 * 4 + s02 * 1) / (s01 + s02), 1e-5);
  KnnModel m1(KnnOptions().similarity(KnnSimilarity::Cosine).shrinkage(0).baseline(false).k(1));
  m1.fit(x, 4, 3);
  EXPECT_NEAR(m1.predict(2, 0), 1.0, 1e-6);  // only the nearest (i2, sim .559 > .469)
  // User 3 rated nothing: no neighbour, falls back to the item mean (i0: 4.5).
  EXPECT_NEAR(m.predict(3, 0), 4.5, 1e-6);
  auto batch = m.predict(x);
  for (size_t r = 0; r < x.size(); ++r) EXPECT_EQ(batch[r], m.predict(x.user[r], x.item[r]));
  EXPECT_THROW(m.predict(4, 0), Error);
  EXPECT_THROW(m.predict(0, 3), Error);
  EXPECT_THROW(KnnModel().predict(0, 0), Error);
}

TEST(Knn, PredictionFormulaMatchesOracleOverNeighbourLists) {
  // For every (u, i): walk the stored neighbours of the pair's row, most similar first, keep the
  // first k that rated the other side, and apply the formula of knn.h by hand.
  Interactions x = from_dense(kDense);
  for (auto kind : {KnnKind::Item, KnnKind::User}) {
    for (bool bl : {true, false}) {
      SCOPED_TRACE(std::string(to_string(kind)) + (bl ? " +baseline" : " no baseline"));
      KnnModel m(KnnOptions().kind(kind).similarity(KnnSimilarity::Pearson).shrinkage(1).k(2).baseline(bl).clip(false));
      m.fit(x, 6, 5);
      int with_negative = 0;
      for (int32_t u = 0; u < 6; ++u) {
        for (int32_t i = 0; i < 5; ++i) {
          const bool item = kind == KnnKind::Item;
          double num = 0, den = 0;
          int used = 0;
          for (const auto& nb : m.neighbors(item ? i : u)) {
            if (used == 2 || (!bl && nb.sim <= 0)) break;
            float r = item ? kDense[u][nb.index] : kDense[nb.index][i];
            if (std::isnan(r)) continue;
            double b = bl ? (item ? m.baseline(u, nb.index) : m.baseline(nb.index, i)) : 0.0;
            num += nb.sim * (r - b);
            den += std::abs(nb.sim);
            with_negative += nb.sim < 0;
            ++used;
          }
          if (den == 0) continue;
          double want = (bl ? m.baseline(u, i) : 0.0) + num / den;
          EXPECT_NEAR(m.predict(u, i), want, 1e-5) << "u=" << u << " i=" << i;
        }
      }
      if (bl) {
        EXPECT_GT(with_negative, 0) << "the example should exercise negative similarities";
      }
    }
  }
}

TEST(Knn, BaselineFollowsAlsAndReducesTrainingError) {
  // One ALS pass from zero: b_i = sum(r - mu) / (reg_i + n_i), then b_u = sum(r - mu - b_i) / (reg_u + n_u).
  Interactions x = from_dense(kDense);
  KnnModel one(KnnOptions().baseline_epochs(1).reg_item(2).reg_user(3));
  one.fit(x, 6, 5);
  double mu = 0;
  for (float r : x.rating) mu += r;
  mu /= x.size();
  EXPECT_NEAR(one.global_mean(), mu, 1e-9);
  std::vector<double> bi(5, 0), bu(6, 0), ni(5, 0), nu(6, 0);
  for (size_t r = 0; r < x.size(); ++r) bi[x.item[r]] += x.rating[r] - mu, ni[x.item[r]] += 1;
  for (int i = 0; i < 5; ++i) bi[i] /= 2 + ni[i];
  for (size_t r = 0; r < x.size(); ++r) bu[x.user[r]] += x.rating[r] - mu - bi[x.item[r]], nu[x.user[r]] += 1;
  for (int u = 0; u < 6; ++u) bu[u] /= 3 + nu[u];
  for (int u = 0; u < 6; ++u)
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(one.baseline(u, i), mu + bu[u] + bi[i], 1e-5);

  // On data with user and item effects, the fitted baseline beats the global mean clearly.
  std::mt19937 rng(11);
  std::normal_distribution<float> eff(0, 0.7f), noise(0, 0.3f);
  std::vector<float> ue(60), ie(40);
  for (auto& v : ue) v = eff(rng);
  for (auto& v : ie) v = eff(rng);
  Interactions y;
  y.has_rating = true;
  for (int u = 0; u < 60; ++u)
    for (int i = 0; i < 40; ++i)
      if (rng() % 3 == 0) y.push_back(u, i, std::clamp(3.0f + ue[u] + ie[i] + noise(rng), 1.0f, 5.0f));
  KnnModel m(KnnOptions().reg_user(1).reg_item(1));
  m.fit(y, 60, 40);
  std::vector<float> base, flat(y.size(), float(m.global_mean()));
  for (size_t r = 0; r < y.size(); ++r) base.push_back(m.baseline(y.user[r], y.item[r]));
  EXPECT_LT(rmse(base, y.rating), 0.6 * rmse(flat, y.rating));
  // And the neighbourhood on top of it fits the training data better still.
  EXPECT_LT(rmse(m.predict(y), y.rating), rmse(base, y.rating));
}

TEST(Knn, ThreadCountDoesNotChangeTheModel) {
  Interactions y = random_ratings(80, 50, 4, 5);
  for (auto kind : {KnnKind::Item, KnnKind::User}) {
    KnnModel a(KnnOptions().kind(kind).threads(1).max_neighbors(10)),
        b(KnnOptions().kind(kind).threads(3).max_neighbors(10));
    a.fit(y, 80, 50);
    b.fit(y, 80, 50);
    EXPECT_EQ(a.to_bytes().substr(100), b.to_bytes().substr(100));  // past the options header
    EXPECT_EQ(a.predict(y), b.predict(y));
  }
}

TEST(Knn, SaveLoadGivesIdenticalPredictions) {
  test::TempDir dir;
  Interactions y = random_ratings(50, 30, 3, 9);
  for (auto kind : {KnnKind::Item, KnnKind::User}) {
    KnnModel m(KnnOptions().kind(kind).similarity(KnnSimilarity::AdjustedCosine).k(7).max_neighbors(12));
    m.fit(y, 50, 30);
    // KNN lives in the one checkpoint container (model/io.h), golden pairs verified on load.
    const std::string path = dir.path("knn.ckpt");
    save_checkpoint(path, knn_checkpoint(m, {}, {}, false));
    KnnModel back = knn_from_checkpoint(load_checkpoint(path));
    EXPECT_EQ(back.options().k(), 7);
    EXPECT_EQ(back.options().kind(), kind);
    for (int u = 0; u < 50; ++u) {
      for (int i = 0; i < 30; ++i) EXPECT_EQ(back.predict(u, i), m.predict(u, i));
      std::vector<int32_t> all(30);
      for (int i = 0; i < 30; ++i) all[i] = i;
      std::vector<float> s1, s2;
      m.score(u, all, s1);
      back.score(u, all, s2);
      EXPECT_EQ(s1, s2);
    }
    std::string bytes = m.to_bytes();
    EXPECT_THROW(KnnModel::from_bytes(bytes.substr(0, bytes.size() - 3), "cut"), Error);
    EXPECT_THROW(KnnModel::from_bytes("garbage-garbage", "junk"), Error);
    std::string bad = bytes;
    bad[9] = 7;  // kind field
    EXPECT_THROW(KnnModel::from_bytes(bad, "bad-kind"), Error);
  }
  EXPECT_THROW(KnnModel().to_bytes(), Error);
}

TEST(Knn, RepeatedPairKeepsTheLastRating) {
  Interactions x = rated({{0, 0, 5}, {1, 0, 4}, {0, 0, 2}});
  KnnModel m(KnnOptions().baseline(false));
  m.fit(x, 3, 1);
  EXPECT_NEAR(m.predict(2, 0), 3.0, 1e-6);  // cold user: the item mean of {2, 4}
}

TEST(Knn, RejectsBadInput) {
  Interactions x = from_dense(kDense);
  EXPECT_THROW(KnnModel().fit(x, 5, 5), Error);  // user 5 outside
  EXPECT_THROW(KnnModel().fit(Interactions{}, 5, 5), Error);
  EXPECT_THROW(KnnModel(KnnOptions().k(0)).fit(x, 6, 5), Error);
  EXPECT_THROW(parse_knn_similarity("jaccard"), Error);
  EXPECT_EQ(parse_knn_similarity("adjusted_cosine"), KnnSimilarity::AdjustedCosine);
  EXPECT_EQ(parse_knn_kind("user"), KnnKind::User);
}

TEST(Knn, MovieLens100kU1ItemKnnBaselineRmse) {
  MTREC_REQUIRE_ML100K(dir);
  MovieLensFold fold = read_movielens_100k_fold(dir, 1);
  Interactions train = fold.data.interactions.subset(fold.split.train);
  Interactions test = fold.data.interactions.subset(fold.split.test);
  ASSERT_EQ(train.size(), 80000u);
  ASSERT_EQ(test.size(), 20000u);
  KnnModel m(KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::PearsonBaseline).k(40).baseline(true));
  m.fit(train, fold.data.num_users(), fold.data.num_items());
  double e = rmse(m.predict(test), test.rating);
  RecordProperty("rmse_u1", std::to_string(e));
  EXPECT_LE(e, 0.95);
}

}  // namespace mtrec
