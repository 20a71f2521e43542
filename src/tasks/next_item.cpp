#include "mtrec/tasks/next_item.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/random.h"
#include "mtrec/data/split.h"
#include "../core/options_json.h"

namespace mtrec {

// ---------------------------------------------------------------------------------------------
// Data

std::vector<int32_t> NextItemData::test_history(int32_t user) const {
  std::vector<int32_t> h = train.at(user);
  if (valid.at(user) >= 0) h.push_back(valid[user]);
  return h;
}

Interactions NextItemData::seen(bool include_valid) const {
  Interactions x;
  for (int32_t u = 0; u < num_users(); ++u) {
    for (int32_t i : train[u]) x.push_back(u, i);
    if (include_valid && valid[u] >= 0) x.push_back(u, valid[u]);
  }
  return x;
}

Interactions NextItemData::targets(bool test_stage) const {
  Interactions x;
  const auto& t = test_stage ? test : valid;
  for (int32_t u = 0; u < num_users(); ++u)
    if (t[u] >= 0) x.push_back(u, t[u]);
  return x;
}

NextItemData make_next_item_data(const Interactions& x, int32_t num_users, int32_t num_items, uint64_t seed) {
  MTREC_CHECK(num_items > 0, "make_next_item_data needs num_items > 0, got ", num_items);
  NextItemData d;
  d.num_items = num_items;
  d.train.resize(num_users);
  d.valid.assign(num_users, -1);
  d.test.assign(num_users, -1);
  const auto order = user_sequences(x, num_users, seed);
  MTREC_CHECK(static_cast<int32_t>(order.size()) == num_users, "user_sequences returned ", order.size(),
              " users, expected ", num_users);
  for (int32_t u = 0; u < num_users; ++u) {
    std::vector<int32_t> items;
    items.reserve(order[u].size());
    for (size_t row : order[u]) {
      const int32_t i = x.item.at(row);
      MTREC_CHECK(i >= 0 && i < num_items, "item id ", i, " of user ", u, " outside [0, ", num_items, ")");
      items.push_back(i);
    }
    if (items.size() >= 3) {
      d.test[u] = items.back();
      items.pop_back();
      d.valid[u] = items.back();
      items.pop_back();
    }
    d.train[u] = std::move(items);
  }
  return d;
}

torch::Tensor pack_histories(const std::vector<const std::vector<int32_t>*>& histories, int64_t max_len) {
  MTREC_CHECK(max_len > 0, "pack_histories needs max_len > 0, got ", max_len);
  torch::Tensor t = torch::zeros({static_cast<int64_t>(histories.size()), max_len}, torch::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (size_t b = 0; b < histories.size(); ++b) {
    const auto& h = *histories[b];
    const int64_t n = std::min<int64_t>(max_len, static_cast<int64_t>(h.size()));
    for (int64_t j = 0; j < n; ++j) a[b][max_len - n + j] = h[h.size() - n + j] + 1;
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Model

std::string next_item_options_to_json(const NextItemOptions& o) { return options_to_json(o).dump(); }

namespace {
// Golden inputs are short item histories with a target: {i1, i2, i3, target} (dense ids).
std::vector<std::vector<int64_t>> golden_histories(int64_t items) {
  std::vector<std::vector<int64_t>> in;
  for (int64_t k = 0; k < 8; ++k)
    in.push_back({(k * 7) % items, (k * 13 + 1) % items, (k * 29 + 2) % items, (k * 31 + 3) % items});
  return in;
}

GoldenScoreFn next_item_golden_fn(NextItemModel& model) {
  return [&model](const std::vector<std::vector<int64_t>>& inputs) {
    torch::NoGradGuard no_grad;
    const bool training = model->is_training();
    model->eval();
    std::vector<std::vector<int32_t>> hist;
    for (const auto& in : inputs) hist.emplace_back(in.begin(), in.end() - 1);
    std::vector<const std::vector<int32_t>*> ptrs;
    for (const auto& h : hist) ptrs.push_back(&h);
    auto device = model->item_emb->weight.device();
    auto scores = model->score_next(pack_histories(ptrs, model->options.max_len()).to(device)).cpu();
    model->train(training);
    std::vector<float> out;
    for (size_t r = 0; r < inputs.size(); ++r) out.push_back(scores[int64_t(r)][inputs[r].back()].item<float>());
    return out;
  };
}
}  // namespace

Checkpoint next_item_checkpoint(NextItemModel& model, const IdMap& users, const IdMap& items) {
  Checkpoint ck;
  ck.task = "next_item";
  ck.config_json = next_item_options_to_json(model->options);
  ck.users = users;
  ck.items = items;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_histories(model->options.num_items()), next_item_golden_fn(model));
  return ck;
}

NextItemModel next_item_from_checkpoint(const Checkpoint& ck, const std::string& device) {
  require_task(ck, "next_item");
  NextItemModel model(next_item_options_from_json(model_config(ck)));
  model->to(choose_device(device));
  load_module_state(*model, ck);
  model->eval();
  verify_golden(ck, next_item_golden_fn(model));
  return model;
}

NextItemOptions next_item_options_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("next-item options: invalid JSON: ") + e.what());
  }
  MTREC_CHECK(j.is_object() && j.contains("num_items"), "next-item options need a JSON object with num_items, got ",
              text);
  NextItemOptions o(0);
  options_from_json(o, j, "next-item options");
  return o;
}

