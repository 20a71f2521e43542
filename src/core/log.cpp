#include "mtrec/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {
LogLevel initial_level() {
  const char* env = std::getenv("MTREC_LOG");
  if (env == nullptr) return LogLevel::Info;
  try {
    return parse_log_level(env);
  } catch (const Error&) {
    return LogLevel::Info;
  }
}
std::atomic<LogLevel>& level_ref() {
  static std::atomic<LogLevel> level{initial_level()};
  return level;
}
}  // namespace

void set_log_level(LogLevel level) { level_ref().store(level); }
LogLevel log_level() { return level_ref().load(); }

LogLevel parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "warn") return LogLevel::Warn;
  if (name == "error") return LogLevel::Error;
  if (name == "off") return LogLevel::Off;
  MTREC_CHECK(false, "unknown log level '", name, "' (expected debug|info|warn|error|off)");
}

namespace {
std::string& tag() {
  static std::string t;
  return t;
}
}  // namespace

void set_log_tag(std::string t) { tag() = std::move(t); }

namespace detail {
void log_write(LogLevel level, std::string_view message) {
  static std::mutex mutex;
  static const char* names[] = {"debug", "info", "warn", "error", "off"};
  static const auto start = std::chrono::steady_clock::now();
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard<std::mutex> lock(mutex);
  fmt::print(stderr, "[{:8.2f}s {:<5}] {}{}\n", t, names[static_cast<int>(level)], tag(), message);
}
}  // namespace detail

}  // namespace mtrec
