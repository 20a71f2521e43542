#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/data/split.h"

namespace mtrec {
namespace {

Interactions timed(const std::vector<int32_t>& users, const std::vector<int32_t>& items,
                   const std::vector<int64_t>& ts) {
  Interactions x;
  x.has_timestamp = true;
  for (size_t r = 0; r < users.size(); ++r) x.push_back(users[r], items[r], 1.0f, ts[r]);
  return x;
}

Interactions plain(size_t n) {
  Interactions x;
  for (size_t r = 0; r < n; ++r) x.push_back(static_cast<int32_t>(r % 7), static_cast<int32_t>(r % 11));
  return x;
}

void expect_partition(const Split& s, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto* part : {&s.train, &s.valid, &s.test}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
    for (size_t r : *part) seen[r]++;
  }
  for (size_t r = 0; r < n; ++r) EXPECT_EQ(seen[r], 1) << "row " << r;
}

TEST(Split, LeaveOneOutPicksLastAndSecondLast) {
  // user 0: rows 0..3 with times 50, 10, 30, 40 -> test row 0, valid row 3, train rows 1, 2.
  // user 1: two rows only -> all train. user 2: rows 6..8 in time order.
  auto x = timed({0, 0, 0, 0, 1, 1, 2, 2, 2}, {7, 8, 9, 10, 1, 2, 3, 4, 5}, {50, 10, 30, 40, 5, 6, 1, 2, 3});
  Split s = leave_one_out_split(x, 1);
  EXPECT_EQ(s.test, (std::vector<size_t>{0, 8}));
  EXPECT_EQ(s.valid, (std::vector<size_t>{3, 7}));
  EXPECT_EQ(s.train, (std::vector<size_t>{1, 2, 4, 5, 6}));
  expect_partition(s, x.size());
}

TEST(Split, TiesBrokenBySeededRandomOrderNotItemId) {
  // One user, six rows at the same time, items in increasing id order: an id-based tie-break
  // would always return rows 0..5 in this order.
  auto x = timed({0, 0, 0, 0, 0, 0}, {1, 2, 3, 4, 5, 6}, {9, 9, 9, 9, 9, 9});
  auto a = user_sequences(x, 1, 1)[0], b = user_sequences(x, 1, 2)[0];
  std::vector<size_t> id_order{0, 1, 2, 3, 4, 5};
  for (const auto& seq : {a, b}) {
    auto sorted = seq;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, id_order);  // a valid order: every row once
  }
  EXPECT_NE(a, b);
  EXPECT_TRUE(a != id_order || b != id_order);
  EXPECT_EQ(user_sequences(x, 1, 1)[0], a);  // reproducible
  // Leave-one-out uses the same order.
  Split s = leave_one_out_split(x, 1);
  EXPECT_EQ(s.test, (std::vector<size_t>{a.back()}));
  EXPECT_EQ(s.valid, (std::vector<size_t>{a[a.size() - 2]}));
}

TEST(Split, TieBreakIsUnbiasedAcrossUsers) {
  // 400 users whose last two rows share a time; the higher item id wins test about half the time.
  std::vector<int32_t> users, items;
  std::vector<int64_t> ts;
  for (int32_t u = 0; u < 400; ++u)
    for (int32_t k = 0; k < 3; ++k) users.push_back(u), items.push_back(k), ts.push_back(k == 0 ? 1 : 2);
  auto x = timed(users, items, ts);
  Split s = leave_one_out_split(x, 7);
  ASSERT_EQ(s.test.size(), 400u);
  int high = 0;
  for (size_t r : s.test) high += x.item[r] == 2;
  EXPECT_GT(high, 160);
  EXPECT_LT(high, 240);
  for (size_t r : s.train) EXPECT_EQ(x.item[r], 0);  // the earliest row is never held out
}

