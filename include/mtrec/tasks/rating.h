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
//   mtrec::RatingTask task = mtrec::fit_rating(train, valid, ds.num_users(), ds.num_items(),
//                                              mtrec::RatingTrainOptions().sweeps(200));  // train/fit.h
//   mtrec::RatingMetrics m = task.evaluate(test);          // m.rmse, m.mae
//   mtrec::save_checkpoint("mf.ckpt", task.to_checkpoint(ds.users, ds.items));
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

struct BiasedMFOptions {
  BiasedMFOptions(int64_t num_users, int64_t num_items) : num_users_(num_users), num_items_(num_items) {}
  int64_t num_users_, num_items_;
  int64_t dim_ = 64;  // 0: biases only (μ + b_u + b_i)
  double init_std_ = 0.05;
  double global_mean_ = 0.0;
  bool sparse_ = false;  // sparse gradients for the four tables (row updates in the trainer)
  BiasedMFOptions& dim(int64_t v) { dim_ = v; return *this; }
  BiasedMFOptions& sparse(bool v) { sparse_ = v; return *this; }
  BiasedMFOptions& init_std(double v) { init_std_ = v; return *this; }
  BiasedMFOptions& global_mean(double v) { global_mean_ = v; return *this; }
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
  torch::Tensor global_mean;  // buffer: μ, the training mean
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
class RatingObjective : public Task {
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

struct RatingTrainOptions {
  std::string solver_ = "mcmc";     // "mcmc" (Gibbs sampling) | "sgd" (momentum 0.9) | "adam"
  int64_t dim_ = 0;                 // 0: the solver's default (mcmc 32, sgd/adam 128)
  // mcmc
  int sweeps_ = 200;                // Gibbs sweeps
  int burn_in_ = -1;                // sweeps discarded before averaging (-1: a tenth of them)
  int threads_ = 0;                 // sampler threads (0: hardware concurrency)
  // sgd / adam
  int epochs_ = 80;
  int64_t batch_size_ = 256;
  double lr_ = 0;                   // 0: the solver's default (sgd 0.012 per example, adam 0.01)
  double l2_ = 0.12;                // λ per example (tuned on ML-100K folds u1, u2)
  double lr_decay_ = 0.96;          // multiplies the learning rate after every epoch
  int patience_ = 5;                // epochs without validation improvement before stopping
  bool refit_ = true;               // retrain on train + validation for the best epoch count
  uint64_t seed_ = 42;
  std::string device_ = "auto";
  RatingTrainOptions& solver(std::string v) { solver_ = std::move(v); return *this; }
  RatingTrainOptions& dim(int64_t v) { dim_ = v; return *this; }
  RatingTrainOptions& sweeps(int v) { sweeps_ = v; return *this; }
  RatingTrainOptions& burn_in(int v) { burn_in_ = v; return *this; }
  RatingTrainOptions& threads(int v) { threads_ = v; return *this; }
  RatingTrainOptions& epochs(int v) { epochs_ = v; return *this; }
  RatingTrainOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  RatingTrainOptions& lr(double v) { lr_ = v; return *this; }
  RatingTrainOptions& l2(double v) { l2_ = v; return *this; }
  RatingTrainOptions& lr_decay(double v) { lr_decay_ = v; return *this; }
  RatingTrainOptions& patience(int v) { patience_ = v; return *this; }
  RatingTrainOptions& refit(bool v) { refit_ = v; return *this; }
  RatingTrainOptions& seed(uint64_t v) { seed_ = v; return *this; }
  RatingTrainOptions& device(std::string v) { device_ = std::move(v); return *this; }
};

struct RatingMetrics {
  double rmse = 0, mae = 0;
  int64_t count = 0;
};

/// A fitted rating model (by train/fit.h's fit_rating, or loaded from a checkpoint).
class RatingTask {
 public:
  /// Predictions clamped to the training rating range.
  std::vector<float> predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items) const;
  RatingMetrics evaluate(const Interactions& test) const;

  /// Parameters, id maps, config and golden pairs; from_checkpoint verifies the golden pairs.
  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items) const;
  static RatingTask from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

  BiasedMF model{nullptr};
  float min_rating = 1, max_rating = 5;
  std::string solver = "sgd";
  int epochs_run = 0;               // of the final run (mcmc: sweeps)
  int best_epoch = 0;               // chosen on the validation rows (sgd/adam)
  double best_valid_rmse = 0;       // (sgd/adam)
  double train_rmse = 0;            // (mcmc) of the posterior-mean parameters
};

}  // namespace mtrec
