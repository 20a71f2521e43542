#include <gtest/gtest.h>

#include "mtrec/core/log.h"
#include "mtrec/core/random.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mtrec::seed_everything(42);
  return RUN_ALL_TESTS();
}
