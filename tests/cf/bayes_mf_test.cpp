#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mtrec/cf/bayes_mf.h"
#include "mtrec/core/check.h"

namespace mtrec {
namespace {

// Ratings from a known biased rank-3 model plus N(0, noise²), on a random 15% of a
// 300 x 200 matrix; every 10th rating is held out.
struct Planted {
  Interactions train, test;
  double noise;
};
Planted planted(double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> unif(0, 1);
  const int users = 300, items = 200, rank = 3;
  std::vector<double> p(users * rank), q(items * rank), bu(users), bi(items);
  for (auto& v : p) v = 0.6 * n01(rng);
  for (auto& v : q) v = 0.6 * n01(rng);
  for (auto& v : bu) v = 0.3 * n01(rng);
  for (auto& v : bi) v = 0.3 * n01(rng);
  Planted out{{}, {}, noise};
  out.train.has_rating = out.test.has_rating = true;
  int k = 0;
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < items; ++i) {
      if (unif(rng) > 0.15) continue;
      double r = 3.5 + bu[u] + bi[i] + noise * n01(rng);
      for (int f = 0; f < rank; ++f) r += p[u * rank + f] * q[i * rank + f];
      (++k % 10 == 0 ? out.test : out.train).push_back(u, i, static_cast<float>(r));
    }
  return out;
}

double rmse(const BayesMf& mf, const Interactions& x) {
  double se = 0;
  for (size_t n = 0; n < x.size(); ++n) {
    const double e = mf.predict(x.user[n], x.item[n]) - x.rating[n];
    se += e * e;
  }
  return std::sqrt(se / x.size());
}

TEST(BayesMf, RecoversPlantedStructureAndNoiseLevel) {
  const Planted d = planted(0.3, 1);
  BayesMf mf = fit_bayes_mf(d.train, 300, 200, BayesMfOptions().dim(8).iterations(120).burn_in(30).threads(1));
  double mean = 0;
  for (float r : d.train.rating) mean += r;
  mean /= d.train.size();
  double base = 0;
  for (float r : d.test.rating) base += (r - mean) * (r - mean);
  base = std::sqrt(base / d.test.size());
  const double test = rmse(mf, d.test);
  // Ratings spread by sqrt(3·0.6⁴ + 2·0.3² + 0.3²) ≈ 0.81 around their mean; the best possible
  // held-out RMSE is the noise, 0.3.
  EXPECT_GT(base, 0.75);
  EXPECT_LT(test, 0.45) << "global mean " << base;
  // The noise precision is sampled, not set: its posterior must find the planted level
  // (measured .269 held-out .348: 8 factors for a rank-3 truth fit a little of the noise).
  EXPECT_NEAR(mf.noise_sd, 0.3, 0.06);
  EXPECT_EQ(mf.samples, 90);
  EXPECT_EQ(mf.user_factors.size(), 300u * 8);
  EXPECT_LT(mf.train_rmse, test);
}

TEST(BayesMf, ResultDoesNotDependOnThreadCountButOnSeed) {
  const Planted d = planted(0.5, 2);
  auto o = BayesMfOptions().dim(4).iterations(12).burn_in(2).seed(9);
  BayesMf one = fit_bayes_mf(d.train, 300, 200, BayesMfOptions(o).threads(1));
  BayesMf two = fit_bayes_mf(d.train, 300, 200, BayesMfOptions(o).threads(2));
  EXPECT_EQ(one.user_factors, two.user_factors);
  EXPECT_EQ(one.item_bias, two.item_bias);
  EXPECT_EQ(one.global_mean, two.global_mean);
  BayesMf other = fit_bayes_mf(d.train, 300, 200, BayesMfOptions(o).threads(2).seed(10));
  EXPECT_NE(one.user_factors, other.user_factors);
}

TEST(BayesMf, UnseenUsersAndItemsFallBackToThePrior) {
  Interactions x;
  x.has_rating = true;
  for (int u = 0; u < 20; ++u)
    for (int i = 0; i < 10; ++i) x.push_back(u, i, static_cast<float>(1 + (u + i) % 5));
  // User 20 and item 10 have no ratings: their predictions stay near the global mean.
  BayesMf mf = fit_bayes_mf(x, 21, 11, BayesMfOptions().dim(2).iterations(60).burn_in(10).threads(1));
  EXPECT_NEAR(mf.predict(20, 10), 3.0, 0.3);
  EXPECT_NEAR(mf.global_mean, 3.0, 0.3);
}

TEST(BayesMf, BadInputIsAClearError) {
  Interactions x;
  x.has_rating = true;
  x.push_back(0, 0, 4.0f);
  x.push_back(1, 5, 3.0f);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { fit_bayes_mf(x, 2, 3); }).find("row 1 has (user 1, item 5) outside 2 x 3"),
            std::string::npos);
  EXPECT_NE(message([&] { fit_bayes_mf(x, 2, 6, BayesMfOptions().iterations(5).burn_in(5)); }).find("burn_in=5"),
            std::string::npos);
  Interactions clicks;
  clicks.push_back(0, 0);
  EXPECT_NE(message([&] { fit_bayes_mf(clicks, 1, 1); }).find("needs interactions with ratings"), std::string::npos);
  BayesMf mf = fit_bayes_mf(x, 2, 6, BayesMfOptions().dim(2).iterations(3).burn_in(1));
  EXPECT_NE(message([&] { mf.predict(2, 0); }).find("(user 2, item 0) outside 2 x 6"), std::string::npos);
}

}  // namespace
}  // namespace mtrec
