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
#include <cstdint>
#include <vector>

#include "mtrec/data/schema.h"

namespace mtrec {

struct SyntheticOptions {
  int32_t users_ = 2000;
  int32_t items_ = 1000;
  int32_t topics_ = 8;
  int64_t interactions_ = 100000;   // approximate total (exact count reported in the Dataset)
  int32_t scenarios_ = 3;           // home feed, search, ads (then scenario_3, ...)
  double late_item_fraction_ = 0.1; // items that appear only in the last 10% of time
  double topic_stickiness_ = 0.7;   // P(next interaction stays in the session's topic)
  uint64_t seed_ = 42;
  SyntheticOptions& users(int32_t v) { users_ = v; return *this; }
  SyntheticOptions& items(int32_t v) { items_ = v; return *this; }
  SyntheticOptions& topics(int32_t v) { topics_ = v; return *this; }
  SyntheticOptions& interactions(int64_t v) { interactions_ = v; return *this; }
  SyntheticOptions& scenarios(int32_t v) { scenarios_ = v; return *this; }
  SyntheticOptions& late_item_fraction(double v) { late_item_fraction_ = v; return *this; }
  SyntheticOptions& topic_stickiness(double v) { topic_stickiness_ = v; return *this; }
  SyntheticOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

/// What the generator knows and a model must discover.
struct SyntheticTruth {
  int32_t topics = 0;
  std::vector<float> user_topic;       // [users x topics], rows sum to 1
  std::vector<float> item_topic;       // [items x topics], rows sum to 1
  std::vector<int32_t> item_main_topic;
  std::vector<float> item_quality;     // per item, shifts ratings and clicks
  std::vector<int64_t> item_release;   // first timestamp at which the item can appear
  std::vector<float> scenario_bias;    // per scenario, logit offset of clicks
  std::vector<float> topic_transition; // [topics x topics] Markov chain of session topics
  /// True P(click | user, item, scenario) used by the generator.
  float click_probability(int32_t user, int32_t item, int32_t scenario) const;
  /// Expected rating (1..5) before noise.
  float expected_rating(int32_t user, int32_t item) const;
  float affinity(int32_t user, int32_t item) const;  // dot(user_topic, item_topic)
  std::vector<float> scenario_temperature;  // per scenario, sharpness of click behaviour
  float rating_noise = 0.5f;
};

struct SyntheticWorld {
  Dataset data;
  SyntheticTruth truth;
};

SyntheticWorld generate_world(const SyntheticOptions& options = {});

}  // namespace mtrec
