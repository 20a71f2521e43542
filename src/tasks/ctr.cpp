#include "mtrec/tasks/ctr.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"
#include "mtrec/eval/metrics.h"
#include "tensor_util.h"

namespace mtrec {

CtrFactorsImpl::CtrFactorsImpl(int64_t num_users, int64_t num_items, int64_t dim, bool sparse) {
  MTREC_CHECK(num_users > 0 && num_items > 0 && dim > 0, "CtrFactors needs positive sizes, got users=", num_users,
              " items=", num_items, " dim=", dim);
  auto table = [&](int64_t n, int64_t d) {
    return torch::nn::Embedding(torch::nn::EmbeddingOptions(n, d).sparse(sparse));
  };
  user = register_module("user", table(num_users, dim));
  item = register_module("item", table(num_items, dim));
  bias = register_module("bias", table(num_items, 1));
}

void CtrFactorsImpl::init(double std) {
  torch::NoGradGuard g;
  user->weight.normal_(0, std), item->weight.normal_(0, std);
  bias->weight.zero_();
}

std::pair<torch::Tensor, torch::Tensor> CtrFactorsImpl::terms(const torch::Tensor& users, const torch::Tensor& items) {
  return {(user(users) * item(items)).sum(-1), bias(items).squeeze(-1)};
}

torch::Tensor CtrFactorsImpl::forward(const torch::Tensor& users, const torch::Tensor& items) {
  auto [dot, b] = terms(users, items);
  return dot + b;
}

void upgrade_ctr_factor_names(Checkpoint& ck, const std::string& old_user, const std::string& old_item,
                              const std::string& old_bias, const std::string& prefix) {
  for (auto& [name, t] : ck.tensors) {
    if (name == old_user + ".weight")
      name = prefix + "user.weight";
    else if (name == old_item + ".weight")
      name = prefix + "item.weight";
    else if (name == old_bias + ".weight")
      name = prefix + "bias.weight";
  }
}

CtrModelImpl::CtrModelImpl(CtrModelOptions o) : options(std::move(o)) { reset(); }

void CtrModelImpl::reset() {
  const auto& o = options;
  MTREC_CHECK(o.num_users() > 0 && o.num_items() > 0 && o.num_scenarios() > 0 && o.dim() > 0,
              "CtrModel needs positive sizes, got users=", o.num_users(), " items=", o.num_items(),
              " scenarios=", o.num_scenarios(), " dim=", o.dim());
  factors = register_module("factors", CtrFactors(o.num_users(), o.num_items(), o.dim()));
  scenario_emb = register_module("scenario_emb", torch::nn::Embedding(o.num_scenarios(), o.dim()));
  // Drawn in the order of the model before CtrFactors (the same draws, the same numbers).
  factors->init(0.05);
  {
    torch::NoGradGuard g;
    scenario_emb->weight.normal_(0, 0.05);
  }
  torch::nn::Sequential seq;
  int64_t in = 4 * o.dim();
  for (int64_t h : o.hidden()) {
    seq->push_back(torch::nn::Linear(in, h));
    seq->push_back(torch::nn::ReLU());
    in = h;
  }
  seq->push_back(torch::nn::Linear(in, 1));
  mlp = register_module("mlp", seq);
}

torch::Tensor CtrModelImpl::forward(const torch::Tensor& users, const torch::Tensor& items,
                                    const torch::Tensor& scenarios) {
  auto u = factors->user(users), i = factors->item(items), s = scenario_emb(scenarios);
  auto deep = mlp->forward(torch::cat({u, i, s, u * i}, 1)).squeeze(-1);
  return deep + (u * i).sum(-1) + factors->bias(items).squeeze(-1);
}

torch::Tensor ctr_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask) {
  at::Tensor l = torch::binary_cross_entropy_with_logits(logits, labels, {}, {}, at::Reduction::None);
  return masked_mean(l.dim() == 2 ? l.mean(1) : l, mask);
}

namespace {
CtrMetrics metrics_of(const std::vector<float>& p, const std::vector<float>& y, const std::vector<int32_t>& g) {
  CtrMetrics m;
  m.count = static_cast<int64_t>(p.size());
  m.auc = auc(p, y);
  m.gauc = gauc(p, y, g);
  m.logloss = logloss(p, y);
  return m;
}
}  // namespace

CtrMetrics ctr_metrics(const CtrExamples& ex, const std::vector<float>& prob) {
  MTREC_CHECK(prob.size() == ex.size(), "ctr_metrics: ", prob.size(), " scores for ", ex.size(), " examples");
  CtrMetrics m = metrics_of(prob, ex.label, ex.user);
  std::set<int32_t> scen(ex.scenario.begin(), ex.scenario.end());
  if (scen.size() > 1) {
    for (int32_t s : scen) {
      std::vector<float> p, y;
      std::vector<int32_t> g;
      for (size_t k = 0; k < ex.size(); ++k)
        if (ex.scenario[k] == s) {
          p.push_back(prob[k]);
          y.push_back(ex.label[k]);
          g.push_back(ex.user[k]);
        }
      m.per_scenario[s] = metrics_of(p, y, g);
    }
  }
  return m;
}

torch::nn::Module& CtrEngineModel::module() { return *model_; }

Outputs CtrEngineModel::forward(const Batch& b) {
  return {{"ctr_logit", model_->forward(b.at("user"), b.at("item"), b.at("scenario"))}};
}

CtrExampleSource::CtrExampleSource(Interactions positives, NegativeSampler sampler, int ratio)
    : positives_(std::move(positives)), sampler_(std::move(sampler)), ratio_(ratio) {
  MTREC_CHECK(ratio_ >= 1, "CTR needs negatives >= 1, got ", ratio_);
}

