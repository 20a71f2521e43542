#pragma once
// Helpers for the LibTorch tests.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "mtrec/train/trainer.h"

namespace mtrec::test {

/// One intra-op thread for a scope: these tensors are tiny, and on a loaded machine OpenMP's
/// spinning workers make small ops many times slower. Restores the previous count.
struct OneThread {
  int saved = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved); }
};

/// A parameter's gradient as a dense tensor (embedding tables with sparse gradients give COO ones).
inline at::Tensor dense_grad(const at::Tensor& p) { return p.grad().is_sparse() ? p.grad().to_dense() : p.grad(); }

/// Throws from after_batch once the trainer has taken optimiser step `at_step`: a crash in
/// the middle of a run, for the resume tests.
struct CrashAtStep : Observer {
  int64_t at_step;
  explicit CrashAtStep(int64_t s) : at_step(s) {}
  Signal after_batch(Trainer& t) override {
    if (t.state().step == at_step) throw std::runtime_error("simulated crash");
    return Signal::Continue;
  }
};

/// Copies of a model's parameters, to compare runs.
inline std::vector<at::Tensor> params_of(Model& m) {
  std::vector<at::Tensor> out;
  for (auto& p : m.module().parameters()) out.push_back(p.detach().clone());
  return out;
}

/// Every parameter bit-identical.
inline void expect_identical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << "parameter " << k << " differs";
}

}  // namespace mtrec::test
