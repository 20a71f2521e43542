#pragma once
// Training the unified model (model/unified.h) on the engine, from a data set and one split:
// tokenizer, text encoder (optionally MLM-pretrained first), the joint batch source, one task
// per head, the loss weighting and the standard run observers, in one call.
//
//   mtrec::JointFit fit = mtrec::fit_joint(ds, split, mtrec::JointTrainOptions().epochs(4)
//                                                         .arch("mmoe").scenario_arch("star").weighting("uncertainty"),
//                                          mtrec::RunOptions().out_dir("runs/joint"));
//   mtrec::JointReport test = fit.evaluate(ds, known, test_rows);
//   mtrec::save_checkpoint("joint.ckpt", fit.to_checkpoint(ds));
//   mtrec::JointBundle again = mtrec::joint_from_checkpoint(mtrec::load_checkpoint("joint.ckpt"));
#include <torch/arg.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/split.h"
#include "mtrec/model/joint_bundle.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/model/unified.h"
#include "mtrec/text/tokenizer.h"
#include "mtrec/train/run.h"
#include "mtrec/train/trainer.h"

namespace mtrec {

#define MTREC_JOINT_TRAIN_OPTIONS(X)                                                             \
  /* The model's architecture (model/unified.h): its options, held here once. fit_joint sets */  \
  /* the data's sizes, the enabled tasks (`tasks_` less those the data lacks), the CTR label */  \
  /* columns and the global mean. */                                                             \
  X(UnifiedOptions, model, {})                                                                   \
  /* those the data has */                                                                       \
  X(std::vector<Head>, tasks, all_heads())                                                       \
  /* static weight per task (default 1; mlm: mlm_lambda) */                                      \
  X(TaskWeights, weights, {})                                                                    \
  X(double, mlm_lambda, 0.1)                                                                     \
  /* static | uncertainty | gradnorm */                                                          \
  X(std::string, weighting, "static")                                                            \
  /* sentencepiece vocabulary (trained on the catalogue) */                                      \
  X(int64_t, vocab_size, 2000)                                                                   \
  /* the TextEncoder */                                                                          \
  X(int64_t, text_dim, 64)                                                                       \
  X(int64_t, text_layers, 2)                                                                     \
  X(int64_t, text_heads, 2)                                                                      \
  X(int64_t, text_max_len, 32)                                                                   \
  /* MLM epochs on the catalogue before the joint run */                                         \
  X(int, pretrain_epochs, 0)                                                                     \
  /* catalogue texts masked per batch (the λ·L_mlm term) */                                    \
  X(int64_t, mlm_texts, 32)                                                                      \
  /* rating-only data: sampled negatives per positive (0: 4) */                                  \
  X(int, ctr_negatives, 0)                                                                       \
  /* rating-only data: CTR positives are rated >= this (0: 4) */                                 \
  X(float, ctr_min_rating, 0)                                                                    \
  /* validations without improvement (0: never stop early); with select_per_task, of any task */ \
  X(int, patience, 3)                                                                            \
  /* each task keeps the parameters of its best validation (JointBundle::selected) */            \
  X(bool, select_per_task, true)                                                                 \
  /* with UnifiedOptions::sparse_ids, the ID tables' rows: lazy Adam at the model's lr */        \
  X(TrainerOptions, trainer,                                                                     \
    TrainerOptions().epochs(5).batch_size(512).lr(2e-3).weight_decay(0.01).clip_norm(5).sparse_optimizer("adam"))

struct JointTrainOptions {
  using TaskWeights = std::map<std::string, double>;
  MTREC_OPTIONS(MTREC_JOINT_TRAIN_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  JointTrainOptions& weight(const std::string& task, double w) {
    weights_[task] = w;
    return *this;
  }
  JointTrainOptions& epochs(int v) {
    trainer_.epochs(v);
    return *this;
  }
  JointTrainOptions& seed(uint64_t v) {
    trainer_.seed(v);
    return *this;
  }
  JointTrainOptions& device(std::string v) {
    trainer_.device(std::move(v));
    return *this;
  }
  // Shorthands for the model's options (by name where they are enums, as on the command line).
  JointTrainOptions& dim(int64_t v) {
    model_.dim(v);
    return *this;
  }
  JointTrainOptions& arch(const std::string& v) {
    model_.arch(nn::parse_expert_arch(v));
    return *this;
  }
  JointTrainOptions& scenario_arch(const std::string& v) {
    model_.scenario_arch(nn::parse_scenario_arch(v));
    return *this;
  }
  JointTrainOptions& text(const std::string& v) {
    model_.text(parse_text_mode(v));
    return *this;
  }
  JointTrainOptions& experts(int64_t v) {
    model_.experts(v);
    return *this;
  }
  JointTrainOptions& levels(int64_t v) {
    model_.levels(v);
    return *this;
  }
  JointTrainOptions& expert_hidden(std::vector<int64_t> v) {
    model_.expert_hidden(std::move(v));
    return *this;
  }
  JointTrainOptions& max_history(int64_t v) {
    model_.max_history(v);
    return *this;
  }
  JointTrainOptions& text_lr_scale(double v) {
    model_.text_lr_scale(v);
    return *this;
  }
  JointTrainOptions& text_refresh_every(int64_t v) {
    model_.text_refresh_every(v);
    return *this;
  }
  JointTrainOptions& next_item_negatives(int64_t v) {
    model_.next_item_negatives(v);
    return *this;
  }
  JointTrainOptions& id_dropout(double v) {
    model_.id_dropout(v);
    return *this;
  }
  JointTrainOptions& dropout(double v) {
    model_.dropout(v);
    return *this;
  }
  /// Every option as JSON (text); the model's under "model".
  std::string to_json() const;
};

struct JointFit : JointBundle {
  TrainSummary summary;
  double seconds = 0;  // the joint run (pretraining excluded)
  double pretrain_seconds = 0;
  std::map<std::string, double> weights;  // the static weights the run started from
};

/// Trains on split.train, validates (early stopping) on split.valid. Tasks the data cannot
/// serve are left out with a log line (rating without stars, scenario without contexts or
/// with one scenario, next_item without timestamps). Throws mtrec::Error on bad options.
JointFit fit_joint(const Dataset& ds, const Split& split, const JointTrainOptions& options, const RunOptions& run = {});

}  // namespace mtrec
