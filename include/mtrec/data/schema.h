#pragma once
// The in-memory schema every reader produces and every model consumes.
//
// A Dataset holds interactions (struct of arrays: user, item, optional rating, optional
// timestamp, scenario, behaviour, optional context), the text catalogues of items and users
// (and of request contexts), and dense ID maps
// both ways (raw string id <-> 0..n-1). The ID maps travel inside checkpoints so that a model
// answers in the caller's own ids.
//
//   mtrec::Dataset ds = mtrec::read_movielens_100k("data/ml-100k");
//   int32_t u = ds.users.find("196");              // -1 when unknown
//   std::string title = ds.item_text.get(ds.interactions.item[0], "title");
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mtrec {

/// Dense ids for raw string ids, both ways.
class IdMap {
 public:
  /// The dense id of `raw`, adding it when new.
  int32_t intern(std::string_view raw);
  /// The dense id of `raw`, or -1 when it is not in the map.
  int32_t find(std::string_view raw) const;
  /// The raw id of dense id `id`; throws mtrec::Error when out of range.
  const std::string& raw(int32_t id) const;
  int32_t size() const { return static_cast<int32_t>(raw_.size()); }
  const std::vector<std::string>& raws() const { return raw_; }
  bool operator==(const IdMap& other) const { return raw_ == other.raw_; }

 private:
  std::vector<std::string> raw_;
  std::unordered_map<std::string, int32_t> dense_;
};

/// Interactions as parallel arrays (struct of arrays: cache-friendly scans, cheap subsets).
/// `rating` is present when has_rating (explicit feedback), `timestamp` when has_timestamp;
/// `scenario` and `behavior` index Dataset::scenarios / Dataset::behaviors (0 when absent);
/// `context`, present when has_context, indexes Dataset::context_text (the request's text).
struct Interactions {
  std::vector<int32_t> user;
  std::vector<int32_t> item;
  std::vector<float> rating;       // empty unless has_rating
  std::vector<int64_t> timestamp;  // empty unless has_timestamp
  std::vector<int16_t> scenario;
  std::vector<int16_t> behavior;
  std::vector<int32_t> context;  // empty unless has_context; index into Dataset::context_text, -1 = none
  bool has_rating = false;
  bool has_timestamp = false;
  bool has_context = false;

  size_t size() const { return user.size(); }
  bool empty() const { return user.empty(); }
  void reserve(size_t n);
  /// Appends one interaction; rating/timestamp/context are ignored unless the flags are set.
  void push_back(int32_t u, int32_t i, float r = 1.0f, int64_t ts = 0, int16_t scen = 0, int16_t beh = 0,
                 int32_t ctx = -1);
  /// The interactions at `rows`, in that order.
  Interactions subset(const std::vector<size_t>& rows) const;
  /// Throws mtrec::Error when the arrays disagree in length.
  void check_consistent() const;
};

/// Text fields of catalogue entities (items or users), indexed by dense id.
class TextCatalog {
 public:
  TextCatalog() = default;
  explicit TextCatalog(std::vector<std::string> field_names) : fields_(std::move(field_names)) {}
  const std::vector<std::string>& fields() const { return fields_; }
  /// Index of a field, or -1.
  int field_index(std::string_view name) const;
  /// Sets field `name` of entity `id` (grows the table; adds the field when new).
  void set(int32_t id, std::string_view name, std::string value);
  /// The field's text, "" when unset.
  const std::string& get(int32_t id, std::string_view name) const;
  /// All fields joined as "value1. value2. ..." for the text encoder ("" when none).
  std::string text(int32_t id) const;
  int32_t size() const { return static_cast<int32_t>(values_.size()); }
  void resize(int32_t n);

 private:
  std::vector<std::string> fields_;
  std::vector<std::vector<std::string>> values_;  // [id][field]
};

struct Dataset {
  std::string name;
  IdMap users, items, scenarios, behaviors;
  Interactions interactions;
  TextCatalog item_text, user_text;
  TextCatalog context_text;  // field "text": the query / page / placement text of a request

  int32_t num_users() const { return users.size(); }
  int32_t num_items() const { return items.size(); }
  /// Throws mtrec::Error when an interaction points outside the ID maps (or its context
  /// outside context_text).
  void validate() const;
};

/// Counts and sparsity for `mtrec data stats`.
struct DatasetStats {
  int64_t users = 0, items = 0, interactions = 0, scenarios = 0, behaviors = 0;
  double density = 0;  // interactions / (users * items)
  double rating_min = 0, rating_max = 0, rating_mean = 0;
  int64_t timestamp_min = 0, timestamp_max = 0;
  double mean_per_user = 0, mean_per_item = 0;
  int64_t median_per_user = 0, median_per_item = 0;
  bool has_rating = false, has_timestamp = false;
};
DatasetStats compute_stats(const Dataset& ds);

}  // namespace mtrec
