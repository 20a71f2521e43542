#pragma once
// The joint model's tasks on the training engine: one Objective per enabled head, each reading its
// outputs of UnifiedModel::forward and its labels and mask from the joint batch
// (model/joint_data.h). Validation runs evaluate_joint once per validation round (on the
// split's validation rows) and hands every task its own metrics.
//   auto validation = std::make_shared<mtrec::JointValidation>(model, ds, train, valid, eval_options);
//   auto tasks = mtrec::make_joint_tasks(model->options, validation);
//   std::vector<std::pair<mtrec::Objective*, double>> weighted;
//   for (auto& t : tasks) weighted.push_back({t.get(), t->name() == "mlm" ? lambda : 1.0});
#include <memory>
#include <string>
#include <vector>

#include "mtrec/model/joint_eval.h"
#include "mtrec/model/unified.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

/// Validation metrics of every task, computed once per training step at which they are asked.
class JointValidation {
 public:
  JointValidation(UnifiedModel model, const Dataset& ds, Interactions known, Interactions valid,
                  JointEvalOptions options);
  /// The metrics of `task` now (evaluates when the model has trained since the last call).
  Metrics metrics(const std::string& task);
  const JointReport& last() const { return report_; }

 private:
  UnifiedModel model_;
  const Dataset& ds_;
  Interactions known_, valid_;
  JointEvalOptions options_;
  int64_t evaluated_at_ = -1;
  JointReport report_;
};

/// The loss of one joint task (see make_joint_tasks).
class JointObjective : public Objective {
 public:
  JointObjective(Head head, std::shared_ptr<JointValidation> validation, int64_t next_item_negatives = 0,
                 double rating_l2 = 0);
  std::string name() const override { return head_name(head_); }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Metrics validate(Model& model) override;

 private:
  Head head_;
  std::shared_ptr<JointValidation> validation_;
  int64_t next_item_negatives_ = 0;
  double rating_l2_ = 0;
};

/// One task per enabled head of `options`, in all_heads() order: rating (the rating head's
/// loss: masked mean squared error + rating_l2·l2), ctr (the CTR head's binary cross-entropy,
/// averaged over the label columns), next_item
/// (softmax over the catalogue table, or sampled: options.next_item_negatives), match (softmax over the batch's
/// distinct positive items, by cosine / temperature), scenario (cross-entropy over the scenarios), mlm (cross-entropy
/// on the masked tokens). A selecting task with no example in a batch gives a zero loss that keeps the graph.
std::vector<std::unique_ptr<Objective>> make_joint_tasks(const UnifiedOptions& options,
                                                         std::shared_ptr<JointValidation> validation = nullptr);

/// Each enabled task's validation metric ("task/metric") and whether larger is better, in the
/// order ctr/auc, rating/rmse, next_item/NDCG@10, match/NDCG@10, scenario/accuracy; the first
/// is the metric early stopping and best.ckpt follow.
std::vector<std::pair<std::string, bool>> joint_metrics(const UnifiedOptions& options);

}  // namespace mtrec
