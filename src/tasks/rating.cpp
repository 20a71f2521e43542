#include "mtrec/tasks/rating.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "tensor_util.h"

namespace mtrec {

BiasedMFImpl::BiasedMFImpl(BiasedMFOptions o) : options(std::move(o)) { reset(); }

void BiasedMFImpl::reset() {
  MTREC_CHECK(options.num_users_ > 0 && options.num_items_ > 0 && options.dim_ > 0,
              "BiasedMF needs positive sizes, got users=", options.num_users_, " items=", options.num_items_,
              " dim=", options.dim_);
  auto table = [&](int64_t n, int64_t d) {
    return torch::nn::Embedding(torch::nn::EmbeddingOptions(n, d).sparse(options.sparse_));
  };
  user_factors = register_module("user_factors", table(options.num_users_, options.dim_));
  item_factors = register_module("item_factors", table(options.num_items_, options.dim_));
  user_bias = register_module("user_bias", table(options.num_users_, 1));
  item_bias = register_module("item_bias", table(options.num_items_, 1));
  torch::NoGradGuard no_grad;
  user_factors->weight.normal_(0, options.init_std_);
  item_factors->weight.normal_(0, options.init_std_);
  user_bias->weight.zero_();
  item_bias->weight.zero_();
  global_mean = register_buffer("global_mean", torch::full({1}, options.global_mean_));
}

torch::Tensor BiasedMFImpl::forward(const torch::Tensor& users, const torch::Tensor& items) {
  auto p = user_factors(users), q = item_factors(items);
  return global_mean + user_bias(users).squeeze(-1) + item_bias(items).squeeze(-1) + (p * q).sum(-1);
}

torch::Tensor BiasedMFImpl::l2_terms(const torch::Tensor& users, const torch::Tensor& items) {
  return user_factors(users).pow(2).sum(-1) + item_factors(items).pow(2).sum(-1) +
         user_bias(users).pow(2).squeeze(-1) + item_bias(items).pow(2).squeeze(-1);
}

std::pair<torch::Tensor, torch::Tensor> BiasedMFImpl::forward_with_l2(const torch::Tensor& users,
                                                                      const torch::Tensor& items) {
  auto p = user_factors(users), q = item_factors(items);
  auto bu = user_bias(users).squeeze(-1), bi = item_bias(items).squeeze(-1);
  auto pred = global_mean + bu + bi + (p * q).sum(-1);
  auto l2 = p.pow(2).sum(-1) + q.pow(2).sum(-1) + bu.pow(2) + bi.pow(2);
  return {pred, l2};
}

torch::Tensor rating_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& l2_terms,
                          double lambda) {
  return (pred - target).pow(2).mean() + lambda * l2_terms.mean();
}

torch::nn::Module& RatingModel::module() { return *mf_; }

Outputs RatingModel::forward(const Batch& b) {
  const auto& u = b.at("user");
  const auto& i = b.at("item");
  auto [pred, l2] = mf_->forward_with_l2(u, i);
  return {{"rating", pred}, {"rating_l2", l2}};
}

std::vector<std::string> RatingModel::sparse_parameters() const {
  if (!mf_->options.sparse_) return {};
  return {"user_factors.weight", "item_factors.weight", "user_bias.weight", "item_bias.weight"};
}

RatingObjective::RatingObjective(double l2, Interactions valid, float lo, float hi)
    : l2_(l2), valid_(std::move(valid)), lo_(lo), hi_(hi) {
  MTREC_CHECK(valid_.empty() || valid_.has_rating, "the rating task's validation rows carry no ratings");
}

at::Tensor RatingObjective::loss(const Outputs& out, const Batch& b) {
  auto mask = b.mask("rating");
  auto se = (out.at("rating") - b.at("rating")).pow(2);
  return masked_mean(se, mask) + l2_ * masked_mean(out.at("rating_l2"), mask);
}

