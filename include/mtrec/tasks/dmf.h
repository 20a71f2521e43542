#pragma once
// Deep Matrix Factorisation (Xue et al., IJCAI 2017) for implicit top-N recommendation.
// The user tower reads the user's row of the training rating matrix, the item tower the
// item's column; both are ReLU MLPs; the score is their cosine similarity clamped to
// [1e-6, 1-1e-6] (the paper clamps below at μ=1e-6; the upper clamp keeps log(1-p) finite
// for soft labels below 1). The loss is the normalised cross-entropy with label 1 (or the
// paper's soft label r/max_rating: DmfTrainOptions::soft_labels) for observed pairs and 0 for
// sampled negatives.
//
// The sparse rows are never materialised: the first layer of each tower is an EmbeddingBag
// (sum, per-sample weights = normalised ratings) over the row's non-zeros, computed once per
// distinct user/item in a batch. The matrix itself is held as CSR buffers in the module, so
// a checkpoint carries everything needed to score.
//
// Training masks the target: for an observed pair (u, i) the user tower reads u's row without
// i and the item tower i's column without u, as at test time, where the held-out item is in
// neither. Otherwise the towers can learn "the target is in my input", a cue test items never
// give. Exact and cheap: the first layer is a weighted sum, so the masked pre-activation is
// S_u − w_ui·E[i] with S_u the full bag sum.
//
// Training runs on the engine (train/trainer.h): DmfModel is the Model, DmfExamples the
// BatchSource (positives and resampled negatives), DmfObjective the Objective; train/fit_dmf.h fits
// a DmfFit with them.
//
//   mtrec::DmfFit dmf = mtrec::fit_dmf(train, valid, ds.num_users(), ds.num_items(),
//                                       mtrec::DmfTrainOptions().epochs(20).negatives(4));  // train/fit_dmf.h
//   dmf.set_inputs(train_and_valid);                                     // before scoring the test items
//   mtrec::RankingReport r = evaluator.evaluate(test, dmf.score_fn());   // HR@10, NDCG@10
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/score_fn.h"
#include "mtrec/data/batch.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

#define MTREC_DMF_OPTIONS(X)                                                                    \
  X(int64_t, num_users, 0)                                                                      \
  X(int64_t, num_items, 0)                                                                      \
  /* last entry: the latent dimension */                                                        \
  X(std::vector<int64_t>, user_layers, (std::vector<int64_t>{256, 64}))                         \
  X(std::vector<int64_t>, item_layers, (std::vector<int64_t>{256, 64}))                         \
  /* on the hidden activations below the latent layer, training only */                         \
  X(double, dropout, 0)                                                                         \
  /* The first layer's bag sum is scaled by n^-input_norm, n = entries in the row (after */     \
  /* masking): 0 is the paper's raw row; 0.5 (as FISM) keeps heavy users' and popular items' */ \
  /* inputs from dwarfing the bias and saturating the ReLUs. */                                 \
  X(double, input_norm, 0)

struct DMFOptions {
  DMFOptions(int64_t num_users, int64_t num_items) : num_users_(num_users), num_items_(num_items) {}
  MTREC_OPTIONS(MTREC_DMF_OPTIONS)
};

class DMFImpl : public torch::nn::Module {
 public:
  explicit DMFImpl(DMFOptions options);
  void reset();
  /// Sets the interaction matrix (values = rating / max_rating); a repeated (user, item) pair
  /// is one entry, its latest row (unique_pairs_latest).
  void set_matrix(const Interactions& train, float max_rating);
  /// Latent vectors of users / items (any order, repeats allowed), shape [n, latent].
  /// With `drop` and `weight` (parallel to the ids), the entry drop[k] of matrix value
  /// weight[k] is taken out of row/column k's input (weight 0: nothing is taken out).
  torch::Tensor user_vectors(const torch::Tensor& users, const torch::Tensor& drop = {},
                             const torch::Tensor& weight = {});
  torch::Tensor item_vectors(const torch::Tensor& items, const torch::Tensor& drop = {},
                             const torch::Tensor& weight = {});
  /// First-layer pre-activation (bag sum + bias, before the ReLU), same arguments.
  torch::Tensor user_input_layer(const torch::Tensor& users, const torch::Tensor& drop = {},
                                 const torch::Tensor& weight = {});
  torch::Tensor item_input_layer(const torch::Tensor& items, const torch::Tensor& drop = {},
                                 const torch::Tensor& weight = {});
  /// Clamped cosine similarity of parallel user and item ids.
  torch::Tensor forward(const torch::Tensor& users, const torch::Tensor& items);

