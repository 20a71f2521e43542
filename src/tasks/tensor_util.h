#pragma once
// Small private helpers shared by the task heads (not installed).
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"

namespace mtrec {

/// int64 tensor of ids on `device`.
inline torch::Tensor ids_tensor(const std::vector<int32_t>& ids, const torch::Device& device) {
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).to(device);
}

inline std::vector<float> to_float_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

/// A seeded permutation of 0..n-1 (drawn on the CPU, so identical on every device).
inline torch::Tensor shuffled_indices(int64_t n, Rng& rng, const torch::Device& device) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), rng);
  return torch::tensor(p, torch::kLong).to(device);
}

/// Eight spread-out inputs {user, item[, scenario]} for a checkpoint's golden pairs.
inline std::vector<std::vector<int64_t>> golden_inputs(int64_t users, int64_t items, int64_t scenarios) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t k = 0; k < 8; ++k) {
    std::vector<int64_t> x = {(k * 7919) % users, (k * 104729 + 3) % items};
    if (scenarios > 0) x.push_back(k % scenarios);
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace mtrec

#include "mtrec/nn/checkpoint.h"

namespace mtrec {

/// Early-stopping bookkeeping shared by the heads: keeps a copy of the parameters of the epoch
/// with the best validation score (higher is better) and counts epochs without improvement.
class BestEpoch {
 public:
  /// Records epoch `epoch`'s score; returns false once `patience` epochs passed without a gain.
  bool update(double score, const torch::nn::Module& m, int epoch, int patience, double min_delta = 1e-5) {
    if (state_.empty() || score > best_ + min_delta) {
      best_ = score;
      best_epoch_ = epoch;
      since_ = 0;
      state_.clear();
      for (auto& [name, t] : module_state(m)) state_.emplace_back(name, t.clone());
      return true;
    }
    return ++since_ < patience;
  }
  /// Loads the best epoch's parameters into `m` (no-op when nothing was recorded).
  void restore(torch::nn::Module& m) const {
    if (state_.empty()) return;
    Checkpoint tmp;
    tmp.tensors = state_;
    load_module_state(m, tmp);
  }
  bool empty() const { return state_.empty(); }
  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }

 private:
  double best_ = 0;
  int best_epoch_ = 0, since_ = 0;
  std::vector<std::pair<std::string, at::Tensor>> state_;
};

}  // namespace mtrec

namespace mtrec {

/// One epoch of minibatch descent over a seeded permutation of n examples: `loss_of(idx)`
/// returns the loss of the batch whose example indices are idx. Returns the mean batch loss.
template <typename LossOf>
double train_epoch(int64_t n, int64_t batch_size, Rng& rng, const torch::Device& device, torch::optim::Optimizer& opt,
                   const std::string& label, bool progress, LossOf&& loss_of) {
  auto perm = shuffled_indices(n, rng, device);
  const int64_t batches = (n + batch_size - 1) / batch_size;
  ProgressBar bar(batches, label);
  double sum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto loss = loss_of(perm.slice(0, b * batch_size, std::min(n, (b + 1) * batch_size)));
    opt.zero_grad();
    loss.backward();
    opt.step();
    sum += loss.template item<double>();
    if (progress) bar.tick();
  }
  bar.finish();
  return sum / static_cast<double>(batches);
}

}  // namespace mtrec
