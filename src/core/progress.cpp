#include "mtrec/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "mtrec/core/check.h"
#include "mtrec/core/log.h"

namespace mtrec {
namespace {

// A malformed $MTREC_PROGRESS_EVERY falls back to the default, as a malformed $MTREC_LOG does.
double initial_interval() {
  constexpr double kDefault = 30.0;
  const char* env = std::getenv("MTREC_PROGRESS_EVERY");
  if (env == nullptr || *env == '\0') return kDefault;
  char* end = nullptr;
  double v = std::strtod(env, &end);
  return (*end == '\0' && std::isfinite(v) && v >= 0) ? v : kDefault;
}

std::atomic<double>& interval_ref() {
  static std::atomic<double> interval{initial_interval()};
  return interval;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

// "42s", "4m10s", "2h05m": a log line reads better with units than with a clock face.
std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

}  // namespace

void set_progress_interval(double seconds) {
  MTREC_CHECK(std::isfinite(seconds) && seconds >= 0, "progress interval must be >= 0 seconds, got ", seconds);
  interval_ref().store(seconds);
}
double progress_interval() { return interval_ref().load(); }

ProgressBar::ProgressBar(int64_t total, std::string label, bool force_enabled)
    : total_(total),
      label_(std::move(label)),
      interval_(progress_interval()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  const bool tty = isatty(fileno(stderr)) != 0;
  const bool info = log_level() <= LogLevel::Info;
  enabled_ = force_enabled || (tty && info);
  periodic_ = !enabled_ && info && interval_ > 0;
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::tick(int64_t n) {
  count_ += n;
  if (!enabled_ && !periodic_) return;
  auto now = std::chrono::steady_clock::now();
  if (enabled_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && count_ < total_) return;
    last_draw_ = now;
    fmt::print(stderr, "\r{}\x1b[K", render());
    std::fflush(stderr);
    return;
  }
  // No line at the end of the count: the loop that owns the bar logs its own summary.
  if (std::chrono::duration<double>(now - last_draw_).count() < interval_) return;
  last_draw_ = now;
  log_info("{}", render_line(std::chrono::duration<double>(now - start_).count()));
}

void ProgressBar::skip(int64_t n) {
  count_ += n;
  skipped_ += n;
}

void ProgressBar::set_postfix(std::string text) { postfix_ = std::move(text); }
void ProgressBar::set_unit(std::string unit) { unit_ = std::move(unit); }

double ProgressBar::rate() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? static_cast<double>(count_ - skipped_) / elapsed : 0.0;
}

std::string ProgressBar::render() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double r = rate();
  std::string bar;
  if (total_ > 0) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(kWidth * std::min<double>(1.0, static_cast<double>(count_) / total_));
    bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    double eta = r > 0 ? static_cast<double>(total_ - count_) / r : -1;
    return fmt::format("{} {}{}/{} {:.1f}/s elapsed {} eta {}{}{}", label_, bar, count_, total_, r,
                       format_duration(elapsed), format_duration(eta), postfix_.empty() ? "" : " ", postfix_);
  }
  return fmt::format("{} {} {:.1f}/s elapsed {}{}{}", label_, count_, r, format_duration(elapsed),
                     postfix_.empty() ? "" : " ", postfix_);
}

std::string ProgressBar::render_line(double elapsed_seconds) const {
  const double r = elapsed_seconds > 0 ? static_cast<double>(count_ - skipped_) / elapsed_seconds : 0.0;
  std::string line;
  if (total_ > 0) {
    const double eta = r > 0 ? static_cast<double>(std::max<int64_t>(0, total_ - count_)) / r : -1;
    line = fmt::format("{}: {}/{} {} ({}%), {:.1f} {}/s, ETA {}", label_, count_, total_, unit_, 100 * count_ / total_,
                       r, unit_, format_eta(eta));
  } else {
    line = fmt::format("{}: {} {}, {:.1f} {}/s", label_, count_, unit_, r, unit_);
  }
  return postfix_.empty() ? line : line + ", " + postfix_;
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  // A bar never ticked belongs to a loop run with progress off (or one with nothing to do):
  // it prints nothing, not even a 0/N line.
  if (!enabled_ || count_ == 0) return;
  fmt::print(stderr, "\r{}\x1b[K\n", render());
  std::fflush(stderr);
}

}  // namespace mtrec
