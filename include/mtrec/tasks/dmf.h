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
//   mtrec::DmfTask dmf = mtrec::DmfTask::fit(train, ds.num_users(), ds.num_items(),
//                                            mtrec::DmfTrainOptions().epochs(20).negatives(4));
//   mtrec::RankingReport r = evaluator.evaluate(test, dmf.score_fn());   // HR@10, NDCG@10
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/data/schema.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/nn/checkpoint.h"

namespace mtrec {

struct DMFOptions {
  DMFOptions(int64_t num_users, int64_t num_items) : num_users_(num_users), num_items_(num_items) {}
  int64_t num_users_, num_items_;
  std::vector<int64_t> user_layers_ = {256, 64};  // last entry: the latent dimension
  std::vector<int64_t> item_layers_ = {256, 64};
  double dropout_ = 0;  // on the hidden activations below the latent layer, training only
  // The first layer's bag sum is scaled by n^-input_norm, n = entries in the row (after
  // masking): 0 is the paper's raw row; 0.5 (as FISM) keeps heavy users' and popular items'
  // inputs from dwarfing the bias and saturating the ReLUs.
  double input_norm_ = 0;
  DMFOptions& user_layers(std::vector<int64_t> v) { user_layers_ = std::move(v); return *this; }
  DMFOptions& item_layers(std::vector<int64_t> v) { item_layers_ = std::move(v); return *this; }
  DMFOptions& dropout(double v) { dropout_ = v; return *this; }
  DMFOptions& input_norm(double v) { input_norm_ = v; return *this; }
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
/// training pairs are built from it (set_matrix and fit apply it).
Interactions unique_pairs_latest(const Interactions& x);

/// Clamp used by DMF's loss and scores.
torch::Tensor dmf_clamp(const torch::Tensor& cosine);
/// Normalised cross-entropy: mean of -(y·log p + (1-y)·log(1-p)), p = dmf_clamp(cosine).
torch::Tensor dmf_loss(const torch::Tensor& cosine, const torch::Tensor& soft_label);

struct DmfTrainOptions {
  std::vector<int64_t> layers_ = {256, 64};  // user tower (and item tower unless item_layers is set)
  std::vector<int64_t> item_layers_;         // empty: same as layers
  int epochs_ = 20;
  int negatives_ = 4;           // sampled unseen items per positive, resampled every epoch
  int64_t batch_size_ = 256;
  double lr_ = 1e-3;            // Adam
  double weight_decay_ = 0;     // Adam's L2 on every parameter
  double dropout_ = 0;          // see DMFOptions
  double input_norm_ = 0;       // see DMFOptions
  double max_rating_ = 5;       // soft label = rating / max_rating (1 when there are no ratings)
  // Label of an observed pair: r/max (the paper) or 1. Protocol D counts every rated item as a
  // hit, so 1 fits it better (docs/heads.md has the numbers); the inputs keep r/max.
  bool soft_labels_ = false;
  bool mask_target_ = true;     // take the target out of both towers' inputs (see above)
  int patience_ = 3;            // epochs without validation HR@10 gain (when validation is given)
  uint64_t seed_ = 42;
  std::string device_ = "auto";
  bool progress_ = false;
  DmfTrainOptions& layers(std::vector<int64_t> v) { layers_ = std::move(v); return *this; }
  DmfTrainOptions& item_layers(std::vector<int64_t> v) { item_layers_ = std::move(v); return *this; }
  DmfTrainOptions& epochs(int v) { epochs_ = v; return *this; }
  DmfTrainOptions& negatives(int v) { negatives_ = v; return *this; }
  DmfTrainOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  DmfTrainOptions& lr(double v) { lr_ = v; return *this; }
  DmfTrainOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  DmfTrainOptions& dropout(double v) { dropout_ = v; return *this; }
  DmfTrainOptions& input_norm(double v) { input_norm_ = v; return *this; }
  DmfTrainOptions& max_rating(double v) { max_rating_ = v; return *this; }
  DmfTrainOptions& soft_labels(bool v) { soft_labels_ = v; return *this; }
  DmfTrainOptions& mask_target(bool v) { mask_target_ = v; return *this; }
  DmfTrainOptions& patience(int v) { patience_ = v; return *this; }
  DmfTrainOptions& seed(uint64_t v) { seed_ = v; return *this; }
  DmfTrainOptions& device(std::string v) { device_ = std::move(v); return *this; }
  DmfTrainOptions& progress(bool v) { progress_ = v; return *this; }
};

class DmfTask {
 public:
  /// Trains on `train`; when `valid` is non-empty, keeps the epoch with the best sampled
  /// HR@10 on it (100 negatives, `train` excluded) and stops after `patience` epochs without gain.
  static DmfTask fit(const Interactions& train, int32_t num_users, int32_t num_items,
                     const DmfTrainOptions& options = {}, const Interactions& valid = {});
  /// Scores (cosine) of `items` for `user`.
  std::vector<float> score(int32_t user, const std::vector<int32_t>& items) const;
  /// A thread-safe scorer for RankingEvaluator (towers are precomputed for every user and item).
  ScoreFn score_fn() const;

  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items) const;
  static DmfTask from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

  /// Replaces the interaction matrix the towers read (weights unchanged) and refreshes the
  /// cache. After fitting with a validation split, call it with train + validation rows before
  /// scoring the test items: the towers then see each user's whole history up to the test item,
  /// as a neighbourhood model fitted on the same rows does; the user's latest item is the most
  /// telling one for the next.
  void set_inputs(const Interactions& seen);

  DMF model{nullptr};
  int epochs_run = 0;
  float input_scale = 5;  // matrix values are rating / input_scale (1 for data without ratings)
  /// Refreshes the cached tower outputs (after training or loading).
  void cache_vectors();

 private:
  torch::Tensor user_cache_, item_cache_;  // CPU, L2-normalised rows
};

}  // namespace mtrec
