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
  MTREC_CHECK(options.num_users() > 0 && options.num_items() > 0 && options.dim() >= 0,
              "BiasedMF needs positive sizes and dim >= 0, got users=", options.num_users(),
              " items=", options.num_items(), " dim=", options.dim());
  // One table per side, [factors | bias]: a training step gathers, differentiates and updates
  // two tables instead of four (bench_engine: the step is that much shorter).
  auto table = [&](int64_t n) {
    return torch::nn::Embedding(torch::nn::EmbeddingOptions(n, options.dim() + 1).sparse(options.sparse()));
  };
  user_table = register_module("user_table", table(options.num_users()));
  item_table = register_module("item_table", table(options.num_items()));
  torch::NoGradGuard no_grad;
  for (auto* t : {&user_table, &item_table}) {
    (*t)->weight.narrow(1, 0, options.dim()).normal_(0, options.init_std());
    (*t)->weight.select(1, options.dim()).zero_();
  }
  global_mean = register_buffer("global_mean", torch::full({1}, options.global_mean()));
}

torch::Tensor BiasedMFImpl::user_factors() { return user_table->weight.narrow(1, 0, options.dim()); }
torch::Tensor BiasedMFImpl::item_factors() { return item_table->weight.narrow(1, 0, options.dim()); }
torch::Tensor BiasedMFImpl::user_bias() { return user_table->weight.select(1, options.dim()); }
torch::Tensor BiasedMFImpl::item_bias() { return item_table->weight.select(1, options.dim()); }

torch::Tensor BiasedMFImpl::forward(const torch::Tensor& users, const torch::Tensor& items) {
  return forward_with_l2(users, items).first;
}

BiasedMFImpl::Terms BiasedMFImpl::terms(const torch::Tensor& users, const torch::Tensor& items) {
  const int64_t d = options.dim();
  torch::Tensor P = user_table(users), Q = item_table(items);
  return {(P.narrow(1, 0, d) * Q.narrow(1, 0, d)).sum(1), P.select(1, d), Q.select(1, d),
          P.pow(2).sum(1) + Q.pow(2).sum(1)};
}

torch::Tensor BiasedMFImpl::l2_terms(const torch::Tensor& users, const torch::Tensor& items) {
  return forward_with_l2(users, items).second;
}

namespace {
// Score and L2 terms of gathered rows P, Q ([B, d + 1] = [factors | bias]) as one autograd
// node: s = <p, q> + b_u + b_i and l2 = |P|² + |Q|², with the hand-written gradient
// ds/dP = [q, 1], ds/dQ = [p, 1], dl2/dP = 2P. Composed of LibTorch ops this is a dozen nodes
// (narrow, select, mul, sum, pow, add and their backward allocations); fused, a CPU step of the
// rating model is that much shorter. CPU tensors take the loop; others the same maths in ops.
// Tested against the composed form and by a float64 gradient check (tests/tasks/heads_test.cpp).
struct MfScore : torch::autograd::Function<MfScore> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& P,
                                                const torch::Tensor& Q) {
    ctx->save_for_backward({P, Q});
    const int64_t B = P.size(0), d = P.size(1) - 1;
    if (!P.is_cpu()) {
      auto s = (P.narrow(1, 0, d) * Q.narrow(1, 0, d)).sum(1) + P.select(1, d) + Q.select(1, d);
      return {s, P.pow(2).sum(1) + Q.pow(2).sum(1)};
    }
    auto Pc = P.contiguous(), Qc = Q.contiguous();
    auto s = torch::empty({B}, P.options()), l2 = torch::empty({B}, P.options());
    AT_DISPATCH_FLOATING_TYPES(P.scalar_type(), "mf_score", [&] {
      const scalar_t *p = Pc.data_ptr<scalar_t>(), *q = Qc.data_ptr<scalar_t>();
      scalar_t *so = s.data_ptr<scalar_t>(), *lo = l2.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b, p += d + 1, q += d + 1) {
        scalar_t dot = 0, sq = 0;
        for (int64_t k = 0; k < d; ++k) dot += p[k] * q[k], sq += p[k] * p[k] + q[k] * q[k];
        so[b] = dot + p[d] + q[d];
        lo[b] = sq + p[d] * p[d] + q[d] * q[d];
      }
    });
    return {s, l2};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &P = saved[0], &Q = saved[1];
    const int64_t B = P.size(0), d = P.size(1) - 1;
    auto gs = grads[0].defined() ? grads[0] : torch::zeros({B}, P.options());
    auto gl = grads[1].defined() ? grads[1] : torch::zeros({B}, P.options());
    if (!P.is_cpu()) {
      auto ones = torch::ones({B, 1}, P.options());
      auto Ph = torch::cat({P.narrow(1, 0, d), ones}, 1), Qh = torch::cat({Q.narrow(1, 0, d), ones}, 1);
      return {gs.unsqueeze(1) * Qh + 2 * gl.unsqueeze(1) * P, gs.unsqueeze(1) * Ph + 2 * gl.unsqueeze(1) * Q};
    }
    auto Pc = P.contiguous(), Qc = Q.contiguous(), gsc = gs.contiguous(), glc = gl.contiguous();
    auto dP = torch::empty_like(Pc), dQ = torch::empty_like(Qc);
    AT_DISPATCH_FLOATING_TYPES(P.scalar_type(), "mf_score_backward", [&] {
      const scalar_t *p = Pc.data_ptr<scalar_t>(), *q = Qc.data_ptr<scalar_t>();
      const scalar_t *g1 = gsc.data_ptr<scalar_t>(), *g2 = glc.data_ptr<scalar_t>();
      scalar_t *dp = dP.data_ptr<scalar_t>(), *dq = dQ.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b, p += d + 1, q += d + 1, dp += d + 1, dq += d + 1) {
        const scalar_t a = g1[b], c = 2 * g2[b];
        for (int64_t k = 0; k < d; ++k) dp[k] = a * q[k] + c * p[k], dq[k] = a * p[k] + c * q[k];
        dp[d] = a + c * p[d];
        dq[d] = a + c * q[d];
      }
    });
    return {dP, dQ};
  }
};
}  // namespace

