#pragma once
// Small private helpers shared by the task heads (not installed).
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mtrec {

/// int64 tensor of ids on `device`.
inline torch::Tensor ids_tensor(const std::vector<int32_t>& ids, const torch::Device& device) {
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).to(device);
}

inline std::vector<float> to_float_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
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
