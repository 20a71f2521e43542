#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/data/synthetic.h"

namespace mtrec {
namespace {

SyntheticOptions small() { return SyntheticOptions().users(300).items(200).interactions(30000).seed(5); }

const SyntheticWorld& world() {
  static const SyntheticWorld w = generate_world(small());
  return w;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

TEST(Synthetic, SizesNamesAndSanity) {
  const auto& w = world();
  const auto& ds = w.data;
  EXPECT_EQ(ds.num_users(), 300);
  EXPECT_EQ(ds.num_items(), 200);
  EXPECT_NEAR(double(ds.interactions.size()), 30000.0, 1500.0);
  EXPECT_EQ(ds.scenarios.raws(), (std::vector<std::string>{"home_feed", "search", "ads"}));
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"click", "rating", "wishlist", "impression"}));
  EXPECT_EQ(w.truth.topics, 8);
  EXPECT_EQ(w.truth.user_topic.size(), 300u * 8);
  EXPECT_EQ(w.truth.topic_transition.size(), 64u);
  for (int32_t a = 0; a < 8; ++a) {
    double row = 0;
    for (int32_t b = 0; b < 8; ++b) row += w.truth.topic_transition[a * 8 + b];
    EXPECT_NEAR(row, 1.0, 1e-5);
    EXPECT_FLOAT_EQ(w.truth.topic_transition[a * 8 + a], 0.7f);
  }
  auto problems = check_world(w);
  EXPECT_TRUE(problems.empty()) << problems.front();
  // Every behaviour and scenario occurs.
  std::set<int16_t> beh(ds.interactions.behavior.begin(), ds.interactions.behavior.end()),
      scen(ds.interactions.scenario.begin(), ds.interactions.scenario.end());
  EXPECT_EQ(beh.size(), 4u);
  EXPECT_EQ(scen.size(), 3u);
}

TEST(Synthetic, DeterministicForSeedAndThreadCount) {
  auto a = generate_world(small().users(600).threads(1)), b = generate_world(small().users(600).threads(3));
  EXPECT_EQ(a.data.interactions.item, b.data.interactions.item);
  EXPECT_EQ(a.data.interactions.timestamp, b.data.interactions.timestamp);
  EXPECT_EQ(a.data.interactions.rating, b.data.interactions.rating);
  EXPECT_EQ(a.data.interactions.behavior, b.data.interactions.behavior);
  EXPECT_EQ(a.data.item_text.get(17, "title"), b.data.item_text.get(17, "title"));
  EXPECT_EQ(a.truth.user_topic, b.truth.user_topic);
  auto c = generate_world(small().users(600).seed(6));
  EXPECT_NE(a.data.interactions.item, c.data.interactions.item);
  EXPECT_NE(a.data.item_text.get(17, "title"), c.data.item_text.get(17, "title"));
  EXPECT_NE(a.truth.user_topic, c.truth.user_topic);
}

TEST(Synthetic, ObservedClickRateMatchesTruth) {
  const auto& w = world();
  const auto& x = w.data.interactions;
  std::vector<double> clicks(3), expected(3), n(3);
  for (size_t r = 0; r < x.size(); ++r) {
    const float p = w.truth.click_probability(x.user[r], x.item[r], x.scenario[r]);
    ASSERT_TRUE(p > 0.0f && p < 1.0f) << p;
    const float er = w.truth.expected_rating(x.user[r], x.item[r]);
    ASSERT_TRUE(er > 1.0f && er < 5.0f) << er;
    clicks[x.scenario[r]] += x.behavior[r] != 3;
    expected[x.scenario[r]] += p;
    n[x.scenario[r]] += 1;
  }
  for (int s = 0; s < 3; ++s) {
    ASSERT_GT(n[s], 3000) << "scenario " << s;
    EXPECT_NEAR(clicks[s] / n[s], expected[s] / n[s], 0.02) << "scenario " << s;
  }
  // Scenarios differ: search clicks most, ads least.
  EXPECT_GT(clicks[1] / n[1], clicks[0] / n[0] + 0.05);
  EXPECT_LT(clicks[2] / n[2], clicks[0] / n[0] - 0.05);
}

TEST(Synthetic, RatingsFollowExpectedRating) {
  const auto& w = world();
  const auto& x = w.data.interactions;
  double err = 0, base = 0, mean = 0;
  int n = 0;
  for (size_t r = 0; r < x.size(); ++r)
    if (x.behavior[r] == 1) mean += x.rating[r], ++n;
  ASSERT_GT(n, 500);
  mean /= n;
  for (size_t r = 0; r < x.size(); ++r)
    if (x.behavior[r] == 1) {
      err += std::abs(x.rating[r] - w.truth.expected_rating(x.user[r], x.item[r]));
      base += std::abs(x.rating[r] - mean);
    }
  EXPECT_LT(err / n, 0.6);          // noise 0.5 plus rounding
  EXPECT_LT(err / n, 0.8 * base / n);  // the truth explains ratings better than the mean
}