TEST(Split, SequencesFollowTime) {
  auto x = timed({1, 0, 1, 1, 0}, {1, 2, 3, 4, 5}, {30, 5, 10, 20, 1});
  auto seq = user_sequences(x, 3, 42);
  ASSERT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[0], (std::vector<size_t>{4, 1}));
  EXPECT_EQ(seq[1], (std::vector<size_t>{2, 3, 0}));
  EXPECT_TRUE(seq[2].empty());
  EXPECT_THROW(user_sequences(x, 1, 42), Error);  // user 1 outside [0, 1)
}

TEST(Split, NeedsTimestamps) {
  auto x = plain(10);
  try {
    leave_one_out_split(x, 1);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("timestamps"), std::string::npos) << e.what();
  }
  EXPECT_THROW(temporal_split(x, 0.8, 0.1), Error);
}

TEST(Split, RandomSplitSizesExact) {
  auto x = plain(1000);
  Split s = random_split(x, 0.2, 0.1, 3);
  EXPECT_EQ(s.test.size(), 200u);
  EXPECT_EQ(s.valid.size(), 100u);
  EXPECT_EQ(s.train.size(), 700u);
  expect_partition(s, 1000);
  Split again = random_split(x, 0.2, 0.1, 3), other = random_split(x, 0.2, 0.1, 4);
  EXPECT_EQ(again.test, s.test);
  EXPECT_NE(other.test, s.test);
  EXPECT_EQ(random_split(plain(7), 0.5, 0.0, 1).test.size(), 4u);  // round(3.5) = 4
  EXPECT_THROW(random_split(x, 1.0, 0.0, 1), Error);
  EXPECT_THROW(random_split(x, -0.1, 0.0, 1), Error);
  EXPECT_THROW(random_split(x, 0.6, 0.5, 1), Error);
}

TEST(Split, KFoldPartitionsEveryRowOnce) {
  auto x = plain(103);
  auto folds = kfold_split(x, 5, 11);
  ASSERT_EQ(folds.size(), 5u);
  std::vector<int> in_test(103, 0);
  for (const auto& f : folds) {
    EXPECT_TRUE(f.valid.empty());
    EXPECT_GE(f.test.size(), 20u);
    EXPECT_LE(f.test.size(), 21u);
    expect_partition(f, 103);
    for (size_t r : f.test) in_test[r]++;
  }
  for (int c : in_test) EXPECT_EQ(c, 1);
  EXPECT_THROW(kfold_split(x, 1, 11), Error);
  EXPECT_THROW(kfold_split(plain(3), 4, 11), Error);
}

TEST(Split, TemporalCutRespectsQuantile) {
  // 100 rows, times 0..99 in scrambled order: train < 70 <= valid < 80 <= test.
  std::vector<int32_t> u(100), i(100);
  std::vector<int64_t> ts(100);
  for (int r = 0; r < 100; ++r) u[r] = r % 5, i[r] = r, ts[r] = (r * 37) % 100;
  auto x = timed(u, i, ts);
  Split s = temporal_split(x, 0.7, 0.1);
  EXPECT_EQ(s.train.size(), 70u);
  EXPECT_EQ(s.valid.size(), 10u);
  EXPECT_EQ(s.test.size(), 20u);
  expect_partition(s, 100);
  for (size_t r : s.train) EXPECT_LT(x.timestamp[r], 70);
  for (size_t r : s.valid) EXPECT_TRUE(x.timestamp[r] >= 70 && x.timestamp[r] < 80);
  for (size_t r : s.test) EXPECT_GE(x.timestamp[r], 80);
  // Ties never straddle a cut: times r/10 (ten rows each); the 0.75 quantile is time 7.
  for (int r = 0; r < 100; ++r) ts[r] = r / 10;
  Split t = temporal_split(timed(u, i, ts), 0.75, 0.0);
  EXPECT_EQ(t.train.size(), 70u);
  EXPECT_TRUE(t.valid.empty());
  EXPECT_EQ(t.test.size(), 30u);
  EXPECT_THROW(temporal_split(x, 0.9, 0.2), Error);
  EXPECT_THROW(temporal_split(x, 0.0, 0.2), Error);
}

}  // namespace
}  // namespace mtrec
