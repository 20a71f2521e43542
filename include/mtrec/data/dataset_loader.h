#pragma once
// One data set from the user's own files: several interaction files (each with a behaviour
// name: ratings, a wishlist, clicks, ...), optional item and user catalogues whose text feeds
// the text backbone, and a stated policy for repeated (user, item) pairs.
//
//   mtrec::DatasetSpec spec;
//   spec.file("ratings.csv", "rating").file("to_read.csv", "wishlist")
//       .items(mtrec::CatalogSpec("books.csv").id("book_id").text({"title", "authors"}))
//       .duplicates(mtrec::DuplicatePolicy::KeepLast);
//   mtrec::DatasetLoadReport report;
//   mtrec::Dataset ds = mtrec::load_dataset(spec, &report);
//   std::puts(report.summary().c_str());   // files, rows, cold-start items, what the policy did
//   // the generic folder written by `mtrec data synth` / write_dataset_csv:
//   mtrec::Dataset world = mtrec::load_dataset(mtrec::DatasetSpec().dir("out/world"));
//
// The first file fixes the first dense ids; later files add theirs (read_csv_with_ids), so ids
// agree across files. A file without a rating column gets rating 1 on every row when another
// file has ratings. Timestamps are kept only when every file has them (the report says when
// they were dropped). Catalogue rows are read after the interactions: an id seen only in the
// catalogue is interned (a cold-start item or user, with text and no interactions).
#include <torch/arg.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/csv_reader.h"
#include "mtrec/data/schema.h"

namespace mtrec {

/// What to do with repeated rows of one (user, item, behaviour): a user rating a book and also
/// wishlisting it is two behaviours, not a repeat.
enum class DuplicatePolicy {
  Auto,        // KeepLast when the data has ratings, else KeepAll (resolved at load, reported)
  KeepAll,     // every row stays (repeat consumption is signal for sequences and counts)
  KeepLast,    // the latest row by timestamp, ties (and data without timestamps) by file order
  MeanRating,  // one row: the latest one, with the mean of the pair's ratings (needs ratings)
};
/// "auto", "keep-all", "keep-last", "mean" (also "mean-rating"); throws mtrec::Error otherwise.
DuplicatePolicy parse_duplicate_policy(std::string_view name);
const char* to_string(DuplicatePolicy p);

struct DuplicateCount {
  int64_t pairs = 0;       // (user, item, behaviour) keys with more than one row
  int64_t extra_rows = 0;  // rows beyond the first of each such key
};
DuplicateCount count_duplicate_pairs(const Interactions& x);

struct DuplicateReport {
  DuplicatePolicy policy = DuplicatePolicy::KeepAll;  // as applied (never Auto)
  int64_t pairs = 0, rows_before = 0, rows_after = 0;
  /// e.g. "3 repeated (user, item, behaviour) pairs; keep-last: 12 -> 9 rows".
  std::string describe() const;
};
/// The rows `policy` keeps, in their original order. Auto resolves by x.has_rating. MeanRating
/// on data without ratings throws mtrec::Error.
Interactions apply_duplicate_policy(const Interactions& x, DuplicatePolicy policy, DuplicateReport* report = nullptr);

/// One interaction file. A non-empty behaviour names every row of the file (a behaviour column,
/// if the mapping finds one, is then not read); csv, when set, replaces the spec's mapping.
struct InteractionFile {
  std::string path;
  std::string behavior;
  bool own_csv = false;
  CsvOptions csv;
};

#define MTREC_DATASET_SPEC(X)                                                   \
  X(std::vector<InteractionFile>, files, {})                                    \
  /* a folder in the generic format instead of files (read_dataset_dir) */      \
  X(std::string, dir, {})                                                       \
  /* the column mapping of every file (and of the folder's interactions.csv) */ \
  X(CsvOptions, csv, {})                                                        \
  /* used when their path is set */                                             \
  X(CatalogSpec, items, {})                                                     \
  X(CatalogSpec, users, {})                                                     \
  X(DuplicatePolicy, duplicates, DuplicatePolicy::Auto)                         \
  /* Dataset::name; "" = the first file's stem (or the folder's name) */        \
  X(std::string, name, {})

struct DatasetSpec {
  MTREC_OPTIONS(MTREC_DATASET_SPEC)

 public:  // TORCH_ARG leaves the access private
  DatasetSpec& file(std::string path, std::string behavior = "") {
    files_.push_back({std::move(path), std::move(behavior), false, {}});
    return *this;
  }
  DatasetSpec& file(std::string path, std::string behavior, CsvOptions csv) {
    files_.push_back({std::move(path), std::move(behavior), true, std::move(csv)});
    return *this;
  }
};

/// What load_dataset read and decided, for logs and --json.
struct DatasetLoadReport {
  struct File {
    std::string path, behavior;
    int64_t rows = 0;
    bool has_rating = false, has_timestamp = false;
  };
  std::vector<File> files;
  CatalogRead items, users;  // rows read; new_ids = ids only in the catalogue (cold start)
  DuplicateReport duplicates;
  std::vector<std::string> notes;  // decisions the caller should know of (e.g. timestamps dropped)
  /// One paragraph: the files, the catalogues, the duplicate policy's effect, the notes.
  std::string summary() const;
};

/// Reads the data set `spec` names. Throws DataError (file, line, field) on malformed input and
/// mtrec::Error on an inconsistent spec (no files, files and a folder at once, ...).
Dataset load_dataset(const DatasetSpec& spec, DatasetLoadReport* report = nullptr);

}  // namespace mtrec
