// The Recommender (serve/recommender.h) against slow exact oracles built from the model's own
// scoring functions (score_catalogue, user_vectors): the task map's z-scored sum over the
// catalogue, the retrieval heads through the index, cold start from text and recent items, the
// scenario classifier; filters, explanations, request errors, the checkpoint round trip,
// corrupted files and a hot swap under concurrent requests.
#include "mtrec/serve/recommender.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <fstream>
#include <set>
#include <thread>

#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/model/task_map.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/policy/explore.h"
#include "mtrec/data/labels.h"
#include "serve_fixture.h"
#include "test_joint.h"
#include "test_util.h"

namespace mtrec {
namespace {

const Dataset& data() { return test::trained_tiny_joint().world.data; }
const Interactions& known() { return test::trained_tiny_joint().known; }
UnifiedModel model() { return test::trained_tiny_joint().fit.model; }
uint64_t seed() { return test::trained_tiny_joint().fit.seed; }  // the histories' tie order

/// The oracle: every item's task-map score (z-scored heads over the whole catalogue, as
/// evaluation scores them), the user's known items left out, best first, ties by lower id.
std::vector<int32_t> oracle_top(int32_t user, int32_t scenario,
                                const std::vector<std::pair<std::string, double>>& heads, int64_t k,
                                std::vector<float>* scores = nullptr) {
  UnifiedModel m = model();
  at::Tensor total;
  for (const auto& [h, w] : heads) {
    at::Tensor s = score_catalogue(m, data(), known(), {user}, scenario, parse_head(h), seed())[0];
    if (heads.size() == 1) {
      total = s;
      break;
    }
    // fusion.h's z-score: population sd over the candidates (here the whole catalogue).
    at::Tensor z = (s - s.mean()) / s.std(/*unbiased=*/false).clamp_min(1e-12);
    total = total.defined() ? total + w * z : w * z;
  }
  UserHistories hist(data(), known(), data().num_users(), seed(), 0);
  std::set<int32_t> seen(hist.items(user).begin(), hist.items(user).end());
  std::vector<int32_t> order;
  for (int32_t i = 0; i < data().num_items(); ++i)
    if (!seen.count(i)) order.push_back(i);
  const float* p = total.data_ptr<float>();
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  order.resize(std::min<size_t>(order.size(), size_t(k)));
  if (scores)
    for (int32_t i : order) scores->push_back(p[i]);
  return order;
}

std::vector<int32_t> indices(const RecommendResponse& r) {
  std::vector<int32_t> v;
  for (const auto& x : r.items) v.push_back(x.index);
  return v;
}

RecommendRequest user_request(int32_t u, int64_t k, const std::string& scenario = "") {
  RecommendRequest q;
  q.user = data().users.raw(u);
  q.k = k;
  q.scenario = scenario;
  return q;
}

template <class Fn>
std::string request_error_field(Fn&& fn) {
  try {
    fn();
  } catch (const RequestError& e) {
    return e.field();
  }
  return "<no RequestError>";
}

TEST(Recommender, TaskMapTopKEqualsTheExactOracle) {
  test::OneThread one;
  const std::string map = "home_feed=ctr:1,next_item:0.5;search=ctr:1,match:0.5;*=ctr";
  Recommender rec(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map(map));
  const TaskMap tm = parse_task_map(map);
  for (int32_t u : {0, 7, 33}) {
    for (int32_t s = 0; s < data().scenarios.size(); ++s) {
      const std::string name = data().scenarios.raw(s);
      std::vector<float> want_scores;
      const auto want = oracle_top(u, s, tm.heads(name), 8, &want_scores);
      RecommendResponse r = rec.recommend(user_request(u, 8, name));
      EXPECT_EQ(indices(r), want) << "user " << u << " scenario " << name;
      ASSERT_EQ(r.items.size(), want_scores.size());
      for (size_t j = 0; j < want_scores.size(); ++j) EXPECT_NEAR(r.items[j].score, want_scores[j], 1e-3);
      EXPECT_EQ(r.scenario, name);
      EXPECT_EQ(r.scenario_source, "request");
      EXPECT_EQ(r.retrieval, "full");
      EXPECT_EQ(r.user_kind, "known");
    }
  }
  // One CTR head: the score is the click probability itself.
  Recommender ctr(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map("*=ctr"));
  std::vector<float> p;
  EXPECT_EQ(indices(ctr.recommend(user_request(5, 5, "ads"))),
            oracle_top(5, data().scenarios.find("ads"), {{"ctr", 1}}, 5, &p));
  EXPECT_NEAR(ctr.recommend(user_request(5, 5, "ads")).items[0].score, p[0], 1e-5);
  EXPECT_GT(p[0], 0.f);
  EXPECT_LT(p[0], 1.f);
}

TEST(Recommender, ExploringRequestsDrawTheirListWithExactPropensities) {
  test::OneThread one;
  Recommender rec(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map("*=ctr"));
  const int32_t u = 7, scenario = data().scenarios.find("search");
  const int64_t k = 4;
  std::vector<float> scores;  // the unseen items' CTR scores, best first
  const auto order = oracle_top(u, scenario, {{"ctr", 1}}, data().num_items(), &scores);
  const auto m = int32_t(order.size());
  // Uniform: every allowed item equally likely at every position.
  RecommendRequest q = user_request(u, k, "search");
  q.explore = "uniform";
  q.seed = 3;
  RecommendResponse r = rec.recommend(q);
  ASSERT_EQ(r.items.size(), size_t(k));
  EXPECT_EQ(r.exploration, "uniform");
  EXPECT_EQ(r.seed, 3u);
  double prefix = 1;
  for (int64_t j = 0; j < k; ++j) {
    prefix /= double(m - j);
    EXPECT_DOUBLE_EQ(r.items[size_t(j)].propensity, 1.0 / m);
    EXPECT_NEAR(r.items[size_t(j)].prefix_propensity, prefix, 1e-15);
    EXPECT_TRUE(std::find(order.begin(), order.end(), r.items[size_t(j)].index) != order.end()) << "a seen item";
  }
  // Softmax: the propensities are the exact marginals of the candidates' scores; a seed repeats
  // its list, and over many seeds the first position follows its propensities.
  q.explore = "softmax:temperature=0.05,epsilon=0.1";
  const SlateDistribution d = explore(parse_exploration(q.explore), scores.data(), m, k);
  std::map<int32_t, int> first;
  const int draws = 400;
  for (int seed = 0; seed < draws; ++seed) {
    q.seed = seed;
    r = rec.recommend(q);
    ASSERT_EQ(r.items.size(), size_t(k));
    for (int64_t j = 0; j < k; ++j) {
      const auto pos = int32_t(std::find(order.begin(), order.end(), r.items[size_t(j)].index) - order.begin());
      ASSERT_LT(pos, m);
      EXPECT_NEAR(r.items[size_t(j)].propensity, d.marginal(pos, j), 2e-3 * d.marginal(pos, j) + 1e-9);
    }
    first[r.items[0].index]++;
    if (seed == 5) {
      EXPECT_EQ(indices(rec.recommend(q)), indices(r));
    }
  }
  const double p0 = d.marginal(0, 0);  // the best item first
  EXPECT_NEAR(first[order[0]] / double(draws), p0, 4 * std::sqrt(p0 * (1 - p0) / draws));
  // Without a seed the recommender's own stream draws: two requests differ, each is reported.
  q.seed = -1;
  const auto a = rec.recommend(q), b = rec.recommend(q);
  EXPECT_NE(a.seed, b.seed);
  q.seed = int64_t(a.seed);
  EXPECT_EQ(indices(rec.recommend(q)), indices(a));
  // Errors name the field.
  q.explore = "boltzmann";
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "explore");
  q.explore = "uniform";
  q.k = 101;  // an exploring list holds at most 100
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "k");
  q.k = k;
  q.explore = "";
  q.seed = 4;
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "seed");
}

