#pragma once
// Optimisers of the training engine:
//  - dense parameters: AdamW, Adam or SGD (LibTorch's own);
//  - embedding tables with sparse gradients (torch::nn::EmbeddingOptions::sparse): row updates
//    that touch only the rows of the batch, so a step costs O(batch), not O(table):
//    "sgd" (exactly dense SGD without momentum), "adagrad" (row-wise AdaGrad: one accumulator
//    per row, as in DLRM/TorchRec) and "adam" (lazy Adam, as PyTorch's SparseAdam);
//  - the learning-rate schedule: linear warm-up, then constant, cosine, linear or per-epoch
//    exponential decay.
//   mtrec::SparseRowOptimizer rows({table}, mtrec::SparseRowOptions().kind("adagrad").lr(0.05));
//   loss.backward(); rows.step(); rows.zero_grad();
#include <torch/arg.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec {

#define MTREC_SPARSE_ROW_OPTIONS(X) \
  /* sgd | adagrad | adam */        \
  X(std::string, kind, "adagrad")   \
  X(double, lr, 0.05)               \
  X(double, eps, 1e-8)              \
  /* adam */                        \
  X(double, beta1, 0.9)             \
  X(double, beta2, 0.999)           \
  /* adagrad */                     \
  X(double, initial_accumulator, 0)

struct SparseRowOptions {
  MTREC_OPTIONS(MTREC_SPARSE_ROW_OPTIONS)
};

class SparseRowOptimizer {
 public:
  /// `params`: 2-D tables whose gradients are sparse COO; a dense gradient is taken as one
  /// that touches every row (correct, but O(table): make the tables sparse for speed).
  SparseRowOptimizer(std::vector<at::Tensor> params, SparseRowOptions options);
  /// Applies the current gradients at learning rate `lr` (the options' lr when < 0).
  void step(double lr = -1);
  void zero_grad();
  void set_lr(double lr) { options_.lr() = lr; }
  const SparseRowOptions& options() const { return options_; }
  /// Accumulators and step counts, by name, for checkpoints.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& state);

 private:
  std::vector<at::Tensor> params_;
  SparseRowOptions options_;
  std::vector<at::Tensor> acc1_, acc2_;  // adagrad: acc1 [rows]; adam: m, v [rows, dim]
  int64_t steps_ = 0;
};

/// The learning rate at optimizer step `step` (0-based) of `total_steps`, in epoch `epoch`
/// (0-based): linear warm-up over `warmup` steps, then
/// "constant" | "cosine" (to min_ratio·lr at the end) | "linear" (likewise) | "exponential"
/// (lr·decay^epoch).
double scheduled_lr(const std::string& schedule, double lr, int64_t step, int64_t total_steps, int64_t warmup,
                    double min_ratio, double decay, int epoch);

/// L2 norm of every gradient of `params` (sparse ones coalesced); 0 when there is none.
double gradient_norm(const std::vector<at::Tensor>& params);
/// Multiplies every gradient by `factor`.
void scale_gradients(const std::vector<at::Tensor>& params, double factor);

}  // namespace mtrec