  DMFOptions options;
  torch::nn::EmbeddingBag user_input{nullptr}, item_input{nullptr};
  torch::Tensor user_input_bias, item_input_bias;
  torch::nn::ModuleList user_tower{nullptr}, item_tower{nullptr};
  // CSR of the matrix by user (columns = items) and by item (columns = users): buffers.
  torch::Tensor user_offsets, user_cols, user_vals, item_offsets, item_cols, item_vals;

 private:
  struct Side;
  Side side(bool user);
  torch::Tensor input_layer(const Side& s, const torch::Tensor& ids, const torch::Tensor& drop,
                            const torch::Tensor& weight);
  torch::Tensor vectors(const Side& s, const torch::Tensor& ids, const torch::Tensor& drop,
                        const torch::Tensor& weight);
};
TORCH_MODULE(DMF);

/// The rows of `x` with one row per (user, item) pair: the latest by timestamp (the later row
/// on equal timestamps or without timestamps), kept in their original order. DMF's matrix and
/// training pairs are built from it (set_matrix and DmfExamples apply it).
Interactions unique_pairs_latest(const Interactions& x);

/// Clamp used by DMF's loss and scores.
torch::Tensor dmf_clamp(const torch::Tensor& cosine);
/// Normalised cross-entropy per example: -(y·log p + (1-y)·log(1-p)), p = dmf_clamp(cosine).
torch::Tensor dmf_cross_entropy(const torch::Tensor& cosine, const torch::Tensor& soft_label);
/// Its mean.
torch::Tensor dmf_loss(const torch::Tensor& cosine, const torch::Tensor& soft_label);

/// The engine's view of a DMF: output "dmf" is the (unclamped) cosine of each example's towers.
/// With mask_target and a batch field "dmf_weight" (the pair's matrix value, 0 for a negative),
/// each pair's towers read its row and column without the pair itself (see above). No sparse
/// parameters: the input tables (items×width, users×width) are small and DMF was tuned with
/// dense Adam on all of them; the masked first layer also gathers rows outside EmbeddingBag.
class DmfModel : public Model {
 public:
  DmfModel(DMF dmf, bool mask_target) : dmf_(std::move(dmf)), mask_target_(mask_target) {}
  torch::nn::Module& module() override;
  Outputs forward(const Batch& batch) override;
  DMF& dmf() { return dmf_; }

 private:
  DMF dmf_;
  bool mask_target_;
};

/// DMF's training examples: one per distinct (user, item) pair of `train` (its latest row,
/// unique_pairs_latest) and `negatives` uniform unseen items per pair, redrawn in every
/// begin_epoch from that epoch's seed alone (so a resumed run draws the same ones). Batches
/// hold int64 "user", "item", float "dmf" (the label: 1, or min(1, r/max_rating) with
/// soft_labels, 0 for negatives) and "dmf_weight" (the pair's matrix value r/max_rating, 1
/// without ratings, 0 for negatives).
class DmfExamples : public BatchSource {
 public:
  DmfExamples(const Interactions& train, int32_t num_users, int32_t num_items, int negatives, float max_rating,
              bool soft_labels);
  void begin_epoch(int epoch, uint64_t seed) override;
  int64_t num_examples() const override { return static_cast<int64_t>(pairs_.size()) * per_; }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;
  /// The deduplicated training pairs (what DMF's matrix is built from).
  const Interactions& pairs() const { return pairs_; }

 private:
  Interactions pairs_;
  int negatives_;
  int64_t per_;
  NegativeSampler sampler_;
  at::Tensor users_, items_, labels_, weights_;  // this epoch's table, on the CPU
};

