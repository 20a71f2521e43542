#pragma once
// Device choice: "auto" picks CUDA when LibTorch has it and a GPU is visible, else CPU;
// "cpu" and "cuda" (or "cuda:N") force one and fail clearly when CUDA is not there.
//   torch::Device dev = mtrec::choose_device(opts.device);
#include <c10/core/Device.h>

#include <string>

namespace mtrec {

c10::Device choose_device(const std::string& spec = "auto");
bool cuda_available();
/// Visible CUDA devices (0 without CUDA).
int cuda_device_count();
/// The intra-op CPU thread count used when none is given (set_cpu_threads(0), the CLI's
/// --threads 0, the benches): OMP_NUM_THREADS when set; else, when LibTorch's BLAS is OpenBLAS
/// with a thread pool of its own (Debian's LibTorch), half the usable cores (at least 1), the
/// other half going to OpenBLAS; else every usable core. Chosen by measurement: the table is in
/// docs/DEVELOPING.md ("CPU threads"). libmtrec applies it when it is loaded.
int default_cpu_threads();
/// Sets LibTorch's intra-op CPU threads (n <= 0: default_cpu_threads()) and OpenBLAS's own pool
/// to the cores left (at least 1; unless OPENBLAS_NUM_THREADS is set), so the two never run
/// more busy threads than there are cores. Also applies mtrec::tune_allocator(). Returns the
/// number of intra-op threads now in effect.
int set_cpu_threads(int n = 0);
/// OpenBLAS's thread count, or 0 when LibTorch's BLAS is not OpenBLAS.
int blas_threads();
/// True when LibTorch's BLAS is OpenBLAS's pthread build, which runs a thread pool of its own.
bool blas_has_own_pool();
/// Usable cores (divided among LOCAL_WORLD_SIZE local data-parallel ranks) that neither ATen's
/// intra-op threads nor OpenBLAS's pool keep busy (1 on 2 cores with the defaults: one thread
/// computes at a time): work a second thread may take.
int spare_cpu_cores();

/// "cpu" or "cuda:0 (NVIDIA H100 ...)" for logs and benchmark tables.
std::string describe_device(const c10::Device& device);

}  // namespace mtrec
