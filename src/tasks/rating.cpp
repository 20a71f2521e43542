#include "mtrec/tasks/rating.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "mtrec/cf/bayes_mf.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"
#include "tensor_util.h"

namespace mtrec {

BiasedMFImpl::BiasedMFImpl(BiasedMFOptions o) : options(std::move(o)) { reset(); }

void BiasedMFImpl::reset() {
  MTREC_CHECK(options.num_users_ > 0 && options.num_items_ > 0 && options.dim_ > 0,
              "BiasedMF needs positive sizes, got users=", options.num_users_, " items=", options.num_items_,
              " dim=", options.dim_);
  user_factors = register_module("user_factors", torch::nn::Embedding(options.num_users_, options.dim_));
  item_factors = register_module("item_factors", torch::nn::Embedding(options.num_items_, options.dim_));
  user_bias = register_module("user_bias", torch::nn::Embedding(options.num_users_, 1));
  item_bias = register_module("item_bias", torch::nn::Embedding(options.num_items_, 1));
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

torch::Tensor rating_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& l2_terms,
                          double lambda) {
  return (pred - target).pow(2).mean() + lambda * l2_terms.mean();
}

namespace {
// One training run: `epochs` epochs on `fit_part`; with a validation set, keeps the best epoch's
// parameters and stops after `patience` epochs without improvement.
RatingTask train_run(const Interactions& fit_part, const Interactions& valid_part, int32_t num_users,
                     int32_t num_items, float min_rating, float max_rating, int epochs, const RatingTrainOptions& o) {
  torch::manual_seed(derive_seed(o.seed_, "rating-init"));
  const auto device = choose_device(o.device_);
  RatingTask task;
  task.solver = o.solver_;
  double mean = std::accumulate(fit_part.rating.begin(), fit_part.rating.end(), 0.0) / fit_part.size();
  task.min_rating = min_rating;
  task.max_rating = max_rating;
  task.model = BiasedMF(BiasedMFOptions(num_users, num_items).dim(o.dim_).global_mean(mean));
  task.model->to(device);

  auto u = ids_tensor(fit_part.user, device), i = ids_tensor(fit_part.item, device);
  auto r = torch::tensor(fit_part.rating).to(device);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (o.solver_ == "adam")
    opt = std::make_unique<torch::optim::Adam>(task.model->parameters(), torch::optim::AdamOptions(o.lr_));
  else
    opt = std::make_unique<torch::optim::SGD>(task.model->parameters(), torch::optim::SGDOptions(o.lr_).momentum(0.9));

  const int64_t n = u.size(0);
  Rng perm_rng(derive_seed(o.seed_, "rating-batches"));
  BestEpoch best;
  double lr = o.lr_;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    task.model->train();
    double loss = train_epoch(n, o.batch_size_, perm_rng, device, *opt, "rating epoch " + std::to_string(epoch),
                              o.progress_, [&](const torch::Tensor& idx) {
                                auto bu = u.index_select(0, idx), bi = i.index_select(0, idx);
                                return rating_loss(task.model->forward(bu, bi), r.index_select(0, idx),
                                                   task.model->l2_terms(bu, bi), o.l2_);
                              });
    lr *= o.lr_decay_;
    for (auto& g : opt->param_groups()) g.options().set_lr(lr);
    task.epochs_run = epoch;
    if (valid_part.empty()) continue;
    double v = task.evaluate(valid_part).rmse;
    log_debug("rating epoch {}: train loss {:.4f}, valid RMSE {:.4f}", epoch, loss, v);
    if (!best.update(-v, *task.model, epoch, o.patience_)) break;
  }
  best.restore(*task.model);
  task.best_epoch = best.empty() ? task.epochs_run : best.best_epoch();
  task.best_valid_rmse = best.empty() ? 0.0 : -best.best();
  task.model->eval();
  return task;
}

// Gibbs sampling (cf/bayes_mf.h); the module holds the posterior-mean parameters.
RatingTask fit_mcmc(const Interactions& train, int32_t num_users, int32_t num_items, float lo, float hi,
                    const RatingTrainOptions& o) {
  ProgressBar bar(o.sweeps_, "rating mcmc");
  BayesMf mf = fit_bayes_mf(train, num_users, num_items,
                            BayesMfOptions().dim(o.dim_).iterations(o.sweeps_).burn_in(o.burn_in_ < 0 ? o.sweeps_ / 10 : o.burn_in_).threads(o.threads_)
                                .seed(derive_seed(o.seed_, "rating-mcmc")),
                            [&](int sweep, double rmse) {
                              if (o.progress_) {
                                bar.set_postfix("train RMSE " + std::to_string(rmse).substr(0, 6));
                                bar.tick();
                              }
                              log_debug("rating mcmc sweep {}: sample train RMSE {:.4f}", sweep, rmse);
                            });
  bar.finish();
  RatingTask task;
  task.solver = "mcmc";
  task.min_rating = lo;
  task.max_rating = hi;
  task.epochs_run = o.sweeps_;
  task.train_rmse = mf.train_rmse;
  task.model = BiasedMF(BiasedMFOptions(num_users, num_items).dim(o.dim_).global_mean(mf.global_mean));
  {
    torch::NoGradGuard no_grad;
    auto copy = [](torch::Tensor& dst, const std::vector<float>& src) {
      dst.copy_(torch::from_blob(const_cast<float*>(src.data()), dst.sizes(), torch::kFloat32));
    };
    copy(task.model->user_factors->weight, mf.user_factors);
    copy(task.model->item_factors->weight, mf.item_factors);
    copy(task.model->user_bias->weight, mf.user_bias);
    copy(task.model->item_bias->weight, mf.item_bias);
  }
  task.model->to(choose_device(o.device_));
  task.model->eval();
  return task;
}
}  // namespace

