#pragma once
// Generic delimited-file reader: interactions from CSV/TSV/"::"-separated files, driven by a
// column mapping.
//
//   // header "userId,movieId,rating,timestamp": columns are found by name, no mapping needed
//   mtrec::Dataset ds = mtrec::read_csv("ratings.csv");
//   // headerless, "::"-separated, Latin-1, implicit feedback (no rating column)
//   auto opts = mtrec::CsvOptions().delimiter("::").has_header(false).encoding(mtrec::Encoding::Latin1)
//                   .user(0).item(1).no_rating().timestamp(2);
//   mtrec::Dataset clicks = mtrec::read_csv("clicks.dat", opts);
//   // a folder written by write_dataset_csv: interactions.csv + items.csv/users.csv text
//   mtrec::Dataset world = mtrec::read_dataset_dir("out/world");
//   // every problem at once, for `mtrec data validate`
//   mtrec::CsvValidation v = mtrec::validate_csv("ratings.csv");
//   for (const auto& e : v.problems) std::puts(e.what());   // "FILE:LINE: field 'X': message"
//
// Fields follow RFC 4180: a field in double quotes may hold the delimiter, newlines and doubled
// quotes (""); line numbers in errors stay those of the file. Blank lines are skipped; spaces
// around ids and numbers are trimmed. Latin-1 input is converted to UTF-8; in UTF-8 mode invalid
// byte sequences are errors. Any malformed input throws mtrec::DataError naming the file, the
// 1-based line and the field; nothing partial is returned.
#include <torch/arg.h>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/check.h"
#include "mtrec/data/schema.h"

namespace mtrec {

enum class Encoding { Utf8, Latin1 };
/// "utf8"/"utf-8" or "latin1"/"latin-1"/"iso-8859-1" (any case); throws mtrec::Error otherwise.
Encoding parse_encoding(std::string_view name);

/// Where a role (user, item, ...) is found: a 0-based column index, a header name, explicitly
/// absent (none()), or automatic (the default): with a header, the role's name or a common
/// alias (user_id, userId, movieId, ...); without a header, user=0, item=1, rating=2,
/// timestamp=3 when the file has that many columns, no scenario, behaviour or context.
struct ColumnSpec {
  enum class Kind { Auto, Index, Name, None };
  Kind kind = Kind::Auto;
  int index = -1;
  std::string name;

  ColumnSpec() = default;
  ColumnSpec(int i) : kind(Kind::Index), index(i) {}                   // NOLINT: implicit by design
  ColumnSpec(std::string n) : kind(Kind::Name), name(std::move(n)) {}  // NOLINT
  ColumnSpec(const char* n) : ColumnSpec(std::string(n)) {}            // NOLINT
  static ColumnSpec none() {
    ColumnSpec c;
    c.kind = Kind::None;
    return c;
  }
  /// "none" -> none(), digits -> index, anything else -> name; "" or "auto" -> automatic.
  static ColumnSpec parse(std::string_view text);
  std::string to_string() const;
};

#define MTREC_CSV_OPTIONS(X)                                                                   \
  X(std::string, delimiter, ",")                                                               \
  X(bool, has_header, true)                                                                    \
  X(Encoding, encoding, Encoding::Utf8)                                                        \
  /* RFC 4180 double quotes; off for formats that use '"' literally */                         \
  X(bool, quoting, true)                                                                       \
  X(ColumnSpec, user, {})                                                                      \
  X(ColumnSpec, item, {})                                                                      \
  X(ColumnSpec, rating, {})                                                                    \
  X(ColumnSpec, timestamp, {})                                                                 \
  X(ColumnSpec, scenario, {})                                                                  \
  X(ColumnSpec, behavior, {})                                                                  \
  /* The request's context text (query / page / placement; Auto: a header named "context"): */ \
  /* equal texts share one Dataset::context_text id, an empty field is no context (-1). */     \
  X(ColumnSpec, context, {})                                                                   \
  /* when there is no scenario column */                                                       \
  X(std::string, default_scenario, "default")                                                  \
  /* when there is no behaviour column; "" = "rating" or "interaction" */                      \
  X(std::string, default_behavior, {})                                                         \
  /* Dataset::name; "" = the file's stem */                                                    \
  X(std::string, name, {})

struct CsvOptions {
  MTREC_OPTIONS(MTREC_CSV_OPTIONS)

