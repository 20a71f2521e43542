#include "mtrec/data/download.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>

#include "mtrec/core/check.h"

namespace mtrec {

const std::vector<DatasetArchive>& known_archives() {
  // SHA-256 values as published by several independent projects for the GroupLens zips
  // (ml-100k.zip: 4,924,029 bytes, MD5 0e33842e24a9c977be4e0107933c0723; ml-1m.zip: MD5
  // c4d9eecfca2ab87c1945afe126590906). Not re-verified against a fresh download on the
  // (offline) development machine.
  static const std::vector<DatasetArchive> archives = {
      {"ml-100k", "files.grouplens.org", "/datasets/movielens/ml-100k.zip",
       "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029, "ml-100k", "u.data"},
      {"ml-1m", "files.grouplens.org", "/datasets/movielens/ml-1m.zip",
       "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 0, "ml-1m", "ratings.dat"},
  };
  return archives;
}

const DatasetArchive* find_archive(std::string_view name) {
  for (const auto& a : known_archives())
    if (a.name == name) return &a;
  return nullptr;
}

namespace {
struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  Sha256() { MTREC_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "SHA-256 init failed"); }
  void update(const void* data, size_t n) {
    MTREC_CHECK(EVP_DigestUpdate(ctx.get(), data, n) == 1, "SHA-256 update failed");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    MTREC_CHECK(EVP_DigestFinal_ex(ctx.get(), md, &len) == 1, "SHA-256 final failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 15]);
    }
    return out;
  }
};
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MTREC_CHECK(in.good(), "cannot open ", path, " to compute its SHA-256");
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  MTREC_CHECK(in.eof(), "error while reading ", path);
  return h.hex();
}

}  // namespace mtrec
