#include "mtrec/train/optim.h"

#include <torch/torch.h>

#include <cmath>

#include "mtrec/core/check.h"

namespace mtrec {

SparseRowOptimizer::SparseRowOptimizer(std::vector<at::Tensor> params, SparseRowOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
  const auto& k = options_.kind();
  MTREC_CHECK(k == "sgd" || k == "adagrad" || k == "adam", "unknown sparse optimiser '", k,
              "' (expected sgd|adagrad|adam)");
  for (const auto& p : params_) {
    MTREC_CHECK(p.dim() == 2, "sparse row optimiser: parameters must be 2-D tables, got shape ", p.sizes());
    if (k == "adagrad") {
      acc1_.push_back(torch::full({p.size(0)}, options_.initial_accumulator(), p.options()));
    } else if (k == "adam") {
      acc1_.push_back(torch::zeros_like(p));
      acc2_.push_back(torch::zeros_like(p));
    }
  }
}

void SparseRowOptimizer::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

void SparseRowOptimizer::step(double lr) {
  if (lr < 0) lr = options_.lr();
  torch::NoGradGuard no_grad;
  ++steps_;
  const auto& k = options_.kind();
  for (size_t t = 0; t < params_.size(); ++t) {
    auto& p = params_[t];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor idx, val;
    if (g.is_sparse()) {
      if (k == "sgd") {  // duplicates add up in index_add_, exactly as in the dense gradient
        idx = g._indices().select(0, 0);
        val = g._values();
      } else {
        auto c = g.coalesce();
        idx = c._indices().select(0, 0);
        val = c._values();
      }
    } else {
      idx = torch::arange(p.size(0), torch::TensorOptions().dtype(torch::kLong).device(p.device()));
      val = g;
    }
    if (idx.numel() == 0) continue;
    // index_put_ with accumulate rather than index_add_: LibTorch 1.13's CPU index_add_ on a
    // 2-D table loops over the indices with one tensor op each (0.1 ms a table for 1024 rows).
    const c10::List<c10::optional<at::Tensor>> at_rows({idx});
    if (k == "sgd") {
      // The gradient is dropped after the step, so its values are scaled in place.
      p.index_put_(at_rows, g.is_sparse() ? val.mul_(-lr) : val * -lr, /*accumulate=*/true);
    } else if (k == "adagrad") {
      auto& acc = acc1_[t];
      acc.index_put_(at_rows, val.pow(2).mean(1), true);
      auto denom = acc.index_select(0, idx).sqrt_().add_(options_.eps()).unsqueeze(1);
      p.index_put_(at_rows, val / denom * -lr, true);
    } else {  // lazy Adam: moments and update of the touched rows only
      const double b1 = options_.beta1(), b2 = options_.beta2();
      auto m = acc1_[t].index_select(0, idx).mul_(b1).add_(val, 1 - b1);
      auto v = acc2_[t].index_select(0, idx).mul_(b2).addcmul_(val, val, 1 - b2);
      acc1_[t].index_copy_(0, idx, m);
      acc2_[t].index_copy_(0, idx, v);
      const double bc1 = 1 - std::pow(b1, static_cast<double>(steps_));
      const double bc2 = 1 - std::pow(b2, static_cast<double>(steps_));
      auto upd = (m / bc1) / (v / bc2).sqrt_().add_(options_.eps());
      p.index_put_(at_rows, upd * -lr, true);
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> SparseRowOptimizer::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back("steps", torch::tensor({steps_}, torch::kLong));
  for (size_t t = 0; t < acc1_.size(); ++t) out.emplace_back("acc1/" + std::to_string(t), acc1_[t]);
  for (size_t t = 0; t < acc2_.size(); ++t) out.emplace_back("acc2/" + std::to_string(t), acc2_[t]);
  return out;
}

void SparseRowOptimizer::load_state(const std::vector<std::pair<std::string, at::Tensor>>& state) {
  torch::NoGradGuard no_grad;
  size_t matched = 0;
  for (const auto& [name, t] : state) {
    if (name == "steps") {
      steps_ = t.item<int64_t>();
      ++matched;
      continue;
    }
    auto slash = name.find('/');
    MTREC_CHECK(slash != std::string::npos, "sparse optimiser state: unexpected entry '", name, "'");
    auto& accs = name.substr(0, slash) == "acc1" ? acc1_ : acc2_;
    size_t i = std::stoul(name.substr(slash + 1));
    MTREC_CHECK(i < accs.size() && accs[i].sizes() == t.sizes(), "sparse optimiser state '", name, "' has shape ",
                t.sizes(), ", which does not match this optimiser (", accs.size(), " tables)");
    accs[i].copy_(t.to(accs[i].device()));
    ++matched;
  }
  MTREC_CHECK(matched == 1 + acc1_.size() + acc2_.size(), "sparse optimiser state has ", matched,
              " matching entries, expected ", 1 + acc1_.size() + acc2_.size(), " (kind ", options_.kind(), ")");
}

double scheduled_lr(const std::string& schedule, double lr, int64_t step, int64_t total_steps, int64_t warmup,
                    double min_ratio, double decay, int epoch) {
  if (warmup > 0 && step < warmup) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
  const double t = std::min(1.0, static_cast<double>(step - warmup) / span);
  const double floor = lr * min_ratio;
  if (schedule == "constant") return lr;
  if (schedule == "cosine") return floor + (lr - floor) * 0.5 * (1 + std::cos(M_PI * t));
  if (schedule == "linear") return floor + (lr - floor) * (1 - t);
  if (schedule == "exponential") return lr * std::pow(decay, epoch);
  MTREC_CHECK(false, "unknown learning-rate schedule '", schedule, "' (expected constant|cosine|linear|exponential)");
  return lr;
}

double gradient_norm(const std::vector<at::Tensor>& params) {
  // Each tensor's norm without a squared copy, summed in double, and one read of the total
  // (one read per parameter cost a host sync each on CUDA).
  std::vector<at::Tensor> norms;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const at::Tensor v = g.is_sparse() ? g.coalesce()._values() : g;
    norms.push_back(v.norm().to(at::kDouble).reshape({1}));
  }
  if (norms.empty()) return 0.0;
  return std::sqrt(torch::cat(norms).pow(2).sum().item<double>());
}

void scale_gradients(const std::vector<at::Tensor>& params, double factor) {
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    auto& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (g.is_sparse())
      g = g * factor;
    else
      g.mul_(factor);  // in place: a new tensor for each of 12M values cost more than the scaling
  }
}

}  // namespace mtrec
