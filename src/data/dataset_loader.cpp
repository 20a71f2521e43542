#include "mtrec/data/dataset_loader.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <tuple>

#include "mtrec/core/check.h"

namespace mtrec {

DuplicatePolicy parse_duplicate_policy(std::string_view name) {
  if (name == "auto") return DuplicatePolicy::Auto;
  if (name == "keep-all") return DuplicatePolicy::KeepAll;
  if (name == "keep-last") return DuplicatePolicy::KeepLast;
  if (name == "mean" || name == "mean-rating") return DuplicatePolicy::MeanRating;
  throw Error("unknown duplicate policy '" + std::string(name) + "' (expected auto, keep-all, keep-last or mean)");
}

const char* to_string(DuplicatePolicy p) {
  switch (p) {
    case DuplicatePolicy::Auto:
      return "auto";
    case DuplicatePolicy::KeepAll:
      return "keep-all";
    case DuplicatePolicy::KeepLast:
      return "keep-last";
    case DuplicatePolicy::MeanRating:
      return "mean";
  }
  return "?";
}

namespace {

/// Row indices grouped by (user, item, behaviour); within a group, in row order.
std::vector<size_t> grouped_rows(const Interactions& x) {
  std::vector<size_t> rows(x.size());
  std::iota(rows.begin(), rows.end(), size_t{0});
  auto key = [&](size_t r) {
    return std::make_tuple(x.user[r], x.item[r], x.behavior.empty() ? int16_t{0} : x.behavior[r]);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  return rows;
}

bool same_key(const Interactions& x, size_t a, size_t b) {
  return x.user[a] == x.user[b] && x.item[a] == x.item[b] && (x.behavior.empty() || x.behavior[a] == x.behavior[b]);
}

/// Calls fn(begin, end) for each group [begin, end) of `rows` (from grouped_rows).
template <typename Fn>
void for_each_group(const Interactions& x, const std::vector<size_t>& rows, Fn&& fn) {
  for (size_t b = 0; b < rows.size();) {
    size_t e = b + 1;
    while (e < rows.size() && same_key(x, rows[b], rows[e])) ++e;
    fn(b, e);
    b = e;
  }
}

}  // namespace

DuplicateCount count_duplicate_pairs(const Interactions& x) {
  x.check_consistent();
  DuplicateCount c;
  const auto rows = grouped_rows(x);
  for_each_group(x, rows, [&](size_t b, size_t e) {
    if (e - b > 1) {
      ++c.pairs;
      c.extra_rows += static_cast<int64_t>(e - b - 1);
    }
  });
  return c;
}

std::string DuplicateReport::describe() const {
  std::ostringstream os;
  os << pairs << " repeated (user, item, behaviour) pair" << (pairs == 1 ? "" : "s") << "; " << to_string(policy)
     << ": " << rows_before << " -> " << rows_after << " rows";
  return os.str();
}

Interactions apply_duplicate_policy(const Interactions& x, DuplicatePolicy policy, DuplicateReport* report) {
  x.check_consistent();
  if (policy == DuplicatePolicy::Auto) policy = x.has_rating ? DuplicatePolicy::KeepLast : DuplicatePolicy::KeepAll;
  MTREC_CHECK(
      policy != DuplicatePolicy::MeanRating || x.has_rating,
      "the duplicate policy 'mean' averages ratings, but these interactions have none (use keep-last or keep-all)");
  const auto rows = grouped_rows(x);
  int64_t pairs = 0;
  std::vector<size_t> keep;                     // chosen rows, later sorted into the original order
  std::vector<std::pair<size_t, float>> means;  // (row, mean rating) for MeanRating
  for_each_group(x, rows, [&](size_t b, size_t e) {
    if (e - b > 1) ++pairs;
    if (policy == DuplicatePolicy::KeepAll) return;
    // The latest row: largest timestamp, ties by position (file order; rows are ascending here).
    size_t last = rows[b];
    for (size_t k = b + 1; k < e; ++k) {
      const size_t r = rows[k];
      if (!x.has_timestamp || x.timestamp[r] >= x.timestamp[last]) last = r;
    }
    keep.push_back(last);
    if (policy == DuplicatePolicy::MeanRating) {
      double sum = 0;
      for (size_t k = b; k < e; ++k) sum += x.rating[rows[k]];
      means.emplace_back(last, static_cast<float>(sum / static_cast<double>(e - b)));
    }
  });
  Interactions out;
  if (policy == DuplicatePolicy::KeepAll) {
    out = x;
  } else {
    std::sort(keep.begin(), keep.end());
    out = x.subset(keep);
    if (policy == DuplicatePolicy::MeanRating) {
      std::sort(means.begin(), means.end());
      for (size_t k = 0; k < means.size(); ++k) out.rating[k] = means[k].second;
    }
  }
  if (report) {
    report->policy = policy;
    report->pairs = pairs;
    report->rows_before = static_cast<int64_t>(x.size());
    report->rows_after = static_cast<int64_t>(out.size());
  }
  return out;
}

std::string DatasetLoadReport::summary() const {
  std::ostringstream os;
  for (size_t k = 0; k < files.size(); ++k) {
    const auto& f = files[k];
    os << (k ? "; " : "") << f.path << ": " << f.rows << " rows, behaviour '" << f.behavior << "'"
       << (f.has_rating ? ", ratings" : ", no ratings") << (f.has_timestamp ? ", timestamps" : ", no timestamps");
  }
  if (items.rows)
    os << "; item catalogue: " << items.rows << " rows, " << items.new_ids << " items only there (cold start)";
  if (users.rows) os << "; user catalogue: " << users.rows << " rows, " << users.new_ids << " users only there";
  os << "; duplicates: " << duplicates.describe();
  for (const auto& n : notes) os << "; " << n;
  return os.str();
}

Dataset load_dataset(const DatasetSpec& spec, DatasetLoadReport* report_out) {
  DatasetLoadReport report;
  Dataset ds;
  if (!spec.dir().empty()) {
    MTREC_CHECK(spec.files().empty() && spec.items().path().empty() && spec.users().path().empty(),
                "a DatasetSpec reads either a folder (", spec.dir(),
                ", whose items.csv/users.csv are its catalogues) or interaction files and catalogues, not both");
    ds = read_dataset_dir(spec.dir(), spec.csv());
    const std::string path = (std::filesystem::path(spec.dir()) / "interactions.csv").string();
    const std::string beh =
        ds.behaviors.size() == 1 ? ds.behaviors.raw(0) : std::to_string(ds.behaviors.size()) + " behaviours";
    report.files.push_back({path, beh, static_cast<int64_t>(ds.interactions.size()), ds.interactions.has_rating,
                            ds.interactions.has_timestamp});
  } else {
    MTREC_CHECK(!spec.files().empty(),
                "a DatasetSpec needs at least one interaction file (file(PATH)) or a folder (dir(PATH))");
    std::vector<Interactions> parts;
    bool any_rating = false, all_timestamps = true, any_timestamp = false, any_context = false;
    for (size_t k = 0; k < spec.files().size(); ++k) {
      const InteractionFile& f = spec.files()[k];
      CsvOptions o = f.own_csv ? f.csv : spec.csv();
      if (!f.behavior.empty()) o.default_behavior(f.behavior).behavior(ColumnSpec::none());
      Dataset part = k == 0 ? read_csv(f.path, o) : read_csv_with_ids(f.path, o, ds, /*allow_new_ids=*/true);
      const Interactions& x = part.interactions;
      std::string beh = f.behavior;
      if (beh.empty()) {
        std::vector<bool> seen(static_cast<size_t>(part.behaviors.size()), false);
        for (int16_t b : x.behavior) seen[static_cast<size_t>(b)] = true;
        for (int32_t b = 0; b < part.behaviors.size(); ++b)
          if (seen[static_cast<size_t>(b)]) beh += (beh.empty() ? "" : ",") + part.behaviors.raw(b);
      }
      report.files.push_back({f.path, beh, static_cast<int64_t>(x.size()), x.has_rating, x.has_timestamp});
      any_rating |= x.has_rating;
      all_timestamps &= x.has_timestamp;
      any_timestamp |= x.has_timestamp;
      any_context |= x.has_context;
      parts.push_back(std::move(part.interactions));
      part.interactions = Interactions();
      ds = std::move(part);  // the maps so far (a superset of the previous ones)
    }
    if (!spec.name().empty()) ds.name = spec.name();
    Interactions& all = ds.interactions;
    all.has_rating = any_rating;
    all.has_timestamp = all_timestamps;
    all.has_context = any_context;  // rows of files without a context column have none (-1)
    size_t n = 0;
    for (const auto& p : parts) n += p.size();
    all.reserve(n);
    for (const auto& p : parts)
      for (size_t r = 0; r < p.size(); ++r)
        all.push_back(p.user[r], p.item[r], p.has_rating ? p.rating[r] : 1.0f, p.has_timestamp ? p.timestamp[r] : 0,
                      p.scenario[r], p.behavior[r], p.has_context ? p.context[r] : -1);
    if (any_rating && parts.size() > 1)
      for (const auto& f : report.files)
        if (!f.has_rating) report.notes.push_back(f.path + " has no ratings: its rows have rating 1");
    if (any_timestamp && !all_timestamps) {
      std::string without;
      for (const auto& f : report.files)
        if (!f.has_timestamp) without += (without.empty() ? "" : ", ") + f.path;
      report.notes.push_back("timestamps dropped: " + without +
                             " has none, so time order (loo, temporal) is unavailable");
    }
    if (!spec.items().path().empty()) {
      report.items = read_catalog(spec.items(), CatalogRole::Item, ds.items, &ds.item_text);
    }
    if (!spec.users().path().empty()) {
      report.users = read_catalog(spec.users(), CatalogRole::User, ds.users, &ds.user_text);
    }
    if (!ds.item_text.fields().empty()) ds.item_text.resize(ds.num_items());
    if (!ds.user_text.fields().empty()) ds.user_text.resize(ds.num_users());
  }
  if (!spec.name().empty()) ds.name = spec.name();
  ds.interactions = apply_duplicate_policy(ds.interactions, spec.duplicates(), &report.duplicates);
  ds.validate();
  if (report_out) *report_out = std::move(report);
  return ds;
}

}  // namespace mtrec
