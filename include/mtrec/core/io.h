#pragma once
// Atomic file output: the content goes to a temporary file beside the target, is flushed to
// disk, then renamed over the target, so a reader never sees a half-written checkpoint or
// result and a failed write leaves the old file intact.
//   mtrec::write_file_atomic("model.ckpt", bytes);
//   mtrec::AtomicFile out("metrics.json"); out.stream() << json; out.commit();
#include <fstream>
#include <string>
#include <string_view>

namespace mtrec {

void write_file_atomic(const std::string& path, std::string_view content);
/// Reads a whole file; throws mtrec::Error naming the path when it cannot.
std::string read_file(const std::string& path);

/// Streamed variant: write to stream(), then commit(); destroyed without commit() it removes
/// the temporary and leaves the target untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  std::ofstream& stream() { return out_; }
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace mtrec