std::pair<torch::Tensor, torch::Tensor> BiasedMFImpl::forward_with_l2(const torch::Tensor& users,
                                                                      const torch::Tensor& items) {
  auto out = MfScore::apply(user_table(users), item_table(items));
  // |p_u|² + b_u² + |q_i|² + b_i² is out[1]: the squared norms of the two rows.
  return {global_mean + out[0], out[1]};
}

std::pair<torch::Tensor, torch::Tensor> mf_score_reference(const torch::Tensor& P, const torch::Tensor& Q) {
  const int64_t d = P.size(1) - 1;
  return {(P.narrow(1, 0, d) * Q.narrow(1, 0, d)).sum(1) + P.select(1, d) + Q.select(1, d),
          P.pow(2).sum(1) + Q.pow(2).sum(1)};
}

std::pair<torch::Tensor, torch::Tensor> mf_score(const torch::Tensor& P, const torch::Tensor& Q) {
  auto out = MfScore::apply(P, Q);
  return {out[0], out[1]};
}

torch::Tensor rating_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& l2_terms,
                          double lambda, const torch::Tensor& mask) {
  at::Tensor mse = masked_mean((pred - target).pow(2), mask);
  return lambda == 0 ? mse : mse + lambda * masked_mean(l2_terms, mask);
}

torch::nn::Module& RatingModel::module() { return *mf_; }

Outputs RatingModel::forward(const Batch& b) {
  const auto& u = b.at("user");
  const auto& i = b.at("item");
  auto [pred, l2] = mf_->forward_with_l2(u, i);
  return {{"rating", pred}, {"rating_l2", l2}};
}

std::vector<std::string> RatingModel::sparse_parameters() const {
  if (!mf_->options.sparse()) return {};
  return {"user_table.weight", "item_table.weight"};
}

RatingObjective::RatingObjective(double l2, Interactions valid, float lo, float hi)
    : l2_(l2), valid_(std::move(valid)), lo_(lo), hi_(hi) {
  MTREC_CHECK(valid_.empty() || valid_.has_rating, "the rating task's validation rows carry no ratings");
}

at::Tensor RatingObjective::loss(const Outputs& out, const Batch& b) {
  return rating_loss(out.at("rating"), b.at("rating"), out.at("rating_l2"), l2_, b.mask("rating"));
}

Metrics RatingObjective::validate(Model& model) {
  if (valid_.empty()) return {};
  auto& m = dynamic_cast<RatingModel&>(model);
  torch::NoGradGuard no_grad;
  auto device = m.mf()->global_mean.device();
  auto pred = m.mf()->forward(ids_tensor(valid_.user, device), ids_tensor(valid_.item, device)).clamp(lo_, hi_);
  auto err = pred - torch::tensor(valid_.rating).to(device);
  return {{"rmse", err.pow(2).mean().sqrt().item<double>()}, {"mae", err.abs().mean().item<double>()}};
}

std::vector<float> RatingFit::predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items) const {
  MTREC_CHECK(users.size() == items.size(), "predict: ", users.size(), " users but ", items.size(), " items");
  torch::NoGradGuard no_grad;
  auto& m = *model.ptr();  // forward() is not const in LibTorch
  auto device = m.global_mean.device();
  auto out = m.forward(ids_tensor(users, device), ids_tensor(items, device)).clamp(min_rating, max_rating);
  return to_float_vector(out);
}

RatingMetrics RatingFit::evaluate(const Interactions& test) const {
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
GoldenScoreFn rating_golden_fn(const RatingFit& t) {
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

Checkpoint RatingFit::to_checkpoint(const IdMap& users, const IdMap& items) const {
  Checkpoint ck;
  ck.task = "rating";
  const auto& o = model->options;
  ck.config_json = nlohmann::json{{"model", "biased_mf"},
                                  {"solver", solver},
                                  {"train_rmse", train_rmse},
                                  {"num_users", o.num_users()},
                                  {"num_items", o.num_items()},
                                  {"dim", o.dim()},
                                  {"min_rating", min_rating},
                                  {"max_rating", max_rating},
                                  {"epochs_run", epochs_run},
                                  {"best_epoch", best_epoch},
                                  {"best_valid_rmse", best_valid_rmse}}
                       .dump();
  ck.users = users;
  ck.items = items;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_inputs(o.num_users(), o.num_items(), 0), rating_golden_fn(*this));
  return ck;
}

RatingFit RatingFit::from_checkpoint(const Checkpoint& ck, const std::string& device) {
  require_task(ck, "rating");
  auto c = nlohmann::json::parse(model_config(ck));
  RatingFit t;
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
