#pragma once
// Dropout whose CPU mask costs a fraction of LibTorch's: at::dropout draws each element with
// bernoulli_ on the mt19937 generator (6 ns an element here, half of the text encoder's forward
// pass at the joint model's sizes); this one draws 16-bit uniforms from a counter-based
// splitmix64 stream (4 per call, in parallel), seeded by one draw from LibTorch's CPU generator,
// so manual_seed, seed_everything and the engine's saved RNG state govern it as before and the
// mask does not depend on the thread count. The drop probability is p rounded to a multiple of
// 2^-16 and the kept values are scaled by the inverse of the rounded keep probability, so the
// expectation is exact. Other devices and dtypes use at::dropout.
//
//   at::Tensor y = apply_dropout(x, 0.1, is_training());
//   mtrec::nn::Dropout drop(0.1);   // the module (in a Sequential, or as a member)
#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace mtrec::nn {

/// x with each element zeroed with probability p and the rest scaled by 1 / (1 - p), when
/// `training` (x itself otherwise); gradients flow through the same mask.
at::Tensor apply_dropout(const at::Tensor& x, double p, bool training);

/// The keep mask apply_dropout() multiplies by: `like`'s shape, dtype and device, 0 or 1 / (1 - p').
at::Tensor dropout_mask(const at::Tensor& like, double p);

class DropoutImpl : public torch::nn::Cloneable<DropoutImpl> {
 public:
  explicit DropoutImpl(double p = 0.5);
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return apply_dropout(x, p, is_training()); }
  double p;
};
TORCH_MODULE(Dropout);

}  // namespace mtrec::nn