/// DMF's task: the normalised cross-entropy over the batch's examples ("mask/dmf" when set).
/// Validation is a callback (set by the fitter, train/fit_dmf.h: sampled HR@10 by the ranking
/// evaluator, which tasks/ does not include); without one the task reports no metrics.
class DmfObjective : public Objective {
 public:
  using Validator = std::function<Metrics(Model&)>;
  explicit DmfObjective(Validator validator = {}) : validator_(std::move(validator)) {}
  std::string name() const override { return "dmf"; }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Metrics validate(Model& model) override { return validator_ ? validator_(model) : Metrics{}; }
  void set_validator(Validator validator) { validator_ = std::move(validator); }

 private:
  Validator validator_;
};

#define MTREC_DMF_TRAIN_OPTIONS(X)                                                                 \
  /* user tower (and item tower unless item_layers is set) */                                      \
  X(std::vector<int64_t>, layers, (std::vector<int64_t>{256, 64}))                                 \
  /* empty: same as layers */                                                                      \
  X(std::vector<int64_t>, item_layers, {})                                                         \
  X(int, epochs, 20)                                                                               \
  /* sampled unseen items per positive, resampled every epoch */                                   \
  X(int, negatives, 4)                                                                             \
  X(int64_t, batch_size, 256)                                                                      \
  /* Adam (dense, on every parameter: the input tables are small) */                               \
  X(double, lr, 1e-3)                                                                              \
  /* Adam's L2 on every parameter */                                                               \
  X(double, weight_decay, 0)                                                                       \
  /* see DMFOptions */                                                                             \
  X(double, dropout, 0)                                                                            \
  /* see DMFOptions */                                                                             \
  X(double, input_norm, 0)                                                                         \
  /* soft label = rating / max_rating (1 when there are no ratings) */                             \
  X(double, max_rating, 5)                                                                         \
  /* Label of an observed pair: r/max (the paper) or 1. Protocol D counts every rated item as a */ \
  /* hit, so 1 fits it better (docs/heads.md has the numbers); the inputs keep r/max. */           \
  X(bool, soft_labels, false)                                                                      \
  /* take the target out of both towers' inputs (see above) */                                     \
  X(bool, mask_target, true)                                                                       \
  /* epochs without validation HR@10 gain (when validation is given) */                            \
  X(int, patience, 3)                                                                              \
  X(uint64_t, seed, 42)                                                                            \
  X(std::string, device, "auto")

struct DmfTrainOptions {
  MTREC_OPTIONS(MTREC_DMF_TRAIN_OPTIONS)
};

/// A fitted DMF (by train/fit_dmf.h's fit_dmf, or loaded from a checkpoint).
class DmfFit {
 public:
  /// Scores (cosine) of `items` for `user`.
  std::vector<float> score(int32_t user, const std::vector<int32_t>& items) const;
  /// A thread-safe scorer for RankingEvaluator (towers are precomputed for every user and item).
  ScoreFn score_fn() const;

  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items) const;
  static DmfFit from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

  /// Replaces the interaction matrix the towers read (weights unchanged) and refreshes the
  /// cache. After fitting with a validation split, call it with train + validation rows before
  /// scoring the test items: the towers then see each user's whole history up to the test item,
  /// as a neighbourhood model fitted on the same rows does; the user's latest item is the most
  /// telling one for the next.
  void set_inputs(const Interactions& seen);

  DMF model{nullptr};
  int epochs_run = 0;
  int best_epoch = 0;        // 1-based, chosen on the validation rows (0: no validation)
  double best_valid_hr = 0;  // its sampled HR@10
  float input_scale = 5;     // matrix values are rating / input_scale (1 for data without ratings)
  /// Refreshes the cached tower outputs (after training or loading).
  void cache_vectors();
  /// The cached item tower outputs [num_items, d] (CPU, L2-normalised rows).
  const torch::Tensor& item_vectors() const { return item_cache_; }

 private:
  torch::Tensor user_cache_, item_cache_;  // CPU, L2-normalised rows
};

}  // namespace mtrec