TEST(Recommender, RetrievalHeadsGoThroughTheIndexAndMatchTheOracle) {
  test::OneThread one;
  for (const char* head : {"next_item", "match"}) {
    for (const char* precision : {"fp32", "int8"}) {
      Recommender rec(test::trained_tiny_joint().fit, data(), known(),
                      RecommenderOptions().task_map(std::string("*=") + head).precision(precision));
      int agree = 0, total = 0;
      for (int32_t u = 0; u < 60; u += 6) {
        std::vector<float> want_scores;
        const auto want = oracle_top(u, 0, {{head, 1}}, 10, &want_scores);
        RecommendResponse r = rec.recommend(user_request(u, 10));
        EXPECT_EQ(r.retrieval, std::string(precision) == "fp32" ? "exact" : "exact:int8");
        ASSERT_EQ(r.items.size(), want.size());
        if (std::string(precision) == "fp32") {
          EXPECT_EQ(indices(r), want) << head << " user " << u;
          for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(r.items[j].score, want_scores[j], 1e-4);
        }
        std::set<int32_t> w(want.begin(), want.end());
        for (int32_t i : indices(r)) agree += int(w.count(i)), ++total;
      }
      // int8 item tables lose little of the ranking (measured at scale by bench_serve).
      EXPECT_GE(double(agree) / total, std::string(precision) == "fp32" ? 1.0 : 0.8) << head << " " << precision;
    }
  }
}

