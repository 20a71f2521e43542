#include "mtrec/core/check.h"

namespace mtrec {

static std::string format_data_error(const std::string& file, int64_t line, const std::string& field,
                                     const std::string& message) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!field.empty()) out += "field '" + field + "': ";
  return out + message;
}

DataError::DataError(std::string file, int64_t line, std::string field, const std::string& message)
    : Error(format_data_error(file, line, field, message)),
      file_(std::move(file)),
      line_(line),
      field_(std::move(field)),
      message_(message) {}

namespace detail {
void check_failed(const char* cond, const char* file, int line, const std::string& msg) {
  std::string where = std::string(file);
  auto slash = where.rfind("/src/");
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(msg.empty() ? "check failed: " + std::string(cond) + " (" + where + ":" + std::to_string(line) + ")"
                          : msg + " [check " + cond + " at " + where + ":" + std::to_string(line) + "]");
}
}  // namespace detail

}  // namespace mtrec
