// The joint model's examples: history strictly before each row, the label masks per data kind,
// sampled negatives, context and MLM fields, on hand-built data with known answers.
#include "mtrec/model/joint_data.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <set>

#include "mtrec/core/check.h"
#include "mtrec/data/batcher.h"
#include "mtrec/data/split.h"
#include "mtrec/data/labels.h"
#include "test_torch.h"

namespace mtrec {
namespace {

const c10::Device kCpu(torch::kCPU);

std::vector<int64_t> longs(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kLong).contiguous().cpu();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}
std::vector<float> floats(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kFloat).contiguous().cpu();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
std::vector<int64_t> bools(const at::Tensor& t) {
  EXPECT_EQ(t.scalar_type(), torch::kBool);
  return longs(t);
}

/// Synthetic-like: behaviours click, rating, wishlist, impression; contexts on most rows.
/// Rows (user, item, label, time, scenario, behaviour, context); user 0's rows are not in time
/// order (row 6 comes between rows 1 and 2).
Dataset multi_behaviour() {
  Dataset ds;
  ds.name = "multi";
  for (const char* u : {"u0", "u1", "u2"}) ds.users.intern(u);
  for (int i = 0; i < 6; ++i) ds.items.intern("i" + std::to_string(i));
  for (const char* s : {"home", "search"}) ds.scenarios.intern(s);
  for (const char* b : {"click", "rating", "wishlist", "impression"}) ds.behaviors.intern(b);
  for (const char* c : {"home feed", "red shoes", "trending now"})
    ds.context_text.set(ds.context_text.size(), "text", c);
  auto& x = ds.interactions;
  x.has_rating = x.has_timestamp = x.has_context = true;
  x.push_back(0, 0, 1, 10, 0, 0, 0);   // r0 click
  x.push_back(0, 1, 0, 20, 0, 3, 0);   // r1 impression
  x.push_back(0, 2, 4, 30, 1, 1, 1);   // r2 rating 4
  x.push_back(0, 3, 1, 40, 1, 2, -1);  // r3 wishlist, no context
  x.push_back(1, 0, 0, 5, 0, 3, 2);    // r4 impression
  x.push_back(1, 4, 5, 7, 0, 1, 2);    // r5 rating 5
  x.push_back(0, 5, 1, 25, 0, 0, 0);   // r6 click
  x.push_back(2, 1, 1, 3, 0, 0, -1);   // r7 click
  ds.validate();
  return ds;
}

/// Tokens of the three contexts (pad 0, [CLS] 2).
std::vector<std::vector<int64_t>> context_tokens() { return {{2, 7, 8}, {2, 9}, {2, 10, 11, 12}}; }

/// MovieLens-like: one behaviour, the rating column is a star.
Dataset rating_only(int items = 6) {
  Dataset ds;
  ds.name = "stars";
  for (const char* u : {"a", "b"}) ds.users.intern(u);
  for (int i = 0; i < items; ++i) ds.items.intern("m" + std::to_string(i));
  ds.scenarios.intern("default");
  ds.behaviors.intern("rating");
  auto& x = ds.interactions;
  x.has_rating = x.has_timestamp = true;
  x.push_back(0, 0, 5, 1);     // r0
  x.push_back(0, 1, 2, 2);     // r1 below 3.5
  x.push_back(0, 2, 4, 3);     // r2
  x.push_back(1, 3, 1, 1);     // r3 below
  x.push_back(1, 4, 4.5f, 2);  // r4
  ds.validate();
  return ds;
}

TEST(JointData, HistoryIsStrictlyEarlierPositivesRightAligned) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  JointSource src(ds, ds.interactions, JointDataOptions());
  EXPECT_EQ(src.num_examples(), 8);
  EXPECT_EQ(src.num_users(), 3);
  EXPECT_EQ(src.num_items(), 6);
  EXPECT_EQ(src.num_scenarios(), 2);
  Batch b = src.make_batch({3, 0, 2, 6, 1}, kCpu);
  EXPECT_EQ(b.size, 5);
  EXPECT_EQ(longs(b.at("user")), (std::vector<int64_t>{0, 0, 0, 0, 0}));
  EXPECT_EQ(longs(b.at("item")), (std::vector<int64_t>{3, 0, 2, 5, 1}));
  EXPECT_EQ(longs(b.at("scenario")), (std::vector<int64_t>{1, 0, 1, 0, 0}));
  // u0 in time order: r0 i0 (t10), r1 impression (t20), r6 i5 (t25), r2 i2 (t30), r3 i3 (t40).
  ASSERT_EQ(b.at("history").sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(b.at("history").scalar_type(), torch::kLong);
  EXPECT_EQ(longs(b.at("history")), (std::vector<int64_t>{1, 6, 3,     // r3: i0 i5 i2
                                                          0, 0, 0,     // r0: nothing before
                                                          0, 1, 6,     // r2: i0 i5
                                                          0, 0, 1,     // r6: i0
                                                          0, 0, 1}));  // r1: i0 (impressions never count)
  // L is the batch's longest, at least 1; max_history keeps the most recent.
  EXPECT_EQ(src.make_batch({0, 7}, kCpu).at("history").sizes(), (std::vector<int64_t>{2, 1}));
  JointSource two(ds, ds.interactions, JointDataOptions().max_history(2));
  EXPECT_EQ(longs(two.make_batch({3}, kCpu).at("history")), (std::vector<int64_t>{6, 3}));
  // UserHistories agrees: the positives in the same order.
  UserHistories h(ds, ds.interactions, 3, 42);
  EXPECT_EQ(h.items(0), (std::vector<int32_t>{0, 5, 2, 3}));
  EXPECT_EQ(h.items(1), (std::vector<int32_t>{4}));
  EXPECT_EQ(longs(h.pack({0, -1, 1}, 3)), (std::vector<int64_t>{6, 3, 4, 0, 0, 0, 0, 0, 5}));
  EXPECT_THROW(h.items(3), Error);
}

TEST(JointData, TiesFollowTheSeededOrderOfUserSequences) {
  test::OneThread one;
  Dataset ds = rating_only(12);
  auto& x = ds.interactions;
  x = Interactions();
  x.has_rating = x.has_timestamp = true;
  for (int i = 0; i < 10; ++i) x.push_back(0, i, 5, /*ts=*/i < 5 ? 100 : 200);  // two runs of ties
  for (uint64_t seed : {1u, 2u, 3u}) {
    const auto seq = user_sequences(x, ds.num_users(), seed);
    JointSource src(ds, x, JointDataOptions().seed(seed));
    UserHistories h(ds, x, ds.num_users(), seed);
    std::vector<int32_t> before;
    for (size_t k = 0; k < seq[0].size(); ++k) {
      const auto r = static_cast<int64_t>(seq[0][k]);
      at::Tensor hist = src.make_batch({r}, kCpu).at("history");
      std::vector<int64_t> want;
      for (int32_t i : before) want.push_back(i + 1);
      if (want.empty()) want.push_back(0);
      EXPECT_EQ(longs(hist), want) << "seed " << seed << " row " << r;
      before.push_back(x.item[static_cast<size_t>(r)]);
    }
    EXPECT_EQ(h.items(0), before);
  }
}

TEST(JointData, MultiBehaviourMasksAndCtrColumns) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  JointSource src(ds, ds.interactions, JointDataOptions());
  EXPECT_EQ(src.ctr_columns(), (std::vector<std::string>{"click", "rating", "wishlist"}));
  Batch b = src.make_batch({0, 1, 2, 3, 4, 5, 6, 7}, kCpu);
  ASSERT_EQ(b.at("click").sizes(), (std::vector<int64_t>{8, 3}));
  EXPECT_EQ(floats(b.at("click")),
            (std::vector<float>{1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(bools(b.at("mask/ctr")), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1}));  // impressions are negatives
  EXPECT_EQ(floats(b.at("rating")), (std::vector<float>{0, 0, 4, 0, 0, 5, 0, 0}));
  EXPECT_EQ(bools(b.at("mask/rating")), (std::vector<int64_t>{0, 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(bools(b.at("mask/match")), (std::vector<int64_t>{1, 0, 1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(bools(b.at("mask/next_item")), (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 0}));
  // No context rows given, no MLM: none of their fields.
  for (const char* f : {"context_ids", "context_mask", "mask/scenario", "mlm/input_ids"}) EXPECT_FALSE(b.has(f)) << f;
}

TEST(JointData, RatingOnlyDataUsesTheMinimumRatingForCtr) {
  test::OneThread one;
  const Dataset ds = rating_only();
  JointSource all(ds, ds.interactions, JointDataOptions());
  EXPECT_EQ(all.ctr_columns(), (std::vector<std::string>{"click"}));
  Batch a = all.make_batch({0, 1, 2, 3, 4}, kCpu);
  EXPECT_EQ(floats(a.at("click")), (std::vector<float>{1, 1, 1, 1, 1}));
  EXPECT_EQ(bools(a.at("mask/ctr")), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(bools(a.at("mask/rating")), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(floats(a.at("rating")), (std::vector<float>{5, 2, 4, 1, 4.5f}));

  JointSource liked(ds, ds.interactions, JointDataOptions().ctr_min_rating(3.5f));
  Batch b = liked.make_batch({0, 1, 2, 3, 4}, kCpu);
  EXPECT_EQ(floats(b.at("click")), (std::vector<float>{1, 0, 1, 0, 1}));
  EXPECT_EQ(bools(b.at("mask/ctr")), (std::vector<int64_t>{1, 0, 1, 0, 1}));  // a low star is no label
  EXPECT_EQ(bools(b.at("mask/rating")), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  // Every rated row is an interaction of the sequence tasks (protocols S and D), whatever its star.
  EXPECT_EQ(bools(b.at("mask/match")), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(bools(b.at("mask/next_item")), (std::vector<int64_t>{0, 1, 1, 0, 1}));
  // Histories hold every rated item: r2's is m0, m1.
  EXPECT_EQ(longs(b.at("history")), (std::vector<int64_t>{0, 0, 0, 1, 1, 2, 0, 0, 0, 4}));
}

TEST(JointData, SampledNegativesAvoidPositivesAndAreRedrawnPerEpochSeed) {
  test::OneThread one;
  const Dataset ds = rating_only(40);
  const auto opts = JointDataOptions().ctr_min_rating(3.5f).ctr_negatives(3);
  JointSource src(ds, ds.interactions, opts);
  ASSERT_EQ(src.num_positives(), 3);
  ASSERT_EQ(src.num_examples(), 5 + 3 * 3);
  auto negatives = [&] {
    std::vector<int64_t> rows;
    for (int64_t e = 5; e < src.num_examples(); ++e) rows.push_back(e);
    return src.make_batch(rows, kCpu);
  };
  src.begin_epoch(0, 77);
  Batch b = negatives();
  // Rated items of user a: m0, m1, m2 (m1's 2 stars make no click, but it is not unseen); of b: m4.
  const auto users = longs(b.at("user")), items = longs(b.at("item"));
  EXPECT_EQ(users, (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 1, 1}));
  for (size_t k = 0; k < items.size(); ++k) {
    const std::set<int64_t> pos = users[k] == 0 ? std::set<int64_t>{0, 1, 2} : std::set<int64_t>{4};
    EXPECT_FALSE(pos.count(items[k])) << "negative " << k << " is positive item " << items[k];
    EXPECT_GE(items[k], 0);
    EXPECT_LT(items[k], 40);
  }
  EXPECT_EQ(floats(b.at("click")), std::vector<float>(9, 0.0f));
  EXPECT_EQ(bools(b.at("mask/ctr")), std::vector<int64_t>(9, 1));
  for (const char* m : {"mask/rating", "mask/next_item", "mask/match"})
    EXPECT_EQ(bools(b.at(m)), std::vector<int64_t>(9, 0)) << m;
  // The positive's history and scenario: negatives 3..5 come from r2 (history m0, m1).
  EXPECT_EQ(longs(b.at("history").select(0, 4)), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(longs(b.at("scenario")), std::vector<int64_t>(9, 0));

  // The same epoch seed redraws the same items, whatever came before; another seed others.
  src.begin_epoch(1, 5);
  const auto other = longs(negatives().at("item"));
  src.begin_epoch(3, 77);
  EXPECT_EQ(longs(negatives().at("item")), items);
  JointSource fresh(ds, ds.interactions, opts);
  fresh.begin_epoch(0, 77);
  std::vector<int64_t> rows;
  for (int64_t e = 5; e < fresh.num_examples(); ++e) rows.push_back(e);
  EXPECT_EQ(longs(fresh.make_batch(rows, kCpu).at("item")), items);
  EXPECT_NE(other, items);
}

TEST(JointData, UsersWhoSawEverythingGetNoNegatives) {
  test::OneThread one;
  Dataset ds = rating_only();
  ds.items = IdMap();
  for (const char* i : {"m0", "m1"}) ds.items.intern(i);
  auto& x = ds.interactions;
  x = Interactions();
  x.has_rating = x.has_timestamp = true;
  x.push_back(0, 0, 5, 1);
  x.push_back(0, 1, 5, 2);  // user a has both items
  x.push_back(1, 0, 5, 1);
  JointSource src(ds, x, JointDataOptions().ctr_negatives(2));
  EXPECT_EQ(src.num_examples(), 3 + 2);
  EXPECT_EQ(longs(src.make_batch({3, 4}, kCpu).at("item")), (std::vector<int64_t>{1, 1}));
}

TEST(JointData, ContextFieldsPadTokensAndMaskRowsWithAContext) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  JointSource src(ds, ds.interactions, JointDataOptions(), context_tokens(), {}, /*pad_id=*/0);
  Batch b = src.make_batch({3, 0, 2}, kCpu);
  ASSERT_EQ(b.at("context_ids").sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(longs(b.at("context_ids")), (std::vector<int64_t>{0, 0, 0, 2, 7, 8, 2, 9, 0}));
  EXPECT_EQ(bools(b.at("context_mask")), (std::vector<int64_t>{0, 0, 0, 1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(bools(b.at("mask/scenario")), (std::vector<int64_t>{0, 1, 1}));
  // A batch of rows without contexts still has a one-column field.
  EXPECT_EQ(src.make_batch({3, 7}, kCpu).at("context_ids").sizes(), (std::vector<int64_t>{2, 1}));
  // Sampled negatives carry no context label.
  JointSource neg(ds, ds.interactions, JointDataOptions().ctr_negatives(1), context_tokens());
  ASSERT_EQ(neg.num_examples(), 8 + 6);
  EXPECT_EQ(bools(neg.make_batch({8, 0}, kCpu).at("mask/scenario")), (std::vector<int64_t>{0, 1}));
  // Data without contexts: no fields even with context rows.
  Dataset plain = multi_behaviour();
  plain.interactions.has_context = false;
  plain.interactions.context.clear();
  JointSource none(plain, plain.interactions, JointDataOptions(), context_tokens());
  EXPECT_FALSE(none.make_batch({0}, kCpu).has("context_ids"));
}

TEST(JointData, MlmFieldsAreMaskedCatalogueTextsDeterministicPerEpochSeed) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  const std::vector<std::vector<int64_t>> texts = {{2, 5, 6, 7, 8, 9}, {2, 10, 11}, {2, 12, 13, 14, 15}, {2, 16}};
  auto mlm = MlmOptions(20, 4).special_ids({0, 1, 2, 3, 4}).mask_prob(0.5);
  JointSource src(ds, ds.interactions, JointDataOptions().mlm_texts(3), {}, texts, 0, mlm);
  src.begin_epoch(0, 9);
  Batch b = src.make_batch({0, 1}, kCpu);
  const at::Tensor& ids = b.at("mlm/input_ids");
  ASSERT_EQ(ids.size(0), 3);
  EXPECT_EQ(ids.scalar_type(), torch::kLong);
  EXPECT_EQ(b.at("mlm/labels").sizes(), ids.sizes());
  EXPECT_EQ(b.at("mlm/attention_mask").scalar_type(), torch::kBool);
  EXPECT_EQ(b.at("mlm/selected").scalar_type(), torch::kBool);
  // Each row is a distinct catalogue text: the unselected tokens plus the labels restore it.
  const at::Tensor restored = torch::where(b.at("mlm/selected"), b.at("mlm/labels"), ids);
  std::set<int64_t> which;
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t len = b.at("mlm/attention_mask")[r].sum().item<int64_t>();
    std::vector<int64_t> row = longs(restored[r].slice(0, 0, len));
    auto it = std::find(texts.begin(), texts.end(), row);
    ASSERT_NE(it, texts.end()) << "row " << r;
    which.insert(it - texts.begin());
    EXPECT_FALSE((b.at("mlm/selected")[r].slice(0, len)).any().item<bool>()) << "padding selected";
  }
  EXPECT_EQ(which.size(), 3u);
  EXPECT_FALSE((b.at("mlm/labels").ne(-100) ^ b.at("mlm/selected")).any().item<bool>());
  // Same epoch seed and rows: the same draw; another seed or first row: another one (somewhere).
  Batch again = src.make_batch({0, 1}, kCpu);
  for (const char* f : {"mlm/input_ids", "mlm/labels", "mlm/selected", "mlm/attention_mask"})
    EXPECT_TRUE(b.at(f).equal(again.at(f))) << f;
  bool differs = false;
  for (int64_t first = 2; first < 8 && !differs; ++first)
    differs = !b.at("mlm/input_ids").equal(src.make_batch({first}, kCpu).at("mlm/input_ids"));
  src.begin_epoch(1, 10);
  differs = differs || !b.at("mlm/input_ids").equal(src.make_batch({0, 1}, kCpu).at("mlm/input_ids"));
  EXPECT_TRUE(differs);
  // More texts asked than the catalogue has: drawn with replacement.
  JointSource many(ds, ds.interactions, JointDataOptions().mlm_texts(6), {}, texts, 0, mlm);
  EXPECT_EQ(many.make_batch({0}, kCpu).at("mlm/input_ids").size(0), 6);
  // Without options or texts, no MLM fields.
  EXPECT_FALSE(JointSource(ds, ds.interactions, JointDataOptions(), {}, texts, 0, mlm)
                   .make_batch({0}, kCpu)
                   .has("mlm/input_ids"));
}

TEST(JointData, BatcherCoversAnEpochIdenticallyForTheSameSeed) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  JointSource src(ds, ds.interactions, JointDataOptions().ctr_negatives(1), context_tokens());
  Batcher batcher(src, BatcherOptions().batch_size(3).prefetch(2), kCpu);
  auto epoch = [&](uint64_t seed) {
    batcher.start_epoch(0, seed);
    std::vector<int64_t> users, items;
    int64_t examples = 0;
    for (Batch b; batcher.next(b);) {
      examples += b.size;
      for (int64_t v : longs(b.at("user"))) users.push_back(v);
      for (int64_t v : longs(b.at("item"))) items.push_back(v);
    }
    EXPECT_EQ(examples, src.num_examples());
    return std::make_pair(users, items);
  };
  const auto a = epoch(11);
  EXPECT_EQ(epoch(11), a);
  EXPECT_NE(epoch(12), a);
}

TEST(JointData, LabelViewsKeepContexts) {
  const Dataset ds = multi_behaviour();
  Interactions pos = implicit_positives(ds, ds.interactions);
  ASSERT_TRUE(pos.has_context);
  EXPECT_EQ(pos.context, (std::vector<int32_t>{0, 1, -1, 2, 0, -1}));
  Interactions stars = explicit_ratings(ds, ds.interactions);
  EXPECT_EQ(stars.context, (std::vector<int32_t>{1, 2}));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(JointData, BadInputErrorsNameTheValue) {
  test::OneThread one;
  const Dataset ds = multi_behaviour();
  auto contains = [](const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; };
  Interactions bad = ds.interactions;
  bad.item[4] = 99;
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, bad, JointDataOptions()); }), "row 4 has item id 99"));
  bad = ds.interactions;
  bad.user[1] = -2;
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, bad, JointDataOptions()); }), "user id -2"));
  bad = ds.interactions;
  bad.scenario[2] = 7;
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, bad, JointDataOptions()); }), "scenario id 7"));
  bad = ds.interactions;
  bad.context[5] = 3;
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, bad, JointDataOptions(), context_tokens()); }),
                       "context id 3 outside the 3 tokenised contexts"));
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, ds.interactions, JointDataOptions().max_history(0)); }),
                       "max_history must be >= 1, got 0"));
  EXPECT_TRUE(contains(error_of([&] { JointSource s(ds, ds.interactions, JointDataOptions().ctr_negatives(-1)); }),
                       "ctr_negatives must be >= 0, got -1"));
  EXPECT_TRUE(contains(error_of([&] {
                         JointSource s(ds, ds.interactions, JointDataOptions().mlm_texts(2), {}, {{2, 5}});
                       }),
                       "mlm_texts is 2 but no MLM options"));
  EXPECT_TRUE(contains(error_of([&] {
                         JointSource s(ds, ds.interactions, JointDataOptions().mlm_texts(2), {}, {{2, 50}}, 0,
                                       MlmOptions(20, 4).special_ids({0, 1, 2, 3, 4}));
                       }),
                       "token id 50"));
  JointSource src(ds, ds.interactions, JointDataOptions());
  EXPECT_TRUE(contains(error_of([&] { src.make_batch({0, 8}, kCpu); }), "example 8 outside [0, 8)"));
  EXPECT_TRUE(contains(error_of([&] { src.make_batch({}, kCpu); }), "empty batch"));
}

}  // namespace
}  // namespace mtrec
