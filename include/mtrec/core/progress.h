#pragma once
// A progress bar for long loops. On a terminal: count, rate and ETA on one line of stderr,
// redrawn at most ten times a second. Off a terminal (a run logging to a file, CI): one plain
// log line every progress_interval() seconds, so a long epoch still shows it is alive, e.g.
//   [  95.20s info ] epoch 1/20: 1200/5000 batches (24%), 14.2 batches/s, ETA 4m28s, loss 0.4120
// Nothing is printed when the log level is above info, and a bar that is never ticked prints
// nothing at all (a loop whose progress option is false constructs one and simply does not tick it).
//   mtrec::ProgressBar bar(num_batches, "epoch 3");
//   for (...) { ...; bar.tick(); }
//   bar.finish();
#include <chrono>
#include <cstdint>
#include <string>

namespace mtrec {

/// Seconds between the log lines of a ticked bar when stderr is not a terminal; 0: none.
/// Process-wide, read when a bar is constructed; 30 by default, or $MTREC_PROGRESS_EVERY when
/// that holds a number >= 0. Throws mtrec::Error on a negative or non-finite value.
void set_progress_interval(double seconds);
double progress_interval();

class ProgressBar {
 public:
  /// force_enabled: redraw as on a terminal even when stderr is not one.
  ProgressBar(int64_t total, std::string label, bool force_enabled = false);
  ~ProgressBar();
  void tick(int64_t n = 1);
  /// Counts n items done before this bar's clock started (a resumed epoch): they move the
  /// count, not the rate, so the rate and ETA stay those of this process.
  void skip(int64_t n);
  /// Extra text shown after the counts, e.g. "loss 0.412".
  void set_postfix(std::string text);
  /// What is counted, plural ("items" by default): the log lines say "14.2 batches/s".
  void set_unit(std::string unit);
  void finish();
  /// Whether the bar redraws itself on stderr (a terminal, or force_enabled).
  bool enabled() const { return enabled_; }
  /// Whether the bar prints a log line every progress_interval() seconds (off a terminal).
  bool periodic() const { return periodic_; }
  int64_t count() const { return count_; }
  /// Items per second since construction (skipped items left out).
  double rate() const;
  /// Renders the redrawn terminal line (exposed for tests); width-independent.
  std::string render() const;
  /// Renders the periodic log line as it reads `elapsed_seconds` after construction; a pure
  /// function of the bar's state, so tests need no clock.
  std::string render_line(double elapsed_seconds) const;

 private:
  int64_t total_;
  int64_t count_ = 0, skipped_ = 0;
  std::string label_, postfix_, unit_ = "items";
  bool enabled_, periodic_, finished_ = false;
  double interval_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mtrec
