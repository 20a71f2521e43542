#pragma once
// One place that seeds every random generator. seed_everything(s) seeds LibTorch (CPU and
// CUDA) and sets the base seed from which each component derives its own independent stream:
//   mtrec::seed_everything(42);
//   auto rng = mtrec::make_rng("negative-sampler");   // same sequence for the same seed
// Components that take an explicit seed use Rng(derive_seed(seed, "name")) instead.
#include <cstdint>
#include <functional>
#include <random>
#include <string_view>

namespace mtrec {

using Rng = std::mt19937_64;

/// Seeds LibTorch's generators and the base seed used by make_rng().
void seed_everything(uint64_t seed);
/// The base seed last given to seed_everything() (default 42).
uint64_t global_seed();
/// A seed for the named stream, derived from `seed` (splitmix64 of seed ^ hash(stream)).
uint64_t derive_seed(uint64_t seed, std::string_view stream);
/// The splitmix64 finaliser: well-mixed 64 bits from any input. Independent streams for the
/// n-th work item, whatever thread runs it: Rng(splitmix64(base + n)). Inline: dropout masks
/// draw one per four elements.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
/// A generator for the named stream of the global seed.
Rng make_rng(std::string_view stream);
/// Runs `fn`, then puts LibTorch's default CPU generator back where it was: a module built
/// from its options (its initial draws) must not move a run's random stream.
void keeping_cpu_generator(const std::function<void()>& fn);

}  // namespace mtrec
