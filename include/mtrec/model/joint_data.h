#pragma once
// The training examples of the unified joint model (model/unified.h) as one BatchSource: every
// training row is one example that carries the labels of every task it has, with a mask per
// task saying which rows carry them, so that one forward pass serves all heads.
//
//   mtrec::JointSource source(ds, train, mtrec::JointDataOptions().max_history(50).mlm_texts(32),
//                             context_rows, item_rows, tokenizer.pad_id(), mlm_options);
//   mtrec::Batcher batcher(source, mtrec::BatcherOptions().batch_size(512), device);
//   source.ctr_columns();   // {"click", "rating", "wishlist"} on the synthetic world
//
// Fields of a batch (all on the batch's device, first dimension B unless said otherwise):
//   "user", "item", "scenario"   int64 [B]
//   "history"      int64 [B, L]: the user's engaged training items strictly before this example
//                  in the user's time order (ties: the seeded order of mtrec::user_sequences;
//                  row order without timestamps),
//                  the last max_history of them as right-aligned tokens (item i -> i+1, 0 = pad);
//                  L = the longest in the batch, at least 1
//   "rating"       float [B]: the star (0 where absent); "mask/rating": rows that carry one by
//                  the rule of explicit_ratings (tasks/labels.h)
//   "click"        float [B, C] (C = ctr_columns().size()): column 0 = positive (the rule of
//                  implicit_positives with ctr_min_rating), column j > 0 = the row's behaviour is
//                  ctr_columns()[j]; "mask/ctr": rows with a CTR label (below)
//   "mask/next_item"  engaged rows (every row but impressions, whatever the star) with a
//                     non-empty history (the target is "item")
//   "mask/match"      engaged rows (the two-tower objective)
//   with context rows and contexts in the data: "context_ids" int64 [B, Lc] (padded with
//   pad_id), "context_mask" bool [B, Lc], "mask/scenario" bool [B] (rows with a context)
//   with MLM rows and options: "mlm/input_ids", "mlm/labels" int64 [M, Lm], "mlm/attention_mask",
//   "mlm/selected" bool [M, Lm]: mlm_texts catalogue texts masked as tasks/mlm.h's mlm_mask does
//
// CTR labels: on multi-behaviour data every exposure has one (impressions are the negatives);
// on rating-only data with ctr_min_rating > 0 the rows rated below it have none (a low star is
// neither a click nor an impression); otherwise every row is a positive. With ctr_negatives > 0,
// each positive adds that many sampled examples (the user, an item the user has no engaged
// training row for, the positive's scenario and history) whose only label is click = 0.
//
// Examples [0, train.size()) are the training rows in order, then the sampled negatives. The
// negatives and the MLM draws depend only on the epoch seed (and the batch's rows), so a
// resumed run sees the same batches; make_batch is const and thread-safe (it runs on the
// Batcher's prefetch thread).
#include <torch/arg.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/batch.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/schema.h"
#include "mtrec/tasks/mlm.h"

namespace mtrec {

#define MTREC_JOINT_DATA_OPTIONS(X)                                                                                    \
  /* most recent positive items before the example (tokens) */                                                         \
  X(int64_t, max_history, 50)                                                                                          \
  /* per positive, sampled unseen items as CTR negatives (0: none; use when the data has no non-positive exposures) */ \
  X(int, ctr_negatives, 0)                                                                                             \
  /* rating-only data: rows rated >= this are the CTR positives, the rest carry no CTR label; 0: every row is a        \
   * positive */                                                                                                       \
  X(float, ctr_min_rating, 0)                                                                                          \
  /* catalogue texts masked per batch for the MLM loss (0: none) */                                                    \
  X(int64_t, mlm_texts, 0)                                                                                             \
  /* time-order ties and the negatives drawn before the first begin_epoch */                                           \
  X(uint64_t, seed, 42)

struct JointDataOptions {
  MTREC_OPTIONS(MTREC_JOINT_DATA_OPTIONS)
};

/// Per user, the time-ordered positive items (seeded tie order of mtrec::user_sequences) of
/// some interactions: the history a user vector is computed from at evaluation and serving.
/// The order is that of all of the user's rows in `x` (impressions included), restricted to the
/// positives, so it agrees with the histories JointSource gives its training examples.
/// Without timestamps, the order is that of the rows.
class UserHistories {
 public:
  /// Positives as implicit_positives(ds, x, min_rating) defines them (tasks/labels.h).
  UserHistories(const Dataset& ds, const Interactions& x, int32_t num_users, uint64_t seed, float min_rating = 0);
  /// Chronological; throws mtrec::Error for a user outside [0, num_users).
  const std::vector<int32_t>& items(int32_t user) const;
  int32_t num_users() const { return static_cast<int32_t>(items_.size()); }
  /// The last max_len tokens (item+1) of each user's history, right-aligned in [B, max_len]
  /// int64 on the CPU (pack_histories of tasks/next_item.h). A user of -1 (unknown) has none.
  at::Tensor pack(const std::vector<int32_t>& users, int64_t max_len) const;

