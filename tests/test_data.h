#pragma once
// Small hand-written datasets for the plain-C++ tests.
#include <cstdint>
#include <utility>
#include <vector>

#include "mtrec/data/schema.h"

namespace mtrec::test {

/// Implicit interactions from (user, item) pairs.
inline Interactions interactions_of(const std::vector<std::pair<int32_t, int32_t>>& pairs) {
  Interactions x;
  for (auto [u, i] : pairs) x.push_back(u, i);
  return x;
}

}  // namespace mtrec::test
