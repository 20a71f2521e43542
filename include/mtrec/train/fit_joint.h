#pragma once
// Training the unified model (model/unified.h) on the engine, from a data set and one split:
// tokenizer, text encoder (optionally MLM-pretrained first), the joint batch source, one task
// per head, the loss weighting and the standard run observers, in one call.
//
//   mtrec::JointFit fit = mtrec::fit_joint(ds, split, mtrec::JointTrainOptions().epochs(4)
//                                                         .arch("mmoe").scenario_arch("star").weighting("uncertainty"),
//                                          mtrec::RunOptions().out_dir("runs/joint"));
//   mtrec::JointReport test = mtrec::evaluate_joint(fit.model, ds, known, test_rows, fit.eval_options());
//   mtrec::save_checkpoint("joint.ckpt", fit.to_checkpoint(ds));
//   mtrec::JointBundle again = mtrec::joint_from_checkpoint(mtrec::load_checkpoint("joint.ckpt"));
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/data/split.h"
#include "mtrec/model/joint_bundle.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/model/unified.h"
#include "mtrec/text/tokenizer.h"
#include "mtrec/train/run.h"
#include "mtrec/train/trainer.h"

namespace mtrec {

struct JointTrainOptions {
  /// The model's architecture (model/unified.h): its options, held here once. fit_joint sets
  /// the data's sizes, the enabled tasks (`tasks_` less those the data lacks), the CTR label
  /// columns and the global mean.
  UnifiedOptions model_;
  std::vector<std::string> tasks_ = {"rating", "ctr", "next_item", "match", "scenario", "mlm"};  // those the data has
  std::map<std::string, double> weights_;  // static weight per task (default 1; mlm: mlm_lambda)
  double mlm_lambda_ = 0.1;
  std::string weighting_ = "static";      // static | uncertainty | gradnorm
  int64_t vocab_size_ = 2000;             // sentencepiece vocabulary (trained on the catalogue)
  int64_t text_dim_ = 64, text_layers_ = 2, text_heads_ = 2, text_max_len_ = 32;  // the TextEncoder
  int pretrain_epochs_ = 0;               // MLM epochs on the catalogue before the joint run
  int64_t mlm_texts_ = 32;                // catalogue texts masked per batch (the λ·L_mlm term)
  int ctr_negatives_ = 0;                 // rating-only data: sampled negatives per positive (0: 4)
  float ctr_min_rating_ = 0;              // rating-only data: CTR positives are rated >= this (0: 4)
  int patience_ = 3;                      // validations without improvement (0: never stop early)
  TrainerOptions trainer_ = TrainerOptions().epochs(5).batch_size(512).lr(2e-3).weight_decay(0.01).clip_norm(5);
  JointTrainOptions& model(UnifiedOptions v) { model_ = std::move(v); return *this; }
  JointTrainOptions& tasks(std::vector<std::string> v) { tasks_ = std::move(v); return *this; }
  JointTrainOptions& weight(const std::string& task, double w) { weights_[task] = w; return *this; }
  JointTrainOptions& mlm_lambda(double v) { mlm_lambda_ = v; return *this; }
  JointTrainOptions& weighting(std::string v) { weighting_ = std::move(v); return *this; }
  JointTrainOptions& vocab_size(int64_t v) { vocab_size_ = v; return *this; }
  JointTrainOptions& text_dim(int64_t v) { text_dim_ = v; return *this; }
  JointTrainOptions& text_layers(int64_t v) { text_layers_ = v; return *this; }
  JointTrainOptions& text_heads(int64_t v) { text_heads_ = v; return *this; }
  JointTrainOptions& text_max_len(int64_t v) { text_max_len_ = v; return *this; }
  JointTrainOptions& pretrain_epochs(int v) { pretrain_epochs_ = v; return *this; }
  JointTrainOptions& mlm_texts(int64_t v) { mlm_texts_ = v; return *this; }
  JointTrainOptions& ctr_negatives(int v) { ctr_negatives_ = v; return *this; }
  JointTrainOptions& ctr_min_rating(float v) { ctr_min_rating_ = v; return *this; }
  JointTrainOptions& patience(int v) { patience_ = v; return *this; }
  JointTrainOptions& trainer(TrainerOptions v) { trainer_ = std::move(v); return *this; }
  JointTrainOptions& epochs(int v) { trainer_.epochs(v); return *this; }
  JointTrainOptions& seed(uint64_t v) { trainer_.seed(v); return *this; }
  JointTrainOptions& device(std::string v) { trainer_.device(std::move(v)); return *this; }
  // Shorthands for the model's options (by name where they are enums, as on the command line).
  JointTrainOptions& dim(int64_t v) { model_.dim(v); return *this; }
  JointTrainOptions& arch(const std::string& v) { model_.arch(nn::parse_expert_arch(v)); return *this; }
  JointTrainOptions& scenario_arch(const std::string& v) { model_.scenario_arch(nn::parse_scenario_arch(v)); return *this; }
  JointTrainOptions& text(const std::string& v) { model_.text(parse_text_mode(v)); return *this; }
  JointTrainOptions& experts(int64_t v) { model_.experts(v); return *this; }
  JointTrainOptions& levels(int64_t v) { model_.levels(v); return *this; }
  JointTrainOptions& expert_hidden(std::vector<int64_t> v) { model_.expert_hidden(std::move(v)); return *this; }
  JointTrainOptions& max_history(int64_t v) { model_.max_history(v); return *this; }
  JointTrainOptions& text_lr_scale(double v) { model_.text_lr_scale(v); return *this; }
  JointTrainOptions& text_refresh_every(int64_t v) { model_.text_refresh_every(v); return *this; }
  JointTrainOptions& next_item_negatives(int64_t v) { model_.next_item_negatives(v); return *this; }
  JointTrainOptions& id_dropout(double v) { model_.id_dropout(v); return *this; }
  JointTrainOptions& dropout(double v) { model_.dropout(v); return *this; }
  /// Every option as JSON (text); the model's under "model".
  std::string to_json() const;
};

struct JointFit : JointBundle {
  TrainSummary summary;
  double seconds = 0;           // the joint run (pretraining excluded)
  double pretrain_seconds = 0;
  std::map<std::string, double> weights;  // the static weights the run started from
};

/// Trains on split.train, validates (early stopping) on split.valid. Tasks the data cannot
/// serve are left out with a log line (rating without stars, scenario without contexts or
/// with one scenario, next_item without timestamps). Throws mtrec::Error on bad options.
JointFit fit_joint(const Dataset& ds, const Split& split, const JointTrainOptions& options, const RunOptions& run = {});

}  // namespace mtrec
