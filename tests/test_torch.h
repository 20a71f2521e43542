#pragma once
// Helpers for the LibTorch tests.
#include <ATen/Parallel.h>

namespace mtrec::test {

/// One intra-op thread for a scope: these tensors are tiny, and on a loaded machine OpenMP's
/// spinning workers make small ops many times slower. Restores the previous count.
struct OneThread {
  int saved = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved); }
};

}  // namespace mtrec::test
