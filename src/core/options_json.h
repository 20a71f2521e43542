#pragma once
// JSON of an options struct declared with MTREC_OPTIONS (core/options.h), from its one field
// list. Enum fields need to_json / from_json overloads in their namespace (that throw on an
// unknown name). Private to the library's sources: it includes nlohmann/json.
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "mtrec/core/check.h"

namespace mtrec {

template <class Options>
nlohmann::json options_to_json(const Options& o) {
  nlohmann::json j = nlohmann::json::object();
  Options::visit_fields(o, [&j](const char* key, const auto& value) { j[key] = value; });
  return j;
}

/// Sets the fields `j` names (the others keep their values); throws mtrec::Error naming `what`
/// and the key for an unknown key or a value of the wrong type.
template <class Options>
void options_from_json(Options& o, const nlohmann::json& j, const std::string& what) {
  MTREC_CHECK(j.is_object(), what, ": expected a JSON object, got ", j.dump());
  std::set<std::string> known;
  Options::visit_fields(o, [&](const char* key, auto& field) {
    known.insert(key);
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const std::exception& e) {  // a JSON type error, or an enum's unknown name
      MTREC_FAIL(what, ": option '", key, "' = ", j.at(key).dump(), ": ", e.what());
    }
  });
  for (const auto& [key, value] : j.items()) MTREC_CHECK(known.count(key), what, ": unknown key '", key, "'");
}

}  // namespace mtrec
