#include "mtrec/tasks/dmf.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/random.h"
#include "mtrec/data/sampler.h"
#include "mtrec/nn/dropout.h"
#include "tensor_util.h"

namespace mtrec {

DMFImpl::DMFImpl(DMFOptions o) : options(std::move(o)) { reset(); }

void DMFImpl::reset() {
  const auto& o = options;
  MTREC_CHECK(o.num_users() > 0 && o.num_items() > 0, "DMF needs users and items, got ", o.num_users(), " and ",
              o.num_items());
  MTREC_CHECK(!o.user_layers().empty() && !o.item_layers().empty(), "DMF needs at least one layer per tower");
  MTREC_CHECK(o.dropout() >= 0 && o.dropout() < 1, "DMF dropout must be in [0, 1), got ", o.dropout());
  MTREC_CHECK(o.input_norm() >= 0 && o.input_norm() <= 1, "DMF input_norm must be in [0, 1], got ", o.input_norm());
  MTREC_CHECK(o.user_layers().back() == o.item_layers().back(), "DMF towers must end in the same dimension, got ",
              o.user_layers().back(), " and ", o.item_layers().back());
  auto bag = [](int64_t rows, int64_t dim) {
    return torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(rows, dim).mode(torch::kSum));
  };
  // The user tower reads a row over items, the item tower a column over users.
  user_input = register_module("user_input", bag(o.num_items(), o.user_layers()[0]));
  item_input = register_module("item_input", bag(o.num_users(), o.item_layers()[0]));
  user_input_bias = register_parameter("user_input_bias", torch::zeros({o.user_layers()[0]}));
  item_input_bias = register_parameter("item_input_bias", torch::zeros({o.item_layers()[0]}));
  {
    // Glorot-like scale for a sparse input with a few dozen non-zeros.
    torch::NoGradGuard g;
    user_input->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(o.user_layers()[0])));
    item_input->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(o.item_layers()[0])));
  }
  user_tower = register_module("user_tower", torch::nn::ModuleList());
  item_tower = register_module("item_tower", torch::nn::ModuleList());
  for (size_t k = 1; k < o.user_layers().size(); ++k)
    user_tower->push_back(torch::nn::Linear(o.user_layers()[k - 1], o.user_layers()[k]));
  for (size_t k = 1; k < o.item_layers().size(); ++k)
    item_tower->push_back(torch::nn::Linear(o.item_layers()[k - 1], o.item_layers()[k]));
  auto L = torch::kLong;
  user_offsets = register_buffer("user_offsets", torch::zeros({o.num_users() + 1}, L));
  item_offsets = register_buffer("item_offsets", torch::zeros({o.num_items() + 1}, L));
  user_cols = register_buffer("user_cols", torch::zeros({0}, L));
  item_cols = register_buffer("item_cols", torch::zeros({0}, L));
  user_vals = register_buffer("user_vals", torch::zeros({0}));
  item_vals = register_buffer("item_vals", torch::zeros({0}));
}

Interactions unique_pairs_latest(const Interactions& x) {
  x.check_consistent();
  std::unordered_map<uint64_t, size_t> kept;  // (user, item) -> row
  kept.reserve(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(x.user[k])) << 32) | static_cast<uint32_t>(x.item[k]);
    auto [it, fresh] = kept.emplace(key, k);
    if (!fresh && (!x.has_timestamp || x.timestamp[k] >= x.timestamp[it->second])) it->second = k;
  }
  if (kept.size() == x.size()) return x;
  std::vector<size_t> rows;
  rows.reserve(kept.size());
  for (const auto& [key, row] : kept) rows.push_back(row);
  std::sort(rows.begin(), rows.end());
  return x.subset(rows);
}

