#pragma once
// Private to train/: initial parameters drawn under a seed of their own.
#include <torch/torch.h>

#include <cstdint>

namespace mtrec {

/// Runs `make` with LibTorch's CPU generator seeded from `seed`, then restores the generator:
/// the initial parameters depend on the seed alone, and the process's stream (which the
/// trainer owns) is left as it was.
template <typename Make>
auto with_init_seed(uint64_t seed, Make&& make) {
  torch::Tensor saved = at::globalContext().defaultGenerator(c10::kCPU).get_state();
  torch::manual_seed(seed);
  auto out = make();
  const_cast<at::Generator&>(at::globalContext().defaultGenerator(c10::kCPU)).set_state(saved);
  return out;
}

}  // namespace mtrec
