#include "mtrec/tasks/task.h"

#include <torch/torch.h>

#include "mtrec/core/check.h"

namespace mtrec {

at::Tensor masked_mean(const at::Tensor& values, const at::Tensor& mask) {
  if (!mask.defined()) return values.mean();
  MTREC_CHECK(mask.sizes() == values.sizes(), "masked_mean: mask shape ", mask.sizes(), " differs from values ",
              values.sizes());
  auto m = mask.to(values.scalar_type());
  // Where no example carries the label the sum is 0 (still differentiable), not 0/0.
  return (values * m).sum() / m.sum().clamp_min(1);
}

}  // namespace mtrec
