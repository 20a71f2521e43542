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

CtrModelImpl::CtrModelImpl(CtrModelOptions o) : options(std::move(o)) { reset(); }

void CtrModelImpl::reset() {
  const auto& o = options;
  MTREC_CHECK(o.num_users_ > 0 && o.num_items_ > 0 && o.num_scenarios_ > 0 && o.dim_ > 0,
              "CtrModel needs positive sizes, got users=", o.num_users_, " items=", o.num_items_,
              " scenarios=", o.num_scenarios_, " dim=", o.dim_);
  user_emb = register_module("user_emb", torch::nn::Embedding(o.num_users_, o.dim_));
  item_emb = register_module("item_emb", torch::nn::Embedding(o.num_items_, o.dim_));
  scenario_emb = register_module("scenario_emb", torch::nn::Embedding(o.num_scenarios_, o.dim_));
  item_bias = register_module("item_bias", torch::nn::Embedding(o.num_items_, 1));
  {
    torch::NoGradGuard g;
    for (auto* e : {&user_emb, &item_emb, &scenario_emb}) (*e)->weight.normal_(0, 0.05);
    item_bias->weight.zero_();
  }
  torch::nn::Sequential seq;
  int64_t in = 4 * o.dim_;
  for (int64_t h : o.hidden_) {
    seq->push_back(torch::nn::Linear(in, h));
    seq->push_back(torch::nn::ReLU());
    in = h;
  }
  seq->push_back(torch::nn::Linear(in, 1));
  mlp = register_module("mlp", seq);
}

torch::Tensor CtrModelImpl::forward(const torch::Tensor& users, const torch::Tensor& items,
                                    const torch::Tensor& scenarios) {
  auto u = user_emb(users), i = item_emb(items), s = scenario_emb(scenarios);
  auto deep = mlp->forward(torch::cat({u, i, s, u * i}, 1)).squeeze(-1);
  return deep + (u * i).sum(-1) + item_bias(items).squeeze(-1);
}

torch::Tensor ctr_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::binary_cross_entropy_with_logits(logits, labels);
}

