#include "mtrec/serve/json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>

namespace mtrec {
namespace {

using json = nlohmann::json;

// Titles come from user files: invalid UTF-8 is replaced rather than failing the answer.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

json parse_document(std::string_view body) {
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // nlohmann's message carries the byte offset ("at line 1, column 9").
    std::string m = e.what();
    const auto pos = m.find("] ");
    throw RequestError("body", "malformed JSON: " + (pos == std::string::npos ? m : m.substr(pos + 2)));
  }
}

std::string as_string(const json& v, const std::string& path) {
  if (v.is_string()) return v.get<std::string>();
  throw RequestError(path, std::string("expected a string, got ") + type_name(v));
}

// Ids (users, items) and predicate values: a string, or an integer read as its digits
// ({"user": 42}), since ids are often numbers in the client's data.
std::string as_id(const json& v, const std::string& path) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  throw RequestError(path, std::string("expected a string or an integer id, got ") + type_name(v));
}

int64_t as_int(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      throw RequestError(path, "integer out of range: " + v.dump());
    return int64_t(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  throw RequestError(path, std::string("expected an integer, got ") + (v.is_number() ? v.dump() : type_name(v)));
}

bool as_bool(const json& v, const std::string& path) {
  if (v.is_boolean()) return v.get<bool>();
  throw RequestError(path, std::string("expected true or false, got ") + type_name(v));
}

std::vector<std::string> as_ids(const json& v, const std::string& path) {
  if (!v.is_array()) throw RequestError(path, std::string("expected an array of ids, got ") + type_name(v));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t k = 0; k < v.size(); ++k) out.push_back(as_id(v[k], path + "[" + std::to_string(k) + "]"));
  return out;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void unknown_field(const std::string& prefix, const std::string& key, const std::vector<std::string>& known) {
  throw RequestError(prefix + key, "unknown field '" + key + "' (expected one of: " + join(known) + ")");
}

ItemPredicate parse_predicate(const json& v, const std::string& path) {
  if (!v.is_object())
    throw RequestError(path, std::string("expected an object {field, value, contains}, got ") + type_name(v));
  static const std::vector<std::string> known = {"field", "value", "contains"};
  ItemPredicate p;
  bool has_field = false, has_value = false;
  for (const auto& [key, val] : v.items()) {
    if (val.is_null()) continue;
    const std::string at = path + "." + key;
    if (key == "field") {
      p.field = as_string(val, at);
      has_field = true;
    } else if (key == "value") {
      p.value = as_id(val, at);
      has_value = true;
    } else if (key == "contains") {
      p.contains = as_bool(val, at);
    } else {
      unknown_field(path + ".", key, known);
    }
  }
  if (!has_field || p.field.empty()) throw RequestError(path + ".field", "a catalogue field name is required");
  if (!has_value) throw RequestError(path + ".value", "a value is required");
  return p;
}

// `prefix`: "" for a single request, "requests[3]." inside a batch.
RecommendRequest parse_request(const json& v, const std::string& prefix) {
  const std::string self = prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1);
  if (!v.is_object()) throw RequestError(self, std::string("expected a JSON object, got ") + type_name(v));
  static const std::vector<std::string> known = {"user",    "profile",      "recent_items", "k",    "scenario",
                                                 "context", "exclude_seen", "allow",        "deny", "where",
                                                 "explain", "explore",      "seed"};
  RecommendRequest r;
  for (const auto& [key, val] : v.items()) {
    if (val.is_null()) continue;
    const std::string at = prefix + key;
    if (key == "user") {
      r.user = as_id(val, at);
    } else if (key == "profile") {
      r.profile = as_string(val, at);
    } else if (key == "recent_items") {
      r.recent_items = as_ids(val, at);
    } else if (key == "k") {
      r.k = as_int(val, at);
    } else if (key == "scenario") {
      r.scenario = as_string(val, at);
    } else if (key == "context") {
      r.context = as_string(val, at);
    } else if (key == "exclude_seen") {
      r.exclude_seen = as_bool(val, at);
    } else if (key == "allow") {
      r.allow = as_ids(val, at);
    } else if (key == "deny") {
      r.deny = as_ids(val, at);
    } else if (key == "where") {
      if (!val.is_array())
        throw RequestError(at, std::string("expected an array of predicates, got ") + type_name(val));
      for (size_t k = 0; k < val.size(); ++k)
        r.where.push_back(parse_predicate(val[k], at + "[" + std::to_string(k) + "]"));
    } else if (key == "explain") {
      r.explain = as_int(val, at);
      if (r.explain < 0) throw RequestError(at, "expected a count >= 0, got " + std::to_string(r.explain));
    } else if (key == "explore") {
      r.explore = as_string(val, at);
    } else if (key == "seed") {
      r.seed = as_int(val, at);
      if (r.seed < 0) throw RequestError(at, "expected a seed >= 0, got " + std::to_string(r.seed));
    } else {
      unknown_field(prefix, key, known);
    }
  }
  return r;
}

json predicates_json(const std::vector<ItemPredicate>& where) {
  json a = json::array();
  for (const auto& p : where) a.push_back({{"field", p.field}, {"value", p.value}, {"contains", p.contains}});
  return a;
}

