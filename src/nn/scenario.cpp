#include "mtrec/nn/scenario.h"

#include <torch/torch.h>

#include <cmath>

#include "mtrec/core/check.h"

namespace mtrec::nn {

ScenarioArch parse_scenario_arch(const std::string& name) {
  if (name == "none") return ScenarioArch::None;
  if (name == "star") return ScenarioArch::Star;
  if (name == "pepnet") return ScenarioArch::Pepnet;
  MTREC_CHECK(false, "unknown scenario architecture '", name, "' (expected none, star or pepnet)");
  return ScenarioArch::None;
}

const char* scenario_arch_name(ScenarioArch a) {
  switch (a) {
    case ScenarioArch::None:
      return "none";
    case ScenarioArch::Star:
      return "star";
    case ScenarioArch::Pepnet:
      return "pepnet";
  }
  return "?";
}

void ScenarioLayerOptions::validate() const {
  MTREC_CHECK(in_dim_ > 0, "ScenarioLayerOptions: in_dim must be > 0, got ", in_dim_);
  MTREC_CHECK(task_dim_ > 0, "ScenarioLayerOptions: task_dim must be > 0, got ", task_dim_);
  MTREC_CHECK(num_tasks_ > 0, "ScenarioLayerOptions: num_tasks must be > 0, got ", num_tasks_);
  MTREC_CHECK(num_scenarios_ > 0, "ScenarioLayerOptions: num_scenarios must be > 0, got ", num_scenarios_);
  MTREC_CHECK(scenario_dim_ > 0, "ScenarioLayerOptions: scenario_dim must be > 0, got ", scenario_dim_);
  MTREC_CHECK(gate_hidden_ > 0, "ScenarioLayerOptions: gate_hidden must be > 0, got ", gate_hidden_);
}

namespace {

void check_scenario_shape(const char* who, const at::Tensor& scenario, int64_t rows) {
  MTREC_CHECK(scenario.defined() && scenario.dim() == 1 && scenario.scalar_type() == torch::kInt64, who,
              ": scenario must be [B] int64, got ", scenario.defined() ? scenario.sizes() : c10::IntArrayRef{}, " ",
              scenario.defined() ? scenario.scalar_type() : torch::kInt64);
  MTREC_CHECK(scenario.size(0) == rows, who, ": ", scenario.size(0), " scenario ids for ", rows, " rows");
}

void check_scenario_id(const char* who, int64_t id, int64_t num_scenarios) {
  MTREC_CHECK(id >= 0 && id < num_scenarios, who, ": scenario id ", id, " outside [0, ", num_scenarios, ")");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
StarLinearImpl::StarLinearImpl(StarLinearOptions opts) : options(std::move(opts)) {
  MTREC_CHECK(options.in_dim() > 0 && options.out_dim() > 0 && options.num_scenarios() > 0,
              "StarLinear: in_dim, out_dim and num_scenarios must be > 0, got ", options.in_dim(), ", ",
              options.out_dim(), ", ", options.num_scenarios());
  reset();
}

void StarLinearImpl::reset() {
  const int64_t in = options.in_dim(), out = options.out_dim(), s = options.num_scenarios();
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = register_parameter("bias", torch::empty({out}));
  // The shared part starts as torch::nn::Linear does; the scenario parts as the identity of
  // ⊙ and +, so every scenario starts from the shared layer.
  scenario_weight = register_parameter("scenario_weight", torch::ones({s, out, in}));
  scenario_bias = register_parameter("scenario_bias", torch::zeros({s, out}));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  bias.uniform_(-bound, bound);
}

at::Tensor StarLinearImpl::forward(const at::Tensor& x, const at::Tensor& scenario) {
  MTREC_CHECK(x.dim() == 2 && x.size(1) == options.in_dim(), "StarLinear: input must be [B, ", options.in_dim(),
              "], got ", x.sizes());
  check_scenario_shape("StarLinear", scenario, x.size(0));
  if (x.size(0) == 0) return at::linear(x, weight, bias);
  // Sort rows by scenario, run one matmul per run of equal ids, scatter back. The ids and run
  // lengths come to the host once (one sync), which also range-checks them for free.
  auto [sorted, perm] = scenario.sort();
  auto runs = at::unique_consecutive(sorted, /*return_inverse=*/false, /*return_counts=*/true);
  at::Tensor ids = std::get<0>(runs).cpu(), counts = std::get<2>(runs).cpu();
  const int64_t n = ids.size(0);
  const int64_t* id = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) check_scenario_id("StarLinear", id[i], options.num_scenarios());
  auto layer = [&](const at::Tensor& rows, int64_t s) {
    return at::linear(rows, weight * scenario_weight[s], bias + scenario_bias[s]);
  };
  if (n == 1) return layer(x, id[0]);
  std::vector<int64_t> sizes(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + n);
  auto chunks = x.index_select(0, perm).split_with_sizes(sizes);
  std::vector<at::Tensor> ys;
  ys.reserve(n);
  for (int64_t i = 0; i < n; ++i) ys.push_back(layer(chunks[i], id[i]));
  at::Tensor y_sorted = at::cat(ys);
  return at::zeros_like(y_sorted).index_copy(0, perm, y_sorted);
}

// ---------------------------------------------------------------------------------------------
namespace {

// PEPNet's gate network: [E_s ; v] -> hidden -> width; the last Linear at zero makes
// 2·sigmoid(0) = 1, the identity gate.
torch::nn::Sequential make_gate(int64_t in, int64_t hidden, int64_t width) {
  torch::nn::Linear last(hidden, width);
  {
    torch::NoGradGuard no_grad;
    last->weight.zero_();
    last->bias.zero_();
  }
  return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::ReLU(), last);
}

}  // namespace

ScenarioLayerImpl::ScenarioLayerImpl(ScenarioLayerOptions opts) : options(std::move(opts)) {
  options.validate();
  reset();
}

void ScenarioLayerImpl::reset() {
  const auto& o = options;
  if (o.arch() == ScenarioArch::Star) {
    star_input =
        register_module("star_input", StarLinear(StarLinearOptions(o.in_dim(), o.in_dim(), o.num_scenarios())));
    star_tasks = register_module("star_tasks", torch::nn::ModuleList());
    for (int64_t t = 0; t < o.num_tasks(); ++t) {
      star_tasks->push_back(StarLinear(StarLinearOptions(o.task_dim(), o.task_dim(), o.num_scenarios())));
    }
  } else if (o.arch() == ScenarioArch::Pepnet) {
    scenario_embedding =
        register_module("scenario_embedding", torch::nn::Embedding(o.num_scenarios(), o.scenario_dim()));
    input_gate = register_module("input_gate", make_gate(o.scenario_dim() + o.in_dim(), o.gate_hidden(), o.in_dim()));
    task_gates = register_module("task_gates", torch::nn::ModuleList());
    for (int64_t t = 0; t < o.num_tasks(); ++t) {
      task_gates->push_back(make_gate(o.scenario_dim() + o.task_dim(), o.gate_hidden(), o.task_dim()));
    }
  }
}

namespace {

// v ⊙ 2·sigmoid(gate([E_s ; v])). The gate reads v without its gradient, as in PEPNet, so
// the gate does not learn to scale v through its own input.
at::Tensor pep_gate(torch::nn::SequentialImpl& gate, const at::Tensor& embedding, const at::Tensor& v) {
  return v * (2 * torch::sigmoid(gate.forward(at::cat({embedding, v.detach()}, 1))));
}

}  // namespace

at::Tensor ScenarioLayerImpl::forward(const at::Tensor& x, const at::Tensor& scenario) {
  MTREC_CHECK(x.dim() == 2 && x.size(1) == options.in_dim(), "ScenarioLayer: input must be [B, ", options.in_dim(),
              "], got ", x.sizes());
  switch (options.arch()) {
    case ScenarioArch::None:
      return x;
    case ScenarioArch::Star:
      return x + torch::relu(star_input(x, scenario));
    case ScenarioArch::Pepnet:
      return pep_gate(*input_gate, embed(scenario, x.size(0)), x);
  }
  return x;
}

at::Tensor ScenarioLayerImpl::task(int64_t t, const at::Tensor& h, const at::Tensor& scenario) {
  MTREC_CHECK(t >= 0 && t < options.num_tasks(), "ScenarioLayer: task ", t, " outside [0, ", options.num_tasks(), ")");
  MTREC_CHECK(h.dim() == 2 && h.size(1) == options.task_dim(), "ScenarioLayer: task input must be [B, ",
              options.task_dim(), "], got ", h.sizes());
  switch (options.arch()) {
    case ScenarioArch::None:
      return h;
    case ScenarioArch::Star:
      return h + torch::relu(star_tasks->ptr(t)->as<StarLinearImpl>()->forward(h, scenario));
    case ScenarioArch::Pepnet:
      return pep_gate(*task_gates->ptr(t)->as<torch::nn::SequentialImpl>(), embed(scenario, h.size(0)), h);
  }
  return h;
}

at::Tensor ScenarioLayerImpl::embed(const at::Tensor& scenario, int64_t rows) {
  check_scenario_shape("ScenarioLayer", scenario, rows);
  if (rows > 0) {
    // One host sync for both bounds; an out-of-range index would be a device-side assert on CUDA.
    at::Tensor bounds = at::stack({scenario.min(), scenario.max()}).cpu();
    const int64_t lo = bounds[0].item<int64_t>(), hi = bounds[1].item<int64_t>();
    check_scenario_id("ScenarioLayer", lo < 0 ? lo : hi, options.num_scenarios());
  }
  return scenario_embedding(scenario);
}

}  // namespace mtrec::nn