TEST(Recommender, RerankingRetrievedCandidatesKeepsOnlyRetrievedItems) {
  test::OneThread one;
  const auto& fit = test::trained_tiny_joint().fit;
  Recommender rerank(fit, data(), known(), RecommenderOptions().task_map("*=ctr").candidates(12));
  Recommender retrieve(fit, data(), known(), RecommenderOptions().task_map("*=next_item"));
  for (int32_t u : {1, 20, 45}) {
    RecommendResponse cand = retrieve.recommend(user_request(u, 12));
    RecommendResponse r = rerank.recommend(user_request(u, 5, "home_feed"));
    EXPECT_EQ(r.retrieval, "exact+rerank");
    std::set<int32_t> c;
    for (int32_t i : indices(cand)) c.insert(i);
    ASSERT_EQ(r.items.size(), 5u);
    for (size_t j = 0; j < r.items.size(); ++j) {
      EXPECT_TRUE(c.count(r.items[j].index)) << r.items[j].item;
      if (j) {
        EXPECT_GE(r.items[j - 1].score, r.items[j].score);
      }
    }
    // Ordered by the CTR tower among the candidates.
    UnifiedModel m = model();
    at::Tensor p = score_catalogue(m, data(), known(), {u}, data().scenarios.find("home_feed"), Head::Ctr, seed())[0];
    std::vector<int32_t> by_ctr(c.begin(), c.end());
    std::stable_sort(by_ctr.begin(), by_ctr.end(),
                     [&](int32_t a, int32_t b) { return p[a].item<float>() > p[b].item<float>(); });
    by_ctr.resize(5);
    EXPECT_EQ(indices(r), by_ctr);
  }
}