json response_json(const RecommendResponse& r) {
  json items = json::array();
  for (const auto& rec : r.items) {
    json because = json::array();
    for (const auto& e : rec.because)
      because.push_back({{"item", e.item}, {"title", e.title}, {"similarity", e.similarity}});
    json item = {{"item", rec.item},
                 {"title", rec.title},
                 {"index", rec.index},
                 {"score", rec.score},
                 {"because", std::move(because)}};
    if (!r.exploration.empty()) item["propensity"] = rec.propensity, item["prefix_propensity"] = rec.prefix_propensity;
    items.push_back(std::move(item));
  }
  json out = {{"items", std::move(items)},
              {"scenario", r.scenario},
              {"scenario_source", r.scenario_source},
              {"scenario_confidence", r.scenario_confidence},
              {"user_kind", r.user_kind},
              {"retrieval", r.retrieval},
              {"model_version", r.model_version}};
  if (!r.exploration.empty()) out["exploration"] = r.exploration, out["seed"] = r.seed;
  return out;
}

std::vector<std::string> split_ids(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

RecommendRequest parse_recommend_request(std::string_view body) { return parse_request(parse_document(body), ""); }

std::vector<RecommendRequest> parse_batch_request(std::string_view body) {
  const json doc = parse_document(body);
  if (!doc.is_object())
    throw RequestError("body", std::string("expected a JSON object {\"requests\": [...]}, got ") + type_name(doc));
  for (const auto& [key, val] : doc.items())
    if (key != "requests") unknown_field("", key, {"requests"});
  if (!doc.contains("requests")) throw RequestError("requests", "a batch needs \"requests\": [request, ...]");
  const json& list = doc["requests"];
  if (!list.is_array())
    throw RequestError("requests", std::string("expected an array of requests, got ") + type_name(list));
  if (list.empty()) throw RequestError("requests", "a batch needs at least one request");
  std::vector<RecommendRequest> out;
  out.reserve(list.size());
  for (size_t k = 0; k < list.size(); ++k)
    out.push_back(parse_request(list[k], "requests[" + std::to_string(k) + "]."));
  return out;
}

ItemPredicate parse_item_predicate(std::string_view text, const std::string& field_path) {
  const size_t pos = text.find_first_of("=~");
  if (pos == std::string_view::npos || pos == 0)
    throw RequestError(field_path, "expected field=value or field~value (contains), got '" + std::string(text) + "'");
  ItemPredicate p;
  p.field = std::string(text.substr(0, pos));
  p.value = std::string(text.substr(pos + 1));
  p.contains = text[pos] == '~';
  return p;
}

SimilarRequest parse_similar_request(const std::multimap<std::string, std::string>& params) {
  SimilarRequest r;
  bool has_item = false;
  for (const auto& [key, val] : params) {
    if (key != "where" && params.count(key) > 1)
      throw RequestError(key, "given " + std::to_string(params.count(key)) + " times");
    if (key == "item") {
      r.item = val;
      has_item = !val.empty();
    } else if (key == "k") {
      // The whole text must be the number: "10x" or "1e3" is not a k.
      char* end = nullptr;
      errno = 0;
      const long long k = std::strtoll(val.c_str(), &end, 10);
      if (val.empty() || *end != '\0' || errno == ERANGE)
        throw RequestError("k", "expected an integer, got '" + val + "'");
      r.k = k;
    } else if (key == "allow") {
      r.allow = split_ids(val);
    } else if (key == "deny") {
      r.deny = split_ids(val);
    } else if (key == "where") {
      r.where.push_back(parse_item_predicate(val, "where"));
    } else {
      throw RequestError(key, "unknown parameter '" + key + "' (expected one of: item, k, allow, deny, where)");
    }
  }
  if (!has_item) throw RequestError("item", "an item id is required (/similar?item=ID)");
  return r;
}

std::string to_json(const RecommendRequest& r) {
  json j = {{"user", r.user},
            {"profile", r.profile},
            {"recent_items", r.recent_items},
            {"k", r.k},
            {"scenario", r.scenario},
            {"context", r.context},
            {"exclude_seen", r.exclude_seen},
            {"allow", r.allow},
            {"deny", r.deny},
            {"where", predicates_json(r.where)},
            {"explain", r.explain}};
  if (!r.explore.empty()) j["explore"] = r.explore;
  if (r.seed >= 0) j["seed"] = r.seed;
  return dump(j);
}

std::string to_json(const RecommendResponse& response) { return dump(response_json(response)); }

std::string to_json(const std::vector<RecommendResponse>& responses) {
  json a = json::array();
  for (const auto& r : responses) a.push_back(response_json(r));
  return dump(json{{"responses", std::move(a)}});
}

std::string to_json(const RecommenderInfo& i, const std::vector<std::string>& sample_users) {
  json j = {{"path", i.path},
            {"task", i.task},
            {"version", i.version},
            {"default_scenario", i.default_scenario},
            {"task_map", i.task_map},
            {"retrieval", i.retrieval},
            {"scenarios", i.scenarios},
            {"heads", i.heads},
            {"users", i.users},
            {"items", i.items},
            {"load_seconds", i.load_seconds},
            {"loaded_at_unix", i.loaded_at_unix},
            {"reloads", i.reloads}};
  if (!sample_users.empty()) j["sample_users"] = sample_users;
  return dump(j);
}

std::string error_json(const std::string& message, const std::string& field) {
  json j = {{"error", message}};
  if (!field.empty()) j["field"] = field;
  return dump(j);
}

}  // namespace mtrec
