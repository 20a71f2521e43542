#pragma once
// Scenario conditioning: the shared input and each task's expert output are adapted to the
// scenario (page or surface) a request comes from.
//
//   mtrec::nn::ScenarioLayer cond(mtrec::nn::ScenarioLayerOptions(/*in_dim=*/96, /*task_dim=*/64,
//                                     /*num_tasks=*/3, /*num_scenarios=*/4)
//                                     .arch(mtrec::nn::ScenarioArch::Pepnet));
//   at::Tensor x2 = cond->forward(x, scenario);    // x [B, 96], scenario [B] int64 in [0, 4)
//   at::Tensor h2 = cond->task(t, h, scenario);    // h [B, 64], task t's expert output
//
// - none: identity; no parameters, and `scenario` is not read (it may be undefined).
// - star (Sheng et al. 2021, STAR): a residual ReLU layer x + ReLU(x (W ⊙ W_s)^T + b + b_s) whose
//   weights are the shared W, b times/plus the scenario's W_s (init ones), b_s (init zeros); at
//   init every scenario computes the same layer. One layer on the input, one per task.
// - pepnet (Chang et al. 2023, PEPNet): gates v ⊙ 2·sigmoid(MLP([E_s ; stop_grad(v)])) from a
//   scenario embedding E: EPNet on the input, a PPNet gate per task. The gates' last Linear
//   starts at zero, so at init every gate is exactly 1 and the model starts unconditioned.
//
// A scenario absent from the batch gets exactly zero gradient in its own parameters.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "mtrec/core/options.h"

namespace mtrec::nn {

enum class ScenarioArch { None, Star, Pepnet };
/// "none", "star" or "pepnet"; throws mtrec::Error otherwise.
ScenarioArch parse_scenario_arch(const std::string& name);
const char* scenario_arch_name(ScenarioArch a);

#define MTREC_STAR_LINEAR_OPTIONS(X) \
  X(int64_t, in_dim, 0)              \
  X(int64_t, out_dim, 0)             \
  X(int64_t, num_scenarios, 0)

struct StarLinearOptions {
  StarLinearOptions(int64_t in_dim, int64_t out_dim, int64_t num_scenarios)
      : in_dim_(in_dim), out_dim_(out_dim), num_scenarios_(num_scenarios) {}
  MTREC_OPTIONS(MTREC_STAR_LINEAR_OPTIONS)
};

/// STAR's fully-connected layer: scenario s computes x (W ⊙ W_s)^T + b + b_s. Rows are grouped
/// by scenario (one sort, one matmul per scenario present), never a [B, out, in] weight gather.
class StarLinearImpl : public torch::nn::Module {
 public:
  explicit StarLinearImpl(StarLinearOptions options);
  void reset();
  /// x [B, in_dim], scenario [B] int64 in [0, num_scenarios) -> [B, out_dim].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& scenario);

  StarLinearOptions options;
  at::Tensor weight;           // [out, in], shared
  at::Tensor bias;             // [out], shared
  at::Tensor scenario_weight;  // [S, out, in], init ones
  at::Tensor scenario_bias;    // [S, out], init zeros
};
TORCH_MODULE(StarLinear);

#define MTREC_SCENARIO_LAYER_OPTIONS(X)                           \
  X(int64_t, in_dim, 0)                                           \
  X(int64_t, task_dim, 0)                                         \
  X(int64_t, num_tasks, 0)                                        \
  X(int64_t, num_scenarios, 0)                                    \
  X(ScenarioArch, arch, ScenarioArch::None)                       \
  /* Scenario embedding width (the PEPNet gates' extra input). */ \
  X(int64_t, scenario_dim, 16)                                    \
  /* PEPNet gate MLP width. */                                    \
  X(int64_t, gate_hidden, 64)

struct ScenarioLayerOptions {
  ScenarioLayerOptions(int64_t in_dim, int64_t task_dim, int64_t num_tasks, int64_t num_scenarios)
      : in_dim_(in_dim), task_dim_(task_dim), num_tasks_(num_tasks), num_scenarios_(num_scenarios) {}
  MTREC_OPTIONS(MTREC_SCENARIO_LAYER_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  /// Throws mtrec::Error naming the offending value.
  void validate() const;
};

class ScenarioLayerImpl : public torch::nn::Module {
 public:
  explicit ScenarioLayerImpl(ScenarioLayerOptions options);
  void reset();
  /// Conditions the shared input x [B, in_dim] on scenario [B] int64 (values in
  /// [0, num_scenarios)); returns [B, in_dim].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& scenario);
  /// Conditions task t's expert output h [B, task_dim]; returns [B, task_dim].
  at::Tensor task(int64_t t, const at::Tensor& h, const at::Tensor& scenario);

  ScenarioLayerOptions options;
  // star
  StarLinear star_input{nullptr};
  torch::nn::ModuleList star_tasks{nullptr};  // StarLinear(task_dim, task_dim) per task
  // pepnet
  torch::nn::Embedding scenario_embedding{nullptr};
  torch::nn::Sequential input_gate{nullptr};  // EPNet: scenario_dim + in_dim -> in_dim
  torch::nn::ModuleList task_gates{nullptr};  // PPNet: scenario_dim + task_dim -> task_dim per task

 private:
  /// Checks `scenario` (shape, range) and returns its embedding rows [B, scenario_dim].
  at::Tensor embed(const at::Tensor& scenario, int64_t rows);
};
TORCH_MODULE(ScenarioLayer);

}  // namespace mtrec::nn
