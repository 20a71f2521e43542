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
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mtrec {

struct SparseRowOptions {
  std::string kind_ = "adagrad";  // sgd | adagrad | adam
  double lr_ = 0.05;
  double eps_ = 1e-8;
  double beta1_ = 0.9, beta2_ = 0.999;  // adam
  double initial_accumulator_ = 0;      // adagrad
  SparseRowOptions& kind(std::string v) { kind_ = std::move(v); return *this; }
  SparseRowOptions& lr(double v) { lr_ = v; return *this; }
  SparseRowOptions& eps(double v) { eps_ = v; return *this; }
  SparseRowOptions& beta1(double v) { beta1_ = v; return *this; }
  SparseRowOptions& beta2(double v) { beta2_ = v; return *this; }
  SparseRowOptions& initial_accumulator(double v) { initial_accumulator_ = v; return *this; }
};

class SparseRowOptimizer {
 public:
  /// `params`: 2-D tables whose gradients are sparse COO; a dense gradient is taken as one
  /// that touches every row (correct, but O(table): make the tables sparse for speed).
  SparseRowOptimizer(std::vector<at::Tensor> params, SparseRowOptions options);
  /// Applies the current gradients at learning rate `lr` (the options' lr when < 0).
  void step(double lr = -1);
  void zero_grad();
  void set_lr(double lr) { options_.lr_ = lr; }
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