Metrics RatingObjective::validate(Model& model) {
  if (valid_.empty()) return {};
  auto& m = dynamic_cast<RatingModel&>(model);
  torch::NoGradGuard no_grad;
  auto device = m.mf()->user_bias->weight.device();
  auto pred = m.mf()->forward(ids_tensor(valid_.user, device), ids_tensor(valid_.item, device)).clamp(lo_, hi_);
  auto err = pred - torch::tensor(valid_.rating).to(device);
  return {{"rmse", err.pow(2).mean().sqrt().item<double>()}, {"mae", err.abs().mean().item<double>()}};
}

std::vector<float> RatingTask::predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items) const {
  MTREC_CHECK(users.size() == items.size(), "predict: ", users.size(), " users but ", items.size(), " items");
  torch::NoGradGuard no_grad;
  auto& m = *model.ptr();  // forward() is not const in LibTorch
  auto device = m.user_bias->weight.device();
  auto out = m.forward(ids_tensor(users, device), ids_tensor(items, device)).clamp(min_rating, max_rating);
  return to_float_vector(out);
}

RatingMetrics RatingTask::evaluate(const Interactions& test) const {
  MTREC_CHECK(test.has_rating, "rating evaluation needs interactions with ratings");
  RatingMetrics m;
  m.count = static_cast<int64_t>(test.size());
  if (test.empty()) return m;
  auto pred = predict(test.user, test.item);
  double se = 0, ae = 0;
  for (size_t k = 0; k < pred.size(); ++k) {
    double e = pred[k] - test.rating[k];
    se += e * e;
    ae += std::fabs(e);
  }
  m.rmse = std::sqrt(se / pred.size());
  m.mae = ae / pred.size();
  return m;
}

namespace {
GoldenScoreFn rating_golden_fn(const RatingTask& t) {
  return [&t](const std::vector<std::vector<int64_t>>& in) {
    std::vector<int32_t> u, i;
    for (const auto& x : in) {
      u.push_back(static_cast<int32_t>(x.at(0)));
      i.push_back(static_cast<int32_t>(x.at(1)));
    }
    return t.predict(u, i);
  };
}
}  // namespace

Checkpoint RatingTask::to_checkpoint(const IdMap& users, const IdMap& items) const {
  Checkpoint ck;
  ck.task = "rating";
  const auto& o = model->options;
  ck.config_json = nlohmann::json{{"model", "biased_mf"},
                                  {"solver", solver},
                                  {"train_rmse", train_rmse},
                                  {"num_users", o.num_users_},
                                  {"num_items", o.num_items_},
                                  {"dim", o.dim_},
                                  {"min_rating", min_rating},
                                  {"max_rating", max_rating},
                                  {"epochs_run", epochs_run},
                                  {"best_epoch", best_epoch},
                                  {"best_valid_rmse", best_valid_rmse}}
                       .dump();
  ck.users = users;
  ck.items = items;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_inputs(o.num_users_, o.num_items_, 0), rating_golden_fn(*this));
  return ck;
}

RatingTask RatingTask::from_checkpoint(const Checkpoint& ck, const std::string& device) {
  MTREC_CHECK(ck.task == "rating", "checkpoint '", ck.path, "' holds task '", ck.task, "', not 'rating'");
  auto c = nlohmann::json::parse(ck.config_json);
  RatingTask t;
  t.model = BiasedMF(BiasedMFOptions(c.at("num_users").get<int64_t>(), c.at("num_items").get<int64_t>())
                         .dim(c.at("dim").get<int64_t>()));
  t.model->to(choose_device(device));
  load_module_state(*t.model, ck);
  t.model->eval();
  t.min_rating = c.at("min_rating").get<float>();
  t.max_rating = c.at("max_rating").get<float>();
  t.solver = c.value("solver", std::string("sgd"));
  t.train_rmse = c.value("train_rmse", 0.0);
  t.epochs_run = c.value("epochs_run", 0);
  t.best_epoch = c.value("best_epoch", 0);
  t.best_valid_rmse = c.value("best_valid_rmse", 0.0);
  verify_golden(ck, rating_golden_fn(t));
  return t;
}

}  // namespace mtrec