NextItemModelImpl::NextItemModelImpl(NextItemOptions options_) : options(std::move(options_)) { reset(); }

void NextItemModelImpl::reset() {
  const int64_t d = options.d_model();
  MTREC_CHECK(options.num_items() > 0, "NextItemModel needs num_items > 0, got ", options.num_items());
  MTREC_CHECK(options.max_len() > 0, "NextItemModel needs max_len > 0, got ", options.max_len());
  MTREC_CHECK(options.text_dim() >= 0, "text_dim must be >= 0, got ", options.text_dim());
  item_emb = register_module(
      "item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.num_items() + 1, d).padding_idx(0)));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(options.max_len(), d));
  {
    // Item vectors of norm ~1 (times sqrt(d) at the input): output logits start near N(0,1).
    torch::NoGradGuard ng;
    item_emb->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(d)));
    item_emb->weight[0].zero_();
    pos_emb->weight.normal_(0.0, 0.3);
  }
  if (options.text_dim() > 0) text_proj = register_module("text_proj", torch::nn::Linear(options.text_dim(), d));
  emb_drop = register_module("emb_drop", nn::Dropout(options.dropout()));
  encoder = register_module("encoder", nn::CausalTransformer(nn::CausalTransformerOptions(d)
                                                                 .layers(options.layers())
                                                                 .heads(options.heads())
                                                                 .ffn_dim(options.ffn_dim())
                                                                 .dropout(options.dropout())));
}

void NextItemModelImpl::set_item_text(const torch::Tensor& text) {
  MTREC_CHECK(options.text_dim() > 0, "set_item_text: the model was built with text_dim=0");
  MTREC_CHECK(text.dim() == 2 && text.size(0) == options.num_items() && text.size(1) == options.text_dim(),
              "set_item_text expects [", options.num_items(), ", ", options.text_dim(), "], got ", text.sizes());
  torch::Tensor t = text.detach().to(item_emb->weight.device(), item_emb->weight.scalar_type());
  if (item_text.defined())
    item_text.set_data(t);  // keep the registered buffer
  else
    item_text = register_buffer("item_text", t);
}

torch::Tensor NextItemModelImpl::item_table() {
  torch::Tensor t = item_emb->weight.slice(0, 1);
  if (options.text_dim() > 0) {
    MTREC_CHECK(item_text.defined(), "NextItemModel built with text_dim=", options.text_dim(),
                " needs set_item_text(...) before use");
    t = t + text_proj->forward(item_text);
  }
  return t;
}

