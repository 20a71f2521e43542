#include "mtrec/nn/experts.h"

#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/nn/dropout.h"

namespace mtrec::nn {

ExpertArch parse_expert_arch(const std::string& name) {
  if (name == "shared-bottom") return ExpertArch::SharedBottom;
  if (name == "mmoe") return ExpertArch::Mmoe;
  if (name == "ple") return ExpertArch::Ple;
  MTREC_CHECK(false, "unknown expert architecture '", name, "' (expected shared-bottom, mmoe or ple)");
  return ExpertArch::Mmoe;
}

const char* expert_arch_name(ExpertArch a) {
  switch (a) {
    case ExpertArch::SharedBottom:
      return "shared-bottom";
    case ExpertArch::Mmoe:
      return "mmoe";
    case ExpertArch::Ple:
      return "ple";
  }
  return "?";
}

void ExpertsOptions::validate() const {
  MTREC_CHECK(in_dim_ > 0, "ExpertsOptions: in_dim must be > 0, got ", in_dim_);
  MTREC_CHECK(num_tasks_ > 0, "ExpertsOptions: num_tasks must be > 0, got ", num_tasks_);
  MTREC_CHECK(!hidden_.empty(), "ExpertsOptions: hidden needs at least one width");
  for (size_t i = 0; i < hidden_.size(); ++i) {
    MTREC_CHECK(hidden_[i] > 0, "ExpertsOptions: hidden[", i, "] must be > 0, got ", hidden_[i]);
  }
  MTREC_CHECK(dropout_ >= 0 && dropout_ < 1, "ExpertsOptions: dropout must be in [0, 1), got ", dropout_);
  MTREC_CHECK(levels_ >= 1, "ExpertsOptions: levels must be >= 1, got ", levels_);
  if (arch_ != ExpertArch::SharedBottom) {
    MTREC_CHECK(experts_ >= 1, "ExpertsOptions: ", expert_arch_name(arch_), " needs experts >= 1, got ", experts_);
  }
  if (arch_ == ExpertArch::Ple) {
    MTREC_CHECK(task_experts_ >= 1, "ExpertsOptions: ple needs task_experts >= 1, got ", task_experts_,
                " (mmoe is the architecture without task-specific experts)");
  }
}

namespace {

// Linear + ReLU (+ dropout) per width: every expert and the shared bottom.
torch::nn::Sequential make_mlp(int64_t in, const std::vector<int64_t>& hidden, double dropout) {
  torch::nn::Sequential mlp;
  for (int64_t width : hidden) {
    mlp->push_back(torch::nn::Linear(in, width));
    mlp->push_back(torch::nn::ReLU());
    if (dropout > 0) mlp->push_back(Dropout(dropout));
    in = width;
  }
  return mlp;
}

torch::nn::LinearImpl& last_linear(torch::nn::SequentialImpl& mlp) {
  torch::nn::LinearImpl* linear = nullptr;
  for (size_t i = mlp.size(); i-- > 0 && linear == nullptr;) linear = mlp.ptr(i)->as<torch::nn::LinearImpl>();
  MTREC_CHECK(linear != nullptr, "Experts: an MLP without a Linear layer");
  return *linear;
}

at::Tensor run(const torch::nn::ModuleList& list, size_t i, const at::Tensor& x) {
  return list->ptr(i)->as<torch::nn::SequentialImpl>()->forward(x);
}

// sum_e gate_e * expert_e: gate [B, n], experts n x [B, D] -> [B, D].
at::Tensor mix(const at::Tensor& gate, const std::vector<at::Tensor>& experts) {
  return at::bmm(gate.unsqueeze(1), at::stack(experts, 1)).squeeze(1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
ExtractionLevelImpl::ExtractionLevelImpl(const ExpertsOptions& opts, int64_t level)
    : options(opts),
      in_dim(level == 0 ? opts.in_dim() : opts.out_dim()),
      shared_experts(opts.experts()),
      task_experts(opts.arch() == ExpertArch::Ple ? opts.task_experts() : 0),
      has_shared_gate(opts.arch() == ExpertArch::Ple && level + 1 < opts.levels()) {
  reset();
}

void ExtractionLevelImpl::reset() {
  const int64_t tasks = options.num_tasks();
  shared = register_module("shared", torch::nn::ModuleList());
  for (int64_t e = 0; e < shared_experts; ++e) shared->push_back(make_mlp(in_dim, options.hidden(), options.dropout()));
  per_task = register_module("per_task", torch::nn::ModuleList());
  for (int64_t i = 0; i < tasks * task_experts; ++i) {
    per_task->push_back(make_mlp(in_dim, options.hidden(), options.dropout()));
  }
  task_gates = register_module("task_gates", torch::nn::ModuleList());
  for (int64_t t = 0; t < tasks; ++t) task_gates->push_back(torch::nn::Linear(in_dim, task_experts + shared_experts));
  if (has_shared_gate) {
    shared_gate = register_module("shared_gate", torch::nn::Linear(in_dim, tasks * task_experts + shared_experts));
  }
}

ExtractionLevelImpl::Output ExtractionLevelImpl::forward(const std::vector<at::Tensor>& task_in,
                                                         const at::Tensor& shared_in) {
  const int64_t tasks = options.num_tasks();
  MTREC_CHECK(static_cast<int64_t>(task_in.size()) == tasks, "ExtractionLevel: ", task_in.size(), " task inputs for ",
              tasks, " tasks");
  std::vector<at::Tensor> shared_out;
  for (size_t e = 0; e < shared->size(); ++e) shared_out.push_back(run(shared, e, shared_in));
  std::vector<at::Tensor> all;  // every expert of the level, for the shared gate
  Output out;
  for (int64_t t = 0; t < tasks; ++t) {
    std::vector<at::Tensor> mixed;
    for (int64_t k = 0; k < task_experts; ++k) mixed.push_back(run(per_task, t * task_experts + k, task_in[t]));
    if (has_shared_gate) all.insert(all.end(), mixed.begin(), mixed.end());
    mixed.insert(mixed.end(), shared_out.begin(), shared_out.end());
    at::Tensor gate = torch::softmax(task_gates->ptr(t)->as<torch::nn::LinearImpl>()->forward(task_in[t]), -1);
    out.task.push_back(mix(gate, mixed));
    out.gates.push_back(gate);
  }
  if (has_shared_gate) {
    all.insert(all.end(), shared_out.begin(), shared_out.end());
    out.shared = mix(torch::softmax(shared_gate(shared_in), -1), all);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
ExpertsImpl::ExpertsImpl(ExpertsOptions opts) : options(std::move(opts)) {
  options.validate();
  reset();
}

void ExpertsImpl::reset() {
  if (options.arch() == ExpertArch::SharedBottom) {
    bottom = register_module("bottom", make_mlp(options.in_dim(), options.hidden(), options.dropout()));
    return;
  }
  levels = register_module("levels", torch::nn::ModuleList());
  const int64_t n = options.arch() == ExpertArch::Ple ? options.levels() : 1;
  for (int64_t l = 0; l < n; ++l) levels->push_back(ExtractionLevel(options, l));
}

ExpertsOutput ExpertsImpl::forward(const at::Tensor& x) {
  MTREC_CHECK(x.dim() == 2 && x.size(1) == options.in_dim(), "Experts: input must be [B, ", options.in_dim(), "], got ",
              x.sizes());
  ExpertsOutput out;
  if (bottom) {
    out.task.assign(options.num_tasks(), bottom->forward(x));
    return out;
  }
  std::vector<at::Tensor> task_in(options.num_tasks(), x);
  at::Tensor shared_in = x;
  for (const auto& level : *levels) {
    auto level_out = level->as<ExtractionLevelImpl>()->forward(task_in, shared_in);
    task_in = std::move(level_out.task);
    shared_in = level_out.shared;
    out.gates = std::move(level_out.gates);
  }
  out.task = std::move(task_in);
  return out;
}

std::vector<at::Tensor> ExpertsImpl::last_shared_parameters() {
  std::vector<at::Tensor> params;
  auto add = [&](torch::nn::SequentialImpl& mlp) {
    auto& linear = last_linear(mlp);
    params.push_back(linear.weight);
    params.push_back(linear.bias);
  };
  if (bottom) {
    add(*bottom);
  } else {
    auto* last = levels->ptr(levels->size() - 1)->as<ExtractionLevelImpl>();
    for (const auto& expert : *last->shared) add(*expert->as<torch::nn::SequentialImpl>());
  }
  return params;
}

}  // namespace mtrec::nn
