#pragma once
// Device choice: "auto" picks CUDA when LibTorch has it and a GPU is visible, else CPU;
// "cpu" and "cuda" (or "cuda:N") force one and fail clearly when CUDA is not there.
//   torch::Device dev = mtrec::choose_device(opts.device);
#include <c10/core/Device.h>

#include <string>

namespace mtrec {

c10::Device choose_device(const std::string& spec = "auto");
bool cuda_available();
/// Sets LibTorch's intra-op CPU threads; n <= 0 means every core the process may use, unless
/// OMP_NUM_THREADS is set. (LibTorch 1.13 defaults to its count of physical cores, which some
/// virtual machines report as 1.) Returns the number now in effect.
int set_cpu_threads(int n = 0);

/// "cpu" or "cuda:0 (NVIDIA H100 ...)" for logs and benchmark tables.
std::string describe_device(const c10::Device& device);

}  // namespace mtrec
