#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <cstdlib>

#include "mtrec/core/device.h"

namespace mtrec {

TEST(CpuThreads, DefaultIsAppliedAndPoolsShareTheCores) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr || std::getenv("OPENBLAS_NUM_THREADS") != nullptr)
    GTEST_SKIP() << "thread counts set by the environment";
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cores = std::max(1, CPU_COUNT(&set));
  const int d = default_cpu_threads();
  EXPECT_GE(d, 1);
  EXPECT_LE(d, cores);
  EXPECT_EQ(set_cpu_threads(0), d);
  if (blas_has_own_pool()) {  // OpenBLAS's pthread pool: together no more threads than cores
    EXPECT_LE(d + blas_threads(), std::max(cores, 2));
  }
  EXPECT_EQ(set_cpu_threads(1), 1);
  if (blas_has_own_pool()) {
    EXPECT_EQ(blas_threads(), std::max(1, cores - 1));
  }
  set_cpu_threads(0);
}

}  // namespace mtrec