CtrExamples sample_ctr_examples(const Interactions& positives, NegativeSampler& sampler, int ratio) {
  MTREC_CHECK(ratio >= 0, "negative ratio must be >= 0, got ", ratio);
  CtrExamples ex;
  const size_t n = positives.size() * (1 + static_cast<size_t>(ratio));
  ex.user.reserve(n);
  ex.item.reserve(n);
  ex.scenario.reserve(n);
  ex.label.reserve(n);
  for (size_t k = 0; k < positives.size(); ++k) {
    const int32_t u = positives.user[k], s = positives.scenario.empty() ? 0 : positives.scenario[k];
    ex.user.push_back(u);
    ex.item.push_back(positives.item[k]);
    ex.scenario.push_back(s);
    ex.label.push_back(1.0f);
    if (ratio == 0) continue;
    for (int32_t it : sampler.sample(u, ratio)) {
      ex.user.push_back(u);
      ex.item.push_back(it);
      ex.scenario.push_back(s);
      ex.label.push_back(0.0f);
    }
  }
  return ex;
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

NegativeSampler ctr_negative_sampler(const Interactions& interactions, int32_t num_users, int32_t num_items,
                                     uint64_t seed) {
  return NegativeSampler(interactions, num_users, num_items, NegativeSampler::Kind::Uniform, seed);
}

CtrTask CtrTask::fit(const Interactions& positives, int32_t num_users, int32_t num_items, int32_t num_scenarios,
                     const CtrTrainOptions& o, const Interactions& seen) {
  MTREC_CHECK(positives.size() >= 2, "CTR needs at least 2 positives, got ", positives.size());
  MTREC_CHECK(o.negatives_ >= 1, "CTR needs negatives >= 1, got ", o.negatives_);
  torch::manual_seed(derive_seed(o.seed_, "ctr-init"));
  const auto device = choose_device(o.device_);

  std::vector<size_t> rows(positives.size());
  std::iota(rows.begin(), rows.end(), 0);
  Rng rng(derive_seed(o.seed_, "ctr-valid"));
  std::shuffle(rows.begin(), rows.end(), rng);
  size_t n_valid = o.valid_fraction_ > 0 ? std::max<size_t>(1, static_cast<size_t>(o.valid_fraction_ * rows.size())) : 0;
  std::vector<size_t> vrows(rows.begin(), rows.begin() + n_valid), frows(rows.begin() + n_valid, rows.end());
  std::sort(vrows.begin(), vrows.end());
  std::sort(frows.begin(), frows.end());
  Interactions fit_part = positives.subset(frows);
  // Negatives never hit an item the user has a training row for: a positive (validation ones
  // included) or any row of `seen`, the rule test negatives follow too (ctr_negative_sampler).
  Interactions pool;
  pool.reserve(positives.size() + seen.size());
  for (const Interactions* x : {&positives, &seen})
    for (size_t k = 0; k < x->size(); ++k) pool.push_back(x->user[k], x->item[k]);
  NegativeSampler sampler = ctr_negative_sampler(pool, num_users, num_items, derive_seed(o.seed_, "ctr-neg"));
  CtrExamples valid;
  if (n_valid > 0) valid = sample_ctr_examples(positives.subset(vrows), sampler, o.negatives_);

  CtrTask task;
  task.model = CtrModel(CtrModelOptions(num_users, num_items, num_scenarios).dim(o.dim_).hidden(o.hidden_));
  task.model->to(device);
  torch::optim::Adam opt(task.model->parameters(), torch::optim::AdamOptions(o.lr_).weight_decay(o.weight_decay_));
  BestEpoch best;
  for (int epoch = 1; epoch <= o.epochs_; ++epoch) {
    task.model->train();
    CtrExamples ex = sample_ctr_examples(fit_part, sampler, o.negatives_);
    auto U = ids_tensor(ex.user, device), I = ids_tensor(ex.item, device), S = ids_tensor(ex.scenario, device);
    auto Y = torch::tensor(ex.label).to(device);
    double loss = train_epoch(U.size(0), o.batch_size_, rng, device, opt, "ctr epoch " + std::to_string(epoch),
                              o.progress_, [&](const torch::Tensor& idx) {
                                return ctr_loss(task.model->forward(U.index_select(0, idx), I.index_select(0, idx),
                                                                    S.index_select(0, idx)),
                                                Y.index_select(0, idx));
                              });
    task.epochs_run = epoch;
    if (valid.size() == 0) continue;
    task.model->eval();  // predict() never switches the mode itself
    double v = task.evaluate(valid).auc;
    log_debug("ctr epoch {}: loss {:.4f}, valid AUC {:.4f}", epoch, loss, v);
    if (!best.update(v, *task.model, epoch, o.patience_)) break;
  }
  best.restore(*task.model);
  task.model->eval();
  return task;
}

std::vector<float> CtrTask::predict(const std::vector<int32_t>& users, const std::vector<int32_t>& items,
                                    const std::vector<int32_t>& scenarios) const {
  MTREC_CHECK(users.size() == items.size() && items.size() == scenarios.size(), "CTR predict: ", users.size(),
              " users, ", items.size(), " items, ", scenarios.size(), " scenarios");
  // const and called from the evaluator's threads at once: it must not touch the module's
  // state. fit() and from_checkpoint() leave the model in eval mode; a caller that switched it
  // back to training (to fine-tune) switches it to eval before predicting.
  auto& m = *model.ptr();  // forward() is not const in LibTorch, but reads only
  MTREC_CHECK(!m.is_training(), "CtrTask::predict: the model is in training mode; call model->eval() first "
              "(predict never changes the mode: it runs on several threads at once)");
  torch::NoGradGuard g;
  auto dev = m.item_bias->weight.device();
  std::vector<float> out;
  out.reserve(users.size());
  const size_t chunk = 1 << 16;  // bounds memory on large test sets
  for (size_t at = 0; at < users.size(); at += chunk) {
    size_t end = std::min(users.size(), at + chunk);
    auto sl = [&](const std::vector<int32_t>& v) { return std::vector<int32_t>(v.begin() + at, v.begin() + end); };
    auto p = torch::sigmoid(m.forward(ids_tensor(sl(users), dev), ids_tensor(sl(items), dev),
                                           ids_tensor(sl(scenarios), dev)));
    auto part = to_float_vector(p);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

CtrMetrics CtrTask::evaluate(const CtrExamples& test) const {
  return ctr_metrics(test, predict(test.user, test.item, test.scenario));
}

namespace {
GoldenScoreFn ctr_golden_fn(const CtrTask& t) {
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

Checkpoint CtrTask::to_checkpoint(const IdMap& users, const IdMap& items, const IdMap& scenarios) const {
  Checkpoint ck;
  ck.task = "ctr";
  const auto& o = model->options;
  ck.config_json = nlohmann::json{{"model", "ctr_mlp_dot"},         {"num_users", o.num_users_},
                                  {"num_items", o.num_items_},       {"num_scenarios", o.num_scenarios_},
                                  {"dim", o.dim_},                   {"hidden", o.hidden_},
                                  {"epochs_run", epochs_run}}
                       .dump();
  ck.users = users;
  ck.items = items;
  ck.scenarios = scenarios;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_inputs(o.num_users_, o.num_items_, o.num_scenarios_), ctr_golden_fn(*this));
  return ck;
}

CtrTask CtrTask::from_checkpoint(const Checkpoint& ck, const std::string& device) {
  MTREC_CHECK(ck.task == "ctr", "checkpoint '", ck.path, "' holds task '", ck.task, "', not 'ctr'");
  auto c = nlohmann::json::parse(ck.config_json);
  CtrTask t;
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
