#pragma once
// The synthetic world: a seeded generator of users, items, text and interactions with known
// structure, used as the default data of the main job and as ground truth in tests.
//
// Users and items carry latent topic mixtures; item titles/descriptions are drawn from
// per-topic vocabularies; user profiles describe their favourite topics. Several scenarios
// (home feed, search, ads) differ in which items they show and in click/rating behaviour;
// behaviours are click, rating and wishlist; each user's interactions form time-ordered
// sessions whose topic follows a Markov chain (sequential dependence); a share of items is
// introduced only late (cold start).
//   mtrec::SyntheticWorld w = mtrec::generate_world(mtrec::SyntheticOptions().users(1000).items(500));
//   w.data (a Dataset); w.truth.click_probability(u, i, scenario)
//
// Conventions of the generated Dataset (name "synthetic"; raw ids "u0", "i0", ...):
// - Every row is one exposure of an item to a user in a scenario. Behaviours (ids in this
//   order): "click", "rating", "wishlist", "impression". A clicked exposure becomes "rating"
//   (about 25% of clicks), "wishlist" (5-20%, more for liked items) or "click"; an exposure
//   that was not clicked is "impression" (the CTR negatives; absent with impressions(false)).
// - has_rating is true and the rating column is a label: the 1..5 star value on "rating" rows,
//   1 on "click" and "wishlist" rows, 0 on "impression" rows. Positives are behaviour != impression.
// - Scenarios: "home_feed" (follows the session's topic chain, some trending items),
//   "search" (sessions stay on the user's strongest topic; clicks sharper), "ads" (mostly a
//   sponsored subset of high-quality items; clicks rarer), then "scenario_3", ... (like home_feed
//   with their own bias and temperature).
// - Timestamps are seconds, strictly increasing per user; rows are ordered by user, then time.
//   Sessions are runs of interactions of one scenario a few seconds to minutes apart.
// - item_text fields "title" (3-5 words, mostly from the main topic's vocabulary) and
//   "description" (10-20 words); user_text field "profile" ("likes <topic> ...").
// - Every row has a context (has_context): the text of the request, deduplicated into
//   context_text (field "text"; ids in order of first appearance). Scenario-dependent but not
//   trivially separable: search rows carry a 1-3 word query from the session topic's vocabulary
//   (sometimes with a common word); home_feed rows a page text ("home feed for you", "trending
//   now", ... with seeded variation), a quarter of them "more like <topic word> ..." browsing
//   texts that share vocabulary with queries; ads rows a placement text ("sponsored", "promoted
//   picks", ...), ~15% of them looking like home-feed pages; scenario_3+ like home_feed with
//   their own page names.
// - Output is identical for a seed whatever the thread count. Memory: 28 bytes per interaction
//   in the Dataset (int32 user/item/context, float rating, int64 timestamp, int16
//   scenario/behaviour), plus the distinct context texts.
#include <torch/arg.h>
#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"

namespace mtrec {

#define MTREC_SYNTHETIC_OPTIONS(X)                              \
  X(int32_t, users, 2000)                                       \
  X(int32_t, items, 1000)                                       \
  X(int32_t, topics, 8)                                         \
  /* approximate total (exact count reported in the Dataset) */ \
  X(int64_t, interactions, 100000)                              \
  /* home feed, search, ads (then scenario_3, ...) */           \
  X(int32_t, scenarios, 3)                                      \
  /* items that appear only in the last 10% of time */          \
  X(double, late_item_fraction, 0.1)                            \
  /* P(next interaction stays in the session's topic) */        \
  X(double, topic_stickiness, 0.7)                              \
  X(uint64_t, seed, 42)                                         \
  /* record non-clicked exposures as behaviour "impression" */  \
  X(bool, impressions, true)                                    \
  /* share of items whose title names their quality tier (a */  \
  /* word per quintile of item_quality), as an author or a */   \
  /* brand does in a real catalogue; 0: text tells the topic */ \
  /* only (the world is otherwise the same at any share) */     \
  X(double, text_quality, 0)                                    \
  /* 0: hardware concurrency; output does not depend on it */   \
  X(int, threads, 0)

struct SyntheticOptions {
  MTREC_OPTIONS(MTREC_SYNTHETIC_OPTIONS)
};

/// What the generator knows and a model must discover.
struct SyntheticTruth {
  int32_t topics = 0;
  std::vector<float> user_topic;  // [users x topics], rows sum to 1
  std::vector<float> item_topic;  // [items x topics], rows sum to 1
  std::vector<int32_t> item_main_topic;
  std::vector<float> item_quality;      // per item, shifts ratings and clicks
  std::vector<int64_t> item_release;    // first timestamp at which the item can appear
  std::vector<float> scenario_bias;     // per scenario, logit offset of clicks
  std::vector<float> topic_transition;  // [topics x topics] Markov chain of session topics
  /// True P(click | user, item, scenario) used by the generator:
  /// sigmoid(scenario_bias[s] + scenario_temperature[s] * (4 * affinity + item_quality - 1)).
  float click_probability(int32_t user, int32_t item, int32_t scenario) const;
  /// Expected rating (1..5) before noise: 1 + 4 * sigmoid(5 * (affinity - 0.2) + item_quality);
  /// the observed star is round(expected + N(0, rating_noise)) clamped to 1..5.
  float expected_rating(int32_t user, int32_t item) const;
  float affinity(int32_t user, int32_t item) const;  // dot(user_topic, item_topic)
  std::vector<float> scenario_temperature;           // per scenario, sharpness of click behaviour
  float rating_noise = 0.5f;
  std::vector<uint8_t> item_sponsored;                // 1 for the items the "ads" scenario promotes
  std::vector<std::string> topic_names;               // a pseudo-word per topic
  std::vector<std::vector<std::string>> topic_words;  // per-topic vocabulary (disjoint)
  std::vector<std::string> common_words;              // shared by every topic
  /// Per item, the quality quintile (0 = lowest) its title names, or -1 (text_quality).
  std::vector<int8_t> item_quality_tier;
  std::vector<std::vector<std::string>> quality_words;  // per quintile (disjoint from the rest)
};

struct SyntheticWorld {
  Dataset data;
  SyntheticTruth truth;
};

SyntheticWorld generate_world(const SyntheticOptions& options = {});

/// Generator-specific sanity checks (beyond Dataset::validate): timestamps increasing per
/// user and rows grouped by user, no item before its release, labels matching behaviours,
/// non-empty text. Returns the problems found (empty when the world is sound).
std::vector<std::string> check_world(const SyntheticWorld& world);

}  // namespace mtrec
