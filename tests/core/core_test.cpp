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

TEST(Progress, PeriodicLineStatesCountsRateEtaAndPostfix) {
  ProgressBar bar(5000, "rating 1/20");
  bar.tick(1200);
  bar.set_postfix("loss 0.4120");
  // 1200 in 60 s: 20/s; 3800 left: 190 s.
  EXPECT_EQ(bar.render_line(60.0), "rating 1/20: 1200/5000 items (24%), 20.0 items/s, ETA 3m10s, loss 0.4120");
  EXPECT_EQ(bar.render_line(0.0), "rating 1/20: 1200/5000 items (24%), 0.0 items/s, ETA ?, loss 0.4120");

  // Skipped batches (a resumed epoch) count toward the total, not the rate.
  ProgressBar resumed(100000, "epoch 2/3");
  resumed.set_unit("batches");
  resumed.skip(1000);
  resumed.tick(1000);
  EXPECT_EQ(resumed.count(), 2000);
  EXPECT_EQ(resumed.render_line(100.0), "epoch 2/3: 2000/100000 batches (2%), 10.0 batches/s, ETA 2h43m");
  resumed.tick(98000);
  EXPECT_EQ(resumed.render_line(10.0), "epoch 2/3: 100000/100000 batches (100%), 9900.0 batches/s, ETA 0s");

  ProgressBar open_ended(0, "embed");  // no total: no percent, no ETA
  open_ended.tick(5);
  EXPECT_EQ(open_ended.render_line(2.0), "embed: 5 items, 2.5 items/s");
  ProgressBar short_eta(10, "q");
  short_eta.tick(4);
  EXPECT_EQ(short_eta.render_line(2.0), "q: 4/10 items (40%), 2.0 items/s, ETA 3s");
}

TEST(Progress, OffTerminalPrintsLogLinesUnlessTheIntervalIsZero) {
  const LogLevel level = log_level();
  const double interval = progress_interval();
  set_log_level(LogLevel::Info);  // tests run with MTREC_LOG=warn, which silences the bar
  EXPECT_THROW(set_progress_interval(-1), Error);

  set_progress_interval(0);
  testing::internal::CaptureStderr();  // stderr is a file from here: not a terminal
  {
    ProgressBar bar(10, "never");
    EXPECT_FALSE(bar.enabled());
    EXPECT_FALSE(bar.periodic());
    for (int k = 0; k < 10; ++k) bar.tick();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");

  set_progress_interval(1e-9);  // every tick is due, without sleeping
  testing::internal::CaptureStderr();
  {
    ProgressBar bar(10, "often");
    EXPECT_TRUE(bar.periodic());
    bar.set_postfix("loss 0.5000");
    for (int k = 0; k < 10; ++k) bar.tick();
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("often: "), std::string::npos) << out;
  EXPECT_NE(out.find("/10 items ("), std::string::npos) << out;
  EXPECT_NE(out.find(", loss 0.5000\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;  // log lines, not a redrawn bar

  set_log_level(LogLevel::Warn);
  {
    ProgressBar quiet(10, "quiet");
    EXPECT_FALSE(quiet.periodic());
  }
  set_progress_interval(interval);
  set_log_level(level);
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

namespace mtrec {
namespace {

// MTREC_ASSERT is an internal invariant: checked (and naming its values) in debug builds,
// compiled out, condition unevaluated, under NDEBUG.
TEST(Check, AssertIsADebugOnlyCheck) {
  int evaluated = 0;
  [[maybe_unused]] auto holds = [&](bool v) {
    ++evaluated;
    return v;
  };
#ifdef NDEBUG
  MTREC_ASSERT(holds(false), "never built");
  EXPECT_EQ(evaluated, 0);
#else
  try {
    MTREC_ASSERT(holds(false), "x=", 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("internal error (please report): x=3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(evaluated, 1);
#endif
  MTREC_ASSERT(holds(true), "fine");
}

}  // namespace
}  // namespace mtrec
