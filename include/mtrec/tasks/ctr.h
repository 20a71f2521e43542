#pragma once
// Click-through prediction: is (user, item, scenario) a positive? Embeddings of user, item
// and scenario feed an MLP (over [u, i, s, u⊙i]); a dot-product term <u, i> and an item bias
// are added to its output logit; the loss is BCE with logits. Negatives are sampled unseen
// items (uniform) at a stated ratio and take the scenario of the positive they were drawn for.
//
//   mtrec::NegativeSampler all = mtrec::ctr_negative_sampler(ds.interactions, ds.num_users(), ds.num_items(), 7);
//   mtrec::CtrExamples test = mtrec::sample_ctr_examples(test_pos, all, 1);
//   mtrec::CtrFit ctr = mtrec::fit_ctr(train_pos, valid_pos, ds.num_users(), ds.num_items(), 3,  // train/fit.h
//                                            mtrec::CtrTrainOptions().negatives(1), train_rows);
//   mtrec::CtrMetrics m = ctr.evaluate(test);             // m.auc, m.gauc, m.logloss, m.per_scenario
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/ctr_examples.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

#define MTREC_CTR_MODEL_OPTIONS(X) \
  X(int64_t, num_users, 0)         \
  X(int64_t, num_items, 0)         \
  X(int64_t, num_scenarios, 0)     \
  X(int64_t, dim, 32)              \
  X(std::vector<int64_t>, hidden, (std::vector<int64_t>{64, 32}))

struct CtrModelOptions {
  CtrModelOptions(int64_t num_users, int64_t num_items, int64_t num_scenarios)
      : num_users_(num_users), num_items_(num_items), num_scenarios_(num_scenarios) {}
  MTREC_OPTIONS(MTREC_CTR_MODEL_OPTIONS)
};

/// The CTR head's collaborative-filtering part: user and item ID embeddings u, i and an item
/// bias b_i; its logit term is <u, i> + b_i. The CTR model's MLP reads the same embeddings; the
/// unified model adds the term to its deep tower (model/unified.h). Constructed with LibTorch's
/// default initialisation: init() draws the model's (so an owner can order its draws).
class CtrFactorsImpl : public torch::nn::Module {
 public:
  /// `sparse`: the three tables give sparse gradients (the engine's row updates).
  CtrFactorsImpl(int64_t num_users, int64_t num_items, int64_t dim, bool sparse = false);
  /// u, i ~ N(0, std²); b_i = 0.
  void init(double std);
  /// <u, i> and b_i, each [B], for parallel int64 ids.
  std::pair<torch::Tensor, torch::Tensor> terms(const torch::Tensor& users, const torch::Tensor& items);
  /// <u, i> + b_i.
  torch::Tensor forward(const torch::Tensor& users, const torch::Tensor& items);

  torch::nn::Embedding user{nullptr}, item{nullptr}, bias{nullptr};
};
TORCH_MODULE(CtrFactors);

class CtrModelImpl : public torch::nn::Module {
 public:
  explicit CtrModelImpl(CtrModelOptions options);
  void reset();
  /// Logits for parallel int64 tensors of users, items and scenarios:
  /// mlp([u, i, s, u⊙i]) + <u, i> + b_i.
  torch::Tensor forward(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& scenarios);

  CtrModelOptions options;
  CtrFactors factors{nullptr};
  torch::nn::Embedding scenario_emb{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(CtrModel);

/// Renames the tensors of a CtrModel saved before CtrFactors ("user_emb.weight" ->
/// "factors.user.weight", ...); a no-op for a current checkpoint. The unified model's
/// checkpoints use it with a prefix ("ctr_user" -> "ctr_factors.user", ...).
void upgrade_ctr_factor_names(Checkpoint& checkpoint, const std::string& old_user, const std::string& old_item,
                              const std::string& old_bias, const std::string& prefix);

/// Mean binary cross-entropy on logits, over the examples where `mask` is true (all when it
/// is undefined). Logits [B] or [B, C] (one column per label: each example's mean over them).
torch::Tensor ctr_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask = {});

#define MTREC_CTR_TRAIN_OPTIONS(X)                                \
  X(int64_t, dim, 32)                                             \
  X(std::vector<int64_t>, hidden, (std::vector<int64_t>{64, 32})) \
  X(int, epochs, 10)                                              \
  /* sampled per positive, resampled every epoch */               \
  X(int, negatives, 4)                                            \
  X(int64_t, batch_size, 512)                                     \
  /* Adam */                                                      \
  X(double, lr, 2e-3)                                             \
  X(double, weight_decay, 1e-6)                                   \
  X(int, patience, 2)                                             \
  X(uint64_t, seed, 42)                                           \
  X(std::string, device, "auto")

struct CtrTrainOptions {
  MTREC_OPTIONS(MTREC_CTR_TRAIN_OPTIONS)
};

struct CtrMetrics {
  double auc = 0, gauc = 0, logloss = 0;
  int64_t count = 0;
  std::map<int32_t, CtrMetrics> per_scenario;  // filled by evaluate() when several scenarios occur
};

/// AUC, GAUC (grouped by user) and logloss of probabilities; per scenario when there are several.
CtrMetrics ctr_metrics(const CtrExamples& examples, const std::vector<float>& prob);

/// The engine's view of a CtrModel: outputs "ctr_logit" for the batch's user, item, scenario.
class CtrEngineModel : public Model {
 public:
  explicit CtrEngineModel(CtrModel model) : model_(std::move(model)) {}
  torch::nn::Module& module() override;
  Outputs forward(const Batch& batch) override;
  CtrModel& model() { return model_; }

 private:
  CtrModel model_;
};

/// CTR training examples: every positive with label 1 and `ratio` negatives drawn by the
/// sampler, resampled every epoch from the epoch's seed only (so a resumed run sees the same).
/// Batches carry "user", "item", "scenario" and the label "click".
class CtrExampleSource : public BatchSource {
 public:
  CtrExampleSource(Interactions positives, NegativeSampler sampler, int ratio);
  void begin_epoch(int epoch, uint64_t seed) override;
  int64_t num_examples() const override { return static_cast<int64_t>(examples_.size()); }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;

 private:
  Interactions positives_;
  NegativeSampler sampler_;
  int ratio_;
  CtrExamples examples_;
};

/// The CTR task: BCE with logits over the batch's labelled examples ("mask/ctr"); validation
/// AUC, GAUC and logloss on fixed labelled examples.
class CtrObjective : public Objective {
 public:
  explicit CtrObjective(CtrExamples valid) : valid_(std::move(valid)) {}
  std::string name() const override { return "ctr"; }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Metrics validate(Model& model) override;

 private:
  CtrExamples valid_;
};

/// A fitted CTR model (by train/fit.h's fit_ctr, or loaded from a checkpoint).
class CtrFit {
 public:
  /// Click probabilities. Thread-safe: never changes the module's mode. fit() and
  /// from_checkpoint() leave the model in eval mode; throws if it was put back in training mode.
  std::vector<float> predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items,
                             const std::vector<int32_t>& scenarios) const;
  CtrMetrics evaluate(const CtrExamples& test) const;

  Checkpoint to_checkpoint(const IdMap& users, const IdMap& items, const IdMap& scenarios) const;
  static CtrFit from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

  CtrModel model{nullptr};
  int epochs_run = 0;
};

}  // namespace mtrec