TEST(Recommender, FiltersDeduplicationAndExplanations) {
  test::OneThread one;
  Recommender rec(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map("*=ctr"));
  UserHistories hist(data(), known(), data().num_users(), seed(), 0);
  const int32_t u = 11;
  const std::set<int32_t> seen(hist.items(u).begin(), hist.items(u).end());
  RecommendRequest q = user_request(u, 100, "home_feed");
  RecommendResponse all = rec.recommend(q);
  EXPECT_EQ(all.items.size(), size_t(data().num_items()) - seen.size());  // k above what is allowed
  std::set<int32_t> distinct;
  for (const auto& r : all.items) {
    EXPECT_FALSE(seen.count(r.index)) << r.item;
    EXPECT_TRUE(distinct.insert(r.index).second) << "duplicate " << r.item;
    EXPECT_EQ(r.title, data().item_text.get(r.index, "title"));
  }
  // Explanations: the user's own history items, most similar (cosine of item vectors) first.
  at::Tensor iv = torch::nn::functional::normalize(model()->item_vectors().detach(),
                                                   torch::nn::functional::NormalizeFuncOptions().dim(1));
  for (const auto& r : all.items) {
    ASSERT_EQ(r.because.size(), std::min<size_t>(3, seen.size()));
    float best = -2;
    for (int32_t h : seen) best = std::max(best, iv[h].dot(iv[r.index]).item<float>());
    EXPECT_NEAR(r.because[0].similarity, best, 1e-4);
    for (const auto& e : r.because) {
      EXPECT_TRUE(seen.count(data().items.find(e.item))) << e.item;
      EXPECT_EQ(e.title, data().item_text.get(data().items.find(e.item), "title"));
    }
    for (size_t j = 1; j < r.because.size(); ++j) EXPECT_GE(r.because[j - 1].similarity, r.because[j].similarity);
  }
  // allow / deny / a field predicate.
  q.k = 10;
  const std::string a = all.items[3].item, b = all.items[5].item, c = all.items[0].item;
  q.allow = {a, b, c};
  q.deny = {c};
  EXPECT_EQ(indices(rec.recommend(q)), (std::vector<int32_t>{all.items[3].index, all.items[5].index}));
  q.allow.clear(), q.deny.clear();
  // A word of the best item's title: every result's title has it.
  const std::string title = data().item_text.get(all.items[0].index, "title");
  const std::string word = title.substr(0, title.find(' '));
  ASSERT_FALSE(word.empty());
  q.where = {{"title", word, true}};
  RecommendResponse t = rec.recommend(q);
  ASSERT_FALSE(t.items.empty());
  for (const auto& r : t.items) {
    const std::string tt = " " + data().item_text.get(r.index, "title") + " ";
    EXPECT_NE(tt.find(" " + word + " "), std::string::npos) << tt;
  }
  EXPECT_EQ(t.items[0].index, all.items[0].index);
  q.where = {{"title", title, false}};  // equality
  ASSERT_EQ(rec.recommend(q).items.size(), 1u);
  EXPECT_EQ(rec.recommend(q).items[0].index, all.items[0].index);
  q.where = {{"no_such_field", "x", false}};
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "where[0].field");
  // exclude_seen off: history items may come back.
  q.where.clear();
  q.exclude_seen = false;
  q.k = data().num_items();
  EXPECT_EQ(rec.recommend(q).items.size(), size_t(data().num_items()));
}

TEST(Recommender, ServedMetricsEqualAnExactOracle) {
  test::OneThread one;
  const auto& tj = test::trained_tiny_joint();
  const Interactions test_rows = data().interactions.subset(tj.split.test);
  const Interactions pos = implicit_positives(data(), test_rows, 0);
  for (const char* head : {"next_item", "match"}) {
    Recommender rec(tj.fit, data(), known(), RecommenderOptions().task_map(std::string("*=") + head));
    ServedReport got = evaluate_served(rec, data(), test_rows, 10);
    // The oracle: per user the first engaged test row in time; the target's place among the
    // user's unseen items by the dense scores (a repeat of a seen item cannot be served: a miss).
    std::map<int32_t, size_t> first;
    for (size_t j = 0; j < pos.size(); ++j)
      if (!first.count(pos.user[j]) || pos.timestamp[j] < pos.timestamp[first[pos.user[j]]]) first[pos.user[j]] = j;
    double hits = 0, dcg = 0;
    for (const auto& [u, j] : first) {
      const auto top = oracle_top(u, pos.scenario[j], {{head, 1}}, 10);
      for (size_t p = 0; p < top.size(); ++p)
        if (top[p] == pos.item[j]) hits += 1, dcg += 1 / std::log2(double(p) + 2);
    }
    ASSERT_GT(first.size(), 10u);
    EXPECT_EQ(got.overall.at("users"), double(first.size()));
    EXPECT_NEAR(got.overall.at("HR@10"), hits / double(first.size()), 1e-9) << head;
    EXPECT_NEAR(got.overall.at("NDCG@10"), dcg / double(first.size()), 1e-9) << head;
    EXPECT_GT(hits, 0) << head;
    EXPECT_EQ(got.per_scenario.size(), size_t(data().scenarios.size()));
  }
}

