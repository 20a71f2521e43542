#include "mtrec/data/labels.h"

#include "mtrec/core/check.h"

namespace mtrec {
namespace {
bool labels_are_behaviours(const Dataset& ds) { return ds.behaviors.size() > 1 && ds.behaviors.find("rating") >= 0; }
}  // namespace

Interactions explicit_ratings(const Dataset& ds, const Interactions& x) {
  MTREC_CHECK(x.has_rating, "dataset '", ds.name, "' has no ratings for the rating task");
  if (!labels_are_behaviours(ds)) return x;
  const int32_t rating = ds.behaviors.find("rating");
  std::vector<size_t> keep;
  for (size_t k = 0; k < x.size(); ++k)
    if (x.behavior[k] == rating) keep.push_back(k);
  return x.subset(keep);
}

Interactions implicit_positives(const Dataset& ds, const Interactions& x, float min_rating) {
  const int32_t impression = ds.behaviors.find("impression");
  const bool behaviours = labels_are_behaviours(ds);
  std::vector<size_t> keep;
  for (size_t k = 0; k < x.size(); ++k) {
    if (impression >= 0 && !x.behavior.empty() && x.behavior[k] == impression) continue;
    if (!behaviours && x.has_rating && min_rating > 0 && x.rating[k] < min_rating) continue;
    keep.push_back(k);
  }
  Interactions out = x.subset(keep);
  if (behaviours) {
    out.has_rating = false;
    out.rating.clear();
  }
  return out;
}

}  // namespace mtrec
