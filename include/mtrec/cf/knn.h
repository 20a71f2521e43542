#pragma once
// Neighbourhood collaborative filtering (user- and item-based KNN) for ratings and implicit
// feedback.
//   mtrec::KnnModel knn(mtrec::KnnOptions().kind(mtrec::KnnKind::Item)
//                           .similarity(mtrec::KnnSimilarity::PearsonBaseline).k(40).baseline(true));
//   knn.fit(train, ds.num_users(), ds.num_items());
//   float r = knn.predict(user, item);                 // rating prediction
//   knn.score(user, candidates, scores);               // top-N scoring (a RankingEvaluator ScoreFn)
//   mtrec::save_checkpoint("knn.ckpt", mtrec::knn_checkpoint(knn, ds.users, ds.items, false));  // model/io.h
//
// Similarities are between "rows": items for item-based, users for user-based; a row's entries
// are its ratings (1 for implicit data). n = number of co-rated entries.
//  - Cosine: missing entries count as zero (sparse cosine, full norms; for 0/1 data
//    |common| / sqrt(|a| |b|)).
//  - AdjustedCosine: cosine over co-rated entries after subtracting the mean of the other side
//    (item-based: each user's mean rating, Sarwar et al.; user-based: each item's mean).
//  - Pearson: correlation over the co-rated entries.
//  - PearsonBaseline: cosine over co-rated entries of the baseline residuals r - b_ui (Koren).
// Then sim <- sim * n / (n + shrinkage) (shrinkage > 0), and sim = 0 when n < min_support.
// Each row keeps its max_neighbors most similar rows (0: every non-zero similarity).
//
// Prediction for (u, i): among the k most similar neighbours that rated the pair's other side
// (item-based: items j rated by u, most similar to i), with baseline
//   b_ui + sum sim * (r - b) / sum |sim|,  b_ui = mu + b_u + b_i  (regularised ALS passes);
// without baseline sum sim * r / sum sim over positive similarities only (a negative weight
// in a mean of raw ratings is meaningless). With no usable neighbour: b_ui, or without baseline
// the user mean (item-based) / item mean (user-based), then the other mean, then the global mean.
// Predictions are clipped to the training rating range.
#include <torch/arg.h>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"

namespace mtrec {

enum class KnnKind { User, Item };
enum class KnnSimilarity { Cosine, AdjustedCosine, Pearson, PearsonBaseline };

std::string_view to_string(KnnKind kind);
std::string_view to_string(KnnSimilarity sim);
/// "user" | "item"; throws mtrec::Error listing the choices otherwise.
KnnKind parse_knn_kind(std::string_view s);
/// "cosine" | "adjusted_cosine" | "pearson" | "pearson_baseline".
KnnSimilarity parse_knn_similarity(std::string_view s);

#define MTREC_KNN_OPTIONS(X)                                         \
  X(KnnKind, kind, KnnKind::Item)                                    \
  X(KnnSimilarity, similarity, KnnSimilarity::PearsonBaseline)       \
  /* neighbours used per prediction */                               \
  X(int, k, 40)                                                      \
  /* sim * n / (n + shrinkage); 0 disables */                        \
  X(double, shrinkage, 100)                                          \
  /* co-rated entries needed for a non-zero similarity */            \
  X(int, min_support, 1)                                             \
  /* neighbours stored per row; 0 keeps every non-zero similarity */ \
  X(int, max_neighbors, 0)                                           \
  /* predict residuals around mu + b_u + b_i */                      \
  X(bool, baseline, true)                                            \
  /* ALS passes for the biases */                                    \
  X(int, baseline_epochs, 10)                                        \
  X(double, reg_user, 15)                                            \
  X(double, reg_item, 10)                                            \
  /* clip rating predictions to the training range */                \
  X(bool, clip, true)                                                \
  /* 0: hardware concurrency */                                      \
  X(int, threads, 0)

struct KnnOptions {
  MTREC_OPTIONS(MTREC_KNN_OPTIONS)
};

/// One stored neighbour of a row.
struct KnnNeighbor {
  int32_t index;
  float sim;
};

class KnnModel {
 public:
  explicit KnnModel(KnnOptions options = {});
  ~KnnModel();
  KnnModel(KnnModel&&) noexcept;
  KnnModel& operator=(KnnModel&&) noexcept;

  /// Fits biases and similarities. Ratings are used when train.has_rating, else every
  /// interaction counts 1; a repeated (user, item) keeps its last value.
  void fit(const Interactions& train, int32_t num_users, int32_t num_items);
  bool fitted() const;

  float predict(int32_t user, int32_t item) const;
  /// Predictions for every (user[r], item[r]) of `pairs` (multi-threaded).
  std::vector<float> predict(const Interactions& pairs) const;
  /// Top-N score of each candidate item for `user`: item-based, the sum of the candidate's
  /// similarities to the user's items among its k nearest; user-based, the sum of the
  /// similarities of the user's k nearest users who interacted with the candidate.
  void score(int32_t user, const std::vector<int32_t>& items, std::vector<float>& out) const;

  /// Stored neighbours of a row (item for item-based, user for user-based), most similar first.
  std::vector<KnnNeighbor> neighbors(int32_t row) const;
  /// The baseline mu + b_u + b_i (mu when baseline is off).
  float baseline(int32_t user, int32_t item) const;
  double global_mean() const;

  const KnnOptions& options() const { return options_; }
  int32_t num_users() const;
  int32_t num_items() const;

  /// Binary form of the fitted model (options, biases, ratings, neighbour lists).
  std::string to_bytes() const;
  /// `source` names the origin in error messages.
  static KnnModel from_bytes(std::string_view bytes, const std::string& source = "<bytes>");

  struct State;

 private:
  KnnOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace mtrec
