#include "mtrec/nn/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"

namespace mtrec::nn {

namespace {

/// One 64-bit draw from LibTorch's default CPU generator (under its lock, as its samplers do).
uint64_t draw_seed() {
  auto* gen = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

}  // namespace

at::Tensor dropout_mask(const at::Tensor& like, double p) {
  MTREC_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  const uint32_t threshold = static_cast<uint32_t>(std::lround(p * 65536.0));  // drop when u16 < threshold
  if (!like.device().is_cpu() || threshold >= 65536) return at::empty_like(like).bernoulli_(1 - p).div_(1 - p);
  at::Tensor mask = at::empty(like.sizes(), like.options().memory_format(c10::MemoryFormat::Contiguous));
  const double keep_scale = 1.0 / (1.0 - threshold / 65536.0);
  const uint64_t seed = draw_seed();
  const int64_t n = mask.numel(), words = (n + 3) / 4;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "mtrec_dropout_mask", [&] {
    scalar_t* out = mask.data_ptr<scalar_t>();
    const scalar_t kept = static_cast<scalar_t>(keep_scale), dropped = static_cast<scalar_t>(0);
    // Word w of the stream is splitmix64(seed + w): the same mask on any number of threads.
    at::parallel_for(0, words, 16384, [&](int64_t begin, int64_t end) {
      auto one = [&](uint64_t r) { return (r & 0xFFFF) < threshold ? dropped : kept; };
      for (int64_t w = begin; w < end; ++w) {
        const uint64_t r = splitmix64(seed + static_cast<uint64_t>(w));
        scalar_t* o = out + 4 * w;
        if (4 * w + 4 <= n) {
          o[0] = one(r), o[1] = one(r >> 16), o[2] = one(r >> 32), o[3] = one(r >> 48);
        } else {
          for (int64_t j = 0; j < n - 4 * w; ++j) o[j] = one(r >> (16 * j));
        }
      }
    });
  });
  return mask;
}

at::Tensor apply_dropout(const at::Tensor& x, double p, bool training) {
  if (!training || p == 0) return x;
  if (!x.device().is_cpu()) return at::dropout(x, p, true);
  return x * dropout_mask(x, p);
}

DropoutImpl::DropoutImpl(double prob) : p(prob) {
  MTREC_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

}  // namespace mtrec::nn