torch::Tensor NextItemModelImpl::forward(const torch::Tensor& tokens) {
  MTREC_CHECK(tokens.dim() == 2, "NextItemModel expects tokens [B,L], got ", tokens.sizes());
  const int64_t L = tokens.size(1), d = options.d_model();
  MTREC_CHECK(L >= 1 && L <= options.max_len(), "sequence length ", L, " outside [1, max_len=", options.max_len(), "]");
  torch::Tensor valid = tokens.ne(0);
  torch::Tensor x;
  if (options.text_dim() > 0) {
    torch::Tensor table = torch::cat({item_emb->weight.slice(0, 0, 1), item_table()}, 0);
    x = table.index_select(0, tokens.reshape({-1})).view({tokens.size(0), L, d});
  } else {
    x = item_emb->forward(tokens);
  }
  // Positions count back from the last item: right-aligned sequences of any padded length share
  // them, so the last position's output does not depend on how much padding precedes it.
  torch::Tensor pos = torch::arange(L - 1, -1, -1, tokens.options());
  x = x * std::sqrt(static_cast<double>(d)) + pos_emb->forward(pos).unsqueeze(0);
  return encoder->forward(emb_drop->forward(x), valid);
}

torch::Tensor NextItemModelImpl::score_next(const torch::Tensor& tokens) {
  torch::Tensor h = forward(tokens).select(1, tokens.size(1) - 1);  // [B,d]
  return torch::matmul(h, item_table().t());
}

std::pair<torch::Tensor, torch::Tensor> NextItemModelImpl::hidden_at_targets(const torch::Tensor& tokens,
                                                                             const torch::Tensor& targets) {
  MTREC_CHECK(targets.sizes() == tokens.sizes(), "targets ", targets.sizes(), " must match tokens ", tokens.sizes());
  torch::Tensor h = forward(tokens);
  // Logits only where there is a target: padding would otherwise double the softmax cost.
  torch::Tensor idx = targets.reshape({-1}).ne(0).nonzero().squeeze(1);
  MTREC_CHECK(idx.numel() > 0, "next-item loss: the batch has no target positions");
  torch::Tensor hs = h.reshape({-1, options.d_model()}).index_select(0, idx);
  torch::Tensor ts = targets.reshape({-1}).index_select(0, idx) - 1;
  return {hs, ts};
}

torch::Tensor next_item_full_softmax(const torch::Tensor& hs, const torch::Tensor& ts, const torch::Tensor& table) {
  return torch::nn::functional::cross_entropy(torch::matmul(hs, table.t()), ts);
}

torch::Tensor next_item_sampled_softmax(const torch::Tensor& hs, const torch::Tensor& ts, const torch::Tensor& table,
                                        const torch::Tensor& negatives, const torch::Tensor& neg_prob) {
  MTREC_CHECK(negatives.dim() == 1 && negatives.numel() > 0, "negatives must be [K], got ", negatives.sizes());
  MTREC_CHECK(neg_prob.dim() == 1 && neg_prob.size(0) == table.size(0), "neg_prob must be [", table.size(0), "], got ",
              neg_prob.sizes());
  const double log_k = std::log(static_cast<double>(negatives.numel()));
  torch::Tensor logq = torch::log(neg_prob.to(hs.scalar_type()).clamp_min(1e-12)) + log_k;
  torch::Tensor pos = (hs * table.index_select(0, ts)).sum(-1) - logq.index_select(0, ts);  // [N]
  torch::Tensor neg = torch::matmul(hs, table.index_select(0, negatives).t())               // [N,K]
                      - logq.index_select(0, negatives).unsqueeze(0);
  neg = neg.masked_fill(negatives.unsqueeze(0).eq(ts.unsqueeze(1)), -std::numeric_limits<double>::infinity());
  torch::Tensor logits = torch::cat({pos.unsqueeze(1), neg}, 1);
  return -torch::log_softmax(logits, 1).select(1, 0).mean();
}

torch::Tensor NextItemModelImpl::full_softmax_loss(const torch::Tensor& tokens, const torch::Tensor& targets) {
  auto [hs, ts] = hidden_at_targets(tokens, targets);
  return next_item_full_softmax(hs, ts, item_table());
}

