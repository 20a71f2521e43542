#pragma once
// Next-item (sequential) recommendation, protocol S of EVALUATION.md: a SASRec-style causal
// transformer over each user's item history whose output at every position scores the whole
// catalogue by a dot product with the (shared) item embedding table.
//
//   auto data = mtrec::make_next_item_data(ds.interactions, ds.num_users(), ds.num_items(), /*seed=*/42);
//   mtrec::NextItemModel model(mtrec::NextItemOptions(ds.num_items()).d_model(64).max_len(200));
//   mtrec::NextItemTrainResult r = mtrec::fit_next_item(model, data,           // train/fit_next_item.h
//       mtrec::NextItemTrainOptions().epochs(200).lr(2e-3).device("auto"));
//   mtrec::RankingReport full = mtrec::evaluate_next_item(model, data, mtrec::NextItemStage::Test,
//                                                         mtrec::RankingOptions());
//   mtrec::RankingReport s100 = mtrec::evaluate_next_item(model, data, mtrec::NextItemStage::Test,
//                                                         mtrec::RankingOptions().sampled_negatives(100));
//
// Item ids are the dataset's dense ids 0..num_items-1; inside the model token 0 is padding and
// item i is token i+1. A precomputed item text embedding [num_items, text_dim] (e.g. from the
// TextEncoder) can be added to the ID embedding through a learned projection: set text_dim and
// call set_item_text(...).
//
// The training engine's view (train/trainer.h) is three pieces: NextItemSource (the training
// sequences as batches of right-aligned tokens and next-item targets), NextItemEngineModel (the
// hidden states at the target positions and the item table) and NextItemObjective (full or
// sampled softmax; validation HR@10 / NDCG@10 by full ranking).
#include <torch/arg.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/batch.h"
#include "mtrec/data/schema.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/nn/causal_transformer.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

// ---------------------------------------------------------------------------------------------
// Data: per-user chronological sequences split leave-one-out by time.

struct NextItemData {
  int32_t num_items = 0;
  std::vector<std::vector<int32_t>> train;  // [user] chronological training items
  std::vector<int32_t> valid, test;         // [user] held-out target, -1 when the user has none
  int32_t num_users() const { return static_cast<int32_t>(train.size()); }
  /// Training history plus the validation item: the history the test target is predicted from.
  std::vector<int32_t> test_history(int32_t user) const;
  /// Interactions `seen` for evaluation: train rows (stage Valid) or train + valid rows (Test).
  Interactions seen(bool include_valid) const;
  /// One row per user that has a target: (user, valid[u]) or (user, test[u]).
  Interactions targets(bool test_stage) const;
};