void DMFImpl::set_matrix(const Interactions& rows, float max_rating) {
  // One entry per (user, item): a repeated pair would sit in the row twice, and masking the
  // target during training would take out only one copy.
  const Interactions train = unique_pairs_latest(rows);
  const int64_t nu = options.num_users(), ni = options.num_items();
  auto csr = [&](int64_t rows, const std::vector<int32_t>& row_of, const std::vector<int32_t>& col_of,
                 torch::Tensor& off, torch::Tensor& cols, torch::Tensor& vals) {
    std::vector<int64_t> o(rows + 1, 0);
    for (size_t k = 0; k < row_of.size(); ++k) {
      MTREC_CHECK(row_of[k] >= 0 && row_of[k] < rows, "DMF: id ", row_of[k], " outside 0..", rows - 1);
      ++o[row_of[k] + 1];
    }
    for (int64_t r = 0; r < rows; ++r) o[r + 1] += o[r];
    std::vector<int64_t> c(row_of.size()), fill(o.begin(), o.end() - 1);
    std::vector<float> v(row_of.size());
    for (size_t k = 0; k < row_of.size(); ++k) {
      int64_t at = fill[row_of[k]]++;
      c[at] = col_of[k];
      v[at] = train.has_rating ? train.rating[k] / max_rating : 1.0f;
    }
    auto dev = off.device();
    // In-place so the registered buffers stay the same tensors (values keep the module's dtype).
    off.set_(torch::tensor(o, torch::kLong).to(dev));
    cols.set_(torch::tensor(c, torch::kLong).to(dev));
    vals.set_(torch::tensor(v).to(dev, vals.scalar_type()));
  };
  torch::NoGradGuard g;
  csr(nu, train.user, train.item, user_offsets, user_cols, user_vals);
  csr(ni, train.item, train.user, item_offsets, item_cols, item_vals);
}

struct DMFImpl::Side {
  torch::nn::EmbeddingBag& input;
  const torch::Tensor& bias;
  torch::nn::ModuleList& layers;
  const torch::Tensor &offsets, &cols, &vals;
};

DMFImpl::Side DMFImpl::side(bool user) {
  if (user) return {user_input, user_input_bias, user_tower, user_offsets, user_cols, user_vals};
  return {item_input, item_input_bias, item_tower, item_offsets, item_cols, item_vals};
}

torch::Tensor DMFImpl::input_layer(const Side& s, const torch::Tensor& ids, const torch::Tensor& drop,
                                   const torch::Tensor& weight) {
  // The bag sum once per distinct id, gathered from the CSR on the device.
  auto [uniq, inverse] = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);
  auto starts = s.offsets.index_select(0, uniq);
  auto lens = s.offsets.index_select(0, uniq + 1) - starts;
  auto bag_offsets = lens.cumsum(0) - lens;
  const int64_t total = lens.sum().item<int64_t>();
  auto pos = torch::arange(total, s.offsets.options()) + (starts - bag_offsets).repeat_interleave(lens);
  auto h =
      s.input->forward(s.cols.index_select(0, pos), bag_offsets, s.vals.index_select(0, pos)).index_select(0, inverse);
  auto n = lens.index_select(0, inverse);
  if (drop.defined()) {
    MTREC_CHECK(drop.numel() == ids.numel() && weight.numel() == ids.numel(), "DMF: ", ids.numel(), " ids but ",
                drop.numel(), " dropped entries and ", weight.numel(), " weights");
    // The bag is a weighted sum: removing entry j of value w subtracts w·E[j] exactly.
    h = h - weight.to(h.scalar_type()).unsqueeze(1) * s.input->weight.index_select(0, drop);
    n = n - (weight != 0).to(n.scalar_type());
  }
  if (options.input_norm() != 0) h = h * n.clamp_min(1).to(h.scalar_type()).pow(-options.input_norm()).unsqueeze(1);
  return h + s.bias;
}

torch::Tensor DMFImpl::vectors(const Side& s, const torch::Tensor& ids, const torch::Tensor& drop,
                               const torch::Tensor& weight) {
  auto run = [&](torch::Tensor h) {
    h = torch::relu(h);
    for (auto& layer : *s.layers) {
      h = nn::apply_dropout(h, options.dropout(), is_training());
      h = torch::relu(layer->as<torch::nn::Linear>()->forward(h));
    }
    return h;
  };
  if (drop.defined()) return run(input_layer(s, ids, drop, weight));  // one input per pair
  auto [uniq, inverse] = at::_unique(ids, true, true);                // one tower pass per id
  return run(input_layer(s, uniq, {}, {})).index_select(0, inverse);
}

torch::Tensor DMFImpl::user_vectors(const torch::Tensor& users, const torch::Tensor& drop,
                                    const torch::Tensor& weight) {
  return vectors(side(true), users, drop, weight);
}
torch::Tensor DMFImpl::item_vectors(const torch::Tensor& items, const torch::Tensor& drop,
                                    const torch::Tensor& weight) {
  return vectors(side(false), items, drop, weight);
}
torch::Tensor DMFImpl::user_input_layer(const torch::Tensor& users, const torch::Tensor& drop,
                                        const torch::Tensor& weight) {
  return input_layer(side(true), users, drop, weight);
}
torch::Tensor DMFImpl::item_input_layer(const torch::Tensor& items, const torch::Tensor& drop,
                                        const torch::Tensor& weight) {
  return input_layer(side(false), items, drop, weight);
}

