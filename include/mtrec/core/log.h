#pragma once
// Levelled logging on fmt, to stderr. The level comes from set_log_level() or, at start-up,
// from the MTREC_LOG environment variable (debug|info|warn|error|off).
//   mtrec::log_info("loaded {} ratings from {}", n, path);
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace mtrec {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
/// Parses "debug", "info", "warn", "error", "off"; throws mtrec::Error otherwise.
LogLevel parse_log_level(std::string_view name);
/// Text put before every message (e.g. "[rank 1] " in a distributed run); "" by default.
void set_log_tag(std::string tag);

namespace detail {
void log_write(LogLevel level, std::string_view message);
}

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  detail::log_write(level, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... a) {
  log(LogLevel::Debug, f, std::forward<Args>(a)...);
}
template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... a) {
  log(LogLevel::Info, f, std::forward<Args>(a)...);
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... a) {
  log(LogLevel::Warn, f, std::forward<Args>(a)...);
}
template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... a) {
  log(LogLevel::Error, f, std::forward<Args>(a)...);
}

}  // namespace mtrec
