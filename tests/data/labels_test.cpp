// data/labels.h (which rows each head learns from) and data/ctr_examples.h (CTR examples and
// their negative pool), on hand-written data sets.
#include "mtrec/data/labels.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "mtrec/core/check.h"
#include "mtrec/data/ctr_examples.h"
#include "test_data.h"

namespace mtrec {
namespace {

// MovieLens-like: the rating column is a star rating, one behaviour.
Dataset rated() {
  Dataset ds;
  ds.behaviors.intern("rating");
  ds.interactions.has_rating = true;
  const float stars[] = {5, 2, 4, 3, 1};
  for (int32_t k = 0; k < 5; ++k) ds.interactions.push_back(k % 2, k, stars[k]);
  return ds;
}

// Synthetic-world-like: stars on "rating" rows, 1 on "click", 0 on "impression".
Dataset behaviours() {
  Dataset ds;
  const int16_t rating = int16_t(ds.behaviors.intern("rating")), click = int16_t(ds.behaviors.intern("click")),
                impression = int16_t(ds.behaviors.intern("impression"));
  ds.interactions.has_rating = true;
  ds.interactions.push_back(0, 0, 4, 0, 0, rating);
  ds.interactions.push_back(0, 1, 1, 0, 0, click);
  ds.interactions.push_back(1, 2, 0, 0, 0, impression);
  ds.interactions.push_back(1, 3, 2, 0, 0, rating);
  return ds;
}

TEST(Labels, RatingRowsAndPositivesOnRatingData) {
  const Dataset ds = rated();
  EXPECT_EQ(explicit_ratings(ds, ds.interactions).size(), 5u);  // every row carries a rating
  const Interactions p = implicit_positives(ds, ds.interactions, 4.0f);
  EXPECT_EQ(p.item, (std::vector<int32_t>{0, 2}));  // rated 5 and 4
  EXPECT_TRUE(p.has_rating);
  EXPECT_EQ(implicit_positives(ds, ds.interactions).size(), 5u);  // min_rating 0: all
  Dataset none;
  none.interactions.push_back(0, 0);
  EXPECT_THROW(explicit_ratings(none, none.interactions), Error);
}

TEST(Labels, RatingRowsAndPositivesOnBehaviourData) {
  const Dataset ds = behaviours();
  EXPECT_EQ(explicit_ratings(ds, ds.interactions).item, (std::vector<int32_t>{0, 3}));  // the "rating" rows
  // Positives: never impressions; every other row whatever its value (the column is a label,
  // not a rating, so min_rating does not apply and has_rating is cleared).
  const Interactions p = implicit_positives(ds, ds.interactions, 4.0f);
  EXPECT_EQ(p.item, (std::vector<int32_t>{0, 1, 3}));
  EXPECT_FALSE(p.has_rating);
  EXPECT_TRUE(p.rating.empty());
}

TEST(CtrExamples, EachPositiveIsFollowedByItsNegativesFromThePool) {
  // 2 users, 6 items; user 0 has rows for items 0, 1, 2, user 1 for item 5.
  const Interactions all = test::interactions_of({{0, 0}, {0, 1}, {0, 2}, {1, 5}});
  NegativeSampler pool = ctr_negative_sampler(all, 2, 6, 7);
  Interactions pos = test::interactions_of({{0, 1}, {1, 5}});
  pos.scenario = {2, 1};
  const CtrExamples ex = sample_ctr_examples(pos, pool, 3);
  ASSERT_EQ(ex.size(), 8u);  // (1 + 3) per positive
  EXPECT_EQ(ex.label, (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(ex.user, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(ex.scenario, (std::vector<int32_t>{2, 2, 2, 2, 1, 1, 1, 1}));  // the positive's scenario
  // User 0's negatives are its 3 unseen items, once each (no repeats within one call).
  EXPECT_EQ(std::set<int32_t>(ex.item.begin() + 1, ex.item.begin() + 4), (std::set<int32_t>{3, 4, 5}));
  for (size_t k = 5; k < 8; ++k) EXPECT_NE(ex.item[k], 5) << k;  // never a row of user 1
  EXPECT_EQ(sample_ctr_examples(pos, pool, 0).size(), 2u);
  EXPECT_THROW(sample_ctr_examples(pos, pool, -1), Error);
}

}  // namespace
}  // namespace mtrec