torch::Tensor DMFImpl::forward(const torch::Tensor& users, const torch::Tensor& items) {
  auto cos = torch::cosine_similarity(user_vectors(users), item_vectors(items), /*dim=*/1, /*eps=*/1e-8);
  return dmf_clamp(cos);
}

torch::Tensor dmf_clamp(const torch::Tensor& cosine) { return cosine.clamp(1e-6, 1.0 - 1e-6); }

torch::Tensor dmf_cross_entropy(const torch::Tensor& cosine, const torch::Tensor& y) {
  auto p = dmf_clamp(cosine);
  return -(y * torch::log(p) + (1 - y) * torch::log(1 - p));
}

torch::Tensor dmf_loss(const torch::Tensor& cosine, const torch::Tensor& y) {
  return dmf_cross_entropy(cosine, y).mean();
}

torch::nn::Module& DmfModel::module() { return *dmf_; }

Outputs DmfModel::forward(const Batch& b) {
  const auto& u = b.at("user");
  const auto& i = b.at("item");
  torch::Tensor uv, iv;
  if (mask_target_ && b.has("dmf_weight")) {
    // Negatives have weight 0: their inputs are the full rows.
    const auto& w = b.at("dmf_weight");
    uv = dmf_->user_vectors(u, i, w);
    iv = dmf_->item_vectors(i, u, w);
  } else {
    uv = dmf_->user_vectors(u);
    iv = dmf_->item_vectors(i);
  }
  return {{"dmf", torch::cosine_similarity(uv, iv, /*dim=*/1, /*eps=*/1e-8)}};
}

DmfExamples::DmfExamples(const Interactions& train, int32_t num_users, int32_t num_items, int negatives,
                         float max_rating, bool soft_labels)
    : pairs_(unique_pairs_latest(train)),
      negatives_(negatives),
      per_(1 + static_cast<int64_t>(negatives)),
      sampler_(pairs_, num_users, num_items, NegativeSampler::Kind::Uniform, 0) {
  MTREC_CHECK(!pairs_.empty(), "DMF needs training interactions");
  MTREC_CHECK(negatives >= 1, "DMF: negatives must be >= 1, got ", negatives);
  MTREC_CHECK(max_rating > 0, "DMF: max_rating must be > 0, got ", max_rating);
  const size_t n = pairs_.size() * per_;
  std::vector<int64_t> us(n), is(n, 0);
  std::vector<float> ys(n, 0.0f), ws(n, 0.0f);
  for (size_t k = 0; k < pairs_.size(); ++k) {
    const size_t at = k * per_;
    // As set_matrix stores it.
    const float w = pairs_.has_rating ? pairs_.rating[k] / max_rating : 1.0f;
    for (int64_t j = 0; j < per_; ++j) us[at + j] = pairs_.user[k];
    is[at] = pairs_.item[k];
    ws[at] = w;
    ys[at] = soft_labels ? std::min(1.0f, w) : 1.0f;
  }
  users_ = torch::tensor(us, torch::kLong);
  items_ = torch::tensor(is, torch::kLong);
  labels_ = torch::tensor(ys);
  weights_ = torch::tensor(ws);
}

void DmfExamples::begin_epoch(int /*epoch*/, uint64_t seed) {
  // Example k·per is pair k, the next `negatives` rows its negatives: only those are redrawn.
  sampler_.reseed(derive_seed(seed, "dmf-negatives"));
  auto* items = items_.data_ptr<int64_t>();
  for (size_t k = 0; k < pairs_.size(); ++k) {
    auto neg = sampler_.sample(pairs_.user[k], negatives_);
    for (int j = 0; j < negatives_; ++j) items[k * per_ + 1 + j] = neg[j];
  }
}

Batch DmfExamples::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  auto idx = torch::tensor(rows, torch::kLong);
  Batch b;
  b.size = static_cast<int64_t>(rows.size());
  b.fields["user"] = users_.index_select(0, idx).to(device);
  b.fields["item"] = items_.index_select(0, idx).to(device);
  b.fields["dmf"] = labels_.index_select(0, idx).to(device);
  b.fields["dmf_weight"] = weights_.index_select(0, idx).to(device);
  return b;
}

at::Tensor DmfObjective::loss(const Outputs& out, const Batch& b) {
  return masked_mean(dmf_cross_entropy(out.at("dmf"), b.at("dmf")), b.mask("dmf"));
}

void DmfFit::set_inputs(const Interactions& seen) {
  MTREC_CHECK(model, "DmfFit::set_inputs: no model");
  model->set_matrix(seen, input_scale);
  cache_vectors();
}

