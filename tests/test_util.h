#pragma once
// Shared test helpers: where MovieLens lives, temporary directories.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

namespace mtrec::test {

/// ../shared/data/ml-100k, or $MTREC_DATA_DIR/ml-100k; "" when absent.
inline std::string ml100k_dir() {
  const char* env = std::getenv("MTREC_DATA_DIR");
  std::string base = env ? env : MTREC_DATA_DIR_DEFAULT;
  std::string dir = base + "/ml-100k";
  return std::filesystem::exists(dir + "/u.data") ? dir : "";
}

#define MTREC_REQUIRE_ML100K(dir)                                                       \
  const std::string dir = ::mtrec::test::ml100k_dir();                                  \
  if (dir.empty())                                                                      \
  GTEST_SKIP() << "MovieLens 100K not found (set MTREC_DATA_DIR to the folder holding " \
                  "ml-100k/, or run `mtrec data download ml-100k`)"

/// A fresh temporary directory, removed at destruction. POSIX calls rather than
/// std::filesystem: on the GPU machine's toolchain (g++ 13 in /opt/gcc with the system's newer
/// libstdc++) create_directory/remove_all crashed the test binaries.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/mtrec-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
    path_ = buf.data();
  }
  ~TempDir() {
    nftw(
        path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::string path(const std::string& name = "") const { return name.empty() ? path_ : path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  }

 private:
  std::string path_;
};

}  // namespace mtrec::test
