#pragma once
// Rating prediction with biased matrix factorisation:
//   r̂(u,i) = μ + b_u + b_i + <p_u, q_i>, clamped to the rating range when predicting.
// Two solvers fit the same BiasedMF module (so checkpoints, evaluation and serving are alike):
//  - "mcmc" (default): Bayesian biased MF by Gibbs sampling (cf/bayes_mf.h); the module holds
//    the posterior mean of the parameters. No learning rate or L2 to tune, and the better
//    model on ML-100K (5 folds: RMSE .901 against .912 for SGD; bench/quality_heads).
//  - "sgd" / "adam": MSE + λ·(|p_u|² + |q_i|² + b_u² + b_i²) per example (frequent users and
//    items are regularised in proportion to their data, as in SGD-trained SVD) by minibatches
//    on the training engine (train/fit.h: sparse row updates of the four tables), with early
//    stopping on the split's validation rows (never the test set); the final model is then
//    retrained on train + validation for the chosen number of epochs. RatingObjective is the
//    loss the rating head uses inside the jointly trained model.
//
//   mtrec::RatingFit task = mtrec::fit_rating(train, valid, ds.num_users(), ds.num_items(),
//                                              mtrec::RatingTrainOptions().sweeps(200));  // train/fit.h
//   mtrec::RatingMetrics m = task.evaluate(test);          // m.rmse, m.mae
//   mtrec::save_checkpoint("mf.ckpt", task.to_checkpoint(ds.users, ds.items));
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

#define MTREC_BIASED_MF_OPTIONS(X)                                        \
  X(int64_t, num_users, 0)                                                \
  X(int64_t, num_items, 0)                                                \
  /* 0: biases only (μ + b_u + b_i) */                                   \
  X(int64_t, dim, 64)                                                     \
  X(double, init_std, 0.05)                                               \
  X(double, global_mean, 0.0)                                             \
  /* sparse gradients for the four tables (row updates in the trainer) */ \
  X(bool, sparse, false)

struct BiasedMFOptions {
  BiasedMFOptions(int64_t num_users, int64_t num_items) : num_users_(num_users), num_items_(num_items) {}
  MTREC_OPTIONS(MTREC_BIASED_MF_OPTIONS)
};

class BiasedMFImpl : public torch::nn::Module {
 public:
  explicit BiasedMFImpl(BiasedMFOptions options);
  void reset();
  /// Unclamped predictions for parallel int64 tensors of user and item ids.
  torch::Tensor forward(const torch::Tensor& users, const torch::Tensor& items);
  /// Per-example squared norms |p_u|² + |q_i|² + b_u² + b_i², shape [batch].
  torch::Tensor l2_terms(const torch::Tensor& users, const torch::Tensor& items);
  /// Both from one lookup of each table (the training step: half the gathers and sparse grads).
  std::pair<torch::Tensor, torch::Tensor> forward_with_l2(const torch::Tensor& users, const torch::Tensor& items);
  /// The terms apart, each [batch]: <p_u, q_i>, b_u, b_i and the squared norms (a model that
  /// masks some of them, as the unified model does for unseen IDs, composes them itself).
  struct Terms {
    torch::Tensor dot, user_bias, item_bias, l2;
  };
  Terms terms(const torch::Tensor& users, const torch::Tensor& items);

  BiasedMFOptions options;
  /// Views of the tables: p_u rows [users, dim], q_i rows, b_u [users], b_i [items].
  torch::Tensor user_factors();
  torch::Tensor item_factors();
  torch::Tensor user_bias();
  torch::Tensor item_bias();
  torch::nn::Embedding user_table{nullptr}, item_table{nullptr};  // [n, dim + 1]: factors, then bias
  torch::Tensor global_mean;                                      // buffer: μ, the training mean
};
TORCH_MODULE(BiasedMF);

