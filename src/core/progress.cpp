#include "mtrec/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "mtrec/core/log.h"

namespace mtrec {

static std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

ProgressBar::ProgressBar(int64_t total, std::string label, bool force_enabled)
    : total_(total),
      label_(std::move(label)),
      enabled_(force_enabled || (isatty(fileno(stderr)) && log_level() <= LogLevel::Info)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::tick(int64_t n) {
  count_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && count_ < total_) return;
  last_draw_ = now;
  fmt::print(stderr, "\r{}\x1b[K", render());
  std::fflush(stderr);
}

void ProgressBar::set_postfix(std::string text) { postfix_ = std::move(text); }

double ProgressBar::rate() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? static_cast<double>(count_) / elapsed : 0.0;
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
