#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <atomic>
#include <mutex>

#include "mtrec/core/random.h"

namespace mtrec {
namespace {
std::atomic<uint64_t> g_seed{42};
}  // namespace

void seed_everything(uint64_t seed) {
  g_seed.store(seed);
  at::manual_seed(seed);  // CPU and, where present, every CUDA device
  std::srand(static_cast<unsigned>(seed));
}

uint64_t global_seed() { return g_seed.load(); }

uint64_t derive_seed(uint64_t seed, std::string_view stream) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across platforms, unlike std::hash
  for (unsigned char c : stream) h = (h ^ c) * 1099511628211ull;
  return splitmix64(seed ^ splitmix64(h));
}

Rng make_rng(std::string_view stream) { return Rng(derive_seed(global_seed(), stream)); }

void keeping_cpu_generator(const std::function<void()>& fn) {
  struct Restore {  // also when fn throws
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    Restore() {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    ~Restore() {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
  } restore;
  fn();
}

}  // namespace mtrec
