#pragma once
// Interactions of one data set re-expressed in another id space, e.g. a checkpoint's: raw ids
// are looked up by name.
//   int64_t dropped = 0;
//   mtrec::Interactions t = mtrec::remap_ids(test, ds, ck.users, ck.items, ck.scenarios, dropped);
#include <cstdint>

#include "mtrec/data/schema.h"

namespace mtrec {

/// Rows of `x` (dense ids of `from`) in the id space of `users`, `items` and `scenarios`.
/// Rows whose user or item the target maps do not know are dropped and counted in `dropped`
/// (a model has nothing to say about them). When `scenarios` is non-empty, each row's scenario
/// is mapped by name ("default" for a data set without scenarios); a scenario the target does
/// not know is an error naming it: mapping it to some other scenario would silently score the
/// row as that surface. An empty `scenarios` leaves the scenario column as it is. Contexts keep
/// their ids (they index `from`'s context_text).
Interactions remap_ids(const Interactions& x, const Dataset& from, const IdMap& users, const IdMap& items,
                       const IdMap& scenarios, int64_t& dropped);

}  // namespace mtrec
