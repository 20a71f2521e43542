#include "mtrec/model/task_map.h"

#include <algorithm>
#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/core/head.h"

namespace mtrec {

std::vector<std::pair<std::string, double>> TaskMap::heads(const std::string& scenario,
                                                           const std::string& fallback) const {
  if (auto it = entries.find(scenario); it != entries.end()) return it->second;
  if (auto it = entries.find("*"); it != entries.end()) return it->second;
  return {{fallback, 1.0}};
}

std::string TaskMap::to_string() const {
  std::string out;
  for (const auto& [s, hs] : entries) {
    out += (out.empty() ? "" : ";") + s + "=";
    for (size_t k = 0; k < hs.size(); ++k) out += (k ? "," : "") + hs[k].first + ":" + std::to_string(hs[k].second);
  }
  return out;
}

TaskMap parse_task_map(const std::string& text, const std::vector<std::string>& known) {
  TaskMap m;
  std::stringstream entries(text);
  for (std::string entry; std::getline(entries, entry, ';');) {
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    MTREC_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < entry.size(), "task map: entry '", entry,
                "' is not scenario=head[:weight],...");
    auto& heads = m.entries[entry.substr(0, eq)];
    std::stringstream hs(entry.substr(eq + 1));
    for (std::string h; std::getline(hs, h, ',');) {
      const size_t colon = h.find(':');
      std::string name = h.substr(0, colon);
      name = canonical_task_name(name);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string expected;
        for (const auto& k : known) expected += (expected.empty() ? "" : "|") + k;
        MTREC_FAIL("task map: unknown head '", name, "' in entry '", entry, "' (expected ", expected, ")");
      }
      double w = 1;
      if (colon != std::string::npos) {
        try {
          size_t used = 0;
          w = std::stod(h.substr(colon + 1), &used);
          MTREC_CHECK(used == h.size() - colon - 1, "trailing characters");
        } catch (const std::exception&) {
          MTREC_CHECK(false, "task map: weight '", h.substr(colon + 1), "' of head '", name, "' is not a number");
        }
      }
      heads.push_back({name, w});
    }
    MTREC_CHECK(!heads.empty(), "task map: entry '", entry, "' names no head");
  }
  return m;
}

}  // namespace mtrec
