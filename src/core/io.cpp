#include "mtrec/core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {
std::string temp_name(const std::string& path) {
  std::random_device rd;
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
}
void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
void rename_over(const std::string& tmp, const std::string& path) {
  fsync_path(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    MTREC_CHECK(false, "cannot move ", tmp, " over ", path, ": ", std::strerror(err));
  }
}
}  // namespace

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  f.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MTREC_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  std::string s;
  in.seekg(0, std::ios::end);
  s.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  MTREC_CHECK(in.good() || in.eof(), "error reading '", path, "'");
  return s;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(temp_name(path_)) {
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  MTREC_CHECK(out_.good(), "cannot create '", tmp_, "' (for '", path_, "'): ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::commit() {
  MTREC_CHECK(!committed_, "AtomicFile '", path_, "' committed twice");
  out_.flush();
  bool ok = out_.good();
  out_.close();
  if (!ok) {
    std::remove(tmp_.c_str());
    MTREC_CHECK(false, "write to '", path_, "' failed (disk full?)");
  }
  rename_over(tmp_, path_);
  committed_ = true;
}

}  // namespace mtrec
