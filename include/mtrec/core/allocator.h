#pragma once
// glibc malloc tuning for training loops. LibTorch's CPU allocator is plain malloc/free: every
// step frees and re-allocates the same multi-megabyte activation and gradient buffers. With
// glibc's defaults those above the (dynamic) mmap threshold are mmapped and unmapped each time,
// and free memory at the top of the heap is returned to the OS past 128 KiB, so each step pays
// for fresh zeroed pages with page faults (system time). tune_allocator() keeps that memory in
// the process instead:
//   mtrec::AllocatorTuning t = mtrec::tune_allocator();   // idempotent; the library calls it
//   if (!t.applied) mtrec::log_info("malloc not tuned: {}", t.reason);
//
// libmtrec calls it from a static initialiser when it is loaded (and again, a no-op, from
// set_cpu_threads()), so every program linking it gets it. It does nothing when
//   - MTREC_MALLOC_TUNE=0 (opt out, e.g. to measure the difference: bench/bench_allocator),
//   - the user set glibc's own knobs (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
//     MALLOC_TOP_PAD_, MALLOC_MMAP_MAX_, or glibc.malloc.* in GLIBC_TUNABLES): theirs win,
//   - the C library is not glibc.
// The cost is memory: up to trim_threshold bytes of freed heap stay mapped (counted in RSS),
// and buffers up to mmap_threshold come from the heap. See docs/DEVELOPING.md for the numbers.
#include <cstddef>
#include <string>

namespace mtrec {

struct AllocatorTuning {
  bool applied = false;       // mallopt was called (now or by an earlier call) and succeeded
  std::string reason;         // why not, when !applied
  size_t mmap_threshold = 0;  // bytes; allocations at least this large are mmapped
  size_t trim_threshold = 0;  // bytes of free heap top kept before returning memory to the OS
};

/// The mmap threshold asked for. glibc before 2.26 refuses one above HEAP_MAX_SIZE / 2
/// (32 MiB on 64-bit); there kFallbackMmapThreshold is used.
constexpr size_t kTunedMmapThreshold = size_t{256} << 20;
constexpr size_t kFallbackMmapThreshold = size_t{32} << 20;
constexpr size_t kTunedTrimThreshold = size_t{1} << 30;  // 1 GiB

/// Why the environment forbids tuning (MTREC_MALLOC_TUNE=0, the user's own MALLOC_* settings),
/// or "" when it does not. Read afresh on every call.
std::string allocator_tuning_opt_out();

/// Sets M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (once per process; later calls return the first
/// result). Thread-safe.
AllocatorTuning tune_allocator();

}  // namespace mtrec