/// Leave-one-out by timestamp with the seeded per-user tie order of mtrec::user_sequences
/// (the same order mtrec::leave_one_out_split uses): last item -> test, the one before ->
/// valid, the rest -> train; users with fewer than 3 interactions keep all in train.
NextItemData make_next_item_data(const Interactions& x, int32_t num_users, int32_t num_items, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Model.

#define MTREC_NEXT_ITEM_OPTIONS(X)                                        \
  X(int64_t, num_items, 0)                                                \
  X(int64_t, d_model, 64)                                                 \
  X(int64_t, layers, 2)                                                   \
  X(int64_t, heads, 1)                                                    \
  /* 0: d_model */                                                        \
  X(int64_t, ffn_dim, 0)                                                  \
  /* history positions the model sees (the most recent ones) */           \
  X(int64_t, max_len, 200)                                                \
  X(double, dropout, 0.2)                                                 \
  /* > 0: add Linear(text_dim, d) of a precomputed item text embedding */ \
  X(int64_t, text_dim, 0)

struct NextItemOptions {
  explicit NextItemOptions(int64_t num_items) : num_items_(num_items) {}
  MTREC_OPTIONS(MTREC_NEXT_ITEM_OPTIONS)
};

/// The options as a JSON object (text), e.g. for a checkpoint's config, and back. Unknown keys
/// are rejected; missing ones keep their defaults (num_items is required).
std::string next_item_options_to_json(const NextItemOptions& options);
NextItemOptions next_item_options_from_json(const std::string& json);

class NextItemModelImpl : public torch::nn::Module {
 public:
  explicit NextItemModelImpl(NextItemOptions options);
  void reset();

  /// Sets the frozen item text embedding [num_items, text_dim] (required when text_dim > 0).
  void set_item_text(const torch::Tensor& text);
  /// The output item table [num_items, d]: ID embedding (+ projected text embedding).
  torch::Tensor item_table();
  /// tokens [B,L] int64 (0 = padding, item i = i+1), right-aligned. Returns hidden [B,L,d].
  /// Positions count back from the end, so left padding does not change the outputs.
  torch::Tensor forward(const torch::Tensor& tokens);
  /// Scores [B, num_items] of the next item after the last position of each row.
  torch::Tensor score_next(const torch::Tensor& tokens);
  /// Full softmax cross-entropy over the catalogue, mean over non-padding target positions.
  /// targets [B,L] int64 tokens (0 = no target at that position).
  torch::Tensor full_softmax_loss(const torch::Tensor& tokens, const torch::Tensor& targets);
  /// Sampled softmax with logQ correction: `negatives` [K] item ids (0-based) drawn with
  /// probabilities `neg_prob` [num_items]; logits of the positive and of each negative are
  /// corrected by -log(K q). Negatives equal to the positive are masked out.
  torch::Tensor sampled_softmax_loss(const torch::Tensor& tokens, const torch::Tensor& targets,
                                     const torch::Tensor& negatives, const torch::Tensor& neg_prob);
  /// Hidden states at the non-padding target positions [N,d] and their targets [N] (0-based).
  std::pair<torch::Tensor, torch::Tensor> hidden_at_targets(const torch::Tensor& tokens, const torch::Tensor& targets);

  NextItemOptions options;
  torch::nn::Embedding item_emb{nullptr}, pos_emb{nullptr};
  torch::nn::Linear text_proj{nullptr};
  torch::Tensor item_text;  // buffer [num_items, text_dim]; undefined unless set
  nn::Dropout emb_drop{nullptr};
  nn::CausalTransformer encoder{nullptr};
};
TORCH_MODULE(NextItemModel);

/// The model as a checkpoint: task "next_item", options, parameters, id maps and golden
/// (history -> score of a target) pairs scored by the model in eval mode.
Checkpoint next_item_checkpoint(NextItemModel& model, const IdMap& users, const IdMap& items);
/// The model of a checkpoint (a final one, or one written during training, whose options sit
/// under "model"), on `device`, in eval mode; its golden pairs are verified.
NextItemModel next_item_from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

/// Right-aligned batch of the last `max_len` items of each history: [B, max_len] int64 tokens.
torch::Tensor pack_histories(const std::vector<const std::vector<int32_t>*>& histories, int64_t max_len);

/// The two losses on hidden states `hidden` [N,d] with 0-based targets `target` [N] against the
/// item table [num_items, d] (what NextItemModelImpl's losses compute after hidden_at_targets).
/// Full: softmax cross-entropy over the catalogue. Sampled: softmax over the positive and the
/// `negatives` [K] (0-based ids drawn with probabilities `neg_prob` [num_items]), logits
/// corrected by -log(K q), negatives equal to the positive masked out.
torch::Tensor next_item_full_softmax(const torch::Tensor& hidden, const torch::Tensor& target,
                                     const torch::Tensor& table);
torch::Tensor next_item_sampled_softmax(const torch::Tensor& hidden, const torch::Tensor& target,
                                        const torch::Tensor& table, const torch::Tensor& negatives,
                                        const torch::Tensor& neg_prob);

// ---------------------------------------------------------------------------------------------
// Training.

enum class NextItemLoss { FullSoftmax, SampledUniform, SampledPopularity };
enum class NextItemStage { Valid, Test };

#define MTREC_NEXT_ITEM_TRAIN_OPTIONS(X)                           \
  X(int, epochs, 200)                                              \
  X(int, batch_size, 128)                                          \
  X(double, lr, 2e-3)                                              \
  /* cosine decay from lr to lr * min_lr_ratio */                  \
  X(double, min_lr_ratio, 0.05)                                    \
  /* linear warm-up */                                             \
  X(int, warmup_steps, 100)                                        \
  X(double, weight_decay, 0.0)                                     \
  /* <= 0: no clipping */                                          \
  X(double, clip_norm, 5.0)                                        \
  /* epochs between validations (0: only at the end) */            \
  X(int, eval_every, 10)                                           \
  /* validations without improvement before stopping (0: never) */ \
  X(int, patience, 10)                                             \
  X(NextItemLoss, loss, NextItemLoss::FullSoftmax)                 \
  /* for the sampled losses */                                     \
  X(int, num_negatives, 256)                                       \
  X(uint64_t, seed, 42)                                            \
  X(std::string, device, "auto")

struct NextItemTrainOptions {
  MTREC_OPTIONS(MTREC_NEXT_ITEM_TRAIN_OPTIONS)
};

/// Parses "full", "sampled-uniform", "sampled-pop"; throws mtrec::Error otherwise.
NextItemLoss parse_next_item_loss(const std::string& name);

// ---------------------------------------------------------------------------------------------
// The training engine's view (train/fit_next_item.h runs them on the Trainer).

/// The training sequences of every user with >= 2 training items as examples: int64 "user" [B],
/// "tokens" (the history but its last item) and "targets" (the next item at every position), both
/// [B, T] right-aligned tokens (0 = padding), T the longest row of the batch (<= max_len): the
/// leading columns that are padding in every row are dropped.
class NextItemSource : public BatchSource {
 public:
  NextItemSource(const NextItemData& data, int64_t max_len);
  int64_t num_examples() const override { return static_cast<int64_t>(users_.size()); }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;

 private:
  int64_t max_len_;
  std::vector<int32_t> users_;
  std::vector<int64_t> lengths_;
  torch::Tensor inputs_, targets_;  // [N, max_len] on the CPU
};

/// A NextItemModel as the engine's Model: outputs "next_item/hidden" [N,d] and
/// "next_item/target" [N] (0-based) at the batch's target positions, and "next_item/table"
/// (the item table [num_items, d]).
class NextItemEngineModel : public Model {
 public:
  explicit NextItemEngineModel(NextItemModel model) : model_(std::move(model)) {}
  torch::nn::Module& module() override;
  Outputs forward(const Batch& batch) override;
  NextItemModel& model() { return model_; }

 private:
  NextItemModel model_;
};

/// The next-item task: full softmax or sampled softmax (negatives shared by the batch, drawn
/// from LibTorch's generator on the model's device: uniform, or by training popularity + 1);
/// validation "HR@10" and "NDCG@10" by fast_full_ranking_hr_ndcg10 on data.valid (empty when no
/// user has a validation target). `data` must outlive the task.
class NextItemObjective : public Objective {
 public:
  NextItemObjective(const NextItemData& data, NextItemLoss loss = NextItemLoss::FullSoftmax, int num_negatives = 256);
  std::string name() const override { return "next_item"; }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Metrics validate(Model& model) override;

 private:
  const NextItemData& data_;
  NextItemLoss loss_;
  int num_negatives_;
  std::vector<double> popularity_;
  torch::Tensor neg_prob_;  // on the device of the last batch
};

/// Full-ranking HR@10 / NDCG@10 computed on the model's device in batches (seen items
/// excluded, ties counted against the target): the fast check used during training.
std::pair<double, double> fast_full_ranking_hr_ndcg10(NextItemModel& model, const NextItemData& data,
                                                      NextItemStage stage, int batch_size = 256);

/// Ranking report through mtrec::RankingEvaluator (full ranking or sampled negatives as set in
/// `options`). Valid: history = train items, seen = train. Test: history = train + valid,
/// seen = train + valid.
RankingReport evaluate_next_item(NextItemModel& model, const NextItemData& data, NextItemStage stage,
                                 const RankingOptions& options, int batch_size = 256);

/// Most-popular baseline on the same protocol (counts from the history of the stage).
RankingReport evaluate_most_popular(const NextItemData& data, NextItemStage stage, const RankingOptions& options);

}  // namespace mtrec