torch::Tensor NextItemModelImpl::sampled_softmax_loss(const torch::Tensor& tokens, const torch::Tensor& targets,
                                                      const torch::Tensor& negatives, const torch::Tensor& neg_prob) {
  MTREC_CHECK(neg_prob.dim() == 1 && neg_prob.size(0) == options.num_items(), "neg_prob must be [", options.num_items(),
              "], got ", neg_prob.sizes());
  auto [hs, ts] = hidden_at_targets(tokens, targets);
  return next_item_sampled_softmax(hs, ts, item_table(), negatives, neg_prob);
}

// ---------------------------------------------------------------------------------------------
// Training

NextItemLoss parse_next_item_loss(const std::string& name) {
  if (name == "full") return NextItemLoss::FullSoftmax;
  if (name == "sampled-uniform") return NextItemLoss::SampledUniform;
  if (name == "sampled-pop") return NextItemLoss::SampledPopularity;
  throw Error("unknown next-item loss '" + name + "' (expected full, sampled-uniform or sampled-pop)");
}

namespace {

std::vector<int32_t> users_with(const std::vector<int32_t>& target) {
  std::vector<int32_t> users;
  for (int32_t u = 0; u < static_cast<int32_t>(target.size()); ++u)
    if (target[u] >= 0) users.push_back(u);
  return users;
}

// Scores [B, num_items] (float32) of the users' next item given the stage's history.
torch::Tensor score_users(NextItemModel& model, const NextItemData& data, const std::vector<int32_t>& users,
                          NextItemStage stage, std::vector<std::vector<int32_t>>& histories) {
  histories.clear();
  for (int32_t u : users) histories.push_back(stage == NextItemStage::Test ? data.test_history(u) : data.train[u]);
  std::vector<const std::vector<int32_t>*> ptrs;
  int64_t longest = 1;
  for (const auto& h : histories) {
    ptrs.push_back(&h);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(h.size()));
  }
  const int64_t L = std::min<int64_t>(model->options.max_len(), longest);
  torch::Tensor tokens = pack_histories(ptrs, L).to(model->item_emb->weight.device());
  return model->score_next(tokens).to(torch::kFloat);
}

}  // namespace

std::pair<double, double> fast_full_ranking_hr_ndcg10(NextItemModel& model, const NextItemData& data,
                                                      NextItemStage stage, int batch_size) {
  MTREC_CHECK(batch_size > 0, "batch_size must be > 0, got ", batch_size);
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const auto& target = stage == NextItemStage::Test ? data.test : data.valid;
  const auto users = users_with(target);
  double hr = 0, ndcg = 0;
  std::vector<std::vector<int32_t>> histories;
  for (size_t s = 0; s < users.size(); s += batch_size) {
    std::vector<int32_t> chunk(users.begin() + s, users.begin() + std::min(users.size(), s + batch_size));
    torch::Tensor scores = score_users(model, data, chunk, stage, histories);
    // Seen items (the whole history, not only the last max_len) and the target leave the
    // candidate set; rank = number of remaining items not scoring below the target, as
    // RankingEvaluator counts it: ties and NaN candidates rank ahead, and a NaN target is a miss.
    std::vector<int64_t> rows, cols, tgt;
    for (size_t b = 0; b < chunk.size(); ++b) {
      for (int32_t i : histories[b]) {
        rows.push_back(b);
        cols.push_back(i);
      }
      tgt.push_back(target[chunk[b]]);
    }
    auto dev = scores.device();
    torch::Tensor t = torch::tensor(tgt, torch::kLong).to(dev);
    torch::Tensor r = torch::tensor(rows, torch::kLong).to(dev), c = torch::tensor(cols, torch::kLong).to(dev);
    torch::Tensor ts = scores.gather(1, t.unsqueeze(1));
    torch::Tensor candidate = torch::ones(scores.sizes(), torch::TensorOptions().dtype(torch::kBool).device(dev));
    candidate.index_put_({r, c}, false);
    candidate.scatter_(1, t.unsqueeze(1), false);
    torch::Tensor rank = scores.lt(ts).logical_not().logical_and(candidate).sum(1).to(torch::kDouble);
    torch::Tensor hit = rank.lt(10).logical_and(ts.squeeze(1).isnan().logical_not()).to(torch::kDouble);
    hr += hit.sum().item<double>();
    ndcg += (hit / torch::log2(rank + 2)).sum().item<double>();
  }
  if (was_training) model->train();
  const double n = std::max<size_t>(1, users.size());
  return {hr / n, ndcg / n};
}

