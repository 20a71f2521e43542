#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "test_data.h"
#include "test_util.h"
#include "mtrec/core/check.h"
#include "mtrec/data/sampler.h"

namespace mtrec {
namespace {

TEST(Sampler, NeverReturnsPositives) {
  // User 0 has a few positives (rejection path), user 1 has seen 45 of 50 items (enumeration).
  std::vector<std::pair<int32_t, int32_t>> ui;
  for (int32_t i : {3, 7, 8, 20, 49}) ui.emplace_back(0, i);
  for (int32_t i = 0; i < 45; ++i) ui.emplace_back(1, (i * 7) % 50);
  auto x = test::interactions_of(ui);
  for (auto kind : {NegativeSampler::Kind::Uniform, NegativeSampler::Kind::Popularity}) {
    NegativeSampler neg(x, 2, 50, kind, 5);
    EXPECT_EQ(neg.positives(0), (std::vector<int32_t>{3, 7, 8, 20, 49}));
    for (int rep = 0; rep < 200; ++rep) {
      for (int32_t u : {0, 1}) {
        auto s = neg.sample(u, 4);
        ASSERT_EQ(s.size(), 4u);
        std::set<int32_t> distinct(s.begin(), s.end());
        EXPECT_EQ(distinct.size(), 4u) << "repeats inside one call";
        for (int32_t i : s) {
          EXPECT_TRUE(i >= 0 && i < 50);
          EXPECT_FALSE(neg.is_positive(u, i)) << "user " << u << " item " << i;
        }
      }
    }
  }
}

TEST(Sampler, UniformFrequencies) {
  NegativeSampler neg(test::interactions_of({{0, 2}, {0, 5}}), 1, 10, NegativeSampler::Kind::Uniform, 42);
  std::map<int32_t, int> freq;
  const int draws = 80000;
  for (int d = 0; d < draws; ++d) freq[neg.sample(0, 1)[0]]++;
  EXPECT_EQ(freq.count(2), 0u);
  EXPECT_EQ(freq.count(5), 0u);
  ASSERT_EQ(freq.size(), 8u);
  for (auto [item, f] : freq) EXPECT_NEAR(f, draws / 8, draws / 8 * 0.05) << "item " << item;
}

TEST(Sampler, PopularityPrefersPopularItemsByExpectedRatio) {
  // Counts from other users: item 1 seen 4 times, item 2 once, item 3 twice; item 0 is user 0's.
  std::vector<std::pair<int32_t, int32_t>> ui{{0, 0}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {1, 2}, {2, 3}, {3, 3}};
  auto x = test::interactions_of(ui);
  for (double alpha : {1.0, 0.5}) {
    NegativeSampler neg(x, 5, 5, NegativeSampler::Kind::Popularity, 9, alpha);
    std::map<int32_t, int> freq;
    for (int d = 0; d < 60000; ++d) freq[neg.sample(0, 1)[0]]++;
    EXPECT_EQ(freq.count(0), 0u);  // a positive
    EXPECT_EQ(freq.count(4), 0u);  // never interacted: weight 0
    EXPECT_NEAR(double(freq[1]) / freq[2], std::pow(4.0, alpha), 0.1 * std::pow(4.0, alpha)) << "alpha " << alpha;
    EXPECT_NEAR(double(freq[3]) / freq[2], std::pow(2.0, alpha), 0.1 * std::pow(2.0, alpha)) << "alpha " << alpha;
  }
}

TEST(Sampler, AllUnseenOnceWhenAskedForThemAll) {
  auto x = test::interactions_of({{0, 1}, {0, 3}, {1, 0}, {1, 2}});
  for (auto kind : {NegativeSampler::Kind::Uniform, NegativeSampler::Kind::Popularity}) {
    NegativeSampler neg(x, 2, 6, kind, 1);
    auto s = neg.sample(0, 4);
    std::sort(s.begin(), s.end());
    EXPECT_EQ(s, (std::vector<int32_t>{0, 2, 4, 5}));
    auto more = neg.sample(0, 9);  // more than unseen: each unseen once, then repeats
    ASSERT_EQ(more.size(), 9u);
    std::set<int32_t> distinct(more.begin(), more.end());
    EXPECT_EQ(distinct, (std::set<int32_t>{0, 2, 4, 5}));
    EXPECT_TRUE(neg.sample(0, 0).empty());
  }
}

TEST(Sampler, PopularityMassOnPositivesFallsBackToEnumeration) {
  // Item 0 (user 0's only positive) holds 1000 of 1019 popularity units: rejection sampling
  // would almost never accept, so the sampler must switch to enumerating the unseen items.
  std::vector<std::pair<int32_t, int32_t>> ui{{0, 0}};
  for (int k = 0; k < 1000; ++k) ui.emplace_back(1, 0);
  for (int32_t i = 1; i < 20; ++i) ui.emplace_back(2, i);
  NegativeSampler neg(test::interactions_of(ui), 3, 20, NegativeSampler::Kind::Popularity, 3);
  std::map<int32_t, int> freq;
  for (int rep = 0; rep < 2000; ++rep) {
    auto s = neg.sample(0, 3);
    ASSERT_EQ(std::set<int32_t>(s.begin(), s.end()).size(), 3u);
    for (int32_t i : s) freq[i]++;
  }
  EXPECT_EQ(freq.count(0), 0u);
  ASSERT_EQ(freq.size(), 19u);  // equal weights: every unseen item, about equally often
  for (auto [item, f] : freq) EXPECT_NEAR(f, 6000 / 19, 100) << "item " << item;
}

TEST(Sampler, ReproducibleAndReseedable) {
  auto x = test::interactions_of({{0, 1}, {1, 2}, {2, 3}});
  NegativeSampler a(x, 3, 100, NegativeSampler::Kind::Uniform, 3), b(x, 3, 100, NegativeSampler::Kind::Uniform, 3);
  auto sa = a.sample(0, 20);
  EXPECT_EQ(sa, b.sample(0, 20));
  NegativeSampler c(x, 3, 100, NegativeSampler::Kind::Uniform, 4);
  EXPECT_NE(sa, c.sample(0, 20));
  a.reseed(77);
  b.reseed(77);
  EXPECT_EQ(a.sample(1, 5), b.sample(1, 5));
}

TEST(Sampler, ErrorWhenUserSawEverything) {
  NegativeSampler neg(test::interactions_of({{0, 0}, {0, 1}, {0, 2}, {1, 0}}), 2, 3, NegativeSampler::Kind::Uniform, 1);
  try {
    neg.sample(0, 1);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("all 3 items"), std::string::npos) << e.what();
  }
  EXPECT_EQ(neg.sample(1, 2).size(), 2u);
  EXPECT_THROW(neg.sample(5, 1), Error);
  EXPECT_THROW(NegativeSampler(test::interactions_of({{0, 9}}), 1, 3, NegativeSampler::Kind::Uniform, 1), Error);
}

}  // namespace
}  // namespace mtrec
