#include "mtrec/model/io.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>

#include "mtrec/cf/knn.h"
#include "mtrec/core/check.h"
#include "mtrec/core/head.h"
#include "mtrec/model/joint_bundle.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/tasks/next_item.h"
#include "mtrec/tasks/rating.h"

namespace mtrec {

// ---- serving data ---------------------------------------------------------------------------

ServingData make_serving_data(const Dataset& ds, const Interactions& known, uint64_t seed) {
  ServingData d;
  UserHistories h(ds, known, ds.num_users(), seed, 0);
  d.histories.resize(size_t(ds.num_users()));
  for (int32_t u = 0; u < ds.num_users(); ++u) d.histories[size_t(u)] = h.items(u);
  d.item_catalog = ds.item_text;
  return d;
}

std::vector<std::pair<std::string, at::Tensor>> serving_tensors(const ServingData& data) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!data.histories.empty()) {  // CSR
    std::vector<int64_t> offsets = {0}, items;
    for (const auto& h : data.histories) {
      items.insert(items.end(), h.begin(), h.end());
      offsets.push_back(int64_t(items.size()));
    }
    out.emplace_back("serve/history_offsets", torch::tensor(offsets, torch::kInt64));
    out.emplace_back("serve/history_items", torch::tensor(items, torch::kInt64));
  }
  const TextCatalog& cat = data.item_catalog;
  nlohmann::json rows = nlohmann::json::array();
  for (int32_t i = 0; i < cat.size(); ++i) {
    nlohmann::json r = nlohmann::json::array();
    for (const auto& f : cat.fields()) r.push_back(cat.get(i, f));
    rows.push_back(std::move(r));
  }
  out.emplace_back("serve/item_catalog",
                   bytes_to_tensor(nlohmann::json{{"fields", cat.fields()}, {"rows", rows}}.dump()));
  return out;
}

void add_serving_data(Checkpoint& ck, const ServingData& data) {
  auto add = serving_tensors(data);
  auto replaced = [&](const std::string& name) {
    return std::any_of(add.begin(), add.end(), [&](const auto& a) { return a.first == name; });
  };
  ck.tensors.erase(
      std::remove_if(ck.tensors.begin(), ck.tensors.end(), [&](const auto& t) { return replaced(t.first); }),
      ck.tensors.end());
  ck.tensors.insert(ck.tensors.end(), add.begin(), add.end());
}

ServingData read_serving_data(const Checkpoint& ck) {
  ServingData d;
  const int64_t U = ck.users.size(), I = ck.items.size();
  bool has_hist = false, has_cat = false;
  for (const auto& [name, t] : ck.tensors)
    has_hist |= name == "serve/history_offsets", has_cat |= name == "serve/item_catalog";
  d.histories.resize(size_t(U));
  if (has_hist) {
    at::Tensor off = ck.tensor("serve/history_offsets").to(torch::kInt64).contiguous();
    at::Tensor it = ck.tensor("serve/history_items").to(torch::kInt64).contiguous();
    const int64_t* o = off.data_ptr<int64_t>();
    const int64_t* v = it.data_ptr<int64_t>();
    MTREC_CHECK(off.numel() == U + 1 && o[off.numel() - 1] == it.numel(), "checkpoint '", ck.path,
                "': serve/history_offsets has ", off.numel(), " entries for ", U, " users and ", it.numel(), " items");
    for (int64_t u = 0; u < U; ++u) {
      MTREC_CHECK(o[u] <= o[u + 1], "checkpoint '", ck.path, "': serve/history_offsets decreases at user ", u);
      auto& h = d.histories[size_t(u)];
      h.reserve(size_t(o[u + 1] - o[u]));
      for (int64_t j = o[u]; j < o[u + 1]; ++j) {
        MTREC_CHECK(v[j] >= 0 && v[j] < I, "checkpoint '", ck.path, "': history item ", v[j], " outside [0, ", I, ")");
        h.push_back(int32_t(v[j]));
      }
    }
  }
  if (has_cat) {
    nlohmann::json cat;
    try {
      cat = nlohmann::json::parse(tensor_to_bytes(ck.tensor("serve/item_catalog")));
    } catch (const nlohmann::json::exception& e) {
      MTREC_FAIL("checkpoint '", ck.path, "': unreadable serve/item_catalog: ", e.what());
    }
    d.item_catalog = TextCatalog(cat.at("fields").get<std::vector<std::string>>());
    const auto fields = d.item_catalog.fields();
    int32_t i = 0;
    for (const auto& row : cat.at("rows")) {
      for (size_t f = 0; f < fields.size() && f < row.size(); ++f)
        d.item_catalog.set(i, fields[f], row[f].get<std::string>());
      ++i;
    }
    d.item_catalog.resize(i);
  }
  return d;
}