void CtrExampleSource::begin_epoch(int, uint64_t seed) {
  sampler_.reseed(derive_seed(seed, "ctr-negatives"));
  examples_ = sample_ctr_examples(positives_, sampler_, ratio_);
}

Batch CtrExampleSource::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  const size_t n = rows.size();
  std::vector<int64_t> u(n), i(n), s(n);
  std::vector<float> y(n);
  for (size_t k = 0; k < n; ++k) {
    const auto r = static_cast<size_t>(rows[k]);
    u[k] = examples_.user[r], i[k] = examples_.item[r], s[k] = examples_.scenario[r], y[k] = examples_.label[r];
  }
  Batch b;
  b.size = static_cast<int64_t>(n);
  b.fields["user"] = torch::tensor(u, torch::kLong).to(device);
  b.fields["item"] = torch::tensor(i, torch::kLong).to(device);
  b.fields["scenario"] = torch::tensor(s, torch::kLong).to(device);
  b.fields["click"] = torch::tensor(y, torch::kFloat).to(device);
  return b;
}

at::Tensor CtrObjective::loss(const Outputs& out, const Batch& b) {
  return ctr_loss(out.at("ctr_logit"), b.at("click"), b.mask("ctr"));
}

Metrics CtrObjective::validate(Model& model) {
  if (valid_.size() == 0) return {};
  CtrFit view;
  view.model = dynamic_cast<CtrEngineModel&>(model).model();
  CtrMetrics m = view.evaluate(valid_);  // the trainer validates in eval mode
  return {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}};
}

std::vector<float> CtrFit::predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items,
                                   const std::vector<int32_t>& scenarios) const {
  MTREC_CHECK(users.size() == items.size() && items.size() == scenarios.size(), "CTR predict: ", users.size(),
              " users, ", items.size(), " items, ", scenarios.size(), " scenarios");
  // const and called from the evaluator's threads at once: it must not touch the module's
  // state. fit() and from_checkpoint() leave the model in eval mode; a caller that switched it
  // back to training (to fine-tune) switches it to eval before predicting.
  auto& m = *model.ptr();  // forward() is not const in LibTorch, but reads only
  MTREC_CHECK(!m.is_training(),
              "CtrFit::predict: the model is in training mode; call model->eval() first "
              "(predict never changes the mode: it runs on several threads at once)");
  torch::NoGradGuard g;
  auto dev = m.factors->bias->weight.device();
  std::vector<float> out;
  out.reserve(users.size());
  const size_t chunk = 1 << 16;  // bounds memory on large test sets
  for (size_t at = 0; at < users.size(); at += chunk) {
    size_t end = std::min(users.size(), at + chunk);
    auto sl = [&](const std::vector<int32_t>& v) { return std::vector<int32_t>(v.begin() + at, v.begin() + end); };
    auto p = torch::sigmoid(
        m.forward(ids_tensor(sl(users), dev), ids_tensor(sl(items), dev), ids_tensor(sl(scenarios), dev)));
    auto part = to_float_vector(p);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

CtrMetrics CtrFit::evaluate(const CtrExamples& test) const {
  return ctr_metrics(test, predict(test.user, test.item, test.scenario));
}

namespace {
GoldenScoreFn ctr_golden_fn(const CtrFit& t) {
  return [&t](const std::vector<std::vector<int64_t>>& in) {
    std::vector<int32_t> u, i, s;
    for (const auto& x : in) {
      u.push_back(static_cast<int32_t>(x.at(0)));
      i.push_back(static_cast<int32_t>(x.at(1)));
      s.push_back(static_cast<int32_t>(x.at(2)));
    }
    return t.predict(u, i, s);
  };
}
}  // namespace

Checkpoint CtrFit::to_checkpoint(const IdMap& users, const IdMap& items, const IdMap& scenarios) const {
  Checkpoint ck;
  ck.task = "ctr";
  const auto& o = model->options;
  ck.config_json = nlohmann::json{
      {"model", "ctr_mlp_dot"},
      {"num_users", o.num_users()},
      {"num_items", o.num_items()},
      {"num_scenarios", o.num_scenarios()},
      {"dim", o.dim()},
      {"hidden", o.hidden()},
      {"epochs_run",
       epochs_run}}.dump();
  ck.users = users;
  ck.items = items;
  ck.scenarios = scenarios;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_inputs(o.num_users(), o.num_items(), o.num_scenarios()), ctr_golden_fn(*this));
  return ck;
}

CtrFit CtrFit::from_checkpoint(const Checkpoint& checkpoint, const std::string& device) {
  require_task(checkpoint, "ctr");
  Checkpoint ck = checkpoint;  // tensors share storage: the copy is of names
  upgrade_ctr_factor_names(ck, "user_emb", "item_emb", "item_bias", "factors.");
  auto c = nlohmann::json::parse(model_config(ck));
  CtrFit t;
  t.model = CtrModel(CtrModelOptions(c.at("num_users").get<int64_t>(), c.at("num_items").get<int64_t>(),
                                     c.at("num_scenarios").get<int64_t>())
                         .dim(c.at("dim").get<int64_t>())
                         .hidden(c.at("hidden").get<std::vector<int64_t>>()));
  t.model->to(choose_device(device));
  load_module_state(*t.model, ck);
  t.model->eval();
  t.epochs_run = c.value("epochs_run", 0);
  verify_golden(ck, ctr_golden_fn(t));
  return t;
}

}  // namespace mtrec
