// The fast CPU dropout: its drop rate and scaling, the gradient through its mask, seeding by
// LibTorch's generator, independence of the thread count, float64, and the identity in eval.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

#include "mtrec/core/check.h"
#include "mtrec/nn/dropout.h"
#include "test_torch.h"

namespace mtrec::nn {
namespace {

TEST(Dropout, DropsASharePAndScalesTheRestToKeepTheMean) {
  torch::manual_seed(3);
  const int64_t n = 1 << 20;
  at::Tensor x = torch::ones({n});
  at::Tensor y = apply_dropout(x, 0.25, true);
  const double dropped = (y == 0).to(torch::kFloat64).mean().item<double>();
  // Binomial(n, .25): sd = sqrt(.25 * .75 / n) = 4.2e-4; 6 sd bounds a seeded draw with room.
  EXPECT_NEAR(dropped, 0.25, 6 * std::sqrt(0.25 * 0.75 / n));
  // p = .25 is a multiple of 2^-16, so kept values are exactly 1 / .75.
  at::Tensor kept = y.masked_select(y != 0);
  EXPECT_TRUE(torch::allclose(kept, torch::full_like(kept, 1.0 / 0.75)));
  // The mask's mean is 1 up to sampling noise, and exactly (1 - p') / (1 - p') per kept element.
  EXPECT_NEAR(y.to(torch::kFloat64).mean().item<double>(), 1.0, 6 * std::sqrt(0.25 / 0.75 / n));
  // Neighbouring elements are drawn independently: the share of adjacent pairs both dropped is p^2.
  at::Tensor d = (y == 0).to(torch::kFloat64);
  const double both = (d.narrow(0, 0, n - 1) * d.narrow(0, 1, n - 1)).mean().item<double>();
  EXPECT_NEAR(both, 0.0625, 6 * std::sqrt(0.0625 * 0.9375 / n));
}

TEST(Dropout, IsTheIdentityOutsideTrainingOrAtZero) {
  at::Tensor x = torch::randn({7, 5});
  EXPECT_TRUE(apply_dropout(x, 0.5, false).equal(x));
  EXPECT_TRUE(apply_dropout(x, 0.0, true).equal(x));
  Dropout module(0.5);
  module->eval();
  EXPECT_TRUE(module(x).equal(x));
}

TEST(Dropout, GradientFlowsThroughTheSameMaskInFloat64) {
  torch::manual_seed(11);
  at::Tensor x = torch::randn({301}, torch::kFloat64).requires_grad_(true);
  at::Tensor y = apply_dropout(x, 0.3, true);
  EXPECT_EQ(y.scalar_type(), torch::kFloat64);
  at::Tensor w = torch::randn({301}, torch::kFloat64);
  (y * w).sum().backward();
  // y = x * m, so dL/dx = w * m where m = y / x (x is nonzero almost surely).
  at::Tensor m = (y / x).detach();
  EXPECT_TRUE(torch::allclose(x.grad(), w * m, 1e-12, 1e-12));
  const double scale = 1.0 / (1.0 - std::lround(0.3 * 65536) / 65536.0);
  EXPECT_TRUE(((m == 0) | (m - scale).abs().lt(1e-12)).all().item<bool>());
}

TEST(Dropout, TheSeedReproducesTheMaskOnAnyNumberOfThreads) {
  const int threads = at::get_num_threads();
  at::Tensor x = torch::ones({100003});
  torch::manual_seed(7);
  at::set_num_threads(1);
  at::Tensor a = apply_dropout(x, 0.1, true), b = apply_dropout(x, 0.1, true);
  torch::manual_seed(7);
  at::set_num_threads(2);
  at::Tensor c = apply_dropout(x, 0.1, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(a.equal(c));   // same seed, other thread count: same mask
  EXPECT_FALSE(a.equal(b));  // the next call draws a new mask
}

TEST(Dropout, RefusesAProbabilityOutsideZeroToOne) {
  EXPECT_THROW(apply_dropout(torch::ones({3}), 1.0, true), Error);
  EXPECT_THROW(Dropout(-0.1), Error);
}

}  // namespace
}  // namespace mtrec::nn
