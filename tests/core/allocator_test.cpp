#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "mtrec/core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mtrec {

TEST(Allocator, TunedAtLoadAndIdempotent) {
  const AllocatorTuning t = tune_allocator();
  if (!t.applied) GTEST_SKIP() << "not tuned: " << t.reason;
  EXPECT_TRUE(t.reason.empty());
  EXPECT_EQ(t.trim_threshold, kTunedTrimThreshold);
  EXPECT_TRUE(t.mmap_threshold == kTunedMmapThreshold || t.mmap_threshold == kFallbackMmapThreshold);
  const AllocatorTuning again = tune_allocator();
  EXPECT_EQ(again.applied, t.applied);
  EXPECT_EQ(again.mmap_threshold, t.mmap_threshold);
}

#if defined(__GLIBC__)
// The effect, read back through mallinfo2: a 24 MiB buffer (far above glibc's default 128 KiB
// mmap threshold) comes from the heap, and freeing it does not shrink the heap.
TEST(Allocator, LargeBuffersStayInTheHeap) {
  const AllocatorTuning t = tune_allocator();
  if (!t.applied) GTEST_SKIP() << "not tuned: " << t.reason;
  constexpr size_t kSize = size_t{24} << 20;
  const struct mallinfo2 before = mallinfo2();
  char* p = static_cast<char*>(std::malloc(kSize));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, kSize);
  const struct mallinfo2 during = mallinfo2();
  EXPECT_EQ(during.hblks, before.hblks) << "the buffer was mmapped";
  EXPECT_EQ(during.hblkhd, before.hblkhd);
  EXPECT_GE(during.arena, kSize) << "the heap did not grow";
  std::free(p);
  const struct mallinfo2 after = mallinfo2();
  EXPECT_EQ(after.arena, during.arena) << "the heap was trimmed back to the OS";
  EXPECT_GE(after.fordblks, kSize) << "the freed buffer is not kept as free heap";
}
#endif

TEST(Allocator, EnvironmentOptOut) {
  auto saved = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string("\x01");
  };
  auto restore = [](const char* name, const std::string& v) {
    if (v == "\x01")
      unsetenv(name);
    else
      setenv(name, v.c_str(), 1);
  };
  const std::string tune = saved("MTREC_MALLOC_TUNE"), trim = saved("MALLOC_TRIM_THRESHOLD_"),
                    tunables = saved("GLIBC_TUNABLES");
  unsetenv("MTREC_MALLOC_TUNE");
  unsetenv("MALLOC_TRIM_THRESHOLD_");
  unsetenv("GLIBC_TUNABLES");
  const bool others =
      std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TOP_PAD_") || std::getenv("MALLOC_MMAP_MAX_");
  if (!others) {
    EXPECT_EQ(allocator_tuning_opt_out(), "");
  }
  setenv("MTREC_MALLOC_TUNE", "1", 1);
  if (!others) {
    EXPECT_EQ(allocator_tuning_opt_out(), "");
  }
  setenv("MTREC_MALLOC_TUNE", "0", 1);
  EXPECT_EQ(allocator_tuning_opt_out(), "MTREC_MALLOC_TUNE=0");
  unsetenv("MTREC_MALLOC_TUNE");
  setenv("MALLOC_TRIM_THRESHOLD_", "1000000", 1);
  EXPECT_NE(allocator_tuning_opt_out().find("MALLOC_TRIM_THRESHOLD_"), std::string::npos);
  unsetenv("MALLOC_TRIM_THRESHOLD_");
  setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1000000", 1);
  EXPECT_NE(allocator_tuning_opt_out().find("GLIBC_TUNABLES"), std::string::npos);
  restore("MTREC_MALLOC_TUNE", tune);
  restore("MALLOC_TRIM_THRESHOLD_", trim);
  restore("GLIBC_TUNABLES", tunables);
}

}  // namespace mtrec