TEST(Recommender, RequestErrorsNameTheField) {
  test::OneThread one;
  Recommender rec(test::trained_tiny_joint().fit, data(), known());
  RecommendRequest q = user_request(0, 5);
  q.user = "no-such-user";
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "user");
  try {
    rec.recommend(q);
  } catch (const RequestError& e) {
    EXPECT_NE(std::string(e.what()).find("'no-such-user'"), std::string::npos) << e.what();
  }
  q = user_request(0, 0);
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "k");
  q = user_request(0, 5, "no-such-scenario");
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "scenario");
  q = user_request(0, 5);
  q.recent_items = {data().items.raw(1), "no-such-item"};
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "recent_items[1]");
  q = user_request(0, 5);
  q.deny = {"nope"};
  EXPECT_EQ(request_error_field([&] { rec.recommend(q); }), "deny[0]");
  EXPECT_EQ(request_error_field([&] { rec.recommend(RecommendRequest{}); }), "user");
  EXPECT_EQ(request_error_field([&] {
              rec.recommend_batch({user_request(0, 5), user_request(1, -1)});
            }),
            "requests[1].k");
  SimilarRequest sq;
  sq.item = "nope";
  EXPECT_EQ(request_error_field([&] { rec.similar(sq); }), "item");
  // A task map naming a head or scenario the model lacks is refused at load.
  EXPECT_THROW(
      Recommender(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map("nowhere=ctr")),
      Error);
}

TEST(Recommender, ColdStartFromTextAndRecentItemsMatchesTheModel) {
  test::OneThread one;
  c10::InferenceMode guard;
  Recommender rec(test::trained_tiny_joint().fit, data(), known(), RecommenderOptions().task_map("*=next_item"));
  UnifiedModel m = model();
  const auto& tok = *test::trained_tiny_joint().fit.tokenizer;
  const std::vector<int32_t> recent = {3, 17, 8};
  for (bool with_profile : {false, true}) {
    RecommendRequest q;
    q.k = 6;
    for (int32_t i : recent) q.recent_items.push_back(data().items.raw(i));
    if (with_profile) q.profile = data().user_text.get(4, "profile");
    RecommendResponse r = rec.recommend(q);
    EXPECT_EQ(r.user_kind, "anonymous");
    // The oracle: the model's user vector of an unknown user with this history (and profile).
    at::Tensor hist = torch::tensor(std::vector<int64_t>{4, 18, 9}).view({1, 3});
    at::Tensor table = m->item_vectors();
    at::Tensor pid, pmask;
    if (with_profile) {
      EncodeOptions eo;
      eo.set_max_len(m->text->options.max_len());
      BatchEncoding enc = make_batch(tok.encode_rows({q.profile}, eo), tok.pad_id());
      pid = enc.input_ids, pmask = enc.attention_mask.to(torch::kBool);
    }
    at::Tensor uv = m->user_vectors(torch::tensor(std::vector<int64_t>{-1}), hist, table, pid, pmask);
    at::Tensor s = m->next_item_scores(uv)[0].clone();
    for (int32_t i : recent) s[i] = -1e9;  // recent items are excluded as seen
    at::Tensor top = std::get<1>(s.topk(6));
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(r.items[size_t(j)].index, top[j].item<int64_t>()) << with_profile;
    for (const auto& x : r.items)
      for (const auto& e : x.because) EXPECT_TRUE(std::count(q.recent_items.begin(), q.recent_items.end(), e.item));
  }
  RecommendRequest p;
  p.profile = "loves cooking and travel";
  EXPECT_EQ(rec.recommend(p).items.size(), 10u);
}

TEST(Recommender, ContextTextPicksTheScenarioByTheClassifier) {
  test::OneThread one;
  c10::InferenceMode guard;
  Recommender rec(test::trained_tiny_joint().fit, data(), known());
  UnifiedModel m = model();
  const auto& tok = *test::trained_tiny_joint().fit.tokenizer;
  for (int32_t c = 0; c < std::min(5, data().context_text.size()); ++c) {
    RecommendRequest q = user_request(2, 3);
    q.context = data().context_text.text(c);
    RecommendResponse r = rec.recommend(q);
    EncodeOptions eo;
    eo.set_max_len(m->text->options.max_len());
    BatchEncoding enc = make_batch(tok.encode_rows({q.context}, eo), tok.pad_id());
    at::Tensor p = m->scenario_probs(enc.input_ids, enc.attention_mask.to(torch::kBool))[0];
    EXPECT_EQ(r.scenario, data().scenarios.raw(int32_t(p.argmax().item<int64_t>())));
    EXPECT_EQ(r.scenario_source, "context");
    EXPECT_NEAR(r.scenario_confidence, p.max().item<float>(), 1e-5);
  }
}

