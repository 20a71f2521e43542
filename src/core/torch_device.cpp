#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <thread>

#include "mtrec/core/allocator.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"

namespace mtrec {

bool cuda_available() { return torch::cuda::is_available(); }

int cuda_device_count() { return cuda_available() ? int(torch::cuda::device_count()) : 0; }

c10::Device choose_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") return cuda_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  MTREC_CHECK(spec.rfind("cuda", 0) == 0, "unknown device '", spec, "' (expected auto|cpu|cuda|cuda:N)");
  MTREC_CHECK(cuda_available(), "device '", spec, "' was asked for but CUDA is not available (this LibTorch build has ",
              torch::cuda::device_count(), " CUDA devices); use --device cpu");
  c10::Device device(spec);
  MTREC_CHECK(device.index() < static_cast<int>(torch::cuda::device_count()), "device '", spec,
              "' does not exist: ", torch::cuda::device_count(), " CUDA devices visible");
  return device;
}

namespace {

int usable_cores() {
  cpu_set_t set;
  const int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                             : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(n, 1);
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : 0;
}

// OpenBLAS (Debian's LibTorch takes its BLAS from libblas.so.3, OpenBLAS's pthread build) keeps
// a thread pool of its own, sized by OPENBLAS_NUM_THREADS or the core count. Found at run time,
// so nothing links against it.
using GetThreads = int (*)();
using SetThreads = void (*)(int);
GetThreads openblas_get() { return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }
SetThreads openblas_set() { return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
bool openblas_pool() {
  using GetParallel = int (*)();
  const auto parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  return parallel != nullptr && parallel() == 1;  // 0 sequential, 1 pthreads, 2 OpenMP (shares ATen's pool)
}

}  // namespace

int default_cpu_threads() {
  if (const int n = env_int("OMP_NUM_THREADS"); n > 0) return n;
  const int cores = usable_cores();
  // Two pools, ATen's OpenMP one and OpenBLAS's pthread one, that each take every core run
  // twice as many busy threads as there are cores (both spin while waiting for work): on 2
  // cores that made the steps 1.4-3x slower (docs/DEVELOPING.md, "CPU threads"). They share
  // the cores instead.
  return openblas_pool() ? std::max(1, cores / 2) : cores;
}

bool blas_has_own_pool() { return openblas_pool(); }

int blas_threads() {
  const GetThreads get = openblas_get();
  return get != nullptr ? get() : 0;
}

int spare_cpu_cores() {
  // Local data-parallel ranks (torchrun and --nproc set LOCAL_WORLD_SIZE) share the cores.
  const int cores = usable_cores() / std::max(1, env_int("LOCAL_WORLD_SIZE"));
  return std::max(0, cores - std::max(at::get_num_threads(), blas_threads()));
}

int set_cpu_threads(int n) {
  tune_allocator();
  if (n <= 0) n = default_cpu_threads();
  at::set_num_threads(n);
  const SetThreads set_blas = openblas_set();
  if (set_blas != nullptr && openblas_pool() && env_int("OPENBLAS_NUM_THREADS") <= 0) {
    set_blas(std::max(1, usable_cores() - at::get_num_threads()));  // the cores ATen's pool leaves
  }
  return at::get_num_threads();
}

namespace {
// The default holds for every program that loads libmtrec, whether or not it calls
// set_cpu_threads() (e.g. a bench that only sets threads when asked).
[[maybe_unused]] const int kThreadsAtLoad = set_cpu_threads(0);
}  // namespace

std::string describe_device(const c10::Device& device) { return device.str(); }

}  // namespace mtrec
