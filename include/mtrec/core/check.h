#pragma once
// Errors and checks. Every failure the library reports is an mtrec::Error whose message
// carries the offending values, e.g.
//   MTREC_CHECK(k > 0, "top-K needs k > 0, got k=", k);
// Input problems are DataError: they name the file, the 1-based line and the field.
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mtrec {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A problem in user-supplied data; `what()` reads "FILE:LINE: field 'F': message".
class DataError : public Error {
 public:
  DataError(std::string file, int64_t line, std::string field, const std::string& message);
  const std::string& file() const { return file_; }
  int64_t line() const { return line_; }  // 1-based; 0 when the problem is not tied to a line
  const std::string& field() const { return field_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int64_t line_;
  std::string field_;
  std::string message_;
};

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void check_failed(const char* cond, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace mtrec

#define MTREC_CHECK(cond, ...)                                                                         \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      ::mtrec::detail::check_failed(#cond, __FILE__, __LINE__, ::mtrec::detail::str_cat(__VA_ARGS__)); \
    }                                                                                                  \
  } while (0)

/// Throws mtrec::Error with the message (an unconditional MTREC_CHECK).
#define MTREC_FAIL(...) \
  ::mtrec::detail::check_failed("failure", __FILE__, __LINE__, ::mtrec::detail::str_cat(__VA_ARGS__))

/// An internal invariant (a bug in mtrec when it fails, never bad input: that is MTREC_CHECK),
/// checked in debug builds and compiled out under NDEBUG; the message carries the values.
#ifdef NDEBUG
#define MTREC_ASSERT(cond, ...) \
  do {                          \
  } while (0)
#else
#define MTREC_ASSERT(cond, ...) MTREC_CHECK(cond, "internal error (please report): ", __VA_ARGS__)
#endif
