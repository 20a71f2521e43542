#pragma once
// Small hand-written datasets and data-error helpers for the tests that link libmtrec.
#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/core/check.h"
#include "mtrec/data/schema.h"

namespace mtrec::test {

/// Implicit interactions from (user, item) pairs.
inline Interactions interactions_of(const std::vector<std::pair<int32_t, int32_t>>& pairs) {
  Interactions x;
  for (auto [u, i] : pairs) x.push_back(u, i);
  return x;
}

/// The message of the DataError thrown by `fn`; fails the test when none is thrown.
template <typename Fn>
std::string data_error(Fn&& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected a DataError";
  return "";
}

}  // namespace mtrec::test