void DmfFit::cache_vectors() {
  torch::NoGradGuard g;
  model->eval();
  auto dev = model->user_offsets.device();
  auto norm = [](const torch::Tensor& v) {
    return (v / v.norm(2, 1, true).clamp_min(1e-8)).to(torch::kCPU, torch::kFloat).contiguous();
  };
  user_cache_ = norm(
      model->user_vectors(torch::arange(model->options.num_users(), torch::TensorOptions(dev).dtype(torch::kLong))));
  item_cache_ = norm(
      model->item_vectors(torch::arange(model->options.num_items(), torch::TensorOptions(dev).dtype(torch::kLong))));
}

std::vector<float> DmfFit::score(int32_t user, const std::vector<int32_t>& items) const {
  std::vector<float> out;
  score_fn()(user, items, out);
  return out;
}

ScoreFn DmfFit::score_fn() const {
  MTREC_CHECK(user_cache_.defined(), "DmfFit: call cache_vectors() before scoring");
  const int64_t d = user_cache_.size(1), nu = user_cache_.size(0), ni = item_cache_.size(0);
  const float* U = user_cache_.data_ptr<float>();
  const float* V = item_cache_.data_ptr<float>();
  // Captures the cache tensors by value so the scorer outlives a moved task.
  return [U, V, d, nu, ni, uc = user_cache_, ic = item_cache_](int32_t user, const std::vector<int32_t>& items,
                                                               std::vector<float>& out) {
    MTREC_CHECK(user >= 0 && user < nu, "DMF: user ", user, " outside 0..", nu - 1);
    out.resize(items.size());
    const float* u = U + user * d;
    for (size_t k = 0; k < items.size(); ++k) {
      MTREC_CHECK(items[k] >= 0 && items[k] < ni, "DMF: item ", items[k], " outside 0..", ni - 1);
      const float* v = V + items[k] * d;
      float s = 0;
      for (int64_t j = 0; j < d; ++j) s += u[j] * v[j];
      out[k] = s;
    }
  };
}

namespace {
GoldenScoreFn dmf_golden_fn(const DmfFit& t) {
  return [&t](const std::vector<std::vector<int64_t>>& in) {
    std::vector<float> out;
    for (const auto& x : in) out.push_back(t.score(static_cast<int32_t>(x.at(0)), {static_cast<int32_t>(x.at(1))})[0]);
    return out;
  };
}
}  // namespace

Checkpoint DmfFit::to_checkpoint(const IdMap& users, const IdMap& items) const {
  Checkpoint ck;
  ck.task = "dmf";
  const auto& o = model->options;
  ck.config_json = nlohmann::json{
      {"model", "dmf"},
      {"num_users", o.num_users()},
      {"num_items", o.num_items()},
      {"user_layers", o.user_layers()},
      {"item_layers", o.item_layers()},
      {"input_norm", o.input_norm()},
      {"input_scale", input_scale},
      {"epochs_run", epochs_run},
      {"best_epoch", best_epoch},
      {"best_valid_hr",
       best_valid_hr}}.dump();
  ck.users = users;
  ck.items = items;
  ck.tensors = module_state(*model);
  ck.golden = make_golden(golden_inputs(o.num_users(), o.num_items(), 0), dmf_golden_fn(*this));
  return ck;
}

DmfFit DmfFit::from_checkpoint(const Checkpoint& ck, const std::string& device) {
  require_task(ck, "dmf");
  auto c = nlohmann::json::parse(model_config(ck));
  DmfFit t;
  t.model = DMF(DMFOptions(c.at("num_users").get<int64_t>(), c.at("num_items").get<int64_t>())
                    .user_layers(c.at("user_layers").get<std::vector<int64_t>>())
                    .item_layers(c.at("item_layers").get<std::vector<int64_t>>())
                    .input_norm(c.value("input_norm", 0.0)));
  t.model->to(choose_device(device));
  {
    // The matrix buffers are sized by the data: size them to the checkpoint before copying.
    torch::NoGradGuard g;
    for (auto& b : t.model->named_buffers()) b.value().resize_(ck.tensor(b.key()).sizes());
  }
  load_module_state(*t.model, ck);
  t.epochs_run = c.value("epochs_run", 0);
  t.best_epoch = c.value("best_epoch", 0);
  t.best_valid_hr = c.value("best_valid_hr", 0.0);
  t.input_scale = c.value("input_scale", 5.0f);
  t.cache_vectors();
  verify_golden(ck, dmf_golden_fn(t));
  return t;
}

}  // namespace mtrec
