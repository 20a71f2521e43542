#pragma once
// The training engine's view of a model and of a task's objective (train/trainer.h drives them):
//  - a BatchSource is the table of training examples of one split: it says how many there are
//    in an epoch and turns a list of example rows into a Batch of tensors (user, item, scenario,
//    per-task labels and masks, ...). It runs on the batcher's prefetch thread, so make_batch
//    must not touch the model.
//  - a Model turns a Batch into named outputs in one forward pass, for every task at once.
//  - an Objective (one task's loss) reads the outputs it needs and its labels from the batch and returns its loss,
//    averaged over the examples whose mask it has set (an example carries only the labels it has);
//    it reports its validation metrics.
// An objective never owns a loop, a model never owns an optimiser (DESIGN.md, the training engine).
//
//   struct MyObjective : mtrec::Objective {
//     std::string name() const override { return "rating"; }
//     at::Tensor loss(const mtrec::Outputs& out, const mtrec::Batch& b) override {
//       return mtrec::masked_mean((out.at("rating") - b.at("rating")).pow(2), b.mask("rating"));
//     }
//     mtrec::Metrics validate(mtrec::Model& m) override { ... return {{"rmse", v}}; }
//   };
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "mtrec/data/batch.h"

namespace torch::nn {
class Module;
}

namespace mtrec {

/// Metric name -> value (e.g. "rmse", "auc", "HR@10").
using Metrics = std::map<std::string, double>;

/// Named model outputs for a batch ("rating", "ctr_logit", ...).
using Outputs = std::map<std::string, at::Tensor>;

/// Mean of `values` over the examples where `mask` is true (all when `mask` is undefined); 0,
/// with a gradient path, when no example is masked in.
at::Tensor masked_mean(const at::Tensor& values, const at::Tensor& mask);

class Model {
 public:
  virtual ~Model() = default;
  /// The module holding every trained parameter and buffer (saved in checkpoints).
  virtual torch::nn::Module& module() = 0;
  virtual Outputs forward(const Batch& batch) = 0;
  /// Names (as in module().named_parameters()) of the embedding tables that produce sparse
  /// gradients and are updated row by row (train/optim.h); the rest is dense.
  virtual std::vector<std::string> sparse_parameters() const { return {}; }
  /// The parameters of the last layer that every task's output goes through (e.g. the last
  /// shared expert layer), whose per-task gradient norms GradNorm balances (train/weighting.h).
  /// Empty (the default): GradNorm uses every dense parameter instead, which costs one backward
  /// pass through the whole model per task and batch.
  virtual std::vector<at::Tensor> shared_parameters() { return {}; }
  /// (parameter-name prefix, multiplier): dense parameters under a prefix train at that multiple
  /// of the scheduled learning rate (e.g. a pretrained text encoder fine-tuned gently).
  virtual std::vector<std::pair<std::string, double>> lr_scales() const { return {}; }
};

class Objective {
 public:
  virtual ~Objective() = default;
  virtual std::string name() const = 0;
  /// The task's loss on `outputs` for `batch` (a scalar with a gradient path).
  virtual at::Tensor loss(const Outputs& outputs, const Batch& batch) = 0;
  /// Validation metrics of the model as it is now; empty when the task has no validation data.
  virtual Metrics validate(Model& model) { return {}; }
};

}  // namespace mtrec
