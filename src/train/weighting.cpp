#include "mtrec/train/weighting.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mtrec/core/check.h"
#include "mtrec/train/optim.h"

namespace mtrec {

WeightingKind parse_weighting(const std::string& name) {
  if (name == "static") return WeightingKind::Static;
  if (name == "uncertainty") return WeightingKind::Uncertainty;
  if (name == "gradnorm") return WeightingKind::GradNorm;
  MTREC_CHECK(false, "unknown loss weighting '", name, "' (expected static|uncertainty|gradnorm)");
  return WeightingKind::Static;
}

std::string weighting_name(WeightingKind kind) {
  switch (kind) {
    case WeightingKind::Uncertainty:
      return "uncertainty";
    case WeightingKind::GradNorm:
      return "gradnorm";
    default:
      return "static";
  }
}

namespace {
const std::string kPrefix = "trainer/weighting/";
// GradNorm's weights are clamped at this fraction of their mean before the renormalisation:
// Adam's steps are about gradnorm_lr whatever the gradient, and would otherwise overshoot a
// small weight below zero.
constexpr double kGradNormFloor = 1e-4;
}  // namespace

LossWeighting::LossWeighting(std::vector<std::string> tasks, std::vector<double> weights, LossWeightingOptions options,
                             c10::Device device, std::vector<at::Tensor> shared)
    : kind_(parse_weighting(options.kind())),
      tasks_(std::move(tasks)),
      weights_(std::move(weights)),
      options_(std::move(options)),
      device_(device),
      shared_(std::move(shared)) {
  MTREC_CHECK(tasks_.size() == weights_.size(), "loss weighting: ", tasks_.size(), " tasks but ", weights_.size(),
              " weights");
  MTREC_CHECK(std::isfinite(options_.gradnorm_alpha()) && options_.gradnorm_alpha() >= 0,
              "loss weighting: gradnorm_alpha must be finite and >= 0, got ", options_.gradnorm_alpha());
  MTREC_CHECK(std::isfinite(options_.gradnorm_lr()) && options_.gradnorm_lr() > 0,
              "loss weighting: gradnorm_lr must be > 0, got ", options_.gradnorm_lr());
  for (size_t t = 0; t < tasks_.size(); ++t) {
    MTREC_CHECK(std::isfinite(weights_[t]) && weights_[t] >= 0, "loss weighting: weight of task '", tasks_[t],
                "' must be finite and >= 0, got ", weights_[t]);
    if (kind_ != WeightingKind::Static && !fixed(t)) {
      balanced_.push_back(t);
      balanced_sum_ += weights_[t];
    }
  }
  if (!learned()) return;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  std::vector<float> all(weights_.begin(), weights_.end()), bal;
  std::vector<int64_t> idx;
  for (size_t t : balanced_) bal.push_back(static_cast<float>(weights_[t])), idx.push_back(static_cast<int64_t>(t));
  static_all_ = torch::tensor(all, torch::kFloat).to(device_);
  balanced_static_ = torch::tensor(bal, torch::kFloat).to(device_);
  balanced_index_ = torch::tensor(idx, torch::kLong).to(device_);
  const int64_t n = static_cast<int64_t>(balanced_.size());
  // One [balanced, 1] table, so that the library's row-wise Adam (train/optim.h; every row is
  // touched each step, which makes it plain Adam) updates it and checkpoints its state.
  param_ = (kind_ == WeightingKind::Uncertainty ? torch::zeros({n, 1}, f32) : balanced_static_.view({n, 1}).clone())
               .set_requires_grad(true);
  const double lr = kind_ == WeightingKind::GradNorm ? options_.gradnorm_lr() : 1e-3;  // uncertainty: step(lr)
  adam_ = std::make_unique<SparseRowOptimizer>(std::vector<at::Tensor>{param_}, SparseRowOptions().kind("adam").lr(lr));
  if (kind_ == WeightingKind::GradNorm) {
    initial_loss_.assign(balanced_.size(), std::numeric_limits<double>::quiet_NaN());
    MTREC_CHECK(!shared_.empty() || balanced_.size() < 2,
                "loss weighting: gradnorm needs the shared parameters whose gradient norms it balances");
    for (const auto& p : shared_)
      MTREC_CHECK(p.defined() && p.requires_grad(), "loss weighting: gradnorm's shared parameters must require grad");
  }
}

LossWeighting::~LossWeighting() = default;

bool LossWeighting::fixed(size_t t) const {
  const auto& f = options_.fixed_tasks();
  return weights_.at(t) == 0 || std::find(f.begin(), f.end(), tasks_.at(t)) != f.end();
}

at::Tensor LossWeighting::joint_loss(const std::vector<at::Tensor>& losses) {
  MTREC_CHECK(losses.size() == tasks_.size(), "loss weighting: ", losses.size(), " losses for ", tasks_.size(),
              " tasks");
  at::Tensor total;
  auto add = [&total](const at::Tensor& term) { total = total.defined() ? total + term : term; };
  if (!learned()) {  // the static rule, exactly as the trainer always computed it
    for (size_t t = 0; t < tasks_.size(); ++t) add(weights_[t] == 1.0 ? losses[t] : losses[t] * weights_[t]);
    return total;
  }
  for (size_t t = 0; t < tasks_.size(); ++t)
    if (fixed(t)) add(weights_[t] == 1.0 ? losses[t] : losses[t] * weights_[t]);
  std::vector<at::Tensor> balanced;
  for (size_t t : balanced_) balanced.push_back(losses[t]);
  const at::Tensor l = torch::stack(balanced);
  const at::Tensor p = param_.view(-1);
  at::Tensor m;
  if (kind_ == WeightingKind::Uncertainty) {
    m = (-p).exp().mul(0.5).mul(balanced_static_);  // ½·w_t·exp(-s_t), differentiable in s_t
    add((m * l).sum() + p.sum() * 0.5);
  } else {
    m = p.detach();
    if (balanced_.size() >= 2) {
      // n_t = ||∇_W L_t||: the graph is kept for the model's backward; W only, so the walk stops there.
      std::vector<at::Tensor> norms;
      for (const at::Tensor& lt : balanced) {
        at::Tensor sq;
        if (lt.requires_grad()) {
          auto grads = torch::autograd::grad({lt}, shared_, {}, /*retain_graph=*/true, /*create_graph=*/false,
                                             /*allow_unused=*/true);
          for (const auto& g : grads) {
            if (!g.defined()) continue;
            auto s = (g.is_sparse() ? g.coalesce()._values() : g).pow(2).sum();
            sq = sq.defined() ? sq + s : s;
          }
        }
        norms.push_back(sq.defined() ? sq.sqrt().to(torch::kFloat) : torch::zeros({}, m.options()));
      }
      last_norms_ = torch::stack(norms);
    }
    add((m * l).sum());
  }
  last_multipliers_ = static_all_.index_copy(0, balanced_index_, m.detach());
  return total;
}

void LossWeighting::backward(const std::vector<double>& losses, double scale) {
  if (kind_ != WeightingKind::GradNorm || balanced_.size() < 2 || !last_norms_.defined()) return;
  MTREC_CHECK(losses.size() == tasks_.size(), "loss weighting: ", losses.size(), " losses for ", tasks_.size(),
              " tasks");
  const size_t n = balanced_.size();
  std::vector<double> ratio(n, 0.0);
  std::vector<float> present(n, 0.f), r_alpha(n, 0.f);
  double count = 0, sum = 0;
  // A task whose loss does not reach the shared layer (norm 0: e.g. a retrieval tower beside the
  // experts) has nothing to balance; counting it would pull mean(G) down and starve the others.
  const at::Tensor norms = last_norms_.detach().to(torch::kDouble).cpu();
  for (size_t k = 0; k < n; ++k) {
    const double l = losses[balanced_[k]];
    if (!(std::isfinite(l) && l > 0)) continue;  // no labels for the task in this batch
    if (!(norms[int64_t(k)].item<double>() > 0)) continue;
    if (std::isnan(initial_loss_[k])) initial_loss_[k] = l;
    ratio[k] = l / initial_loss_[k];  // L̃_t
    present[k] = 1.f;
    count += 1;
    sum += ratio[k];
  }
  if (count < 2 || !(sum > 0)) return;
  const double mean = sum / count;
  for (size_t k = 0; k < n; ++k)
    if (present[k] > 0) r_alpha[k] = static_cast<float>(std::pow(ratio[k] / mean, options_.gradnorm_alpha()));
  torch::NoGradGuard no_grad;
  const at::Tensor pres = torch::tensor(present, torch::kFloat).to(device_);
  const at::Tensor ra = torch::tensor(r_alpha, torch::kFloat).to(device_);
  const at::Tensor g_t = param_.detach().view(-1) * last_norms_;    // G_t = w_t·n_t
  const at::Tensor target = (g_t * pres).sum().div(count).mul(ra);  // mean(G)·r_t^α, a constant
  at::Tensor grad = ((g_t - target).sign() * last_norms_ * pres).mul(scale).view({-1, 1});  // ∂L_grad/∂w_t
  auto& acc = param_.mutable_grad();
  acc = acc.defined() ? acc + grad : grad;
}

void LossWeighting::step(double lr) {
  if (!learned()) return;
  if (kind_ == WeightingKind::Uncertainty) {
    adam_->step(lr);
    return;
  }
  adam_->step(options_.gradnorm_lr());
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(balanced_.size());
  param_.clamp_min_(kGradNormFloor * balanced_sum_ / n);
  const at::Tensor sum = param_.sum();
  param_.mul_(balanced_sum_).div_(sum);  // Σ w_t = Σ static weights
}

void LossWeighting::zero_grad() {
  if (adam_) adam_->zero_grad();
}

std::map<std::string, double> LossWeighting::weights() const {
  std::map<std::string, double> out;
  if (!learned()) {
    for (size_t t = 0; t < tasks_.size(); ++t) out[tasks_[t]] = weights_[t];
    return out;
  }
  torch::NoGradGuard no_grad;
  const at::Tensor p = param_.detach().view(-1);
  const at::Tensor m = kind_ == WeightingKind::Uncertainty ? (-p).exp().mul(0.5).mul(balanced_static_) : p;
  const at::Tensor all = static_all_.index_copy(0, balanced_index_, m).to(torch::kCPU, torch::kDouble);
  for (size_t t = 0; t < tasks_.size(); ++t)  // a fixed weight exactly, not through float
    out[tasks_[t]] = fixed(t) ? weights_[t] : all[static_cast<int64_t>(t)].item<double>();
  return out;
}

std::map<std::string, double> LossWeighting::log_variances() const {
  std::map<std::string, double> out;
  if (kind_ != WeightingKind::Uncertainty || !learned()) return out;
  const at::Tensor p = param_.detach().view(-1).to(torch::kCPU, torch::kDouble);
  for (size_t k = 0; k < balanced_.size(); ++k) out[tasks_[balanced_[k]]] = p[static_cast<int64_t>(k)].item<double>();
  return out;
}

std::map<std::string, double> LossWeighting::last_grad_norms() const {
  std::map<std::string, double> out;
  if (kind_ != WeightingKind::GradNorm || !last_norms_.defined()) return out;
  const at::Tensor g =
      (last_multipliers_.index_select(0, balanced_index_) * last_norms_).to(torch::kCPU, torch::kDouble);
  for (size_t k = 0; k < balanced_.size(); ++k) out[tasks_[balanced_[k]]] = g[static_cast<int64_t>(k)].item<double>();
  return out;
}

void LossWeighting::save_state(Checkpoint& ck) const {
  if (!learned()) return;
  nlohmann::json names = nlohmann::json::array();
  for (size_t t : balanced_) names.push_back(tasks_[t]);
  ck.tensors.emplace_back(kPrefix + "tasks", bytes_to_tensor(names.dump()));
  ck.tensors.emplace_back(kPrefix + (kind_ == WeightingKind::Uncertainty ? "log_variance" : "weight"),
                          param_.detach().clone());
  for (const auto& [name, t] : adam_->state()) ck.tensors.emplace_back(kPrefix + "optimizer/" + name, t.clone());
  if (kind_ == WeightingKind::GradNorm)
    ck.tensors.emplace_back(kPrefix + "initial_loss", torch::tensor(initial_loss_, torch::kDouble));
}

void LossWeighting::load_state(const Checkpoint& ck) {
  if (!learned()) return;
  nlohmann::json names = nlohmann::json::array();
  for (size_t t : balanced_) names.push_back(tasks_[t]);
  const std::string saved = tensor_to_bytes(ck.tensor(kPrefix + "tasks"));
  MTREC_CHECK(nlohmann::json::parse(saved) == names, "checkpoint '", ck.path, "': its ", weighting_name(kind_),
              " weighting balances tasks ", saved, ", this run balances ", names.dump());
  const std::string pname = kPrefix + (kind_ == WeightingKind::Uncertainty ? "log_variance" : "weight");
  const at::Tensor& p = ck.tensor(pname);
  MTREC_CHECK(p.sizes() == param_.sizes(), "checkpoint '", ck.path, "': '", pname, "' has shape ", p.sizes(),
              ", expected ", param_.sizes());
  torch::NoGradGuard no_grad;
  param_.copy_(p.to(param_.device(), param_.scalar_type()));
  std::vector<std::pair<std::string, at::Tensor>> st;
  const std::string opt_prefix = kPrefix + "optimizer/";
  for (const auto& [name, t] : ck.tensors)
    if (name.rfind(opt_prefix, 0) == 0) st.emplace_back(name.substr(opt_prefix.size()), t);
  adam_->load_state(st);
  if (kind_ == WeightingKind::GradNorm) {
    const at::Tensor l = ck.tensor(kPrefix + "initial_loss").to(torch::kCPU, torch::kDouble).contiguous();
    MTREC_CHECK(l.numel() == static_cast<int64_t>(initial_loss_.size()), "checkpoint '", ck.path,
                "': GradNorm's initial losses have ", l.numel(), " entries, expected ", initial_loss_.size());
    std::copy(l.data_ptr<double>(), l.data_ptr<double>() + l.numel(), initial_loss_.begin());
  }
  last_norms_ = at::Tensor();
  last_multipliers_ = at::Tensor();
}

std::vector<at::Tensor> LossWeighting::parameters() const {
  if (!learned() || !param_.defined()) return {};
  return {param_};
}

}  // namespace mtrec