// ---------------------------------------------------------------------------------------------
// The training engine's view

NextItemSource::NextItemSource(const NextItemData& data, int64_t max_len) : max_len_(max_len) {
  MTREC_CHECK(max_len > 0, "NextItemSource needs max_len > 0, got ", max_len);
  std::vector<std::vector<int32_t>> in, out;
  for (int32_t u = 0; u < data.num_users(); ++u) {
    const auto& s = data.train[u];
    if (s.size() < 2) continue;
    users_.push_back(u);
    in.emplace_back(s.begin(), s.end() - 1);
    out.emplace_back(s.begin() + 1, s.end());
    lengths_.push_back(std::min<int64_t>(max_len, static_cast<int64_t>(s.size()) - 1));
  }
  MTREC_CHECK(!users_.empty(), "next-item training: no user has 2 or more training items");
  std::vector<const std::vector<int32_t>*> pin, pout;
  for (size_t k = 0; k < in.size(); ++k) {
    pin.push_back(&in[k]);
    pout.push_back(&out[k]);
  }
  inputs_ = pack_histories(pin, max_len);
  targets_ = pack_histories(pout, max_len);
}

Batch NextItemSource::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  int64_t longest = 1;
  std::vector<int64_t> users;
  users.reserve(rows.size());
  for (int64_t r : rows) {
    longest = std::max(longest, lengths_.at(r));
    users.push_back(users_[r]);
  }
  torch::Tensor idx = torch::tensor(rows, torch::kLong);
  Batch b;
  b.size = static_cast<int64_t>(rows.size());
  b.fields["user"] = torch::tensor(users, torch::kLong).to(device);
  b.fields["tokens"] = inputs_.index_select(0, idx).slice(1, max_len_ - longest).to(device);
  b.fields["targets"] = targets_.index_select(0, idx).slice(1, max_len_ - longest).to(device);
  return b;
}

torch::nn::Module& NextItemEngineModel::module() { return *model_; }

Outputs NextItemEngineModel::forward(const Batch& b) {
  auto [hs, ts] = model_->hidden_at_targets(b.at("tokens"), b.at("targets"));
  return {{"next_item/hidden", hs}, {"next_item/target", ts}, {"next_item/table", model_->item_table()}};
}

NextItemObjective::NextItemObjective(const NextItemData& data, NextItemLoss loss, int num_negatives)
    : data_(data), loss_(loss), num_negatives_(num_negatives) {
  if (loss_ == NextItemLoss::FullSoftmax) return;
  MTREC_CHECK(num_negatives_ >= 1, "num_negatives must be >= 1, got ", num_negatives_);
  popularity_.assign(data.num_items, 1.0);  // +1: every item can be drawn
  if (loss_ == NextItemLoss::SampledPopularity)
    for (const auto& s : data.train)
      for (int32_t i : s) popularity_.at(i) += 1;
}

at::Tensor NextItemObjective::loss(const Outputs& out, const Batch&) {
  const auto& hs = out.at("next_item/hidden");
  const auto& ts = out.at("next_item/target");
  const auto& table = out.at("next_item/table");
  if (loss_ == NextItemLoss::FullSoftmax) return next_item_full_softmax(hs, ts, table);
  if (!neg_prob_.defined() || neg_prob_.device() != hs.device()) {
    torch::Tensor p = torch::tensor(popularity_, torch::kDouble);
    neg_prob_ = (p / p.sum()).to(torch::kFloat).to(hs.device());
  }
  torch::Tensor neg = torch::multinomial(neg_prob_, num_negatives_, /*replacement=*/true);
  return next_item_sampled_softmax(hs, ts, table, neg, neg_prob_);
}

