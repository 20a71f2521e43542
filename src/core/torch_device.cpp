#include <torch/cuda.h>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"

namespace mtrec {

bool cuda_available() { return torch::cuda::is_available(); }

c10::Device choose_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") return cuda_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  MTREC_CHECK(spec.rfind("cuda", 0) == 0, "unknown device '", spec, "' (expected auto|cpu|cuda|cuda:N)");
  MTREC_CHECK(cuda_available(), "device '", spec,
              "' was asked for but CUDA is not available (this LibTorch build has ",
              torch::cuda::device_count(), " CUDA devices); use --device cpu");
  c10::Device device(spec);
  MTREC_CHECK(device.index() < static_cast<int>(torch::cuda::device_count()), "device '", spec, "' does not exist: ",
              torch::cuda::device_count(), " CUDA devices visible");
  return device;
}

std::string describe_device(const c10::Device& device) { return device.str(); }

}  // namespace mtrec