/// Score <p, q> + b_u + b_i and L2 terms |P|² + |Q|² of gathered rows P, Q ([B, dim + 1]):
/// the fused autograd node the model uses, and the same composed of LibTorch ops (the oracle).
std::pair<torch::Tensor, torch::Tensor> mf_score(const torch::Tensor& P, const torch::Tensor& Q);
std::pair<torch::Tensor, torch::Tensor> mf_score_reference(const torch::Tensor& P, const torch::Tensor& Q);

/// The rating loss: mean((pred - target)²) + λ·mean(l2_terms), over the examples where `mask`
/// is true (all when it is undefined).
torch::Tensor rating_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& l2_terms,
                          double lambda, const torch::Tensor& mask = {});

/// The engine's view of a BiasedMF: outputs "rating" (unclamped) and "rating_l2" (the
/// per-example squared norms); with sparse tables, all four are updated row by row.
class RatingModel : public Model {
 public:
  explicit RatingModel(BiasedMF mf) : mf_(std::move(mf)) {}
  torch::nn::Module& module() override;
  Outputs forward(const Batch& batch) override;
  std::vector<std::string> sparse_parameters() const override;
  BiasedMF& mf() { return mf_; }

 private:
  BiasedMF mf_;
};

/// The rating task: mean over the batch's rated examples ("mask/rating") of the squared error
/// plus λ·l2; validation RMSE and MAE (predictions clamped to [lo, hi]) on `valid`.
class RatingObjective : public Objective {
 public:
  RatingObjective(double l2, Interactions valid, float lo, float hi);
  std::string name() const override { return "rating"; }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Metrics validate(Model& model) override;

 private:
  double l2_;
  Interactions valid_;
  float lo_, hi_;
};

#define MTREC_RATING_TRAIN_OPTIONS(X)                              \
  /* "mcmc" (Gibbs sampling) | "sgd" (momentum 0.9) | "adam" */    \
  X(std::string, solver, "mcmc")                                   \
  /* 0: the solver's default (mcmc 32, sgd/adam 128) */            \
  X(int64_t, dim, 0)                                               \
  /* mcmc */                                                       \
  /* Gibbs sweeps */                                               \
  X(int, sweeps, 200)                                              \
  /* sweeps discarded before averaging (-1: a tenth of them) */    \
  X(int, burn_in, -1)                                              \
  /* sampler threads (0: hardware concurrency) */                  \
  X(int, threads, 0)                                               \
  /* sgd / adam */                                                 \
  X(int, epochs, 80)                                               \
  X(int64_t, batch_size, 256)                                      \
  /* 0: the solver's default (sgd 0.012 per example, adam 0.01) */ \
  X(double, lr, 0)                                                 \
  /* λ per example (tuned on ML-100K folds u1, u2) */             \
  X(double, l2, 0.12)                                              \
  /* multiplies the learning rate after every epoch */             \
  X(double, lr_decay, 0.96)                                        \
  /* epochs without validation improvement before stopping */      \
  X(int, patience, 5)                                              \
  /* retrain on train + validation for the best epoch count */     \
  X(bool, refit, true)                                             \
  X(uint64_t, seed, 42)                                            \
  X(std::string, device, "auto")

struct RatingTrainOptions {
  MTREC_OPTIONS(MTREC_RATING_TRAIN_OPTIONS)
};

struct RatingMetrics {
  double rmse = 0, mae = 0;
  int64_t count = 0;
};

/// A fitted rating model (by train/fit.h's fit_rating, or loaded from a checkpoint).
class RatingFit {
 public:
  /// Predictions clamped to the training rating range.
  std::vector<float> predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items) const;
  RatingMetrics evaluate(const Interactions& test) const;

  /// Parameters, id maps, config and golden pairs; from_checkpoint verifies the golden pairs.
  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items) const;
  static RatingFit from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

  BiasedMF model{nullptr};
  float min_rating = 1, max_rating = 5;
  std::string solver = "sgd";
  int epochs_run = 0;          // of the final run (mcmc: sweeps)
  int best_epoch = 0;          // chosen on the validation rows (sgd/adam)
  double best_valid_rmse = 0;  // (sgd/adam)
  double train_rmse = 0;       // (mcmc) of the posterior-mean parameters
};

}  // namespace mtrec
