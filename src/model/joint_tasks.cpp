#include "mtrec/model/joint_tasks.h"

#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/tasks/next_item.h"

namespace mtrec {

JointValidation::JointValidation(UnifiedModel model, const Dataset& ds, Interactions known, Interactions valid,
                                 JointEvalOptions options)
    : model_(std::move(model)), ds_(ds), known_(std::move(known)), valid_(std::move(valid)), options_(std::move(options)) {}

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

JointObjective::JointObjective(std::string name, std::shared_ptr<JointValidation> validation, int64_t next_item_negatives,
                               double rating_l2)
    : name_(std::move(name)), validation_(std::move(validation)), next_item_negatives_(next_item_negatives),
      rating_l2_(rating_l2) {}

namespace {

at::Tensor zero_loss(const at::Tensor& like) { return like.sum() * 0; }

at::Tensor softmax_loss(const at::Tensor& logits, const at::Tensor& target) {
  if (logits.size(0) == 0) return zero_loss(logits);
  // Reduced-precision logits (bf16 autocast) are upcast; float64 (gradient checks) stays.
  return torch::nn::functional::cross_entropy(logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat),
                                              target);
}

}  // namespace

at::Tensor JointObjective::loss(const Outputs& out, const Batch& b) {
  auto get = [&](const char* name) -> const at::Tensor& {
    auto it = out.find(name);
    MTREC_CHECK(it != out.end(), "joint task '", name_, "': the model gave no output '", name, "'");
    return it->second;
  };
  // The heads' own losses (tasks/rating.h, tasks/ctr.h).
  if (name_ == "rating") return rating_loss(get("rating"), b.at("rating"), get("rating_l2"), rating_l2_, b.mask("rating"));
  if (name_ == "ctr") return ctr_loss(get("ctr_logit"), b.at("click"), b.mask("ctr"));
  if (name_ == "next_item") {
    const at::Tensor& h = get("next_item/hidden");
    if (h.size(0) == 0) return zero_loss(h);
    const at::Tensor& table = get("next_item/table");
    if (next_item_negatives_ <= 0) return next_item_full_softmax(h, get("next_item/target"), table);
    // Uniform negatives shared by the batch, drawn from LibTorch's generator (the trainer's).
    const int64_t I = table.size(0);
    at::Tensor neg = torch::randint(I, {next_item_negatives_}, h.options().dtype(torch::kLong));
    at::Tensor q = torch::full({I}, 1.0 / double(I), h.options());
    return next_item_sampled_softmax(h, get("next_item/target"), table, neg, q);
  }
  if (name_ == "match") return softmax_loss(get("match/logits"), get("match/target"));
  if (name_ == "scenario") return softmax_loss(get("scenario/logits"), get("scenario/target"));
  MTREC_CHECK(name_ == "mlm", "unknown joint task '", name_, "'");
  return tasks::mlm_result(get("mlm/logits"), get("mlm/targets")).loss;
}

Metrics JointObjective::validate(Model&) { return validation_ ? validation_->metrics(name_) : Metrics{}; }

std::vector<std::unique_ptr<Task>> make_joint_tasks(const UnifiedOptions& o, std::shared_ptr<JointValidation> v) {
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& name : joint_task_names())
    if (o.has_task(name))
      tasks.push_back(
          std::make_unique<JointObjective>(name, name == "mlm" ? nullptr : v, o.next_item_negatives(), o.rating_l2()));
  return tasks;
}

std::string joint_monitor(const UnifiedOptions& o, bool* maximize) {
  const std::pair<const char*, bool> order[] = {{"ctr/auc", true},
                                                {"rating/rmse", false},
                                                {"next_item/NDCG@10", true},
                                                {"match/NDCG@10", true},
                                                {"scenario/accuracy", true}};
  for (const auto& [m, max] : order) {
    const std::string t(m);
    if (o.has_task(t.substr(0, t.find('/')))) {
      *maximize = max;
      return t;
    }
  }
  *maximize = false;
  return "";
}

}  // namespace mtrec
