#include "mtrec/data/schema.h"

#include <algorithm>
#include <limits>

#include "mtrec/core/check.h"

namespace mtrec {

int32_t IdMap::intern(std::string_view raw) {
  auto it = dense_.find(std::string(raw));
  if (it != dense_.end()) return it->second;
  MTREC_CHECK(raw_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), "IdMap overflow at ", raw_.size(),
              " ids");
  auto id = static_cast<int32_t>(raw_.size());
  raw_.emplace_back(raw);
  dense_.emplace(raw_.back(), id);
  return id;
}

int32_t IdMap::find(std::string_view raw) const {
  auto it = dense_.find(std::string(raw));
  return it == dense_.end() ? -1 : it->second;
}

const std::string& IdMap::raw(int32_t id) const {
  MTREC_CHECK(id >= 0 && id < size(), "dense id ", id, " out of range [0, ", size(), ")");
  return raw_[static_cast<size_t>(id)];
}

void Interactions::reserve(size_t n) {
  user.reserve(n);
  item.reserve(n);
  if (has_rating) rating.reserve(n);
  if (has_timestamp) timestamp.reserve(n);
  scenario.reserve(n);
  behavior.reserve(n);
  if (has_context) context.reserve(n);
}

void Interactions::push_back(int32_t u, int32_t i, float r, int64_t ts, int16_t scen, int16_t beh, int32_t ctx) {
  user.push_back(u);
  item.push_back(i);
  if (has_rating) rating.push_back(r);
  if (has_timestamp) timestamp.push_back(ts);
  scenario.push_back(scen);
  behavior.push_back(beh);
  if (has_context) context.push_back(ctx);
}

Interactions Interactions::subset(const std::vector<size_t>& rows) const {
  Interactions out;
  out.has_rating = has_rating;
  out.has_timestamp = has_timestamp;
  out.has_context = has_context;
  out.reserve(rows.size());
  for (size_t r : rows) {
    MTREC_CHECK(r < size(), "subset row ", r, " out of range [0, ", size(), ")");
    out.user.push_back(user[r]);
    out.item.push_back(item[r]);
    if (has_rating) out.rating.push_back(rating[r]);
    if (has_timestamp) out.timestamp.push_back(timestamp[r]);
    out.scenario.push_back(scenario[r]);
    out.behavior.push_back(behavior[r]);
    if (has_context) out.context.push_back(context[r]);
  }
  return out;
}

void Interactions::check_consistent() const {
  size_t n = user.size();
  MTREC_CHECK(item.size() == n && scenario.size() == n && behavior.size() == n,
              "interaction arrays differ in length: user=", n, " item=", item.size(), " scenario=", scenario.size(),
              " behavior=", behavior.size());
  MTREC_CHECK(!has_rating || rating.size() == n, "rating array has ", rating.size(), " entries for ", n,
              " interactions");
  MTREC_CHECK(!has_timestamp || timestamp.size() == n, "timestamp array has ", timestamp.size(), " entries for ", n,
              " interactions");
  MTREC_CHECK(!has_context || context.size() == n, "context array has ", context.size(), " entries for ", n,
              " interactions");
}

int TextCatalog::field_index(std::string_view name) const {
  for (size_t f = 0; f < fields_.size(); ++f)
    if (fields_[f] == name) return static_cast<int>(f);
  return -1;
}

void TextCatalog::resize(int32_t n) {
  values_.resize(static_cast<size_t>(n));
  for (auto& row : values_) row.resize(fields_.size());
}

void TextCatalog::set(int32_t id, std::string_view name, std::string value) {
  MTREC_CHECK(id >= 0, "negative catalogue id ", id);
  int f = field_index(name);
  if (f < 0) {
    fields_.emplace_back(name);
    f = static_cast<int>(fields_.size()) - 1;
    for (auto& row : values_) row.resize(fields_.size());
  }
  if (id >= size()) resize(id + 1);
  values_[static_cast<size_t>(id)][static_cast<size_t>(f)] = std::move(value);
}

const std::string& TextCatalog::get(int32_t id, std::string_view name) const {
  static const std::string empty;
  int f = field_index(name);
  if (f < 0 || id < 0 || id >= size()) return empty;
  return values_[static_cast<size_t>(id)][static_cast<size_t>(f)];
}

std::string TextCatalog::text(int32_t id) const {
  std::string out;
  if (id < 0 || id >= size()) return out;
  for (const auto& v : values_[static_cast<size_t>(id)]) {
    if (v.empty()) continue;
    if (!out.empty()) out += ". ";
    out += v;
  }
  return out;
}

void Dataset::validate() const {
  interactions.check_consistent();
  for (size_t r = 0; r < interactions.size(); ++r) {
    MTREC_CHECK(interactions.user[r] >= 0 && interactions.user[r] < num_users(), "interaction ", r, " has user id ",
                interactions.user[r], " outside [0, ", num_users(), ")");
    MTREC_CHECK(interactions.item[r] >= 0 && interactions.item[r] < num_items(), "interaction ", r, " has item id ",
                interactions.item[r], " outside [0, ", num_items(), ")");
    MTREC_CHECK(
        !interactions.has_context || (interactions.context[r] >= -1 && interactions.context[r] < context_text.size()),
        "interaction ", r, " has context id ", interactions.has_context ? interactions.context[r] : 0, " outside [-1, ",
        context_text.size(), ")");
  }
}

static int64_t median_of(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

DatasetStats compute_stats(const Dataset& ds) {
  const auto& x = ds.interactions;
  DatasetStats s;
  s.users = ds.num_users();
  s.items = ds.num_items();
  s.interactions = static_cast<int64_t>(x.size());
  s.scenarios = ds.scenarios.size();
  s.behaviors = ds.behaviors.size();
  s.has_rating = x.has_rating;
  s.has_timestamp = x.has_timestamp;
  if (s.users > 0 && s.items > 0) s.density = static_cast<double>(s.interactions) / (double(s.users) * double(s.items));
  if (x.has_rating && !x.rating.empty()) {
    auto [lo, hi] = std::minmax_element(x.rating.begin(), x.rating.end());
    s.rating_min = *lo;
    s.rating_max = *hi;
    double sum = 0;
    for (float r : x.rating) sum += r;
    s.rating_mean = sum / static_cast<double>(x.rating.size());
  }
  if (x.has_timestamp && !x.timestamp.empty()) {
    auto [lo, hi] = std::minmax_element(x.timestamp.begin(), x.timestamp.end());
    s.timestamp_min = *lo;
    s.timestamp_max = *hi;
  }
  std::vector<int64_t> per_user(static_cast<size_t>(s.users)), per_item(static_cast<size_t>(s.items));
  for (size_t r = 0; r < x.size(); ++r) {
    per_user[static_cast<size_t>(x.user[r])]++;
    per_item[static_cast<size_t>(x.item[r])]++;
  }
  if (s.users) s.mean_per_user = double(s.interactions) / double(s.users);
  if (s.items) s.mean_per_item = double(s.interactions) / double(s.items);
  s.median_per_user = median_of(std::move(per_user));
  s.median_per_item = median_of(std::move(per_item));
  return s;
}

}  // namespace mtrec