// ---- the kinds ------------------------------------------------------------------------------

namespace {

std::vector<int32_t> all_items(int64_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

at::Tensor cpu_float(const at::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat).contiguous(); }

/// A kind that scores one user at a time: `row(user, history, scenario)` gives every item's
/// score. The loaded model lives in the closures (shared, so the object stays copyable).
class OneHeadModel : public ScoringModel {
 public:
  using RowFn = std::function<std::vector<float>(int32_t user, const std::vector<int32_t>& history, int32_t scenario)>;
  OneHeadModel(std::string kind, std::string head, int64_t users, int64_t items, RowFn row, bool anonymous,
               std::function<at::Tensor()> item_space = nullptr)
      : kind_(std::move(kind)),
        head_(std::move(head)),
        row_(std::move(row)),
        anonymous_(anonymous),
        item_space_(std::move(item_space)) {
    num_users_ = users, num_items_ = items;
  }
  std::string kind() const override { return kind_; }
  std::string head() const override { return head_; }
  bool anonymous() const override { return anonymous_; }
  std::vector<float> score_items(const std::vector<int32_t>& users, const std::vector<std::vector<int32_t>>& histories,
                                 const std::vector<int32_t>& scenarios) const override {
    std::vector<float> out;
    out.reserve(users.size() * size_t(num_items_));
    for (size_t r = 0; r < users.size(); ++r) {
      MTREC_CHECK(anonymous_ || users[r] >= 0, "a ", kind_, " model scores the users it was trained on; row ", r,
                  " has none (a new user)");
      const std::vector<float> s = row_(users[r], r < histories.size() ? histories[r] : std::vector<int32_t>(),
                                        r < scenarios.size() ? scenarios[r] : 0);
      MTREC_CHECK(int64_t(s.size()) == num_items_, "a ", kind_, " model scored ", s.size(), " items of ", num_items_);
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }
  at::Tensor item_space() const override {
    if (!item_space_) return {};
    torch::NoGradGuard g;
    return cpu_float(item_space_());
  }

 private:
  std::string kind_, head_;
  RowFn row_;
  bool anonymous_;
  std::function<at::Tensor()> item_space_;
};

std::unique_ptr<ScoringModel> load_rating(const Checkpoint& ck, const std::string& device) {
  auto t = std::make_shared<RatingFit>(RatingFit::from_checkpoint(ck, device));
  const int64_t I = t->model->options.num_items();
  return std::make_unique<OneHeadModel>(
      "rating", "rating", t->model->options.num_users(), I,
      [t, I](int32_t u, const std::vector<int32_t>&, int32_t) {
        return t->predict(std::vector<int32_t>(size_t(I), u), all_items(I));
      },
      false, [t] { return t->model->item_factors(); });
}

std::unique_ptr<ScoringModel> load_ctr(const Checkpoint& ck, const std::string& device) {
  auto t = std::make_shared<CtrFit>(CtrFit::from_checkpoint(ck, device));
  const int64_t I = t->model->options.num_items();
  return std::make_unique<OneHeadModel>(
      "ctr", "ctr", t->model->options.num_users(), I,
      [t, I](int32_t u, const std::vector<int32_t>&, int32_t s) {
        return t->predict(std::vector<int32_t>(size_t(I), u), all_items(I), std::vector<int32_t>(size_t(I), s));
      },
      false, [t] { return t->model->factors->item->weight; });
}

std::unique_ptr<ScoringModel> load_dmf(const Checkpoint& ck, const std::string& device) {
  auto t = std::make_shared<DmfFit>(DmfFit::from_checkpoint(ck, device));
  const int64_t I = t->model->options.num_items();
  return std::make_unique<OneHeadModel>(
      "dmf", "dmf", t->model->options.num_users(), I,
      [t, I](int32_t u, const std::vector<int32_t>&, int32_t) { return t->score(u, all_items(I)); }, false,
      [t] { return t->item_vectors(); });
}

std::unique_ptr<ScoringModel> load_next_item(const Checkpoint& ck, const std::string& device) {
  auto m = std::make_shared<NextItemModel>(next_item_from_checkpoint(ck, device));
  return std::make_unique<OneHeadModel>(
      "next_item", "next_item", ck.users.size(), (*m)->options.num_items(),
      [m](int32_t, const std::vector<int32_t>& history, int32_t) {
        torch::NoGradGuard g;
        std::vector<const std::vector<int32_t>*> rows = {&history};
        const at::Tensor tokens = pack_histories(rows, (*m)->options.max_len()).to((*m)->item_emb->weight.device());
        const at::Tensor s = cpu_float((*m)->score_next(tokens));
        return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
      },
      true, [m] { return (*m)->item_table(); });
}

GoldenScoreFn knn_golden_fn(const KnnModel& m) {
  return [&m](const std::vector<std::vector<int64_t>>& in) {
    std::vector<float> out;
    for (const auto& x : in) out.push_back(m.predict(static_cast<int32_t>(x.at(0)), static_cast<int32_t>(x.at(1))));
    return out;
  };
}

std::unique_ptr<ScoringModel> load_knn(const Checkpoint& ck, const std::string&) {
  auto m = std::make_shared<KnnModel>(knn_from_checkpoint(ck));
  const int64_t I = m->num_items();
  return std::make_unique<OneHeadModel>(
      "knn", "knn", m->num_users(), I,
      [m, I](int32_t u, const std::vector<int32_t>&, int32_t) {
        std::vector<float> s(static_cast<size_t>(I));
        m->score(u, all_items(I), s);
        return s;
      },
      false);
}

GoldenScoreFn policy_golden_fn(const at::Tensor& user, const at::Tensor& scenario, const at::Tensor& item,
                               const at::Tensor& bias) {
  return [=](const std::vector<std::vector<int64_t>>& in) {
    std::vector<float> out;
    for (const auto& x : in)
      out.push_back(policy_logits(user, scenario, item, bias, x.at(0), x.at(1))[size_t(x.at(2))]);
    return out;
  };
}

std::unique_ptr<ScoringModel> load_policy(const Checkpoint& ck, const std::string& device) {
  require_task(ck, "policy");
  const at::Tensor user = cpu_float(ck.tensor("policy/user")), scenario = cpu_float(ck.tensor("policy/scenario"));
  const at::Tensor item = cpu_float(ck.tensor("policy/item")), bias = cpu_float(ck.tensor("policy/bias"));
  MTREC_CHECK(user.dim() == 2 && scenario.dim() == 2 && item.dim() == 2 && bias.dim() == 1 &&
                  user.size(1) == item.size(1) && scenario.size(1) == item.size(1) && bias.size(0) == item.size(0) &&
                  user.size(0) == ck.users.size() && item.size(0) == ck.items.size() &&
                  scenario.size(0) == ck.scenarios.size(),
              "checkpoint '", ck.path, "': policy tensors of shapes ", user.sizes(), ", ", scenario.sizes(), ", ",
              item.sizes(), ", ", bias.sizes(), " do not fit ", ck.users.size(), " users, ", ck.items.size(),
              " items and ", ck.scenarios.size(), " scenarios");
  verify_golden(ck, policy_golden_fn(user, scenario, item, bias));
  (void)device;  // scored on the CPU: one matrix-vector product per request
  return std::make_unique<OneHeadModel>(
      "policy", "policy", user.size(0), item.size(0),
      [=](int32_t u, const std::vector<int32_t>&, int32_t s) {
        return policy_logits(user, scenario, item, bias, u, s);
      },
      false, [item] { return item; });
}

/// The unified model through its first retrieval head (next-item, else match), else its CTR
/// or rating tower over the whole catalogue; the Recommender serves it by task map instead.
class JointScoring : public ScoringModel {
 public:
  JointScoring(const Checkpoint& ck, const std::string& device) : bundle_(joint_from_checkpoint(ck, device)) {
    serving_ = std::move(bundle_.serving);  // read once, by joint_from_checkpoint
    const UnifiedOptions& o = bundle_.model->options;
    num_users_ = o.num_users(), num_items_ = o.num_items();
    const Head scoring[] = {Head::NextItem, Head::Match, Head::Ctr, Head::Rating};
    auto it = std::find_if(std::begin(scoring), std::end(scoring), [&](Head h) { return o.has_task(h); });
    MTREC_CHECK(it != std::end(scoring), "checkpoint '", ck.path, "': the joint model has no scoring head");
    head_ = *it;
  }
  std::string kind() const override { return "joint"; }
  std::string head() const override { return head_name(head_); }
  bool anonymous() const override { return true; }
  std::vector<float> score_items(const std::vector<int32_t>& users, const std::vector<std::vector<int32_t>>& histories,
                                 const std::vector<int32_t>& scenarios) const override {
    torch::NoGradGuard g;
    UnifiedModel& m = const_cast<UnifiedModel&>(bundle_.model);
    const c10::Device dev = m->item_emb->weight.device();
    std::vector<const std::vector<int32_t>*> rows;
    for (const auto& h : histories) rows.push_back(&h);
    const at::Tensor table = m->item_vectors();
    const at::Tensor ids = torch::tensor(std::vector<int64_t>(users.begin(), users.end()), torch::kInt64).to(dev);
    const at::Tensor uv = m->user_vectors(ids, pack_histories(rows, m->options.max_history()).to(dev), table, {}, {});
    std::vector<int64_t> scen(users.size(), 0);
    for (size_t r = 0; r < scen.size() && r < scenarios.size(); ++r) scen[r] = scenarios[r];
    at::Tensor s = m->catalogue_scores(head_, ids, uv, torch::tensor(scen, torch::kInt64).to(dev), table);
    if (head_ == Head::Rating) s = s.clamp(bundle_.rating_min, bundle_.rating_max);
    s = cpu_float(s);
    return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  }
  at::Tensor item_space() const override {
    torch::NoGradGuard g;
    return cpu_float(const_cast<UnifiedModel&>(bundle_.model)->item_vectors());
  }