Metrics NextItemObjective::validate(Model& model) {
  if (users_with(data_.valid).empty()) return {};
  auto* m = dynamic_cast<NextItemEngineModel*>(&model);
  MTREC_CHECK(m != nullptr, "the next-item task validates a NextItemEngineModel");
  auto [hr, ndcg] = fast_full_ranking_hr_ndcg10(m->model(), data_, NextItemStage::Valid);
  return {{"HR@10", hr}, {"NDCG@10", ndcg}};
}

// ---------------------------------------------------------------------------------------------
// Evaluation through RankingEvaluator

namespace {

// Runs `ev` over the targets in chunks of users whose score rows are precomputed, so memory
// stays at batch_size x num_items; the per-chunk reports are merged by merge_ranking_reports
// (per-target metrics weighted by targets, Recall by users).
template <typename RowScores>
RankingReport evaluate_in_chunks(const NextItemData& data, NextItemStage stage, const RankingOptions& options,
                                 int batch_size, RowScores&& row_scores) {
  const bool test = stage == NextItemStage::Test;
  RankingEvaluator ev(data.seen(test), data.num_users(), data.num_items, options);
  const auto& target = test ? data.test : data.valid;
  const auto users = users_with(target);
  std::vector<RankingReport> parts;
  for (size_t s = 0; s < users.size(); s += batch_size) {
    std::vector<int32_t> chunk(users.begin() + s, users.begin() + std::min(users.size(), s + batch_size));
    std::vector<int32_t> row_of(data.num_users(), -1);
    Interactions tx;
    for (size_t b = 0; b < chunk.size(); ++b) {
      row_of[chunk[b]] = static_cast<int32_t>(b);
      tx.push_back(chunk[b], target[chunk[b]]);
    }
    torch::Tensor scores = row_scores(chunk).contiguous();  // CPU float [chunk, num_items]
    const float* base = scores.data_ptr<float>();
    const int64_t n = data.num_items;
    RankingReport r = ev.evaluate(tx, [&](int32_t u, const std::vector<int32_t>& items, std::vector<float>& out) {
      const int32_t row = row_of.at(u);
      MTREC_CHECK(row >= 0, "evaluator asked for user ", u, " outside the current chunk");
      out.resize(items.size());
      for (size_t k = 0; k < items.size(); ++k) out[k] = base[row * n + items[k]];
    });
    parts.push_back(std::move(r));
  }
  return merge_ranking_reports(parts);
}

}  // namespace

RankingReport evaluate_next_item(NextItemModel& model, const NextItemData& data, NextItemStage stage,
                                 const RankingOptions& options, int batch_size) {
  MTREC_CHECK(batch_size > 0, "batch_size must be > 0, got ", batch_size);
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<std::vector<int32_t>> histories;
  RankingReport r = evaluate_in_chunks(data, stage, options, batch_size, [&](const std::vector<int32_t>& users) {
    return score_users(model, data, users, stage, histories).to(torch::kCPU);
  });
  if (was_training) model->train();
  return r;
}

RankingReport evaluate_most_popular(const NextItemData& data, NextItemStage stage, const RankingOptions& options) {
  std::vector<float> count(data.num_items, 0.0f);
  for (int32_t u = 0; u < data.num_users(); ++u) {
    for (int32_t i : data.train[u]) count[i] += 1;
    if (stage == NextItemStage::Test && data.valid[u] >= 0) count[data.valid[u]] += 1;
  }
  torch::Tensor c = torch::tensor(count);
  return evaluate_in_chunks(data, stage, options, 1024, [&](const std::vector<int32_t>& users) {
    return c.unsqueeze(0).expand({static_cast<int64_t>(users.size()), data.num_items});
  });
}

}  // namespace mtrec
