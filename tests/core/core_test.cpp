#include <gtest/gtest.h>

#include <filesystem>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"
#include "mtrec/data/schema.h"
#include "test_util.h"

namespace mtrec {

TEST(Check, MessageCarriesValues) {
  int k = -3;
  try {
    MTREC_CHECK(k > 0, "top-K needs k > 0, got k=", k);
    FAIL() << "no throw";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("got k=-3"), std::string::npos) << what;
    EXPECT_NE(what.find("k > 0"), std::string::npos) << what;
  }
}

TEST(Check, DataErrorNamesFileLineField) {
  DataError e("ratings.csv", 17, "rating", "'abc' is not a number");
  EXPECT_STREQ(e.what(), "ratings.csv:17: field 'rating': 'abc' is not a number");
  EXPECT_EQ(e.line(), 17);
  EXPECT_EQ(e.field(), "rating");
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(parse_log_level("off"), LogLevel::Off);
  EXPECT_THROW(parse_log_level("loud"), Error);
}

TEST(Random, DerivedStreamsAreStableAndIndependent) {
  EXPECT_EQ(derive_seed(42, "a"), derive_seed(42, "a"));
  EXPECT_NE(derive_seed(42, "a"), derive_seed(42, "b"));
  EXPECT_NE(derive_seed(42, "a"), derive_seed(43, "a"));
  seed_everything(7);
  auto a = make_rng("x")();
  seed_everything(7);
  EXPECT_EQ(make_rng("x")(), a);
  seed_everything(42);
}

TEST(Io, AtomicWriteReplacesWholeFileAndAbortKeepsOld) {
  test::TempDir dir;
  std::string p = dir.path("out.txt");
  write_file_atomic(p, "first");
  EXPECT_EQ(read_file(p), "first");
  {
    AtomicFile f(p);
    f.stream() << "half-writ";
    // destroyed without commit: the old content must survive and no temporary remain
  }
  EXPECT_EQ(read_file(p), "first");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 1);
  write_file_atomic(p, "second");
  EXPECT_EQ(read_file(p), "second");
  EXPECT_THROW(read_file(dir.path("missing")), Error);
}

TEST(Progress, RendersCountsAndIsQuietOffTerminal) {
  ProgressBar quiet(10, "q");
  EXPECT_FALSE(quiet.enabled());  // tests run with stderr redirected or MTREC_LOG=warn
  ProgressBar bar(10, "epoch", /*force_enabled=*/false);
  bar.tick(4);
  std::string line = bar.render();
  EXPECT_NE(line.find("4/10"), std::string::npos) << line;
  EXPECT_NE(line.find("eta"), std::string::npos) << line;
  EXPECT_EQ(bar.count(), 4);
}

TEST(Progress, ABarNeverTickedPrintsNothingEvenWhenEnabled) {
  // As a loop run with progress off does: the bar is built, never ticked, then finished.
  testing::internal::CaptureStderr();
  {
    ProgressBar bar(10, "silent", /*force_enabled=*/true);
    bar.finish();
  }
  { ProgressBar bar(10, "silent too", /*force_enabled=*/true); }  // the destructor finishes
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  testing::internal::CaptureStderr();
  {
    ProgressBar bar(3, "ticked", /*force_enabled=*/true);
    bar.tick(3);
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("3/3"), std::string::npos) << out;
}

TEST(Schema, IdMapBothWays) {
  IdMap m;
  EXPECT_EQ(m.intern("u7"), 0);
  EXPECT_EQ(m.intern("u3"), 1);
  EXPECT_EQ(m.intern("u7"), 0);
  EXPECT_EQ(m.find("u3"), 1);
  EXPECT_EQ(m.find("nope"), -1);
  EXPECT_EQ(m.raw(1), "u3");
  EXPECT_THROW(m.raw(2), Error);
}

TEST(Schema, SubsetStatsAndText) {
  Dataset ds;
  ds.interactions.has_rating = true;
  for (int u = 0; u < 3; ++u) ds.users.intern("u" + std::to_string(u));
  for (int i = 0; i < 4; ++i) ds.items.intern("i" + std::to_string(i));
  ds.interactions.push_back(0, 0, 5);
  ds.interactions.push_back(0, 1, 3);
  ds.interactions.push_back(1, 1, 4);
  ds.interactions.push_back(2, 3, 1);
  ds.validate();
  auto st = compute_stats(ds);
  EXPECT_EQ(st.interactions, 4);
  EXPECT_DOUBLE_EQ(st.rating_mean, 13.0 / 4);
  EXPECT_DOUBLE_EQ(st.density, 4.0 / 12);
  auto sub = ds.interactions.subset({3, 0});
  ASSERT_EQ(sub.size(), 2u);
  EXPECT_EQ(sub.item[0], 3);
  EXPECT_EQ(sub.rating[1], 5.0f);
  ds.item_text.set(2, "title", "Amélie (2001)");
  ds.item_text.set(2, "genres", "Comedy, Romance");
  EXPECT_EQ(ds.item_text.text(2), "Amélie (2001). Comedy, Romance");
  EXPECT_EQ(ds.item_text.get(0, "title"), "");
  ds.interactions.push_back(5, 0, 1);
  EXPECT_THROW(ds.validate(), Error);
}

}  // namespace mtrec
