#pragma once
// Internal: a small dynamic-scheduling parallel loop over std::thread. Work items are claimed
// in chunks from an atomic counter; the first exception stops the loop and is rethrown in the
// caller once every thread has joined. Callers keep results per index, so sums reduced in index
// order afterwards do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace mtrec::detail {

/// `requested` threads (0: hardware concurrency), at most one per work item, at least one.
inline int resolve_threads(int requested, size_t work) {
  int t = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(std::max(t, 1), work)));
}

/// Calls fn(i) -- or fn(i, worker) with worker in [0, threads), for per-thread scratch space --
/// for every i in [0, n) on `threads` threads, `chunk` indices at a time.
template <class F>
void parallel_for(size_t n, int threads, size_t chunk, F&& fn) {
  if (n == 0) return;
  threads = resolve_threads(threads, (n + chunk - 1) / chunk);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto worker = [&](int id) {
    for (size_t begin; (begin = next.fetch_add(chunk)) < n;) {
      try {
        for (size_t i = begin, end = std::min(n, begin + chunk); i < end; ++i) {
          if constexpr (std::is_invocable_v<F&, size_t, int>) {
            fn(i, id);
          } else {
            fn(i);
          }
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = n;  // the other workers stop at their next claim
      }
    }
  };
  if (threads == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
    for (auto& th : pool) th.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mtrec::detail
