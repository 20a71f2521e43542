#pragma once
// A trained (or loaded) unified model with what scoring and serving it need besides its
// tensors: tokenizer, label rules, histories and the item catalogue; saved and loaded as a
// "joint" checkpoint (the model layer's half of train/fit_joint.h, so that serving loads it
// without the trainer).
//   mtrec::save_checkpoint("joint.ckpt", fit.to_checkpoint(ds));
//   mtrec::JointBundle again = mtrec::joint_from_checkpoint(mtrec::load_checkpoint("joint.ckpt"));
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/data/schema.h"
#include "mtrec/model/io.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/model/unified.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/text/tokenizer.h"

namespace mtrec {

/// Per-task model selection (train/fit_joint.h): the validation at which one task's metric was
/// best, and the model's parameters and buffers then.
struct TaskSelection {
  std::string metric;  // "ctr/auc"
  double value = 0;
  int epoch = -1;  // 0-based
  /// null: the bundle's model holds this state
  std::shared_ptr<const std::vector<std::pair<std::string, at::Tensor>>> state;
};

/// A trained (or loaded) joint model with what scoring it needs besides its tensors.
struct JointBundle {
  UnifiedModel model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
  std::vector<std::string> ctr_columns;
  std::vector<std::vector<int64_t>> context_rows;  // the data set's contexts, tokenised
  float ctr_min_rating = 0;
  int ctr_negatives = 0;
  float rating_min = 1, rating_max = 5;  // the training ratings' range (predictions are clipped to it)
  uint64_t seed = 42;                    // the training seed (time-order ties of the histories)
  /// Per user, the engaged items of the rows the model was fitted on (train + validation):
  /// serving's histories and "seen" items; and the item catalogue serving names and filters by.
  ServingData serving;
  /// Task -> the validation it keeps (per-task selection). A task absent, or selected with a
  /// null state, is scored by `model` itself.
  std::map<std::string, TaskSelection> selected;
  /// The model that scores `task`: `model`, or a copy of it holding the task's selected state
  /// (made on first use and kept; in eval mode on the model's device).
  UnifiedModel model_for(const std::string& task);
  /// Every enabled task on `eval`, each by the model that scores it (evaluate_joint once per
  /// distinct state); options: eval_options() unless given (e.g. sharded).
  JointReport evaluate(const Dataset& ds, const Interactions& known, const Interactions& eval);
  JointReport evaluate(const Dataset& ds, const Interactions& known, const Interactions& eval,
                       const JointEvalOptions& options);
  /// Tokenises the data set's context texts into context_rows (for the scenario classifier).
  void tokenize_contexts(const Dataset& ds);
  /// Evaluation options matching the training data's label rules.
  JointEvalOptions eval_options() const;
  /// The model as a checkpoint (task "joint"): options, encoder options, tokenizer, label
  /// columns, parameters, the selected states that differ from them ("selected/e<epoch>/..."),
  /// id maps, histories, the item catalogue and golden (user, item, scenario) -> score pairs.
  Checkpoint to_checkpoint(const Dataset& ds);
  /// Sets `histories` to the engaged rows of `known` (UserHistories' order).
  void set_histories(const Dataset& ds, const Interactions& known);

 private:
  /// model_for's copies, by the state they hold
  std::map<std::shared_ptr<const std::vector<std::pair<std::string, at::Tensor>>>, UnifiedModel> copies_;
};

/// The data set's context texts as token rows ([CLS] + text, at most max_len tokens).
std::vector<std::vector<int64_t>> tokenize_contexts(const Tokenizer& tokenizer, const Dataset& ds, int64_t max_len);

/// The model of a "joint" checkpoint (final, or a training one: options under "model") on
/// `device`, in eval mode, golden pairs verified.
JointBundle joint_from_checkpoint(const Checkpoint& checkpoint, const std::string& device = "auto");

}  // namespace mtrec
