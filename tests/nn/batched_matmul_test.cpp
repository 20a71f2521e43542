// batched_matmul against at::matmul (the slow exact path): values and float64 gradients for
// contiguous, transposed and head-split strided operands, 3-D and 4-D, and the fallbacks.
#include <torch/torch.h>

#include "mtrec/nn/batched_matmul.h"
#include "test_torch.h"

namespace mtrec::nn {
namespace {

// Values and both gradients of batched_matmul(a, b) equal at::matmul's (float64: to 1e-12).
void expect_matches_matmul(const at::Tensor& a0, const at::Tensor& b0, const std::function<at::Tensor(at::Tensor)>& fa,
                           const std::function<at::Tensor(at::Tensor)>& fb) {
  at::Tensor a1 = a0.clone().requires_grad_(true), b1 = b0.clone().requires_grad_(true);
  at::Tensor a2 = a0.clone().requires_grad_(true), b2 = b0.clone().requires_grad_(true);
  at::Tensor got = batched_matmul(fa(a1), fb(b1)), want = at::matmul(fa(a2), fb(b2));
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12));
  at::Tensor w = torch::randn(want.sizes(), want.options());
  (got * w).sum().backward();
  (want * w).sum().backward();
  EXPECT_TRUE(torch::allclose(a1.grad(), a2.grad(), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(b1.grad(), b2.grad(), 1e-12, 1e-12));
}

TEST(BatchedMatmul, MatchesMatmulOnContiguousTransposedAndHeadSplitOperands) {
  torch::manual_seed(5);
  auto id = [](at::Tensor t) { return t; };
  auto kT = [](at::Tensor t) { return t.transpose(-2, -1); };
  const auto f64 = torch::kFloat64;
  expect_matches_matmul(torch::randn({6, 4, 3}, f64), torch::randn({6, 3, 5}, f64), id, id);  // 3-D
  expect_matches_matmul(torch::randn({6, 4, 3}, f64), torch::randn({6, 5, 3}, f64), id, kT);  // q kᵀ
  expect_matches_matmul(torch::randn({6, 3, 4}, f64), torch::randn({6, 5, 3}, f64), kT, kT);  // both
  // Attention's heads: [B, L, H·Dh] viewed as [B, H, L, Dh] (not contiguous, no copy needed).
  auto heads = [](at::Tensor t) { return t.view({t.size(0), t.size(1), 2, t.size(2) / 2}).transpose(1, 2); };
  auto heads_kT = [&](at::Tensor t) { return heads(t).transpose(-2, -1); };
  expect_matches_matmul(torch::randn({3, 7, 8}, f64), torch::randn({3, 7, 8}, f64), heads, heads_kT);
  // weights [B, H, L, L] · v as heads.
  expect_matches_matmul(torch::randn({3, 2, 7, 7}, f64), torch::randn({3, 7, 8}, f64), id, heads);
  // A strided operand with neither unit stride is copied, with the same result.
  auto every_other = [](at::Tensor t) { return t.slice(-1, 0, t.size(-1), 2); };
  expect_matches_matmul(torch::randn({2, 3, 8}, f64), torch::randn({2, 4, 5}, f64), every_other, id);
}

TEST(BatchedMatmul, FloatAndFallbackShapesAgreeWithMatmul) {
  torch::manual_seed(6);
  at::Tensor a = torch::randn({900, 32, 16}), b = torch::randn({900, 16, 32});
  EXPECT_TRUE(torch::allclose(batched_matmul(a, b), at::matmul(a, b), 1e-5, 1e-5));
  // Broadcasting and 2-D operands take at::matmul.
  at::Tensor m = torch::randn({16, 8});
  EXPECT_TRUE(torch::allclose(batched_matmul(a, m), at::matmul(a, m), 1e-5, 1e-5));
  EXPECT_TRUE(batched_matmul(m.t(), m).equal(at::matmul(m.t(), m)));
  // Empty inner dimension: zeros.
  EXPECT_TRUE(batched_matmul(torch::randn({2, 3, 0}), torch::randn({2, 0, 4})).equal(torch::zeros({2, 3, 4})));
}

}  // namespace
}  // namespace mtrec::nn