 private:
  JointBundle bundle_;
  Head head_ = Head::Ctr;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, ModelLoader> loaders;
  Registry() {
    loaders["rating"] = load_rating;
    loaders["ctr"] = load_ctr;
    loaders["dmf"] = load_dmf;
    loaders["next_item"] = load_next_item;
    loaders["knn"] = load_knn;
    loaders["policy"] = load_policy;
    loaders["joint"] = [](const Checkpoint& ck, const std::string& d) -> std::unique_ptr<ScoringModel> {
      return std::make_unique<JointScoring>(ck, d);
    };
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Checkpoint knn_checkpoint(const KnnModel& m, const IdMap& users, const IdMap& items, bool implicit) {
  Checkpoint ck;
  ck.task = "knn";
  const KnnOptions& o = m.options();
  ck.config_json = nlohmann::json{
      {"kind", std::string(to_string(o.kind()))},
      {"similarity", std::string(to_string(o.similarity()))},
      {"k", o.k()},
      {"shrinkage", o.shrinkage()},
      {"baseline", o.baseline()},
      {"num_users", m.num_users()},
      {"num_items", m.num_items()},
      {"implicit",
       implicit}}.dump();
  ck.users = users;
  ck.items = items;
  ck.tensors.emplace_back("knn", bytes_to_tensor(m.to_bytes()));
  std::vector<std::vector<int64_t>> in;
  for (int64_t k = 0; k < 8; ++k) in.push_back({(k * 7919) % m.num_users(), (k * 104729 + 3) % m.num_items()});
  ck.golden = make_golden(in, knn_golden_fn(m));
  return ck;
}

KnnModel knn_from_checkpoint(const Checkpoint& ck) {
  require_task(ck, "knn");
  KnnModel m = KnnModel::from_bytes(tensor_to_bytes(ck.tensor("knn")), ck.path);
  verify_golden(ck, knn_golden_fn(m));
  return m;
}

std::vector<float> policy_logits(const at::Tensor& user, const at::Tensor& scenario, const at::Tensor& item,
                                 const at::Tensor& bias, int64_t u, int64_t s) {
  torch::NoGradGuard g;
  const at::Tensor out = cpu_float(torch::matmul(item, user[u] + scenario[s]) + bias);
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

Checkpoint policy_checkpoint(const at::Tensor& user, const at::Tensor& scenario, const at::Tensor& item,
                             const at::Tensor& bias, const IdMap& users, const IdMap& items, const IdMap& scenarios) {
  MTREC_CHECK(scenarios.size() >= 1, "policy_checkpoint: a policy needs at least one scenario");
  MTREC_CHECK(user.size(0) == users.size() && item.size(0) == items.size() && scenario.size(0) == scenarios.size(),
              "policy_checkpoint: tables of ", user.size(0), " users, ", item.size(0), " items and ", scenario.size(0),
              " scenarios for id maps of ", users.size(), ", ", items.size(), " and ", scenarios.size());
  Checkpoint ck;
  ck.task = "policy";
  ck.config_json = nlohmann::json{
      {"kind", "factor_softmax"},
      {"num_users", user.size(0)},
      {"num_items", item.size(0)},
      {"num_scenarios", scenario.size(0)},
      {"dim",
       item.size(1)}}.dump();
  ck.users = users, ck.items = items, ck.scenarios = scenarios;
  const at::Tensor u = cpu_float(user), s = cpu_float(scenario), i = cpu_float(item), b = cpu_float(bias);
  ck.tensors = {{"policy/user", u}, {"policy/scenario", s}, {"policy/item", i}, {"policy/bias", b}};
  std::vector<std::vector<int64_t>> in;
  for (int64_t k = 0; k < 8; ++k) in.push_back({(k * 7919) % u.size(0), k % s.size(0), (k * 104729 + 3) % i.size(0)});
  ck.golden = make_golden(in, policy_golden_fn(u, s, i, b));
  return ck;
}

void register_model_kind(const std::string& kind, ModelLoader loader) {
  MTREC_CHECK(!kind.empty() && loader, "register_model_kind: a kind needs a name and a loader");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.loaders[canonical_task_name(kind)] = std::move(loader);
}

std::vector<std::string> model_kinds() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [k, l] : r.loaders) out.push_back(k);
  return out;
}

std::unique_ptr<ScoringModel> load_scoring_model(const Checkpoint& ck, const std::string& device) {
  ModelLoader loader;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.loaders.find(canonical_task_name(ck.task));  // "next-item" before one spelling
    if (it != r.loaders.end()) loader = it->second;
  }
  if (!loader) {
    std::string kinds;
    for (const auto& k : model_kinds()) kinds += (kinds.empty() ? "" : ", ") + k;
    MTREC_FAIL("checkpoint '", ck.path, "' is ", describe_checkpoint(ck), "; expected a model of a registered kind (",
               kinds, ")");
  }
  std::unique_ptr<ScoringModel> m = loader(ck, device);
  // A loader may have read it already (read_serving_data sizes the histories to the users).
  if (m->serving().histories.empty()) m->serving() = read_serving_data(ck);
  return m;
}

}  // namespace mtrec
