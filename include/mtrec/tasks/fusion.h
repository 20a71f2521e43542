#pragma once
// Score fusion of a collaborative-filtering scorer and a model:
//   final = α·norm(CF) + (1−α)·norm(model)
// Both score lists are normalised over the same candidate list of one user first, so that α
// weighs two quantities on the same scale (raw KNN sums and cosines or logits are not).
// Default: z-score per user over the candidates (mean 0, sd 1; a constant list maps to 0),
// robust to one outlying score; min-max to [0,1] is the alternative. α is chosen on
// validation data over a grid, never on the test set.
//   mtrec::ScoreFn fused = mtrec::fuse_score_fns(knn.score_fn(), dmf.score_fn(), 0.3);
//   mtrec::AlphaChoice c = mtrec::choose_alpha([&](double a) {
//       return valid_evaluator.evaluate(valid, mtrec::fuse_score_fns(cf, model, a)).at("NDCG@10"); });
#include <functional>
#include <utility>
#include <vector>

#include "mtrec/eval/evaluator.h"

namespace mtrec {

enum class FusionNorm { ZScore, MinMax };

/// Normalises one candidate list; a constant list (or a single score) maps to all zeros.
std::vector<float> normalize_scores(const std::vector<float>& scores, FusionNorm norm = FusionNorm::ZScore);
/// α·norm(cf) + (1−α)·norm(model), element-wise; α must be in [0, 1].
std::vector<float> fuse_scores(const std::vector<float>& cf, const std::vector<float>& model, double alpha,
                               FusionNorm norm = FusionNorm::ZScore);
/// A ScoreFn that scores the candidates with both and fuses them (thread-safe if both are).
ScoreFn fuse_score_fns(ScoreFn cf, ScoreFn model, double alpha, FusionNorm norm = FusionNorm::ZScore);

struct AlphaChoice {
  double alpha = 0;
  double metric = 0;
  std::vector<std::pair<double, double>> curve;  // (alpha, validation metric) over the grid
};
/// Evaluates `validation_metric(α)` (higher is better) over `grid`; ties go to the first.
AlphaChoice choose_alpha(const std::function<double(double alpha)>& validation_metric,
                         const std::vector<double>& grid = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1});

}  // namespace mtrec
