#pragma once
// Shared test helpers: where MovieLens lives, temporary directories.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace mtrec::test {

/// ../shared/data/ml-100k, or $MTREC_DATA_DIR/ml-100k; "" when absent.
inline std::string ml100k_dir() {
  const char* env = std::getenv("MTREC_DATA_DIR");
  std::string base = env ? env : MTREC_DATA_DIR_DEFAULT;
  std::string dir = base + "/ml-100k";
  return std::filesystem::exists(dir + "/u.data") ? dir : "";
}

#define MTREC_REQUIRE_ML100K(dir)                                                                     \
  const std::string dir = ::mtrec::test::ml100k_dir();                                                \
  if (dir.empty()) GTEST_SKIP() << "MovieLens 100K not found (set MTREC_DATA_DIR to the folder holding " \
                                   "ml-100k/, or run `mtrec data download ml-100k`)"

/// A fresh temporary directory, removed at destruction.
class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path();
    for (int i = 0;; ++i) {
      path_ = base / ("mtrec-test-" + std::to_string(::getpid()) + "-" + std::to_string(i));
      if (std::filesystem::create_directory(path_)) break;
    }
  }
  ~TempDir() { std::error_code ec; std::filesystem::remove_all(path_, ec); }
  std::string path(const std::string& name = "") const { return name.empty() ? path_.string() : (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  }

 private:
  std::filesystem::path path_;
};

}  // namespace mtrec::test
