#include "mtrec/train/profile.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mtrec/core/profile.h"

namespace mtrec {
namespace {

TEST(BackwardAttribution, ChargesEachNodesBackwardToTheForwardPhaseThatBuiltIt) {
  Profile::reset();
  Profile::enable(true);
  std::map<std::string, PhaseTotal> t;
  {
    BackwardAttribution attribution;
    at::Tensor w = torch::randn({64, 64}, torch::requires_grad()), x = torch::randn({256, 64});
    at::Tensor a, b;
    {
      MTREC_PROFILE("a");
      a = torch::matmul(x, w).tanh();
    }
    {
      MTREC_PROFILE("b");
      b = torch::sigmoid(a).sum();
    }
    {
      MTREC_PROFILE("backward");
      b.backward();
    }
    t = Profile::totals();
  }
  Profile::enable(false);
  Profile::reset();
  // a: MmBackward and TanhBackward; b: SigmoidBackward and SumBackward.
  ASSERT_TRUE(t.count("backward:a")) << "no backward charged to phase a";
  ASSERT_TRUE(t.count("backward:b")) << "no backward charged to phase b";
  EXPECT_GE(t.at("backward:a").calls, 2);
  EXPECT_GE(t.at("backward:b").calls, 2);
  EXPECT_LE(t.at("backward:a").seconds + t.at("backward:b").seconds, t.at("backward").seconds);
  EXPECT_EQ(t.count("backward:backward"), 0u);  // no forward op ran in the backward phase
}

}  // namespace
}  // namespace mtrec
