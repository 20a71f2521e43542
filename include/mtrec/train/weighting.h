#pragma once
// How the trainer (train/trainer.h) combines the task losses into the joint loss it trains on:
//
//  - "static" (default): L = Σ_t w_t·L_t with the weights given to the trainer.
//  - "uncertainty" (Kendall, Gal & Cipolla 2018): one learned log-variance s_t per balanced task
//    (initial value 0), L = Σ_t (½·exp(-s_t)·w_t·L_t + ½·s_t). The multiplier of L_t is
//    ½·w_t·exp(-s_t) (half the static weight at the start); at the optimum in s_t,
//    exp(s_t) = w_t·L_t, so the multiplier tends to ½/L_t: a noisier task weighs less. The s_t
//    get the gradient of L with the model's backward pass and are updated by an Adam of their
//    own at the trainer's scheduled learning rate (no weight decay, no clipping: decaying a
//    log-variance toward 0 would bias it).
//  - "gradnorm" (Chen et al. 2018): learned weights w_t (initially the static weights). At each
//    batch, with W the model's last shared parameters (Model::shared_parameters(); every dense
//    parameter when it names none):
//        n_t = ||∇_W L_t||,  G_t = w_t·n_t,  L̃_t = L_t / L_t(first step),  r_t = L̃_t / mean(L̃),
//        target_t = mean(G)·r_t^α (a constant),  L_grad = Σ_t |G_t − target_t|,
//    and ∂L_grad/∂w_t = sign(G_t − target_t)·n_t updates the w_t by an Adam of their own
//    (gradnorm_lr); after each update they are clamped positive and rescaled so that their sum
//    is the sum of their static weights. The model is trained on Σ_t w_t·L_t with w_t held fixed.
//    Because w_t is a scalar factor of L_t, ∂G_t/∂w_t = n_t exactly: no double-backward graph
//    (create_graph) is needed, only one autograd::grad of each L_t with respect to W (retaining
//    the graph), which walks only the part of the graph between the losses and W.
//
// Tasks named in `fixed_tasks` (default {"mlm"}: the λ·L_mlm term of L = Σ w_t·L_t + λ·L_mlm)
// and tasks of static weight 0 keep their static weight under every rule; the others are the
// "balanced" tasks. A batch in which a balanced task's loss is 0 (no labels for it) leaves that
// task out of GradNorm's balancing for the batch.
//
//   mtrec::LossWeighting w({"rating", "ctr", "mlm"}, {1, 1, 0.1},
//                          mtrec::LossWeightingOptions().kind("gradnorm"), device, shared);
//   at::Tensor loss = w.joint_loss(task_losses);  // differentiable; also measures the n_t
//   loss.backward(); w.backward(host_losses, 1.0); model_optimizer.step(); w.step(lr); w.zero_grad();
#include <torch/arg.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/nn/checkpoint.h"

namespace mtrec {

class SparseRowOptimizer;

enum class WeightingKind { Static, Uncertainty, GradNorm };
/// "static" | "uncertainty" | "gradnorm"; throws mtrec::Error naming any other value.
WeightingKind parse_weighting(const std::string& name);
std::string weighting_name(WeightingKind kind);

#define MTREC_LOSS_WEIGHTING_OPTIONS(X)          \
  /* static | uncertainty | gradnorm */          \
  X(std::string, kind, "static")                 \
  /* GradNorm's restoring force α (>= 0) */     \
  X(double, gradnorm_alpha, 1.5)                 \
  /* Adam learning rate of GradNorm's weights */ \
  X(double, gradnorm_lr, 0.025)                  \
  /* tasks that keep their static weight */      \
  X(std::vector<std::string>, fixed_tasks, std::vector<std::string>{"mlm"})

struct LossWeightingOptions {
  MTREC_OPTIONS(MTREC_LOSS_WEIGHTING_OPTIONS)
};

class LossWeighting {
 public:
  /// `tasks` and `weights`: the task names and static weights, in the order joint_loss receives
  /// the losses. `shared`: GradNorm's W (ignored by the other rules). Learned state lives on `device`.
  LossWeighting(std::vector<std::string> tasks, std::vector<double> weights, LossWeightingOptions options,
                c10::Device device, std::vector<at::Tensor> shared = {});
  ~LossWeighting();

