#include "mtrec/model/joint_tasks.h"

#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/tasks/next_item.h"

namespace mtrec {

JointValidation::JointValidation(UnifiedModel model, const Dataset& ds, Interactions known, Interactions valid,
                                 JointEvalOptions options)
    : model_(std::move(model)),
      ds_(ds),
      known_(std::move(known)),
      valid_(std::move(valid)),
      options_(std::move(options)) {}

Metrics JointValidation::metrics(const std::string& task) {
  const int64_t step = model_->train_steps.item<int64_t>();
  if (step != evaluated_at_) {
    // Evaluation refreshes the text caches; training must not depend on when it validates.
    const bool training = model_->is_training();
    at::Tensor items = model_->item_text_cache.clone(), users = model_->user_text_cache.clone();
    report_ = evaluate_joint(model_, ds_, known_, valid_, options_);
    {
      torch::NoGradGuard g;
      model_->item_text_cache.copy_(items), model_->user_text_cache.copy_(users);
    }
    model_->train(training);
    evaluated_at_ = step;
  }
  auto it = report_.overall.find(task);
  return it == report_.overall.end() ? Metrics{} : it->second;
}

JointObjective::JointObjective(Head head, std::shared_ptr<JointValidation> validation, int64_t next_item_negatives,
                               double rating_l2)
    : head_(head),
      validation_(std::move(validation)),
      next_item_negatives_(next_item_negatives),
      rating_l2_(rating_l2) {}

namespace {

at::Tensor zero_loss(const at::Tensor& like) { return like.sum() * 0; }

at::Tensor softmax_loss(const at::Tensor& logits, const at::Tensor& target) {
  if (logits.size(0) == 0) return zero_loss(logits);
  // Reduced-precision logits (bf16 autocast) are upcast; float64 (gradient checks) stays.
  return torch::nn::functional::cross_entropy(
      logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat), target);
}

/// Full softmax over the catalogue table, or (negatives > 0) sampled over uniform negatives
/// shared by the batch, drawn from LibTorch's generator (the trainer's).
at::Tensor next_item_loss(const at::Tensor& h, const at::Tensor& target, const at::Tensor& table, int64_t negatives) {
  if (h.size(0) == 0) return zero_loss(h);
  if (negatives <= 0) return next_item_full_softmax(h, target, table);
  const int64_t I = table.size(0);
  at::Tensor neg = torch::randint(I, {negatives}, h.options().dtype(torch::kLong));
  at::Tensor q = torch::full({I}, 1.0 / double(I), h.options());
  return next_item_sampled_softmax(h, target, table, neg, q);
}

}  // namespace

at::Tensor JointObjective::loss(const Outputs& out, const Batch& b) {
  auto get = [&](const char* name) -> const at::Tensor& {
    auto it = out.find(name);
    MTREC_CHECK(it != out.end(), "joint task '", head_name(head_), "': the model gave no output '", name, "'");
    return it->second;
  };
  // The heads' own losses (tasks/rating.h, tasks/ctr.h).
  switch (head_) {
    case Head::Rating:
      return rating_loss(get("rating"), b.at("rating"), get("rating_l2"), rating_l2_, b.mask("rating"));
    case Head::Ctr:
      return ctr_loss(get("ctr_logit"), b.at("click"), b.mask("ctr"));
    case Head::NextItem:
      return next_item_loss(get("next_item/hidden"), get("next_item/target"), get("next_item/table"),
                            next_item_negatives_);
    case Head::Match:
      return softmax_loss(get("match/logits"), get("match/target"));
    case Head::Scenario:
      return softmax_loss(get("scenario/logits"), get("scenario/target"));
    case Head::Mlm:
      return mlm_result(get("mlm/logits"), get("mlm/targets")).loss;
  }
  MTREC_FAIL("joint task: not a head (", static_cast<int>(head_), ")");
}

Metrics JointObjective::validate(Model&) { return validation_ ? validation_->metrics(name()) : Metrics{}; }

std::vector<std::unique_ptr<Objective>> make_joint_tasks(const UnifiedOptions& o, std::shared_ptr<JointValidation> v) {
  std::vector<std::unique_ptr<Objective>> tasks;
  for (Head h : all_heads())
    if (o.has_task(h))
      tasks.push_back(
          std::make_unique<JointObjective>(h, h == Head::Mlm ? nullptr : v, o.next_item_negatives(), o.rating_l2()));
  return tasks;
}

std::vector<std::pair<std::string, bool>> joint_metrics(const UnifiedOptions& o) {
  const std::tuple<Head, const char*, bool> order[] = {{Head::Ctr, "auc", true},
                                                       {Head::Rating, "rmse", false},
                                                       {Head::NextItem, "NDCG@10", true},
                                                       {Head::Match, "NDCG@10", true},
                                                       {Head::Scenario, "accuracy", true}};
  std::vector<std::pair<std::string, bool>> metrics;
  for (const auto& [h, metric, max] : order)
    if (o.has_task(h)) metrics.emplace_back(std::string(head_name(h)) + "/" + metric, max);
  return metrics;
}

}  // namespace mtrec
