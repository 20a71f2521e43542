#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
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
  EXPECT_EQ(a.data.interactions.context, b.data.interactions.context);
  ASSERT_EQ(a.data.context_text.size(), b.data.context_text.size());
  for (int32_t c = 0; c < a.data.context_text.size(); ++c)
    ASSERT_EQ(a.data.context_text.get(c, "text"), b.data.context_text.get(c, "text")) << c;
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
  EXPECT_LT(err / n, 0.6);             // noise 0.5 plus rounding
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

TEST(Synthetic, TextQualityAppendsTheQualityQuintilesWordAndChangesNothingElse) {
  const auto& base = world();
  const SyntheticWorld w = generate_world(small().text_quality(0.5));
  const auto& t = w.truth;
  ASSERT_EQ(t.quality_words.size(), 5u);
  std::set<std::string> vocab;  // the quality words are new words
  for (const auto& v : t.topic_words) vocab.insert(v.begin(), v.end());
  vocab.insert(t.common_words.begin(), t.common_words.end());
  for (const auto& tier : t.quality_words)
    for (const auto& word : tier) EXPECT_TRUE(vocab.insert(word).second) << word;
  // The quintile by hand: how many items have a lower quality.
  const int32_t I = w.data.num_items();
  int named = 0;
  for (int32_t i = 0; i < I; ++i) {
    int lower = 0;
    for (int32_t j = 0; j < I; ++j) lower += t.item_quality[size_t(j)] < t.item_quality[size_t(i)];
    const std::string before = base.data.item_text.get(i, "title"), now = w.data.item_text.get(i, "title");
    EXPECT_EQ(w.data.item_text.get(i, "description"), base.data.item_text.get(i, "description"));
    const int tier = t.item_quality_tier[size_t(i)];
    if (tier < 0) {
      EXPECT_EQ(now, before);
      continue;
    }
    ++named;
    EXPECT_EQ(tier, std::min(4, lower * 5 / I)) << "item " << i;
    ASSERT_EQ(now.rfind(before + " ", 0), 0u) << now;
    const auto& words = t.quality_words[size_t(tier)];
    EXPECT_NE(std::find(words.begin(), words.end(), now.substr(before.size() + 1)), words.end()) << now;
  }
  EXPECT_NEAR(double(named) / I, 0.5, 0.1);
  // Interactions and profiles are those of the world without quality words.
  EXPECT_EQ(w.data.interactions.item, base.data.interactions.item);
  EXPECT_EQ(w.data.interactions.user, base.data.interactions.user);
  EXPECT_EQ(w.data.interactions.behavior, base.data.interactions.behavior);
  for (int32_t u = 0; u < w.data.num_users(); ++u)
    EXPECT_EQ(w.data.user_text.get(u, "profile"), base.data.user_text.get(u, "profile"));
  EXPECT_TRUE(check_world(w).empty());
  for (int8_t tier : base.truth.item_quality_tier) EXPECT_EQ(tier, -1);
  EXPECT_THROW(generate_world(SyntheticOptions().text_quality(1.5)), Error);
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
  // Contexts come from their own stream: the kept rows have the texts they had with impressions.
  const auto& full = world().data;
  for (size_t r = 0, k = 0; r < full.interactions.size(); ++r) {
    if (full.interactions.behavior[r] == 3) continue;
    ASSERT_EQ(w.data.context_text.get(x.context[k], "text"),
              full.context_text.get(full.interactions.context[r], "text"))
        << "row " << r;
    ++k;
  }
}