TEST(Synthetic, ConsecutiveItemsShareTopicAndSearchFollowsStrongestTopic) {
  const auto& w = world();
  const auto& x = w.data.interactions;
  const auto& main = w.truth.item_main_topic;
  int same = 0, pairs = 0;
  std::vector<double> topic_share(8);
  for (int32_t t : main) topic_share[t] += 1.0 / main.size();
  double chance = 0;
  for (double p : topic_share) chance += p * p;
  std::vector<int> strongest_hits(3), rows(3);
  for (size_t r = 0; r < x.size(); ++r) {
    if (r > 0 && x.user[r] == x.user[r - 1] && x.scenario[r] == 0 && x.scenario[r - 1] == 0 &&
        x.timestamp[r] - x.timestamp[r - 1] < 60) {
      same += main[x.item[r]] == main[x.item[r - 1]];
      ++pairs;
    }
    const float* ut = &w.truth.user_topic[size_t(x.user[r]) * 8];
    const int top = int(std::max_element(ut, ut + 8) - ut);
    strongest_hits[x.scenario[r]] += main[x.item[r]] == top;
    rows[x.scenario[r]]++;
  }
  ASSERT_GT(pairs, 1000);
  EXPECT_GT(double(same) / pairs, 2.5 * chance) << "chance " << chance;
  EXPECT_GT(double(strongest_hits[1]) / rows[1], 0.8);
  EXPECT_GT(double(strongest_hits[1]) / rows[1], double(strongest_hits[0]) / rows[0] + 0.2);
}

TEST(Synthetic, LateItemsAppearOnlyAfterRelease) {
  const auto& w = world();
  const auto& x = w.data.interactions;
  const auto& rel = w.truth.item_release;
  const int64_t first = *std::min_element(rel.begin(), rel.end());
  const auto late = std::count_if(rel.begin(), rel.end(), [&](int64_t t) { return t > first; });
  EXPECT_EQ(late, 20);  // 10% of 200
  int late_rows = 0;
  for (size_t r = 0; r < x.size(); ++r) {
    ASSERT_GE(x.timestamp[r], rel[x.item[r]]) << "row " << r;
    late_rows += rel[x.item[r]] > first;
  }
  EXPECT_GT(late_rows, 100);  // cold-start items do get exposure once released
}

TEST(Synthetic, TextUsesTopicVocabulary) {
  const auto& w = world();
  const auto& t = w.truth;
  std::set<std::string> common(t.common_words.begin(), t.common_words.end());
  for (int32_t i = 0; i < w.data.num_items(); ++i) {
    const auto& vocab = t.topic_words[t.item_main_topic[i]];
    std::set<std::string> own(vocab.begin(), vocab.end());
    auto title = words(w.data.item_text.get(i, "title"));
    ASSERT_GE(title.size(), 3u);
    ASSERT_LE(title.size(), 5u);
    EXPECT_TRUE(own.count(title[0])) << "item " << i << " title " << w.data.item_text.get(i, "title");
    for (const auto& word : title) EXPECT_TRUE(own.count(word) || common.count(word)) << word;
    auto desc = words(w.data.item_text.get(i, "description"));
    EXPECT_GE(desc.size(), 10u);
    EXPECT_LE(desc.size(), 20u);
  }
  for (int32_t u = 0; u < w.data.num_users(); ++u) {
    const auto& p = w.data.user_text.get(u, "profile");
    const float* ut = &t.user_topic[size_t(u) * 8];
    const int top = int(std::max_element(ut, ut + 8) - ut);
    EXPECT_EQ(p.rfind("likes " + t.topic_names[top] + " ", 0), 0u) << p;
  }
}

TEST(Synthetic, WithoutImpressionsOnlyPositives) {
  auto w = generate_world(small().impressions(false));
  const auto& x = w.data.interactions;
  EXPECT_TRUE(check_world(w).empty());
  for (int16_t b : x.behavior) ASSERT_NE(b, 3);
  // Same exposures, impressions dropped: exactly the non-impression rows of the full world.
  size_t positives = 0;
  for (int16_t b : world().data.interactions.behavior) positives += b != 3;
  EXPECT_EQ(x.size(), positives);
}

TEST(Synthetic, RejectsBadOptions) {
  EXPECT_THROW(generate_world(SyntheticOptions().users(0)), Error);
  EXPECT_THROW(generate_world(SyntheticOptions().late_item_fraction(1.0)), Error);
  EXPECT_THROW(generate_world(SyntheticOptions().topic_stickiness(1.5)), Error);
  auto w = generate_world(SyntheticOptions().users(20).items(5).topics(8).scenarios(5).interactions(500));
  EXPECT_TRUE(check_world(w).empty());
  EXPECT_EQ(w.data.scenarios.raw(4), "scenario_4");
}

}  // namespace
}  // namespace mtrec
