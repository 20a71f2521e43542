#include "mtrec/core/profile.h"

#include <gtest/gtest.h>

#include <thread>

namespace mtrec {
namespace {

struct ProfileOn {
  ProfileOn() { Profile::reset(), Profile::enable(true); }
  ~ProfileOn() { Profile::enable(false), Profile::reset(); }
};

TEST(Profile, NestedScopesMakePathsAndCountCalls) {
  ProfileOn on;
  for (int k = 0; k < 3; ++k) {
    MTREC_PROFILE("step");
    EXPECT_EQ(Profile::current_path(), "step");
    {
      MTREC_PROFILE("forward");
      EXPECT_EQ(Profile::current_path(), "step/forward");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(Profile::current_path(), "step");
  }
  EXPECT_EQ(Profile::current_path(), "");
  const auto t = Profile::totals();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at("step").calls, 3);
  EXPECT_EQ(t.at("step/forward").calls, 3);
  EXPECT_GE(t.at("step/forward").seconds, 0.006);
  EXPECT_GE(t.at("step").seconds, t.at("step/forward").seconds);  // a phase includes its nested ones
  // Another thread has paths of its own.
  std::thread([] {
    EXPECT_EQ(Profile::current_path(), "");
    MTREC_PROFILE("prefetch");
    EXPECT_EQ(Profile::current_path(), "prefetch");
  }).join();
  EXPECT_EQ(Profile::totals().at("prefetch").calls, 1);
}

TEST(Profile, OffRecordsNothingAndSyncRunsBeforeEachClockReading) {
  Profile::reset();
  {
    MTREC_PROFILE("off");
    EXPECT_EQ(Profile::current_path(), "");
  }
  EXPECT_TRUE(Profile::totals().empty());
  static int syncs = 0;
  ProfileOn on;
  Profile::set_sync([] { ++syncs; });
  { MTREC_PROFILE("on"); }
  Profile::set_sync(nullptr);
  EXPECT_EQ(syncs, 2);  // at the scope's start and end
}

}  // namespace
}  // namespace mtrec
