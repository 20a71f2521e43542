#pragma once
// Flags that name a data set in the user's own files, shared by `mtrec data stats`,
// `mtrec train` and `mtrec eval`: the column mapping (MappingFlags) and the files, catalogues
// and duplicate policy (DataFileFlags), turned into a DatasetSpec for mtrec::load_dataset.
//   mtrec train --task rating --dataset csv --path ratings.csv --path wish.csv --behaviors rating,wishlist
//       --items books.csv --item-id-col book_id --item-text-cols title,authors --duplicates keep-last
//   mtrec train --task knn --dataset dir --path world/      # the folder `mtrec data synth` writes
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/core/check.h"
#include "mtrec/data/csv_reader.h"
#include "mtrec/data/dataset_loader.h"

namespace mtrec::cli {

/// The column-mapping flags of interaction files (--columns-config, --delimiter, --user-col, ...).
struct MappingFlags {
  std::string config, delimiter, encoding, user, item, rating, timestamp, scenario, behavior;
  bool no_header = false;

  void add(CLI::App* app) {
    app->add_option("--columns-config", config, "key=value file with the column mapping (flags below override it)");
    app->add_option("--delimiter", delimiter, "Field delimiter, any text: ',' (default) '\\t' '::' '|'");
    app->add_flag("--no-header", no_header, "The first line is data, not column names");
    app->add_option("--encoding", encoding, "utf8 (default) or latin1");
    app->add_option("--user-col", user,
                    "User column: 0-based index or header name (default: user, user_id, userId, ...)");
    app->add_option("--item-col", item, "Item column (default: item, item_id, movieId, ...)");
    app->add_option("--rating-col", rating, "Rating column, or 'none' for implicit feedback");
    app->add_option("--timestamp-col", timestamp, "Timestamp column (integer seconds), or 'none'");
    app->add_option("--scenario-col", scenario, "Scenario column, or 'none'");
    app->add_option("--behavior-col", behavior, "Behaviour column, or 'none'");
  }
  CsvOptions options() const {
    CsvOptions o = config.empty() ? CsvOptions() : CsvOptions::from_config(config);
    const std::pair<const char*, const std::string*> flags[] = {
        {"delimiter", &delimiter}, {"encoding", &encoding},   {"user", &user},         {"item", &item},
        {"rating", &rating},       {"timestamp", &timestamp}, {"scenario", &scenario}, {"behavior", &behavior}};
    for (const auto& [key, value] : flags) {
      if (value->empty()) continue;
      try {
        o.set(key, *value);
      } catch (const Error& e) {
        throw Error(fmt::format("--{}{}: {}", key,
                                std::string(key) == "delimiter" || std::string(key) == "encoding" ? "" : "-col",
                                e.what()));
      }
    }
    if (no_header) o.has_header(false);
    return o;
  }
};

/// --path (repeatable), --behaviors, the catalogues and --duplicates, plus the mapping.
struct DataFileFlags {
  std::vector<std::string> paths;
  std::string behaviors;  // comma-separated, one per --path
  std::string items, item_id_col, item_text_cols, item_delimiter;
  std::string users, user_id_col, user_text_cols, user_delimiter;
  std::string duplicates = "auto";
  MappingFlags mapping;

  /// `with_duplicates`: also --duplicates (training; `data stats` counts repeats, keeps them all).
  void add(CLI::App* app, bool with_duplicates) {
    app->add_option("--path", paths,
                    "--dataset csv: an interaction file (repeat for several: --path a.csv --path b.csv); "
                    "--dataset dir: the folder")
        ->allow_extra_args(false);  // one value per --path; repeats add files
    app->add_option("--behaviors", behaviors, "Behaviour name of each --path, comma-separated (e.g. rating,wishlist)");
    app->add_option("--items", items, "Item catalogue (CSV with a header): its text feeds the text backbone");
    app->add_option("--item-id-col", item_id_col,
                    "Item id column of --items (default: item, item_id, ... or the first)");
    app->add_option("--item-text-cols", item_text_cols,
                    "Text columns of --items, comma-separated (default: every other)");
    app->add_option("--item-delimiter", item_delimiter, "Delimiter of --items (default ',')");
    app->add_option("--users", users, "User catalogue (CSV with a header)");
    app->add_option("--user-id-col", user_id_col, "User id column of --users");
    app->add_option("--user-text-cols", user_text_cols, "Text columns of --users, comma-separated");
    app->add_option("--user-delimiter", user_delimiter, "Delimiter of --users (default ',')");
    if (with_duplicates)
      app->add_option("--duplicates", duplicates,
                      "Repeated (user, item, behaviour) rows: auto (keep-last on rating data, keep-all otherwise), "
                      "keep-all, keep-last (latest timestamp, then file order) or mean (mean rating)")
          ->check(CLI::IsMember({"auto", "keep-all", "keep-last", "mean"}))
          ->capture_default_str();
    mapping.add(app);
  }

  static std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t b = 0;
    while (b <= s.size()) {
      size_t e = s.find(',', b);
      if (e == std::string::npos) e = s.size();
      std::string part = s.substr(b, e - b);
      while (!part.empty() && part.front() == ' ') part.erase(part.begin());
      while (!part.empty() && part.back() == ' ') part.pop_back();
      if (!part.empty()) out.push_back(part);
      b = e + 1;
    }
    return out;
  }

  static CatalogSpec catalog(const std::string& path, const std::string& id, const std::string& text,
                             const std::string& delimiter) {
    CatalogSpec c(path);
    if (!id.empty()) c.id(ColumnSpec::parse(id));
    c.text(split_list(text));
    if (!delimiter.empty()) c.csv(CsvOptions().set("delimiter", delimiter));
    return c;
  }

  /// The spec for `--dataset csv` (files) or `--dataset dir` (a folder; also csv with one folder path).
  DatasetSpec spec(const std::string& dataset) const {
    MTREC_CHECK(!paths.empty(), "--dataset ", dataset, " needs --path ", dataset == "dir" ? "DIR" : "FILE");
    DatasetSpec s;
    s.csv(mapping.options()).duplicates(parse_duplicate_policy(duplicates));
    if (dataset == "dir" || (paths.size() == 1 && std::filesystem::is_directory(paths[0]))) {
      MTREC_CHECK(paths.size() == 1, "--dataset dir takes one --path DIR, got ", paths.size());
      MTREC_CHECK(std::filesystem::is_directory(paths[0]), "--dataset dir: '", paths[0], "' is not a folder");
      MTREC_CHECK(items.empty() && users.empty() && behaviors.empty(),
                  "--dataset dir reads the folder's own items.csv/users.csv; --items, --users and --behaviors are for "
                  "--dataset csv");
      return s.dir(paths[0]);
    }
    const auto names = split_list(behaviors);
    MTREC_CHECK(names.empty() || names.size() == paths.size(), "--behaviors names ", names.size(), " behaviour(s) for ",
                paths.size(), " --path file(s); give one per file, in order");
    for (size_t k = 0; k < paths.size(); ++k) s.file(paths[k], names.empty() ? "" : names[k]);
    if (!items.empty()) s.items(catalog(items, item_id_col, item_text_cols, item_delimiter));
    if (!users.empty()) s.users(catalog(users, user_id_col, user_text_cols, user_delimiter));
    MTREC_CHECK(!items.empty() || (item_id_col.empty() && item_text_cols.empty()),
                "--item-id-col/--item-text-cols need --items FILE");
    MTREC_CHECK(!users.empty() || (user_id_col.empty() && user_text_cols.empty()),
                "--user-id-col/--user-text-cols need --users FILE");
    return s;
  }
};

}  // namespace mtrec::cli
