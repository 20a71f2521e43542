#pragma once
// Which rows each head learns from, for datasets whose rating column is a rating (MovieLens)
// or a behaviour label (the synthetic world: stars on "rating" rows, 1 on "click"/"wishlist",
// 0 on "impression" exposures).
//   Interactions r = mtrec::explicit_ratings(ds, train);          // rating head
//   Interactions p = mtrec::implicit_positives(ds, train, 4.0f);  // CTR / DMF positives
#include "mtrec/data/schema.h"

namespace mtrec {

/// Rows that carry a star rating: behaviour "rating" when the dataset has other behaviours too,
/// every row otherwise. Throws mtrec::Error when `x` has no ratings.
Interactions explicit_ratings(const Dataset& ds, const Interactions& x);

/// Positive rows: never "impression"; on rating-only data, those rated >= min_rating (0: all).
/// When the label column is not a rating (several behaviours), has_rating is cleared so that
/// consumers treat every positive alike.
Interactions implicit_positives(const Dataset& ds, const Interactions& x, float min_rating = 0);

}  // namespace mtrec
