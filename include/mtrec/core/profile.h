#pragma once
// Wall-time accounting of named phases: where a training step's time goes (bench/bench_joint).
// Off by default, when a scope costs one relaxed atomic load. Scopes nest into paths per thread
// ("step/forward/text encoder"); a phase's total includes its nested phases.
//
//   mtrec::Profile::enable(true);
//   { MTREC_PROFILE("text encoder"); encode(); }
//   for (const auto& [path, t] : mtrec::Profile::totals()) fmt::print("{} {:.1f} ms\n", path, 1e3 * t.seconds);
//
// Backward time can be charged to the forward phase that built the graph: train/profile.h.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace mtrec {

struct PhaseTotal {
  double seconds = 0;
  int64_t calls = 0;
};

class Profile {
 public:
  static void enable(bool on);
  static bool enabled();
  /// Clears every total.
  static void reset();
  /// Per path, the summed wall time and calls since reset().
  static std::map<std::string, PhaseTotal> totals();
  static void add(const std::string& path, double seconds);
  /// The calling thread's current path ("" outside every scope).
  static const std::string& current_path();
  /// Called before each reading of the clock while enabled, e.g. a device synchronisation so that
  /// asynchronous work is charged to the phase that launched it (null: none).
  static void set_sync(void (*sync)());
  static void sync();
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  bool active_ = false;
  size_t parent_length_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace mtrec

#define MTREC_PROFILE_CONCAT2(a, b) a##b
#define MTREC_PROFILE_CONCAT(a, b) MTREC_PROFILE_CONCAT2(a, b)
/// Charges the rest of the enclosing block to phase `name` (a string literal).
#define MTREC_PROFILE(name) ::mtrec::ProfileScope MTREC_PROFILE_CONCAT(mtrec_profile_scope_, __LINE__)(name)
