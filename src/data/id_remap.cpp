#include "mtrec/data/id_remap.h"

#include <algorithm>
#include <string>
#include <vector>

#include "mtrec/core/check.h"

namespace mtrec {

Interactions remap_ids(const Interactions& x, const Dataset& from, const IdMap& users, const IdMap& items,
                       const IdMap& scenarios, int64_t& dropped) {
  x.check_consistent();
  std::vector<int32_t> umap(from.num_users()), imap(from.num_items());
  for (int32_t u = 0; u < from.num_users(); ++u) umap[u] = users.find(from.users.raw(u));
  for (int32_t i = 0; i < from.num_items(); ++i) imap[i] = items.find(from.items.raw(i));
  std::vector<size_t> keep;
  for (size_t k = 0; k < x.size(); ++k) {
    const int32_t u = x.user[k], i = x.item[k];
    MTREC_CHECK(u >= 0 && u < from.num_users() && i >= 0 && i < from.num_items(), "row ", k, ": user ", u, " / item ",
                i, " outside the data set's ", from.num_users(), " users and ", from.num_items(), " items");
    if (umap[u] >= 0 && imap[i] >= 0) keep.push_back(k);
  }
  dropped += static_cast<int64_t>(x.size() - keep.size());
  Interactions out = x.subset(keep);
  for (auto& u : out.user) u = umap[u];
  for (auto& i : out.item) i = imap[i];
  if (scenarios.size() > 0) {
    std::vector<int16_t> smap(std::max<int32_t>(1, from.scenarios.size()), -1);
    for (size_t s = 0; s < smap.size(); ++s) {
      const std::string name = from.scenarios.size() > 0 ? from.scenarios.raw(static_cast<int32_t>(s)) : "default";
      smap[s] = static_cast<int16_t>(scenarios.find(name));
    }
    for (size_t k = 0; k < out.size(); ++k) {
      const int16_t s = out.scenario[k];
      MTREC_CHECK(s >= 0 && static_cast<size_t>(s) < smap.size(), "row ", keep[k], ": scenario id ", s,
                  " outside the data set's ", from.scenarios.size(), " scenarios");
      if (smap[s] < 0) {
        std::string known;
        for (const auto& r : scenarios.raws()) known += (known.empty() ? "" : ", ") + r;
        const std::string name = from.scenarios.size() > 0 ? from.scenarios.raw(s) : "default";
        MTREC_CHECK(false, "scenario '", name, "' (row ", keep[k], ") is not among the ", scenarios.size(),
                    " scenarios of the target id map (", known, ")");
      }
      out.scenario[k] = smap[s];
    }
  }
  return out;
}

}  // namespace mtrec