RatingTask RatingTask::fit(const Interactions& train, int32_t num_users, int32_t num_items,
                           const RatingTrainOptions& options) {
  MTREC_CHECK(train.has_rating, "the rating task needs interactions with ratings");
  MTREC_CHECK(train.size() >= 2, "the rating task needs at least 2 training ratings, got ", train.size());
  MTREC_CHECK(options.solver_ == "mcmc" || options.solver_ == "sgd" || options.solver_ == "adam",
              "unknown rating solver '", options.solver_, "' (expected mcmc|sgd|adam)");
  RatingTrainOptions o = options;
  if (o.dim_ == 0) o.dim_ = o.solver_ == "mcmc" ? 32 : 128;
  MTREC_CHECK(o.dim_ >= 1, "rating options: dim must be >= 1 (or 0 for the solver's default), got ", o.dim_);
  const float lo = *std::min_element(train.rating.begin(), train.rating.end());
  const float hi = *std::max_element(train.rating.begin(), train.rating.end());
  if (o.solver_ == "mcmc") return fit_mcmc(train, num_users, num_items, lo, hi, o);
  MTREC_CHECK(o.valid_fraction_ >= 0 && o.valid_fraction_ < 1, "valid_fraction must be in [0, 1), got ",
              o.valid_fraction_);
  MTREC_CHECK(o.epochs_ >= 1 && o.batch_size_ >= 1, "rating options: epochs=", o.epochs_,
              " batch_size=", o.batch_size_, " must both be >= 1");
  if (o.valid_fraction_ == 0) return train_run(train, {}, num_users, num_items, lo, hi, o.epochs_, o);

  // Validation slice of the training rows (seeded), for early stopping.
  std::vector<size_t> rows(train.size());
  std::iota(rows.begin(), rows.end(), 0);
  Rng rng(derive_seed(o.seed_, "rating-valid"));
  std::shuffle(rows.begin(), rows.end(), rng);
  size_t n_valid = std::max<size_t>(1, static_cast<size_t>(o.valid_fraction_ * rows.size()));
  std::vector<size_t> valid_rows(rows.begin(), rows.begin() + n_valid), fit_rows(rows.begin() + n_valid, rows.end());
  std::sort(valid_rows.begin(), valid_rows.end());
  std::sort(fit_rows.begin(), fit_rows.end());
  RatingTask first = train_run(train.subset(fit_rows), train.subset(valid_rows), num_users, num_items, lo, hi,
                               o.epochs_, o);
  if (!o.refit_) return first;
  // The validation slice chose the number of epochs; the final model sees every training row.
  RatingTask task = train_run(train, {}, num_users, num_items, lo, hi, first.best_epoch, o);
  task.best_valid_rmse = first.best_valid_rmse;
  task.best_epoch = first.best_epoch;
  return task;
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
