#pragma once
// A progress bar for long loops: count, rate and ETA on one line of stderr, redrawn at most
// ten times a second. It stays silent when stderr is not a terminal (CI logs, pipes) or when
// the log level is above info, and a bar that is never ticked prints nothing at all (a loop
// whose progress option is false constructs one and simply does not tick it).
//   mtrec::ProgressBar bar(num_batches, "epoch 3");
//   for (...) { ...; bar.tick(); }
//   bar.finish();
#include <chrono>
#include <cstdint>
#include <string>

namespace mtrec {

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label, bool force_enabled = false);
  ~ProgressBar();
  void tick(int64_t n = 1);
  /// Extra text shown after the counts, e.g. "loss 0.412".
  void set_postfix(std::string text);
  void finish();
  bool enabled() const { return enabled_; }
  int64_t count() const { return count_; }
  /// Items per second since construction.
  double rate() const;
  /// Renders the current line (exposed for tests); width-independent.
  std::string render() const;

 private:
  int64_t total_;
  int64_t count_ = 0;
  std::string label_, postfix_;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mtrec