 private:
  std::vector<std::vector<int32_t>> items_;
};

class JointSource : public BatchSource {
 public:
  /// `train`: the training rows (dense ids of ds). context_rows[c]: real tokens of context text
  /// c (as Tokenizer::encode_rows makes them; empty: no scenario-classifier fields). mlm_rows:
  /// tokenised catalogue texts (empty, or mlm unset, or mlm_texts 0: no MLM fields). Throws
  /// mtrec::Error naming the value for ids outside ds, a context outside context_rows, or bad
  /// options.
  JointSource(const Dataset& ds, const Interactions& train, JointDataOptions options,
              std::vector<std::vector<int64_t>> context_rows = {}, std::vector<std::vector<int64_t>> mlm_rows = {},
              int64_t pad_id = 0, std::optional<MlmOptions> mlm = std::nullopt);

  /// Redraws the sampled CTR negatives and the MLM sample seed from `seed` only.
  void begin_epoch(int epoch, uint64_t seed) override;
  /// Training rows + sampled negatives.
  int64_t num_examples() const override;
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;

  /// Names of the CTR label columns: "click" (any positive behaviour), then one per other
  /// positive behaviour when the data has several (synthetic: {"click", "rating", "wishlist"});
  /// rating-only data: {"click"}.
  const std::vector<std::string>& ctr_columns() const { return ctr_columns_; }
  int64_t num_users() const { return num_users_; }
  int64_t num_items() const { return num_items_; }
  int64_t num_scenarios() const { return num_scenarios_; }
  int64_t num_positives() const { return static_cast<int64_t>(positive_rows_.size()); }

 private:
  void draw_negatives(uint64_t seed);

  JointDataOptions options_;
  int64_t num_users_ = 0, num_items_ = 0, num_scenarios_ = 0;
  std::vector<std::string> ctr_columns_;
  // Per training row.
  std::vector<int32_t> user_, item_;
  std::vector<int16_t> scenario_;
  std::vector<int32_t> context_;  // -1: none (all -1 without context fields)
  std::vector<float> rating_;     // the star where has_star_, else 0
  std::vector<uint8_t> has_star_, positive_, engaged_, ctr_labelled_;
  std::vector<int16_t> ctr_column_;              // column j > 0 of the row's behaviour, 0: none
  std::vector<int32_t> history_end_;             // positives of the user before the row (index into histories_)
  std::vector<std::vector<int32_t>> histories_;  // per user, chronological positive items
  // Sampled negatives: example train.size() + k is (the user of row neg_source_[k], negatives_[k]);
  // their number is fixed (ctr_negatives per positive of users with an unseen item), their items
  // are redrawn per epoch.
  std::vector<int64_t> positive_rows_, neg_source_;
  NegativeSampler sampler_;
  std::vector<int32_t> negatives_;
  // Scenario classifier and MLM inputs.
  std::vector<std::vector<int64_t>> context_rows_, mlm_rows_;
  int64_t pad_id_ = 0;
  std::optional<MlmOptions> mlm_;
  uint64_t epoch_seed_ = 0;
};

}  // namespace mtrec
