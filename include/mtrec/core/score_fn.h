#pragma once
// The one scoring callback every ranking model exposes and every evaluator and server calls.
// It lives below tasks/ and eval/ so that a head can offer one without including the evaluator.
#include <cstdint>
#include <functional>
#include <vector>

namespace mtrec {

/// Scores `items` for `user` into `out` (resized by the callee to items.size()). Called from
/// several threads at once unless the caller says otherwise (RankingOptions::threads(1)).
using ScoreFn = std::function<void(int32_t user, const std::vector<int32_t>& items, std::vector<float>& out)>;

}  // namespace mtrec
