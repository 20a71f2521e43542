#include "mtrec/core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mtrec {
namespace {

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

// The user's own glibc malloc settings win over ours.
const char* user_malloc_setting() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"}) {
    if (std::getenv(name) != nullptr) return name;
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return "GLIBC_TUNABLES";
  return nullptr;
}

AllocatorTuning apply() {
  AllocatorTuning t;
  t.reason = allocator_tuning_opt_out();
  if (!t.reason.empty()) return t;
#if defined(__GLIBC__)
  // Trim first: setting the mmap threshold by hand also freezes glibc's dynamic threshold.
  if (mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTunedTrimThreshold)) != 1) {
    t.reason = "mallopt(M_TRIM_THRESHOLD) refused";
    return t;
  }
  size_t mmap = kTunedMmapThreshold;
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap)) != 1) {
    mmap = kFallbackMmapThreshold;
    if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap)) != 1) {
      t.reason = "mallopt(M_MMAP_THRESHOLD) refused";
      return t;
    }
  }
  t.applied = true;
  t.mmap_threshold = mmap;
  t.trim_threshold = kTunedTrimThreshold;
#else
  t.reason = "not glibc";
#endif
  return t;
}

}  // namespace

std::string allocator_tuning_opt_out() {
  if (env_is("MTREC_MALLOC_TUNE", "0")) return "MTREC_MALLOC_TUNE=0";
  if (const char* name = user_malloc_setting())
    return std::string(name) + " is set (the user's malloc settings are kept)";
  return "";
}

AllocatorTuning tune_allocator() {
  static std::once_flag once;
  static AllocatorTuning result;
  std::call_once(once, [] { result = apply(); });
  return result;
}

namespace {
// Every program that loads libmtrec is tuned before its main() runs (shared library: this object
// is always part of it; static library: set_cpu_threads() calls tune_allocator() too).
[[maybe_unused]] const bool kTunedAtLoad = (tune_allocator(), true);
}  // namespace

}  // namespace mtrec
