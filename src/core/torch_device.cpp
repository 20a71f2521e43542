#include <ATen/Parallel.h>
#include <sched.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <thread>

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

int set_cpu_threads(int n) {
  if (n <= 0) {
    if (std::getenv("OMP_NUM_THREADS") != nullptr) return at::get_num_threads();
    cpu_set_t set;
    n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                     : static_cast<int>(std::thread::hardware_concurrency());
    n = std::max(n, 1);
  }
  at::set_num_threads(n);
  return at::get_num_threads();
}

std::string describe_device(const c10::Device& device) { return device.str(); }

}  // namespace mtrec
