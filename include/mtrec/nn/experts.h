#pragma once
// Expert layers between the shared input and the task towers: shared-bottom, MMoE
// (Ma et al. 2018, multi-gate mixture of experts) and PLE (Tang et al. 2020, progressive
// layered extraction).
//
//   mtrec::nn::Experts experts(mtrec::nn::ExpertsOptions(/*in_dim=*/96, /*num_tasks=*/3)
//                                  .arch(mtrec::nn::ExpertArch::Ple).experts(2).task_experts(1)
//                                  .levels(2).hidden({128, 64}));
//   auto out = experts->forward(x);   // x [B, 96]
//   out.task[t];                      // [B, 64], the input of task t's tower
//   out.gates[t];                     // [B, 1 + 2], task t's gate at the last level
//   auto w = experts->last_shared_parameters();   // GradNorm's W
//
// Every expert is an MLP over `hidden` with a ReLU after each layer (and dropout after each
// ReLU when dropout > 0). MMoE is one extraction level without task-specific experts: task t's
// output is sum_e softmax(gate_t(x))_e * expert_e(x). A PLE level has `experts` shared experts
// and `task_experts` experts per task; task t's gate mixes [its own experts ; the shared ones]
// from task t's input, and, except at the last level, a shared gate mixes every expert of the
// level (all tasks' experts in task order, then the shared ones) from the shared input to form
// the next level's shared input. The first level reads x everywhere; later levels read
// hidden.back()-wide inputs.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec::nn {

enum class ExpertArch { SharedBottom, Mmoe, Ple };
/// "shared-bottom", "mmoe" or "ple"; throws mtrec::Error otherwise.
ExpertArch parse_expert_arch(const std::string& name);
const char* expert_arch_name(ExpertArch a);

#define MTREC_EXPERTS_OPTIONS(X)                                                            \
  X(int64_t, in_dim, 0)                                                                     \
  X(int64_t, num_tasks, 0)                                                                  \
  X(ExpertArch, arch, ExpertArch::Mmoe)                                                     \
  /* MMoE: the experts; PLE: the shared experts of each level. Ignored by shared-bottom. */ \
  X(int64_t, experts, 4)                                                                    \
  /* PLE only: task-specific experts per task per level. */                                 \
  X(int64_t, task_experts, 1)                                                               \
  /* PLE only: extraction levels (>= 1; 1 is CGC, a single customised gate control). */     \
  X(int64_t, levels, 1)                                                                     \
  /* Each expert's MLP widths (shared-bottom: the bottom MLP); ReLU after every layer. */   \
  X(std::vector<int64_t>, hidden, (std::vector<int64_t>{128, 64}))                          \
  X(double, dropout, 0)

struct ExpertsOptions {
  ExpertsOptions(int64_t in_dim, int64_t num_tasks) : in_dim_(in_dim), num_tasks_(num_tasks) {}
  MTREC_OPTIONS(MTREC_EXPERTS_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  int64_t out_dim() const { return hidden_.empty() ? 0 : hidden_.back(); }
  /// Throws mtrec::Error naming the offending value.
  void validate() const;
};

struct ExpertsOutput {
  std::vector<at::Tensor> task;  // per task [B, out_dim]
  /// Per task [B, n], the softmax weights of that task's gate at the last level (MMoE: n =
  /// experts; PLE: n = task_experts + experts, own experts first); empty for shared-bottom.
  std::vector<at::Tensor> gates;
};

/// One extraction level of MMoE or PLE (`level` counts from 0): shared experts, per-task
/// experts, a softmax gate per task and, below PLE's last level, a shared gate. MMoE is one
/// level with no per-task experts.
class ExtractionLevelImpl : public torch::nn::Module {
 public:
  ExtractionLevelImpl(const ExpertsOptions& options, int64_t level);
  void reset();
  struct Output {
    std::vector<at::Tensor> task;   // per task [B, out_dim]
    std::vector<at::Tensor> gates;  // per task [B, task_experts + shared_experts]
    at::Tensor shared;              // [B, out_dim] when the level has a shared gate, else undefined
  };
  /// task_in: per task [B, in_dim]; shared_in [B, in_dim].
  Output forward(const std::vector<at::Tensor>& task_in, const at::Tensor& shared_in);

  ExpertsOptions options;
  int64_t in_dim, shared_experts, task_experts;
  bool has_shared_gate;
  torch::nn::ModuleList shared{nullptr};      // shared_experts MLPs
  torch::nn::ModuleList per_task{nullptr};    // num_tasks * task_experts MLPs, task-major
  torch::nn::ModuleList task_gates{nullptr};  // per task Linear(in_dim, task_experts + shared_experts)
  torch::nn::Linear shared_gate{nullptr};     // Linear(in_dim, num_tasks * task_experts + shared_experts)
};
TORCH_MODULE(ExtractionLevel);

class ExpertsImpl : public torch::nn::Module {
 public:
  explicit ExpertsImpl(ExpertsOptions options);
  void reset();
  /// x [B, in_dim].
  ExpertsOutput forward(const at::Tensor& x);
  /// The parameters (weight, bias) of the last layer shared by every task, GradNorm's W: the
  /// shared bottom's last Linear; MMoE: every expert's last Linear; PLE: the last level's
  /// shared experts' last Linear.
  std::vector<at::Tensor> last_shared_parameters();

  ExpertsOptions options;
  torch::nn::Sequential bottom{nullptr};  // shared-bottom only
  torch::nn::ModuleList levels{nullptr};  // MMoE (one level) and PLE: ExtractionLevel
};
TORCH_MODULE(Experts);

}  // namespace mtrec::nn