 public:                                                          // TORCH_ARG leaves the access private
  CsvOptions& no_rating() { return rating(ColumnSpec::none()); }  // implicit feedback
  CsvOptions& no_timestamp() { return timestamp(ColumnSpec::none()); }
  /// Sets one option by its config-file key (throws mtrec::Error on a bad key or value):
  ///   delimiter (text; "\t", "tab", "space" and "pipe" are spelled out), header (true|false),
  ///   encoding (utf8|latin1), quoting (true|false), user, item, rating, timestamp, scenario,
  ///   behavior/behaviour, context (a ColumnSpec: 0-based index, header name, "none" or "auto"),
  ///   default_scenario, default_behavior, name.
  CsvOptions& set(std::string_view key, std::string_view value);
  /// Reads `key = value` lines ('#' starts a comment; blank lines ignored). Throws DataError
  /// naming the config file, line and key.
  static CsvOptions from_config(const std::string& path);
};

/// Reads interactions. Throws mtrec::DataError (file, line, field) on the first problem.
Dataset read_csv(const std::string& path, const CsvOptions& options = {});
/// The same from bytes already in memory; `source_name` names the input in errors.
Dataset parse_csv(std::string content, const std::string& source_name, const CsvOptions& options = {});
/// Reads interactions using (copies of) `ids`'s user/item/scenario/behaviour maps (and context
/// texts), so dense ids
/// agree with `ids` (e.g. a test fold read against the full data set). With allow_new_ids
/// false, a user or item missing from `ids` is a DataError. The returned Dataset carries the
/// maps and text catalogues of `ids`.
Dataset read_csv_with_ids(const std::string& path, const CsvOptions& options, const Dataset& ids, bool allow_new_ids);

/// An entity catalogue file (items or users): a header, then one row per id with its text.
///   auto books = mtrec::CatalogSpec("books.csv").id("book_id").text({"title", "authors"});
#define MTREC_CATALOG_SPEC(X)                                                          \
  X(std::string, path, {})                                                             \
  /* Auto: named like the role (item, item_id, movieId, ...), else the first column */ \
  X(ColumnSpec, id, {})                                                                \
  /* header names, in this order; empty: every column but the id */                    \
  X(std::vector<std::string>, text_columns, {})                                        \
  /* delimiter, encoding, quoting (the header is always required) */                   \
  X(CsvOptions, csv, {})

struct CatalogSpec {
  CatalogSpec() = default;
  explicit CatalogSpec(std::string path) : path_(std::move(path)) {}
  MTREC_OPTIONS(MTREC_CATALOG_SPEC)

 public:  // TORCH_ARG leaves the access private
  CatalogSpec& text(std::vector<std::string> v) {
    text_columns_ = std::move(v);
    return *this;
  }
  CatalogSpec& delimiter(std::string v) {
    csv_.delimiter(std::move(v));
    return *this;
  }
};

enum class CatalogRole { User, Item, Scenario, Behavior, Context };
struct CatalogRead {
  int64_t rows = 0;     // catalogue rows read
  int64_t new_ids = 0;  // ids `ids` did not hold before (for items after interactions: cold-start items)
};
/// Reads a catalogue: every row's id is interned into `ids` (in row order; known ids keep
/// theirs) and, when `text` is given, it is replaced by a catalogue of the text columns sized to
/// `ids`. Throws DataError naming the file, line and field for a row with the wrong number of
/// fields, an empty id or an id repeated within the file; and for an id or text column the
/// header lacks (the message lists the columns present).
CatalogRead read_catalog(const CatalogSpec& spec, CatalogRole role, IdMap& ids, TextCatalog* text);

/// Reads a folder in the generic format written by write_dataset_csv (csv_writer.h):
/// interactions.csv (columns found by header name, as read_csv does) plus, when present,
/// items.csv / users.csv (an id column named like the role or else the first column, then text
/// fields: every other column) and scenarios.csv / behaviours.csv / contexts.csv (one id per
/// row; a context's id is its text). The optional
/// files fix the dense ids in their row order; ids first seen in interactions.csv follow. A
/// duplicate or empty id, or a row with the wrong number of fields, throws DataError naming the
/// file, line and field. Dataset::name is the folder's name.
Dataset read_dataset_dir(const std::string& dir, const CsvOptions& options = {});

/// Every problem of a file instead of only the first (rows with a problem are skipped).
struct CsvValidation {
  int64_t rows = 0;                 // rows without problems
  std::vector<DataError> problems;  // in file order
  bool ok() const { return problems.empty(); }
};
CsvValidation validate_csv(const std::string& path, const CsvOptions& options = {});

/// Low-level access to records: calls fn(line, fields) for every non-blank record (the header
/// too, if any), decoded to UTF-8 and unquoted per `options` (delimiter, encoding, quoting; the
/// column mapping is ignored). `line` is the 1-based line where the record starts. The views
/// are valid during the call. Throws DataError on quoting or encoding problems.
using RecordFn = std::function<void(int64_t line, const std::vector<std::string_view>& fields)>;
void for_each_record(const std::string& path, const CsvOptions& options, const RecordFn& fn);

/// Latin-1 bytes to UTF-8 (every byte is a code point).
std::string latin1_to_utf8(std::string_view bytes);
/// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code
/// points above U+10FFFF included), or std::string_view::npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);

}  // namespace mtrec