TEST(Recommender, SimilarItemsByCosine) {
  test::OneThread one;
  Recommender rec(test::trained_tiny_joint().fit, data(), known());
  at::Tensor iv = torch::nn::functional::normalize(model()->item_vectors().detach(),
                                                   torch::nn::functional::NormalizeFuncOptions().dim(1));
  SimilarRequest q;
  q.item = data().items.raw(9);
  q.k = 5;
  RecommendResponse r = rec.similar(q);
  at::Tensor s = iv.matmul(iv[9]);
  s[9] = -2;
  at::Tensor top = std::get<1>(s.topk(5));
  ASSERT_EQ(r.items.size(), 5u);
  for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(r.items[size_t(j)].index, top[j].item<int64_t>());
  EXPECT_NEAR(r.items[0].score, s.max().item<float>(), 1e-5);
}

TEST(Recommender, CheckpointServesLikeTheInProcessModelAndRejectsDamage) {
  test::OneThread one;
  test::TempDir dir;
  const auto& tj = test::trained_tiny_joint();
  JointFit fit = tj.fit;
  const std::string path = dir.path("joint.ckpt");
  save_checkpoint(path, fit.to_checkpoint(data()));
  Recommender a(path, RecommenderOptions().task_map("*=ctr:1,next_item:0.5"));
  Recommender b(tj.fit, data(), known(), RecommenderOptions().task_map("*=ctr:1,next_item:0.5"));
  for (int32_t u : {0, 30, 59}) {
    auto ra = a.recommend(user_request(u, 7, "search")), rb = b.recommend(user_request(u, 7, "search"));
    EXPECT_EQ(indices(ra), indices(rb));
    EXPECT_EQ(ra.items[0].title, rb.items[0].title);
    EXPECT_EQ(ra.model_version, rb.model_version);
  }
  EXPECT_EQ(a.info().path, path);
  EXPECT_EQ(a.info().users, 60);
  // Truncated and corrupted files: refused, naming the file; a failed reload keeps the model.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = dir.path("cut.ckpt"), bad = dir.path("bad.ckpt");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x5a;
  std::ofstream(bad, std::ios::binary) << flipped;
  for (const auto& p : {cut, bad}) {
    try {
      Recommender r(p);
      ADD_FAILURE() << p << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
    EXPECT_THROW(a.reload(p), Error);
  }
  EXPECT_EQ(indices(a.recommend(user_request(0, 7, "search"))), indices(b.recommend(user_request(0, 7, "search"))));
  EXPECT_EQ(a.info().reloads, 0);
}

TEST(Recommender, HotSwapUnderConcurrentRequestsFailsNone) {
  test::OneThread one;
  // Two versions of the model with different answers (serve_fixture.h).
  const std::string p1 = test::serve_checkpoints().v1, p2 = test::serve_checkpoints().v2;
  const RecommenderOptions o = RecommenderOptions().task_map("*=next_item:1,ctr:1");
  // Reference answers per version.
  std::map<std::string, std::vector<std::vector<int32_t>>> want;
  for (const auto& p : {p1, p2}) {
    Recommender r(p, o);
    for (int32_t u = 0; u < 60; ++u) want[r.info().version].push_back(indices(r.recommend(user_request(u, 5, "ads"))));
  }
  ASSERT_EQ(want.size(), 2u);
  Recommender rec(p1, o);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0}, failed{0}, wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int32_t i = 0; !stop; ++i) {
        const int32_t u = (i * 7 + t) % 60;
        try {
          RecommendResponse r = rec.recommend(user_request(u, 5, "ads"));
          if (indices(r) != want.at(r.model_version)[size_t(u)]) ++wrong;
          ++ok;
        } catch (...) {
          ++failed;
        }
      }
    });
  for (int k = 0; k < 6; ++k) rec.reload(k % 2 ? p1 : p2);
  stop = true;
  for (auto& th : pool) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), 20);
  EXPECT_EQ(rec.info().reloads, 6);
  EXPECT_EQ(rec.info().version, Recommender(p1, o).info().version);  // the last reload was v1
}

}  // namespace
}  // namespace mtrec
