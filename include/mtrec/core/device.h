#pragma once
// Device choice: "auto" picks CUDA when LibTorch has it and a GPU is visible, else CPU;
// "cpu" and "cuda" (or "cuda:N") force one and fail clearly when CUDA is not there.
//   torch::Device dev = mtrec::choose_device(opts.device);
#include <c10/core/Device.h>

#include <string>

namespace mtrec {

c10::Device choose_device(const std::string& spec = "auto");
bool cuda_available();
/// "cpu" or "cuda:0 (NVIDIA H100 ...)" for logs and benchmark tables.
std::string describe_device(const c10::Device& device);

}  // namespace mtrec