TEST(Synthetic, EveryRowHasADeduplicatedScenarioContext) {
  const auto& w = world();
  const auto& ds = w.data;
  const auto& x = ds.interactions;
  ASSERT_TRUE(x.has_context);
  ASSERT_EQ(x.context.size(), x.size());
  EXPECT_EQ(ds.context_text.fields(), (std::vector<std::string>{"text"}));
  std::set<std::string> texts;
  for (int32_t c = 0; c < ds.context_text.size(); ++c) texts.insert(ds.context_text.get(c, "text"));
  EXPECT_EQ(texts.size(), size_t(ds.context_text.size()));   // one id per distinct text
  EXPECT_GT(ds.context_text.size(), 200);                    // queries vary
  EXPECT_LT(ds.context_text.size(), int32_t(x.size() / 4));  // but repeat
  // Ids in order of first appearance.
  int32_t next = 0;
  for (int32_t c : x.context) {
    ASSERT_LE(c, next);
    if (c == next) ++next;
  }
  // Search queries: 1-3 words of the session topic (the user's strongest) or common words,
  // unless phrased "more like ...".
  const auto& t = w.truth;
  std::set<std::string> common(t.common_words.begin(), t.common_words.end());
  int queries = 0, on_topic = 0;
  for (size_t r = 0; r < x.size(); ++r) {
    if (x.scenario[r] != 1) continue;
    auto q = words(ds.context_text.get(x.context[r], "text"));
    if (q.size() >= 2 && q[0] == "more" && q[1] == "like") continue;
    ASSERT_GE(q.size(), 1u);
    ASSERT_LE(q.size(), 3u);
    const float* ut = &t.user_topic[size_t(x.user[r]) * 8];
    const auto& vocab = t.topic_words[std::max_element(ut, ut + 8) - ut];
    ++queries;
    for (const auto& word : q) {
      const bool own = std::find(vocab.begin(), vocab.end(), word) != vocab.end();
      ASSERT_TRUE(own || common.count(word)) << word;
      on_topic += own;
    }
  }
  EXPECT_GT(queries, 3000);
  EXPECT_GT(on_topic, queries);  // most queries have more than one word, most words on topic
}

/// The baseline a learned scenario classifier must beat: each word of a context votes for the
/// scenario it occurred in most often among the training rows; the most votes win (ties and
/// contexts without known words: the more frequent scenario).
TEST(Synthetic, ContextPredictsScenarioWellButNotPerfectly) {
  const auto& ds = world().data;
  const auto& x = ds.interactions;
  const int S = ds.scenarios.size();
  std::vector<std::vector<std::string>> ctx_words(size_t(ds.context_text.size()));
  for (int32_t c = 0; c < ds.context_text.size(); ++c) ctx_words[size_t(c)] = words(ds.context_text.get(c, "text"));
  std::map<std::string, std::vector<int64_t>> count;
  std::vector<int64_t> prior(static_cast<size_t>(S));
  for (size_t r = 0; r < x.size(); ++r) {
    if (x.user[r] % 2) continue;  // train on even users, test on odd ones
    prior[size_t(x.scenario[r])]++;
    for (const auto& word : ctx_words[size_t(x.context[r])]) {
      auto& v = count[word];
      v.resize(size_t(S));
      v[size_t(x.scenario[r])]++;
    }
  }
  std::map<std::string, int> vote;
  for (const auto& [word, v] : count) vote[word] = int(std::max_element(v.begin(), v.end()) - v.begin());
  const int majority = int(std::max_element(prior.begin(), prior.end()) - prior.begin());
  int64_t right = 0, right_majority = 0, n = 0;
  for (size_t r = 0; r < x.size(); ++r) {
    if (x.user[r] % 2 == 0) continue;
    std::vector<int> votes(static_cast<size_t>(S));
    for (const auto& word : ctx_words[size_t(x.context[r])]) {
      auto it = vote.find(word);
      if (it != vote.end()) votes[size_t(it->second)]++;
    }
    int best = majority;
    for (int s = 0; s < S; ++s)
      if (votes[size_t(s)] > votes[size_t(best)] ||
          (votes[size_t(s)] == votes[size_t(best)] && prior[size_t(s)] > prior[size_t(best)]))
        best = s;
    right += best == x.scenario[r];
    right_majority += majority == x.scenario[r];
    ++n;
  }
  const double acc = double(right) / double(n), base = double(right_majority) / double(n);
  std::printf("context -> scenario: word-vote accuracy %.4f, majority class %.4f (%lld test rows)\n", acc, base,
              static_cast<long long>(n));
  // Measured (seed 5): 0.83 against 0.55. Home-feed pages are always right; ads placements
  // share words with home pages ("for you", "picks", "this week") and 15% are home pages;
  // searches phrased "more like ..." read as browsing.
  EXPECT_GT(base, 0.50);
  EXPECT_LT(base, 0.60);
  EXPECT_GT(acc, base + 0.2);
  EXPECT_GT(acc, 0.75);
  EXPECT_LT(acc, 0.90);
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
