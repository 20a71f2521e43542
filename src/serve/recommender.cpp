#include "mtrec/serve/recommender.h"

#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <numeric>
#include <unordered_set>

#include "mtrec/core/device.h"
#include "mtrec/core/random.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/model/io.h"
#include "mtrec/model/joint_bundle.h"
#include "mtrec/model/task_map.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/policy/explore.h"
#include "mtrec/serve/index.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/next_item.h"

namespace mtrec {

RequestError::RequestError(std::string field, const std::string& message)
    : Error("request field '" + field + "': " + message), field_(std::move(field)) {}

namespace {

bool is_retrieval_head(const std::string& h) { return h == "next_item" || h == "match"; }

/// The head a scenario is served by when the task map does not name one: next-item (trained by
/// a softmax over the catalogue), else match, else what the model has. Measured on the synthetic
/// world (bench/quality_joint), the served top-10 finds the next engaged item twice as often by
/// next-item (HR@10 .169) as by the CTR tower (.079); scenario-conditioned ranking is a task map.
std::string default_head(const UnifiedOptions& o) {
  for (Head h : {Head::NextItem, Head::Match, Head::Ctr, Head::Rating})
    if (o.has_task(h)) return head_name(h);
  return head_name(Head::Ctr);
}

/// The words of a catalogue field ('|', ',' or whitespace separated), for `contains`.
bool field_contains(const std::string& text, const std::string& word) {
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find_first_of("|, \t", b);
    if (e == std::string::npos) e = text.size();
    if (e > b && text.compare(b, e - b, word) == 0) return true;
    b = e + 1;
  }
  return false;
}

std::vector<float> to_floats(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

struct Recommender::Snapshot {
  JointBundle bundle;                        // the unified model (kind "joint")
  std::unique_ptr<ScoringModel> head_model;  // any other kind: scored over the whole catalogue
  std::string kind = "joint";
  bool profiles = false, classifier = false;  // what an anonymous request / a context can use
  IdMap users, items, scenarios;
  TextCatalog catalog;
  int title_field = -1;
  std::vector<std::vector<int32_t>> histories;
  TaskMap map;
  std::string fallback_head;
  std::vector<std::string> heads;  // enabled scoring heads
  c10::Device device = c10::kCPU;
  at::Tensor table;                                        // [I, d] item vectors
  at::Tensor user_cache;                                   // [U, d] the users' vectors from their stored histories
  std::vector<float> next_query_cache, match_query_cache;  // [U, d] their retrieval queries
  std::vector<float> item_unit;                            // [I, d] unit item vectors (explanations, similar)
  int64_t num_items = 0, dim = 0;
  std::unique_ptr<ItemIndex> next_index, match_index, similar_index;
  std::string path, version, retrieval;
  double load_seconds = 0;
  int64_t loaded_at = 0, reloads = 0;

  std::string scenario_name(int32_t s) const { return s < scenarios.size() ? scenarios.raw(s) : "default"; }
  std::string title(int32_t i) const {
    if (catalog.fields().empty() || i >= catalog.size()) return "";
    return catalog.get(i, catalog.fields()[size_t(title_field >= 0 ? title_field : 0)]);
  }
};

namespace {

using Snap = Recommender::Snapshot;

/// Stored history (null: none) plus recent items per row, packed by tasks/next_item.h's
/// pack_histories (right-aligned item+1 tokens) as wide as the longest row, at most max_len.
at::Tensor pack_histories(const std::vector<const std::vector<int32_t>*>& base,
                          const std::vector<std::vector<int32_t>>& extra, int64_t max_len) {
  std::vector<std::vector<int32_t>> rows(base.size());
  std::vector<const std::vector<int32_t>*> ptrs;
  int64_t longest = 1;
  for (size_t r = 0; r < base.size(); ++r) {
    if (base[r]) rows[r] = *base[r];
    if (r < extra.size()) rows[r].insert(rows[r].end(), extra[r].begin(), extra[r].end());
    longest = std::max<int64_t>(longest, int64_t(rows[r].size()));
    ptrs.push_back(&rows[r]);
  }
  return mtrec::pack_histories(ptrs, std::min(longest, max_len));
}

IndexOptions index_options(const RecommenderOptions& o) {
  return IndexOptions().kind(o.index()).precision(o.precision()).auto_ann_min_items(o.ann_min_items()).threads(1);
}

void finish_snapshot(Snap& s, const RecommenderOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  s.fallback_head = default_head(s.bundle.model->options);
  s.map = parse_task_map(o.task_map());
  {
    // Per-task selection (JointBundle::selected): one state serves, the one the task map's
    // main head kept (the heaviest head of its "*" entry, else the default head).
    const auto main = s.map.heads("*", s.fallback_head);
    const auto heaviest =
        std::max_element(main.begin(), main.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    s.bundle.model = s.bundle.model_for(heaviest->first);
    s.bundle.selected.clear();  // every head of this snapshot is scored by that model
  }
  c10::InferenceMode guard;
  UnifiedModel& m = s.bundle.model;
  m->eval();
  const UnifiedOptions& uo = m->options;
  s.device = m->item_emb->weight.device();
  s.num_items = uo.num_items();
  s.dim = uo.dim();
  MTREC_CHECK(s.items.size() == uo.num_items() && s.users.size() == uo.num_users(), "recommender: the id maps have ",
              s.users.size(), " users and ", s.items.size(), " items, the model ", uo.num_users(), " and ",
              uo.num_items());
  for (Head h : {Head::Ctr, Head::Rating, Head::NextItem, Head::Match})
    if (uo.has_task(h)) s.heads.push_back(head_name(h));
  for (const auto& [scen, hs] : s.map.entries) {
    MTREC_CHECK(scen == "*" || s.scenarios.find(scen) >= 0, "recommender: task map names scenario '", scen,
                "', which the model does not have");
    for (const auto& [h, w] : hs)
      MTREC_CHECK(uo.has_task(parse_head(h)), "recommender: task map head '", h, "' (scenario '", scen,
                  "') is not enabled in this model; it has ", fmt::format("{}", fmt::join(s.heads, ", ")));
  }
  MTREC_CHECK(o.candidates() >= 1, "recommender: candidates must be >= 1, got ", o.candidates());
  MTREC_CHECK(o.max_k() >= 1, "recommender: max_k must be >= 1, got ", o.max_k());
  s.title_field = s.catalog.field_index("title");
  if (int64_t(s.histories.size()) < uo.num_users()) s.histories.resize(size_t(uo.num_users()));
  s.profiles = m->has_profile_text();
  s.classifier = m->scenario_out && s.bundle.tokenizer;

  s.table = m->item_vectors().contiguous();
  // Known users' vectors from their stored histories, once.
  std::vector<at::Tensor> parts;
  const int64_t U = uo.num_users(), chunk = 1024;
  for (int64_t a = 0; a < U; a += chunk) {
    const int64_t n = std::min(chunk, U - a);
    std::vector<const std::vector<int32_t>*> base;
    for (int64_t u = a; u < a + n; ++u) base.push_back(&s.histories[size_t(u)]);
    at::Tensor ids = torch::arange(a, a + n, torch::kInt64).to(s.device);
    parts.push_back(m->user_vectors(ids, pack_histories(base, {}, uo.max_history()).to(s.device), s.table, {}, {}));
  }
  s.user_cache = parts.empty() ? torch::zeros({0, s.dim}) : torch::cat(parts, 0);

  if (uo.has_task(Head::NextItem)) s.next_query_cache = to_floats(m->next_item_queries(s.user_cache));
  if (uo.has_task(Head::Match)) s.match_query_cache = to_floats(m->match_queries(s.user_cache));
  const IndexOptions io = index_options(o);
  const std::vector<float> tab = to_floats(s.table);
  if (uo.has_task(Head::NextItem)) s.next_index = std::make_unique<ItemIndex>(tab.data(), s.num_items, s.dim, io);
  if (uo.has_task(Head::Match)) {
    const std::vector<float> mt = to_floats(m->match_table(s.table));
    s.match_index = std::make_unique<ItemIndex>(mt.data(), s.num_items, s.dim, io);
  }
  s.item_unit =
      to_floats(torch::nn::functional::normalize(s.table, torch::nn::functional::NormalizeFuncOptions().dim(1)));
  s.similar_index = std::make_unique<ItemIndex>(s.item_unit.data(), s.num_items, s.dim, io);
  s.retrieval = (s.next_index ? s.next_index : s.similar_index)->description();
  s.version = fmt::format("{:016x}", state_checksum(*m));
  s.loaded_at = int64_t(std::time(nullptr));
  s.load_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Any kind but the unified model: one head, scored over the whole catalogue
/// (ScoringModel::score_items); similar items and explanations by its item space, if it has one.
void finish_head_snapshot(Snap& s, const RecommenderOptions& o, const Checkpoint& ck) {
  const ScoringModel& m = *s.head_model;
  s.kind = m.kind();
  s.num_items = m.num_items();
  MTREC_CHECK(s.items.size() == m.num_items() && s.users.size() == m.num_users(), "recommender: checkpoint '", ck.path,
              "' has id maps of ", s.users.size(), " users and ", s.items.size(), " items, its model ", m.num_users(),
              " and ", m.num_items());
  s.heads = {m.head()};
  s.fallback_head = m.head();
  s.map = parse_task_map(o.task_map(), s.heads);
  for (const auto& [scen, hs] : s.map.entries) {
    MTREC_CHECK(scen == "*" || s.scenarios.find(scen) >= 0, "recommender: task map names scenario '", scen,
                "', which the model does not have");
    for (const auto& [h, w] : hs)
      MTREC_CHECK(h == m.head(), "recommender: task map head '", h, "' (scenario '", scen, "'): a ", s.kind,
                  " model has one head, ", m.head());
  }
  MTREC_CHECK(o.max_k() >= 1, "recommender: max_k must be >= 1, got ", o.max_k());
  s.title_field = s.catalog.field_index("title");
  s.histories.resize(size_t(m.num_users()));
  const at::Tensor space = m.item_space();
  if (space.defined()) {
    s.dim = space.size(1);
    s.item_unit =
        to_floats(torch::nn::functional::normalize(space, torch::nn::functional::NormalizeFuncOptions().dim(1)));
    s.similar_index = std::make_unique<ItemIndex>(s.item_unit.data(), s.num_items, s.dim, index_options(o));
  }
  s.retrieval = "full";
  s.version = fmt::format("{:016x}", fnv1a64(serialize_checkpoint(ck)));
  s.loaded_at = int64_t(std::time(nullptr));
}

std::shared_ptr<const Snap> load_snapshot(const std::string& path, const RecommenderOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  Checkpoint ck = load_checkpoint(path);  // checksum
  auto s = std::make_shared<Snap>();
  s->users = ck.users, s->items = ck.items, s->scenarios = ck.scenarios;
  s->path = path;
  ServingData* serving = nullptr;
  if (ck.task == "joint") {
    s->bundle = joint_from_checkpoint(ck, o.device());  // golden pairs
    serving = &s->bundle.serving;
  } else {
    s->head_model = load_scoring_model(ck, o.device());  // golden pairs; names the file and kind on failure
    serving = &s->head_model->serving();
  }
  s->catalog = std::move(serving->item_catalog);  // held once, by the snapshot
  s->histories = std::move(serving->histories);
  s->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s->head_model)
    finish_head_snapshot(*s, o, ck);
  else
    finish_snapshot(*s, o);
  return s;
}

/// A request resolved to dense ids.
// Exact propensities cost O(n k) per quadrature node and more for k near n: exploring lists are
// drawn from at most `candidates` items and hold at most this many.
constexpr int64_t kMaxExploringK = 100;

struct Resolved {
  int32_t user = -1;
  std::vector<int32_t> recent;
  int32_t scenario = 0;
  std::string scenario_source = "default";
  float confidence = 1;
  std::vector<uint8_t> allowed;  // [I]
  std::vector<int32_t> history;  // for explanations: stored + recent
  bool exploring = false;
  ExplorationOptions explore;
  uint64_t seed = 0;
};

// The hits of one request: the top k of the allowed scores, or, exploring, k items drawn by the
// request's policy over the best `cap` allowed scores (the propensities' quadrature costs
// O(n k) per node, so it is bounded), with their propensities (and prefix ones).
struct Picked {
  std::vector<Hit> hits;
  std::vector<double> propensity, prefix;
};
Picked pick(const float* scores, int64_t n, int64_t k, const uint8_t* allowed, const Resolved& z, int64_t cap) {
  Picked p;
  if (!z.exploring) {
    p.hits = top_k(scores, n, k, allowed);
    return p;
  }
  std::vector<int32_t> idx;
  std::vector<float> sc;
  for (int64_t j = 0; j < n; ++j)
    if (allowed[j]) idx.push_back(int32_t(j)), sc.push_back(scores[j]);
  if (idx.empty()) return p;
  if (int64_t(idx.size()) > cap) {
    std::vector<size_t> order(idx.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::partial_sort(order.begin(), order.begin() + cap, order.end(),
                      [&](size_t a, size_t b) { return sc[a] > sc[b] || (sc[a] == sc[b] && idx[a] < idx[b]); });
    std::vector<int32_t> top_idx;
    std::vector<float> top_sc;
    for (int64_t j = 0; j < cap; ++j) top_idx.push_back(idx[order[size_t(j)]]), top_sc.push_back(sc[order[size_t(j)]]);
    idx = std::move(top_idx), sc = std::move(top_sc);
  }
  const SlateDistribution d =
      explore(z.explore, sc.data(), int32_t(sc.size()), std::min<int64_t>(k, int64_t(sc.size())));
  Rng rng(z.seed);
  const Slate slate = d.sample(rng);
  for (int32_t j : slate.items) p.hits.push_back({idx[size_t(j)], sc[size_t(j)]});
  p.propensity = slate.propensity;
  p.prefix = slate.prefix;
  return p;
}

int32_t resolve_item(const Snap& s, const std::string& raw, const std::string& field) {
  const int32_t i = s.items.find(raw);
  if (i < 0)
    throw RequestError(field, fmt::format("item '{}' is not in the model's catalogue ({} items)", raw, s.num_items));
  return i;
}

void apply_filters(const Snap& s, const std::vector<std::string>& allow, const std::vector<std::string>& deny,
                   const std::vector<ItemPredicate>& where, const std::string& prefix, std::vector<uint8_t>& allowed) {
  if (!allow.empty()) {
    std::vector<uint8_t> keep(allowed.size(), 0);
    for (size_t j = 0; j < allow.size(); ++j)
      keep[size_t(resolve_item(s, allow[j], fmt::format("{}allow[{}]", prefix, j)))] = 1;
    for (size_t i = 0; i < allowed.size(); ++i) allowed[i] &= keep[i];
  }
  for (size_t j = 0; j < deny.size(); ++j)
    allowed[size_t(resolve_item(s, deny[j], fmt::format("{}deny[{}]", prefix, j)))] = 0;
  for (size_t j = 0; j < where.size(); ++j) {
    const auto& p = where[j];
    if (s.catalog.field_index(p.field) < 0)
      throw RequestError(
          fmt::format("{}where[{}].field", prefix, j),
          fmt::format("the catalogue has no field '{}' (it has: {})", p.field, fmt::join(s.catalog.fields(), ", ")));
    for (int32_t i = 0; i < int32_t(allowed.size()); ++i) {
      if (!allowed[size_t(i)]) continue;
      const std::string& v = i < s.catalog.size() ? s.catalog.get(i, p.field) : std::string();
      if (!(p.contains ? field_contains(v, p.value) : v == p.value)) allowed[size_t(i)] = 0;
    }
  }
}

/// The last `cap` distinct items of a history, most recent first: what explanations search.
std::vector<int32_t> recent_distinct(const std::vector<int32_t>& history, size_t cap) {
  std::vector<int32_t> out;
  std::unordered_set<int32_t> done;
  for (size_t j = history.size(); j-- > 0 && out.size() < cap;)
    if (done.insert(history[j]).second) out.push_back(history[j]);
  return out;
}

/// The `n` items of `history` (distinct) most similar to `item` (cosine in the item space).
std::vector<Explanation> explain(const Snap& s, const std::vector<int32_t>& history, int32_t item, int64_t n) {
  std::vector<Explanation> out;
  if (n <= 0 || history.empty() || s.item_unit.empty()) return out;  // a kind without an item space: none
  using Vec = Eigen::Map<const Eigen::VectorXf>;
  const Vec target(&s.item_unit[size_t(item) * size_t(s.dim)], s.dim);
  std::vector<std::pair<float, int32_t>> sims;
  sims.reserve(history.size());
  for (int32_t h : history)
    if (h != item) sims.push_back({Vec(&s.item_unit[size_t(h) * size_t(s.dim)], s.dim).dot(target), h});
  const size_t m = std::min<size_t>(size_t(n), sims.size());
  std::partial_sort(sims.begin(), sims.begin() + long(m), sims.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (size_t j = 0; j < m; ++j) out.push_back({s.items.raw(sims[j].second), s.title(sims[j].second), sims[j].first});
  return out;
}

/// The unified model's hits: retrieval heads from the item index, towers re-ranking the
/// candidates, several heads z-scored and summed by the task map.
void joint_hits(const Snap& s, const RecommenderOptions& options_, const std::vector<RecommendRequest>& requests,
                const std::vector<Resolved>& res, std::vector<std::vector<Hit>>& hits_of,
                std::vector<std::vector<double>>& propensity_of, std::vector<std::vector<double>>& prefix_of,
                std::vector<std::string>& retrieval_of) {
  UnifiedModel& m = const_cast<UnifiedModel&>(s.bundle.model);
  const UnifiedOptions& uo = m->options;
  const int64_t I = s.num_items;
  // 2. User vectors and retrieval queries: precomputed for known users as stored (no LibTorch
  //    call on the common path), computed by the model for the others.
  const int64_t n = int64_t(requests.size());
  std::vector<std::vector<std::pair<std::string, double>>> heads_of(static_cast<size_t>(n));
  std::vector<int64_t> fresh, cached_row(static_cast<size_t>(n), 0);
  bool any_tower = false;
  for (int64_t r = 0; r < n; ++r) {
    const Resolved& z = res[size_t(r)];
    auto& h = heads_of[size_t(r)];
    h = s.map.heads(s.scenario_name(z.scenario), s.fallback_head);
    any_tower |= !(h.size() == 1 && is_retrieval_head(h[0].first));
    if (z.user < 0 || !z.recent.empty())
      fresh.push_back(r);
    else
      cached_row[size_t(r)] = z.user;
  }
  std::vector<float> next_qf(s.next_index ? size_t(n * s.dim) : 0), match_qf(s.match_index ? size_t(n * s.dim) : 0);
  for (int64_t r = 0; r < n; ++r) {
    const size_t from = size_t(cached_row[size_t(r)] * s.dim), to = size_t(r * s.dim);
    if (s.next_index) std::copy_n(&s.next_query_cache[from], s.dim, &next_qf[to]);
    if (s.match_index) std::copy_n(&s.match_query_cache[from], s.dim, &match_qf[to]);
  }
  at::Tensor uvec;
  if (any_tower || !fresh.empty())
    uvec = s.user_cache.index_select(0, torch::tensor(cached_row, torch::kInt64).to(s.device));
  if (!fresh.empty()) {
    std::vector<int64_t> ids;
    std::vector<const std::vector<int32_t>*> base;
    std::vector<std::vector<int32_t>> extra;
    std::vector<std::string> profiles;
    bool any_profile = false;
    for (int64_t r : fresh) {
      const Resolved& z = res[size_t(r)];
      ids.push_back(z.user);
      base.push_back(z.user >= 0 ? &s.histories[size_t(z.user)] : nullptr);
      extra.push_back(z.recent);
      profiles.push_back(requests[size_t(r)].profile);
      any_profile |= !profiles.back().empty();
    }
    at::Tensor pid, pmask;
    if (any_profile) {
      EncodeOptions eo;
      eo.set_max_len(m->text->options.max_len());
      std::vector<std::vector<int64_t>> rows = s.bundle.tokenizer->encode_rows(profiles, eo);
      for (size_t j = 0; j < rows.size(); ++j)
        if (profiles[j].empty()) rows[j].clear();  // no profile: an empty row (left out)
      BatchEncoding enc = make_batch(rows, s.bundle.tokenizer->pad_id());
      pid = enc.input_ids.to(s.device), pmask = enc.attention_mask.to(s.device).to(torch::kBool);
    }
    at::Tensor v = m->user_vectors(torch::tensor(ids, torch::kInt64).to(s.device),
                                   pack_histories(base, extra, uo.max_history()).to(s.device), s.table, pid, pmask);
    uvec.index_copy_(0, torch::tensor(fresh, torch::kInt64).to(s.device), v);
    auto place = [&](const at::Tensor& q, std::vector<float>& out) {
      const std::vector<float> f = to_floats(q);
      for (size_t j = 0; j < fresh.size(); ++j)
        std::copy_n(&f[j * size_t(s.dim)], s.dim, &out[size_t(fresh[j] * s.dim)]);
    };
    if (s.next_index) place(m->next_item_queries(v), next_qf);
    if (s.match_index) place(m->match_queries(v), match_qf);
  }
  auto query = [&](const std::string& head, int64_t r) {
    return (head == "next_item" ? next_qf.data() : match_qf.data()) + r * s.dim;
  };
  auto index_of = [&](const std::string& head) -> const ItemIndex& {
    return head == "next_item" ? *s.next_index : *s.match_index;
  };

  // 3. Candidates and scores per request.
  struct Plan {
    std::vector<std::pair<std::string, double>> heads;
    std::vector<int32_t> cand;  // candidate items (ranking with towers / several heads)
    std::vector<Hit> hits;      // final (single retrieval head)
    bool direct = false;        // one retrieval head: the index answers alone
    std::string retrieval;
  };
  std::vector<Plan> plans(static_cast<size_t>(n));
  std::vector<int64_t> tower_req, tower_item, tower_user, tower_scen;  // rows through the towers
  bool need_rating = false, need_ctr = false;
  for (int64_t r = 0; r < n; ++r) {
    Plan& p = plans[size_t(r)];
    const Resolved& z = res[size_t(r)];
    p.heads = heads_of[size_t(r)];
    const int64_t k = requests[size_t(r)].k;
    // One retrieval head: the index answers alone, unless the list is drawn (exploring), which
    // needs the scores of the candidates below.
    if (p.heads.size() == 1 && is_retrieval_head(p.heads[0].first) && !z.exploring) {
      const ItemIndex& ix = index_of(p.heads[0].first);
      p.hits = ix.search(query(p.heads[0].first, r), k, z.allowed.data());
      p.retrieval = ix.description();
      p.direct = true;
      continue;
    }
    std::string ret;
    for (const auto& [h, w] : p.heads)
      if (ret.empty() && is_retrieval_head(h)) ret = h;
    if (ret.empty()) ret = s.next_index ? "next_item" : s.match_index ? "match" : "";
    if (I <= options_.candidates() || ret.empty()) {
      // The whole catalogue (z-scores over every item, as evaluation scores it).
      p.cand.resize(size_t(I));
      for (int64_t i = 0; i < I; ++i) p.cand[size_t(i)] = int32_t(i);
      p.retrieval = "full";
    } else {
      for (const Hit& h : index_of(ret).search(query(ret, r), options_.candidates(), z.allowed.data()))
        p.cand.push_back(h.item);
      p.retrieval = index_of(ret).description() + "+rerank";
    }
    for (const auto& [h, w] : p.heads) need_rating |= h == "rating", need_ctr |= h == "ctr";
    if (std::any_of(p.heads.begin(), p.heads.end(), [](const auto& hw) { return !is_retrieval_head(hw.first); }))
      for (int32_t i : p.cand)
        tower_req.push_back(r), tower_item.push_back(i), tower_user.push_back(z.user), tower_scen.push_back(z.scenario);
  }
  std::vector<float> rating_all, ctr_all;
  if (!tower_req.empty()) {
    auto dev = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64).to(s.device); };
    auto [rt, ct] = m->rank_outputs(dev(tower_user), uvec.index_select(0, dev(tower_req)), dev(tower_item),
                                    dev(tower_scen), s.table);
    if (need_rating) rating_all = to_floats(rt.clamp(s.bundle.rating_min, s.bundle.rating_max));
    if (need_ctr) ctr_all = to_floats(ct.select(1, 0));
  }

  // 4. Combine (z-scored heads), filter, top-k, explain.
  size_t tower_pos = 0;
  for (int64_t r = 0; r < n; ++r) {
    Plan& p = plans[size_t(r)];
    const Resolved& z = res[size_t(r)];
    const int64_t k = requests[size_t(r)].k;
    std::vector<Hit> hits = std::move(p.hits);
    if (!p.direct) {
      const size_t c = p.cand.size();
      std::vector<float> total(c, 0.f), head_scores(c);
      const bool uses_tower =
          std::any_of(p.heads.begin(), p.heads.end(), [](const auto& hw) { return !is_retrieval_head(hw.first); });
      for (const auto& [h, w] : p.heads) {
        if (h == "rating" || h == "ctr") {
          const auto& all = h == "rating" ? rating_all : ctr_all;
          std::copy(all.begin() + long(tower_pos), all.begin() + long(tower_pos + c), head_scores.begin());
        } else {
          index_of(h).score(query(h, r), p.cand.data(), int64_t(c), head_scores.data());
        }
        if (p.heads.size() == 1) {
          total = head_scores;  // one head: its own score (a probability, a rating)
          break;
        }
        // z-scored over the candidates (tasks/fusion.h), so heads on different scales add up.
        const std::vector<float> z = normalize_scores(head_scores);
        for (size_t j = 0; j < c; ++j) total[j] += float(w * z[j]);
      }
      if (uses_tower) tower_pos += c;
      std::vector<uint8_t> ok(c);
      for (size_t j = 0; j < c; ++j) ok[j] = z.allowed[size_t(p.cand[j])];
      Picked chosen = pick(total.data(), int64_t(c), k, ok.data(), z, options_.candidates());
      for (const Hit& h : chosen.hits) hits.push_back({p.cand[size_t(h.item)], h.score});
      propensity_of[size_t(r)] = std::move(chosen.propensity);
      prefix_of[size_t(r)] = std::move(chosen.prefix);
    }
    hits_of[size_t(r)] = std::move(hits);
    retrieval_of[size_t(r)] = p.retrieval;
  }
}

/// A one-head model's hits: its scores of the whole catalogue, filtered, top k.
void head_hits(const Snap& s, const RecommenderOptions& options_, const std::vector<RecommendRequest>& requests,
               const std::vector<Resolved>& res, std::vector<std::vector<Hit>>& hits_of,
               std::vector<std::vector<double>>& propensity_of, std::vector<std::vector<double>>& prefix_of,
               std::vector<std::string>& retrieval_of) {
  const size_t n = requests.size();
  std::vector<int32_t> users(n), scenarios(n);
  std::vector<std::vector<int32_t>> histories(n);
  for (size_t r = 0; r < n; ++r) {
    users[r] = res[r].user, scenarios[r] = res[r].scenario;
    histories[r] = res[r].history;  // stored + recent, oldest first
  }
  const std::vector<float> scores = s.head_model->score_items(users, histories, scenarios);
  const int64_t I = s.num_items;
  MTREC_CHECK(int64_t(scores.size()) == int64_t(n) * I, "recommender: the ", s.kind, " model returned ", scores.size(),
              " scores for ", n, " x ", I);
  for (size_t r = 0; r < n; ++r) {
    Picked chosen =
        pick(scores.data() + r * size_t(I), I, requests[r].k, res[r].allowed.data(), res[r], options_.candidates());
    hits_of[r] = std::move(chosen.hits);
    propensity_of[r] = std::move(chosen.propensity);
    prefix_of[r] = std::move(chosen.prefix);
    retrieval_of[r] = "full";
  }
}

}  // namespace

Recommender::Recommender(const std::string& checkpoint_path, RecommenderOptions options)
    : options_(std::move(options)), snapshot_(load_snapshot(checkpoint_path, options_)) {}

Recommender::Recommender(const JointBundle& bundle, const Dataset& ds, const Interactions& known,
                         RecommenderOptions options)
    : options_(std::move(options)) {
  MTREC_CHECK(bundle.model, "recommender: the bundle has no model");
  auto s = std::make_shared<Snap>();
  s->bundle = bundle;
  s->users = ds.users, s->items = ds.items, s->scenarios = ds.scenarios;
  s->catalog = ds.item_text;
  s->bundle.set_histories(ds, known);
  s->histories = std::move(s->bundle.serving.histories);
  s->path = "";
  finish_snapshot(*s, options_);
  snapshot_ = std::move(s);
}

Recommender::~Recommender() = default;

std::shared_ptr<const Recommender::Snapshot> Recommender::current() const { return std::atomic_load(&snapshot_); }

void Recommender::reload(const std::string& checkpoint_path) {
  auto next = load_snapshot(checkpoint_path, options_);  // throws: the old one stays
  const auto old = current();
  const_cast<Snap&>(*next).reloads = old->reloads + 1;
  std::atomic_store(&snapshot_, std::shared_ptr<const Snap>(std::move(next)));
}

void Recommender::reload() {
  const auto s = current();
  MTREC_CHECK(!s->path.empty(), "recommender: this model was built in-process; reload needs a checkpoint path");
  reload(s->path);
}

RecommenderInfo Recommender::info() const {
  const auto s = current();
  RecommenderInfo r;
  r.path = s->path, r.task = s->kind, r.version = s->version;
  r.default_scenario = s->scenario_name(0);
  r.task_map = s->map.to_string().empty() ? "*=" + s->fallback_head : s->map.to_string();
  r.retrieval = s->retrieval;
  for (int32_t i = 0; i < std::max<int32_t>(1, s->scenarios.size()); ++i) r.scenarios.push_back(s->scenario_name(i));
  r.heads = s->heads;
  r.users = s->users.size(), r.items = s->items.size();
  r.load_seconds = s->load_seconds, r.loaded_at_unix = s->loaded_at, r.reloads = s->reloads;
  return r;
}

std::vector<std::string> Recommender::sample_users(int64_t n) const {
  const auto s = current();
  std::vector<std::string> out;
  for (int32_t u = 0; u < s->users.size() && int64_t(out.size()) < n; ++u) out.push_back(s->users.raw(u));
  return out;
}

RecommendResponse Recommender::recommend(const RecommendRequest& request) const {
  return std::move(recommend_batch({request}).front());
}

std::vector<RecommendResponse> Recommender::recommend_batch(const std::vector<RecommendRequest>& requests) const {
  const auto sp = current();  // this snapshot serves the whole call, whatever reload does meanwhile
  const Snap& s = *sp;
  const int64_t I = s.num_items;
  const bool batch = requests.size() > 1;
  c10::InferenceMode guard;

  // 1. Resolve ids, scenarios and filters; every error names its field.
  std::vector<Resolved> res(requests.size());
  std::vector<int64_t> context_of;  // request index per context text to classify
  std::vector<std::string> contexts;
  for (size_t r = 0; r < requests.size(); ++r) {
    const RecommendRequest& q = requests[r];
    const std::string pre = batch ? fmt::format("requests[{}].", r) : "";
    Resolved& z = res[r];
    if (q.k < 1 || q.k > options_.max_k())
      throw RequestError(pre + "k", fmt::format("k must be in [1, {}], got {}", options_.max_k(), q.k));
    if (q.explain < 0) throw RequestError(pre + "explain", fmt::format("explain must be >= 0, got {}", q.explain));
    if (!q.user.empty()) {
      z.user = s.users.find(q.user);
      if (z.user < 0)
        throw RequestError(pre + "user", fmt::format("user '{}' is not in the model ({} users); describe a new user "
                                                     "by profile and recent_items instead",
                                                     q.user, s.users.size()));
      if (!q.profile.empty())
        throw RequestError(pre + "profile", "a known user is scored from its own profile; give either user or profile");
    } else if (q.profile.empty() && q.recent_items.empty()) {
      throw RequestError(pre + "user", "give a user id, or a profile and/or recent_items for a new user");
    }
    if (z.user < 0 && s.head_model && !s.head_model->anonymous())
      throw RequestError(pre + "user", fmt::format("a {} model scores the users it was trained on ({} users); give one "
                                                   "of them",
                                                   s.kind, s.users.size()));
    if (!q.profile.empty() && !s.profiles)
      throw RequestError(pre + "profile", "this model was trained without user profile texts; give recent_items");
    for (size_t j = 0; j < q.recent_items.size(); ++j)
      z.recent.push_back(resolve_item(s, q.recent_items[j], fmt::format("{}recent_items[{}]", pre, j)));
    if (!q.scenario.empty()) {
      z.scenario = s.scenarios.find(q.scenario);
      if (z.scenario < 0)
        throw RequestError(pre + "scenario", fmt::format("scenario '{}' is not in the model (it has: {})", q.scenario,
                                                         fmt::join(s.scenarios.raws(), ", ")));
      z.scenario_source = "request";
    } else if (!q.context.empty()) {
      if (!s.classifier)
        throw RequestError(pre + "context", "this model has no scenario classifier; give scenario instead");
      context_of.push_back(int64_t(r));
      contexts.push_back(q.context);
    }
    z.allowed.assign(size_t(I), 1);
    if (z.user >= 0) z.history = s.histories[size_t(z.user)];
    z.history.insert(z.history.end(), z.recent.begin(), z.recent.end());
    if (q.exclude_seen)
      for (int32_t i : z.history) z.allowed[size_t(i)] = 0;
    apply_filters(s, q.allow, q.deny, q.where, pre, z.allowed);
    if (!q.explore.empty()) {
      try {
        z.explore = parse_exploration(q.explore);
      } catch (const Error& e) {
        throw RequestError(pre + "explore", e.what());
      }
      z.exploring = true;
      if (q.k > kMaxExploringK)
        throw RequestError(pre + "k",
                           fmt::format("an exploring list holds at most {} items, got k={}", kMaxExploringK, q.k));
      // An own seed is below 2^63 so that a request can pass it back (seed is an int64 there).
      z.seed = q.seed >= 0 ? uint64_t(q.seed)
                           : (derive_seed(options_.seed(), "explore") + draws_.fetch_add(1)) & 0x7fffffffffffffffULL;
    } else if (q.seed >= 0) {
      throw RequestError(pre + "seed", "a seed draws an exploring list; give explore too");
    }
  }
  if (!contexts.empty()) {
    UnifiedModel& m = const_cast<UnifiedModel&>(s.bundle.model);
    EncodeOptions eo;
    eo.set_max_len(m->text->options.max_len());
    BatchEncoding enc = make_batch(s.bundle.tokenizer->encode_rows(contexts, eo), s.bundle.tokenizer->pad_id());
    at::Tensor p =
        m->scenario_probs(enc.input_ids.to(s.device), enc.attention_mask.to(s.device).to(torch::kBool)).cpu();
    auto [conf, arg] = p.max(1);
    for (size_t j = 0; j < contexts.size(); ++j) {
      Resolved& z = res[size_t(context_of[j])];
      z.scenario = int32_t(arg[int64_t(j)].item<int64_t>());
      z.confidence = conf[int64_t(j)].item<float>();
      z.scenario_source = "context";
    }
  }

  const int64_t n = int64_t(requests.size());
  std::vector<std::vector<Hit>> hits(static_cast<size_t>(n));
  std::vector<std::vector<double>> propensity(static_cast<size_t>(n)), prefix(static_cast<size_t>(n));
  std::vector<std::string> retrieval(static_cast<size_t>(n));
  if (s.head_model)
    head_hits(s, options_, requests, res, hits, propensity, prefix, retrieval);
  else
    joint_hits(s, options_, requests, res, hits, propensity, prefix, retrieval);

  // 4. The answers: items, titles, explanations.
  std::vector<RecommendResponse> out(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const Resolved& z = res[size_t(r)];
    RecommendResponse& o = out[size_t(r)];
    o.scenario = s.scenario_name(z.scenario);
    o.scenario_source = z.scenario_source;
    o.scenario_confidence = z.confidence;
    o.user_kind = z.user >= 0 ? "known" : "anonymous";
    o.retrieval = retrieval[size_t(r)];
    o.model_version = s.version;
    const int64_t ne = requests[size_t(r)].explain;
    const std::vector<int32_t> recent = ne > 0 ? recent_distinct(z.history, 200) : std::vector<int32_t>();
    o.items.reserve(hits[size_t(r)].size());
    for (const Hit& h : hits[size_t(r)])
      o.items.push_back({s.items.raw(h.item), s.title(h.item), h.item, h.score, explain(s, recent, h.item, ne)});
    if (z.exploring) {
      o.exploration = to_string(z.explore);
      o.seed = z.seed;
      for (size_t j = 0; j < o.items.size(); ++j) {
        o.items[j].propensity = propensity[size_t(r)][j];
        o.items[j].prefix_propensity = prefix[size_t(r)][j];
      }
    }
  }
  return out;
}

RecommendResponse Recommender::similar(const SimilarRequest& q) const {
  const auto sp = current();
  const Snap& s = *sp;
  if (q.k < 1 || q.k > options_.max_k())
    throw RequestError("k", fmt::format("k must be in [1, {}], got {}", options_.max_k(), q.k));
  const int32_t item = resolve_item(s, q.item, "item");
  if (!s.similar_index)
    throw RequestError("item", fmt::format("a {} model has no item space to find similar items in", s.kind));
  std::vector<uint8_t> allowed(size_t(s.num_items), 1);
  allowed[size_t(item)] = 0;
  apply_filters(s, q.allow, q.deny, q.where, "", allowed);
  RecommendResponse o;
  o.scenario = s.scenario_name(0);
  o.scenario_source = "default";
  o.user_kind = "item";
  o.retrieval = s.similar_index->description();
  o.model_version = s.version;
  for (const Hit& h : s.similar_index->search(&s.item_unit[size_t(item) * size_t(s.dim)], q.k, allowed.data()))
    o.items.push_back({s.items.raw(h.item), s.title(h.item), h.item, h.score, {}});
  return o;
}

ServedReport evaluate_served(const Recommender& rec, const Dataset& ds, const Interactions& eval, int64_t k) {
  const RecommenderInfo info = rec.info();
  MTREC_CHECK(ds.num_users() == info.users && ds.num_items() == info.items, "evaluate_served: the data has ",
              ds.num_users(), " users and ", ds.num_items(), " items, the recommender ", info.users, " and ",
              info.items);
  Interactions pos = implicit_positives(ds, eval, 0);
  std::vector<int64_t> first(size_t(ds.num_users()), -1);
  for (size_t j = 0; j < pos.size(); ++j) {
    int64_t& f = first[size_t(pos.user[j])];
    if (f < 0 || (pos.has_timestamp && pos.timestamp[j] < pos.timestamp[size_t(f)])) f = int64_t(j);
  }
  std::vector<size_t> rows;
  for (int64_t f : first)
    if (f >= 0) rows.push_back(size_t(f));
  ServedReport rep;
  std::map<std::string, std::array<double, 3>> sums;  // scenario -> hits, dcg, users
  const std::string hr = fmt::format("HR@{}", k), ndcg = fmt::format("NDCG@{}", k);
  for (size_t a = 0; a < rows.size(); a += 64) {
    std::vector<RecommendRequest> batch;
    for (size_t j = a; j < std::min(rows.size(), a + 64); ++j) {
      RecommendRequest q;
      q.user = ds.users.raw(pos.user[rows[j]]);
      q.k = k;
      q.explain = 0;
      if (pos.scenario[rows[j]] < ds.scenarios.size()) q.scenario = ds.scenarios.raw(pos.scenario[rows[j]]);
      batch.push_back(std::move(q));
    }
    const auto out = rec.recommend_batch(batch);
    for (size_t j = 0; j < out.size(); ++j) {
      const int32_t target = pos.item[rows[a + j]];
      int64_t rank = k;  // not in the list: past the cut-off
      for (size_t p = 0; p < out[j].items.size(); ++p)
        if (out[j].items[p].index == target) rank = int64_t(p);
      const double hit = hit_at_k(rank, int(k)), dcg = ndcg_at_k(rank, int(k));  // eval/metrics.h
      for (const std::string& key : {std::string("*"), out[j].scenario}) {
        auto& sm = sums[key];
        sm[0] += hit, sm[1] += dcg, sm[2] += 1;
      }
    }
  }
  for (const auto& [key, sm] : sums) {
    std::map<std::string, double> m = {{hr, sm[0] / sm[2]}, {ndcg, sm[1] / sm[2]}, {"users", sm[2]}};
    if (key == "*")
      rep.overall = m;
    else if (ds.scenarios.size() > 1)
      rep.per_scenario[key] = m;
  }
  return rep;
}

}  // namespace mtrec
