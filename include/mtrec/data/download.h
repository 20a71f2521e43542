#pragma once
// Known public data sets and their pinned checksums, plus SHA-256 for verifying downloads.
//   const mtrec::DatasetArchive* a = mtrec::find_archive("ml-100k");   // url, sha256, folder
//   if (mtrec::sha256_file("ml-100k.zip") != a->sha256) ...            // reject the download
// The HTTP transfer itself lives in the `mtrec data download` command.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mtrec {

struct DatasetArchive {
  std::string name;        // "ml-100k"
  std::string host;        // "files.grouplens.org"
  std::string path;        // "/datasets/movielens/ml-100k.zip"
  std::string sha256;      // lowercase hex of the whole zip
  int64_t bytes = 0;       // expected size, 0 when unknown
  std::string folder;      // top-level folder inside the zip
  std::string check_file;  // a file that must exist in `folder` after extraction
  std::string url() const { return "https://" + host + path; }
  std::string file_name() const { return path.substr(path.rfind('/') + 1); }
};

/// The archives `mtrec data download` knows (the one place their checksums are kept).
const std::vector<DatasetArchive>& known_archives();
/// The archive called `name`, or nullptr.
const DatasetArchive* find_archive(std::string_view name);

/// SHA-256 of bytes / of a file's content, as 64 lowercase hex digits (OpenSSL EVP). sha256_file
/// streams the file and throws mtrec::Error naming the path when it cannot be read.
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);

}  // namespace mtrec