  /// The joint loss (a differentiable scalar) from each task's scalar loss. Under GradNorm it
  /// also measures n_t = ||∇_W L_t|| (retaining the graph for the backward pass that follows).
  at::Tensor joint_loss(const std::vector<at::Tensor>& losses);
  /// The multiplier of each L_t in the last joint_loss, as a detached [tasks] tensor on the
  /// device; undefined when the weights are not learned (they are then static_weights()).
  const at::Tensor& last_multipliers() const { return last_multipliers_; }
  /// After a finite joint loss's backward: GradNorm's gradient of its weights, from this batch's
  /// task losses as read back on the host (`scale`: 1/accumulation). The first finite positive
  /// loss of each task becomes its L_t(first step). A no-op for the other rules.
  void backward(const std::vector<double>& losses, double scale);
  /// An optimiser step of the learned state (uncertainty: at `lr`, the trainer's scheduled
  /// learning rate; GradNorm: at gradnorm_lr, then the renormalisation).
  void step(double lr);
  void zero_grad();

  WeightingKind kind() const { return kind_; }
  /// Whether some weight is learned (a learned rule with at least one balanced task).
  bool learned() const { return kind_ != WeightingKind::Static && !balanced_.empty(); }
  const std::vector<std::string>& tasks() const { return tasks_; }
  const std::vector<double>& static_weights() const { return weights_; }
  /// Whether task `t` (constructor order) keeps its static weight.
  bool fixed(size_t t) const;
  /// The multiplier of L_t in force now, per task (reads the learned state back to the host).
  std::map<std::string, double> weights() const;
  /// Uncertainty: s_t per balanced task; empty for the other rules.
  std::map<std::string, double> log_variances() const;
  /// GradNorm: the G_t = w_t·||∇_W L_t|| of the last joint_loss, per balanced task; empty otherwise.
  std::map<std::string, double> last_grad_norms() const;

  /// The learned weights' tensor (s_t or w_t, with a gradient after backward); empty for static.
  std::vector<at::Tensor> parameters() const;
  /// Learned state (s_t or w_t, GradNorm's initial losses, the Adam state) as
  /// "trainer/weighting/..." tensors, for exact resume; nothing for static weights.
  void save_state(Checkpoint& checkpoint) const;
  /// Restores what save_state wrote; throws mtrec::Error naming what is missing or mismatched.
  void load_state(const Checkpoint& checkpoint);

 private:
  WeightingKind kind_;
  std::vector<std::string> tasks_;
  std::vector<double> weights_;
  LossWeightingOptions options_;
  c10::Device device_;
  std::vector<at::Tensor> shared_;
  std::vector<size_t> balanced_;  // indices (constructor order) of the tasks whose weight is learned
  double balanced_sum_ = 0;       // Σ static weights of the balanced tasks (GradNorm's total)
  at::Tensor param_;              // [balanced, 1]: s_t (uncertainty) or w_t (gradnorm), requires grad
  at::Tensor static_all_;         // [tasks] static weights, float, on the device
  at::Tensor balanced_index_;     // [balanced] long, on the device
  at::Tensor balanced_static_;    // [balanced] static weights, float, on the device
  at::Tensor last_multipliers_;
  at::Tensor last_norms_;             // GradNorm: [balanced] n_t of the last joint_loss
  std::vector<double> initial_loss_;  // GradNorm: L_t(first step) per balanced task (NaN: not yet)
  std::unique_ptr<SparseRowOptimizer> adam_;
};

}  // namespace mtrec
