// The HTTP service (serve/http.h), in-process on a free port, through httplib's client: the
// answers equal the Recommender's, every bad request is answered with its status and the field,
// the token, the body limit, the deadline (503 queued, 504 ran), /metrics, hot swaps under
// concurrent load with no failed request, and a graceful stop that finishes the request in
// flight (also on SIGTERM).
#include <gtest/gtest.h>

#if MTREC_HAVE_HTTPLIB
#include "mtrec/serve/http.h"

#include <httplib.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <regex>
#include <thread>

#include "mtrec/serve/json.h"
#include "serve/serve_fixture.h"

namespace mtrec {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string& v1() { return test::serve_checkpoints().v1; }
const std::string& v2() { return test::serve_checkpoints().v2; }

/// A server on a free loopback port, run() on a thread of its own; stopped at destruction.
struct TestServer {
  Recommender rec;
  HttpServer server;
  std::thread thread;
  explicit TestServer(HttpOptions o = {}, const std::string& checkpoint = v1())
      : rec(checkpoint), server(rec, o.host("127.0.0.1").port(0)) {
    thread = std::thread([this] { server.run(); });
  }
  ~TestServer() {
    server.stop();
    thread.join();
  }
  std::unique_ptr<httplib::Client> client(const std::string& token = "") const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server.port());
    c->set_read_timeout(60, 0);
    if (!token.empty()) c->set_bearer_token_auth(token.c_str());
    return c;
  }
  /// The requests being served, from the in-process /metrics text.
  int64_t in_flight() const {
    static const std::regex re("\nmtrec_http_requests_in_flight ([0-9]+)\n");
    std::smatch m;
    const std::string text = server.metrics();
    return std::regex_search(text, m, re) ? std::stoll(m[1]) : -1;
  }
  void wait_in_flight(int64_t n) const {
    const auto until = Clock::now() + std::chrono::seconds(30);
    while (in_flight() != n && Clock::now() < until) std::this_thread::sleep_for(std::chrono::microseconds(200));
    ASSERT_EQ(in_flight(), n);
  }
};

std::vector<int32_t> indices(const RecommendResponse& r) {
  std::vector<int32_t> v;
  for (const auto& x : r.items) v.push_back(x.index);
  return v;
}
std::vector<int32_t> indices(const json& response) {
  std::vector<int32_t> v;
  for (const auto& x : response.at("items")) v.push_back(x.at("index").get<int32_t>());
  return v;
}

/// Status and parsed JSON body of a result (status -1 when the request failed).
struct Reply {
  int status = -1;
  json body;
  std::string text;
};
Reply reply_of(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.text = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}
Reply post(httplib::Client& c, const std::string& path, const std::string& body) {
  return reply_of(c.Post(path.c_str(), body, "application/json"));
}
Reply get(httplib::Client& c, const std::string& path) { return reply_of(c.Get(path.c_str())); }

/// A batch of anonymous users described by text and recent items (the model's slowest path),
/// grown until scoring it in-process takes at least `at_least_ms`: a request that reliably
/// outlasts a deadline, on a fast machine as on a slow one.
std::string slow_batch(const Recommender& rec, double at_least_ms, double* took_ms) {
  std::vector<RecommendRequest> qs;
  for (size_t n = 64;; n *= 2) {
    qs.clear();
    for (size_t k = 0; k < n; ++k) {
      RecommendRequest q;
      q.profile = "loves topic " + std::to_string(k % 7) + " and long evenings with stories of every kind";
      q.recent_items = {"i" + std::to_string(k % 40), "i" + std::to_string((k * 7 + 3) % 40)};
      q.k = 10;
      qs.push_back(q);
    }
    const auto t0 = Clock::now();
    rec.recommend_batch(qs);
    *took_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (*took_ms >= at_least_ms || n >= (1u << 16)) break;
  }
  json list = json::array();
  for (const auto& q : qs) list.push_back(json::parse(to_json(q)));
  return json{{"requests", list}}.dump();
}

TEST(HttpServe, AnswersAsTheRecommenderDoes) {
  test::OneThread one;
  TestServer s(HttpOptions().deadline_ms(10000));  // a deadline no normal request comes near
  auto c = s.client();
  RecommendRequest q;
  q.user = "u3";
  q.k = 5;
  q.scenario = "search";
  const RecommendResponse want = s.rec.recommend(q);
  Reply r = post(*c, "/recommend", R"({"user": "u3", "k": 5, "scenario": "search"})");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(indices(r.body), indices(want));
  EXPECT_EQ(r.body["items"][0]["title"], want.items[0].title);
  EXPECT_EQ(r.body["model_version"], s.rec.info().version);
  EXPECT_EQ(r.body["scenario"], "search");
  // An exploring request: the list the in-process recommender draws for that seed, with propensities.
  q.explore = "softmax:temperature=0.2,epsilon=0.1";
  q.seed = 12;
  const RecommendResponse drawn = s.rec.recommend(q);
  Reply e = post(*c, "/recommend",
                 R"({"user": "u3", "k": 5, "scenario": "search", "explore": "softmax:temperature=0.2,epsilon=0.1",
                     "seed": 12})");
  ASSERT_EQ(e.status, 200) << e.text;
  EXPECT_EQ(indices(e.body), indices(drawn));
  EXPECT_DOUBLE_EQ(e.body["items"][1]["propensity"].get<double>(), drawn.items[1].propensity);
  EXPECT_EQ(e.body["seed"], 12);

  Reply b = post(*c, "/recommend/batch",
                 R"({"requests": [{"user": "u3", "k": 5, "scenario": "search"}, {"user": "u10", "k": 3}]})");
  ASSERT_EQ(b.status, 200) << b.text;
  ASSERT_EQ(b.body["responses"].size(), 2u);
  EXPECT_EQ(indices(b.body["responses"][0]), indices(want));
  RecommendRequest q2;
  q2.user = "u10";
  q2.k = 3;
  EXPECT_EQ(indices(b.body["responses"][1]), indices(s.rec.recommend(q2)));

  SimilarRequest sq;
  sq.item = "i5";
  sq.k = 4;
  Reply sim = get(*c, "/similar?item=i5&k=4");
  ASSERT_EQ(sim.status, 200) << sim.text;
  EXPECT_EQ(indices(sim.body), indices(s.rec.similar(sq)));
  EXPECT_EQ(sim.body["user_kind"], "item");

  Reply health = get(*c, "/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.body["status"], "ok");
  EXPECT_EQ(health.body["model_version"], s.rec.info().version);

  Reply info = get(*c, "/info");
  ASSERT_EQ(info.status, 200) << info.text;
  EXPECT_EQ(info.body["users"], 60);
  EXPECT_EQ(info.body["items"], 40);
  EXPECT_EQ(info.body["sample_users"][0], "u0");
  EXPECT_EQ(info.body["scenarios"].size(), 3u) << info.text;
  EXPECT_EQ(info.body["token_required"], false);

  // The page: HTML, self-contained (no resource from elsewhere), calling the service's routes.
  auto page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  for (const char* needle : {"<!DOCTYPE html>", "fetch(", "/recommend", "/info"})
    EXPECT_NE(page->body.find(needle), std::string::npos) << needle;
  for (const char* external : {"src=", "href=", "http://", "https://", "@import"})
    EXPECT_EQ(page->body.find(external), std::string::npos) << external;
}

TEST(HttpServe, BadRequestsAnswerTheirStatusAndField) {
  test::OneThread one;
  TestServer s(HttpOptions().max_body_bytes(4096));
  auto c = s.client();
  struct Case {
    std::string path, body;
    int status;
    std::string field, says;
  };
  const std::vector<Case> cases = {
      {"/recommend", R"({"user": "u1", "k": )", 400, "body", "malformed JSON"},
      {"/recommend", R"({"user": "u1", "k": "ten"})", 400, "k", "expected an integer"},
      {"/recommend", R"({"user": "u1", "k": 2.5})", 400, "k", "expected an integer"},
      {"/recommend", R"({"user": "nobody", "k": 3})", 400, "user", "'nobody' is not in the model"},
      {"/recommend", R"({"user": "u1", "recent_items": ["i1", "zz"]})", 400, "recent_items[1]", "zz"},
      {"/recommend", R"({"user": "u1", "scenario": "moon"})", 400, "scenario", "moon"},
      {"/recommend", R"({"user": "u1", "k": 0})", 400, "k", "k must be in"},
      {"/recommend", R"({"user": "u1", "colour": "red"})", 400, "colour", "unknown field"},
      {"/recommend", R"({"user": "u1", "where": [{"field": "title", "value": "x"}, {"field": 1, "value": "x"}]})", 400,
       "where[1].field", "expected a string"},
      {"/recommend", R"({"user": "u1", "where": [{"field": "colour", "value": "red"}]})", 400, "where[0].field",
       "no field 'colour'"},
      {"/recommend", R"({})", 400, "user", "give a user id"},
      {"/recommend", R"({"user": "u1", "explore": "boltzmann"})", 400, "explore", "unknown policy"},
      {"/recommend", R"({"user": "u1", "explore": "uniform", "seed": -2})", 400, "seed", "seed >= 0"},
      {"/recommend/batch", R"({"requests": [{"user": "u1"}, {"user": "ghost"}]})", 400, "requests[1].user", "ghost"},
      {"/recommend/batch", R"({"requests": [{"user": "u1"}, {"k": []}]})", 400, "requests[1].k", "expected an integer"},
      {"/admin/reload", R"({"checkpoint": 3})", 400, "checkpoint", "expected a path"},
  };
  for (const auto& t : cases) {
    Reply r = post(*c, t.path, t.body);
    EXPECT_EQ(r.status, t.status) << t.path << " " << t.body << " -> " << r.text;
    EXPECT_EQ(r.body.value("field", ""), t.field) << t.body << " -> " << r.text;
    EXPECT_NE(r.body.value("error", "").find(t.says), std::string::npos) << t.body << " -> " << r.text;
  }
  struct GetCase {
    std::string path;
    int status;
    std::string field;
  };
  for (const GetCase& t : std::vector<GetCase>{{"/similar?item=nothing", 400, "item"},
                                               {"/similar?k=3", 400, "item"},
                                               {"/similar?item=i1&k=many", 400, "k"},
                                               {"/similar?item=i1&colour=red", 400, "colour"},
                                               {"/no/such/route", 404, ""},
                                               {"/recommend", 404, ""}}) {  // GET of a POST route
    Reply r = get(*c, t.path);
    EXPECT_EQ(r.status, t.status) << t.path << " -> " << r.text;
    EXPECT_EQ(r.body.value("field", ""), t.field) << t.path << " -> " << r.text;
    EXPECT_FALSE(r.body.value("error", "").empty()) << t.path << " -> " << r.text;
  }
  // A body over the limit: 413, before it is parsed.
  const std::string big = R"({"user": "u1", "profile": ")" + std::string(5000, 'x') + R"("})";
  Reply r = post(*c, "/recommend", big);
  EXPECT_EQ(r.status, 413) << r.text;
  EXPECT_NE(r.body.value("error", "").find("4096 bytes"), std::string::npos) << r.text;
  // The same client keeps working afterwards.
  EXPECT_EQ(post(*c, "/recommend", R"({"user": "u1"})").status, 200);
  // A failed reload: 500 with the error; the model being served stays.
  const std::string before = s.rec.info().version;
  Reply rl = post(*c, "/admin/reload", R"({"checkpoint": "/no/such/file.ckpt"})");
  EXPECT_EQ(rl.status, 500) << rl.text;
  EXPECT_NE(rl.body.value("error", "").find("/no/such/file.ckpt"), std::string::npos) << rl.text;
  EXPECT_EQ(rl.body.value("version", ""), before);
  EXPECT_EQ(s.rec.info().version, before);
  EXPECT_EQ(post(*c, "/recommend", R"({"user": "u1"})").status, 200);
}

TEST(HttpServe, TokenGuardsEveryRouteButHealthAndThePage) {
  test::OneThread one;
  TestServer s(HttpOptions().token("s3cret-token"));
  auto none = s.client(), wrong = s.client("s3cret-tokeN"), right = s.client("s3cret-token");
  const std::string q = R"({"user": "u1", "k": 2})";
  Reply r = post(*none, "/recommend", q);
  EXPECT_EQ(r.status, 401) << r.text;
  EXPECT_EQ(r.body.value("field", ""), "Authorization");
  EXPECT_EQ(post(*wrong, "/recommend", q).status, 401);
  EXPECT_EQ(post(*right, "/recommend", q).status, 200);
  for (const char* path : {"/similar?item=i1", "/info", "/metrics"}) {
    EXPECT_EQ(get(*none, path).status, 401) << path;
    EXPECT_EQ(get(*wrong, path).status, 401) << path;
    EXPECT_EQ(get(*right, path).status, 200) << path;
  }
  EXPECT_EQ(post(*none, "/recommend/batch", R"({"requests": [{"user": "u1"}]})").status, 401);
  // Reload always needs the token when one is set: nothing is reloaded without it.
  EXPECT_EQ(post(*none, "/admin/reload", "").status, 401);
  EXPECT_EQ(post(*wrong, "/admin/reload", json{{"checkpoint", v2()}}.dump()).status, 401);
  EXPECT_EQ(s.rec.info().reloads, 0);
  EXPECT_EQ(get(*none, "/health").status, 200);
  auto page = none->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  Reply info = get(*right, "/info");
  EXPECT_EQ(info.body["token_required"], true);
  Reply rl = post(*right, "/admin/reload", "");
  EXPECT_EQ(rl.status, 200) << rl.text;
  EXPECT_EQ(s.rec.info().reloads, 1);
}

TEST(HttpServe, DeadlineAnswers503WhenQueuedAnd504WhenScoringRanPastIt) {
  test::OneThread one;
  // One worker: a second request waits behind the first.
  // The deadline leaves the slow request's own wait for the worker (tens of ms on a loaded
  // 2-core machine under ctest -j2: 42 ms failed a 25 ms deadline once) far inside it, and the
  // batch runs several times past it, so the queued request waits past it too.
  TestServer s(HttpOptions().threads(1).deadline_ms(250).max_body_bytes(64 << 20));
  double took_ms = 0;
  const std::string batch = slow_batch(s.rec, 1500, &took_ms);
  ASSERT_GE(took_ms, 1000) << "no batch slow enough to outlast the deadline";
  Reply slow;
  std::thread t([&] {
    auto c = s.client();
    slow = post(*c, "/recommend/batch", batch);
  });
  s.wait_in_flight(1);
  auto c = s.client();
  Reply queued = post(*c, "/recommend", R"({"user": "u1", "k": 3})");
  t.join();
  EXPECT_EQ(slow.status, 504) << slow.text.substr(0, 300);
  EXPECT_NE(slow.body.value("error", "").find("past the deadline of 250 ms"), std::string::npos)
      << slow.text.substr(0, 300);
  EXPECT_EQ(queued.status, 503) << queued.text;
  EXPECT_NE(queued.body.value("error", "").find("waited"), std::string::npos) << queued.text;
  // Health and metrics have no deadline.
  EXPECT_EQ(get(*c, "/health").status, 200);
  const std::string m = s.server.metrics();
  EXPECT_NE(m.find("mtrec_http_requests_total{route=\"/recommend\",code=\"503\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("mtrec_http_requests_total{route=\"/recommend/batch\",code=\"504\"} 1\n"), std::string::npos) << m;
}

/// The value of one sample line of a Prometheus text ("-1" when absent).
double sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t pos = text.find(key);
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + key.size()));
}

TEST(HttpServe, MetricsCountRequestsByRouteAndCode) {
  test::OneThread one;
  TestServer s;
  auto c = s.client();
  for (int k = 0; k < 3; ++k) ASSERT_EQ(post(*c, "/recommend", R"({"user": "u2", "k": 4})").status, 200);
  ASSERT_EQ(post(*c, "/recommend", R"({"user": "ghost"})").status, 400);
  ASSERT_EQ(get(*c, "/nowhere").status, 404);
  auto res = c->Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  const std::string m = "\n" + res->body;
  EXPECT_EQ(sample(m, R"(mtrec_http_requests_total{route="/recommend",code="200"})"), 3);
  EXPECT_EQ(sample(m, R"(mtrec_http_requests_total{route="/recommend",code="400"})"), 1);
  EXPECT_EQ(sample(m, R"(mtrec_http_requests_total{route="other",code="404"})"), 1);
  for (const char* type :
       {"# TYPE mtrec_http_requests_total counter", "# TYPE mtrec_http_request_duration_seconds histogram",
        "# TYPE mtrec_model_info gauge", "# TYPE mtrec_model_load_seconds gauge",
        "# TYPE mtrec_model_loaded_at_seconds gauge", "# TYPE mtrec_model_reloads_total counter"})
    EXPECT_NE(m.find(std::string("\n") + type + "\n"), std::string::npos) << type;
  // The histogram: cumulative buckets ending in +Inf = count = the route's requests.
  double last = 0;
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                         "2.5", "5", "10", "+Inf"}) {
    const double v =
        sample(m, std::string(R"(mtrec_http_request_duration_seconds_bucket{route="/recommend",le=")") + le + "\"}");
    ASSERT_GE(v, last) << le;
    last = v;
  }
  EXPECT_EQ(last, 4);
  EXPECT_EQ(sample(m, R"(mtrec_http_request_duration_seconds_count{route="/recommend"})"), 4);
  EXPECT_GT(sample(m, R"(mtrec_http_request_duration_seconds_sum{route="/recommend"})"), 0);
  const RecommenderInfo info = s.rec.info();
  EXPECT_NE(m.find("\nmtrec_model_info{version=\"" + info.version + "\",path=\"" + v1() + "\",task=\"joint\""),
            std::string::npos)
      << m;
  EXPECT_GT(sample(m, "mtrec_model_load_seconds"), 0);
  EXPECT_EQ(sample(m, "mtrec_model_loaded_at_seconds"), double(info.loaded_at_unix));
  EXPECT_EQ(sample(m, "mtrec_model_reloads_total"), 0);
  // Counts move with requests; a reload shows in the model series.
  ASSERT_EQ(post(*c, "/recommend", R"({"user": "u2"})").status, 200);
  ASSERT_EQ(post(*c, "/admin/reload", json{{"checkpoint", v2()}}.dump()).status, 200);
  const std::string m2 = "\n" + c->Get("/metrics")->body;
  EXPECT_EQ(sample(m2, R"(mtrec_http_requests_total{route="/recommend",code="200"})"), 4);
  EXPECT_EQ(sample(m2, R"(mtrec_http_requests_total{route="/metrics",code="200"})"), 1);
  EXPECT_EQ(sample(m2, R"(mtrec_http_requests_total{route="/admin/reload",code="200"})"), 1);
  EXPECT_EQ(sample(m2, "mtrec_model_reloads_total"), 1);
  EXPECT_NE(m2.find("\nmtrec_model_info{version=\"" + s.rec.info().version + "\",path=\"" + v2() + "\""),
            std::string::npos)
      << m2;
  EXPECT_NE(s.rec.info().version, info.version);
}

TEST(HttpServe, HotSwapUnderConcurrentLoadFailsNoRequest) {
  test::OneThread one;
  // The answers of each version, in-process.
  std::map<std::string, std::vector<std::vector<int32_t>>> want;
  for (const auto& p : {v1(), v2()}) {
    Recommender r(p);
    for (int32_t u = 0; u < 60; ++u) {
      RecommendRequest q;
      q.user = "u" + std::to_string(u);
      q.k = 5;
      want[r.info().version].push_back(indices(r.recommend(q)));
    }
  }
  ASSERT_EQ(want.size(), 2u);
  TestServer s;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0}, failed{0}, wrong{0};
  std::map<std::string, std::atomic<int64_t>> by_version;
  for (const auto& [v, _] : want) by_version[v] = 0;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      auto c = s.client();
      c->set_keep_alive(true);
      for (int i = 0; !stop; ++i) {
        const int u = (i * 7 + t) % 60;
        Reply r = post(*c, "/recommend", json{{"user", "u" + std::to_string(u)}, {"k", 5}}.dump());
        if (r.status != 200) {
          ++failed;
          continue;
        }
        const std::string v = r.body.value("model_version", "");
        if (!want.count(v) || indices(r.body) != want.at(v)[size_t(u)])
          ++wrong;
        else
          ++by_version.at(v);
        ++ok;
      }
    });
  auto admin = s.client();
  for (int k = 0; k < 6; ++k) {
    const int64_t before = ok;
    while (ok < before + 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // load between swaps
    Reply r = post(*admin, "/admin/reload", json{{"checkpoint", k % 2 ? v1() : v2()}}.dump());
    EXPECT_EQ(r.status, 200) << r.text;
  }
  const int64_t before = ok;
  while (ok < before + 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  for (auto& th : clients) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), 60);
  for (auto& [v, n] : by_version) EXPECT_GT(n.load(), 0) << "no answer from version " << v;
  EXPECT_EQ(s.rec.info().reloads, 6);
  EXPECT_EQ(s.rec.info().path, v1());  // the last reload was v1
}

TEST(HttpServe, StopFinishesTheRequestInFlight) {
  test::OneThread one;
  for (const bool by_signal : {false, true}) {
    SCOPED_TRACE(by_signal ? "SIGTERM" : "stop()");
    Recommender rec(v1());
    HttpServer server(rec, HttpOptions().port(0).max_body_bytes(64 << 20));
    std::unique_ptr<StopOnSignals> signals;
    if (by_signal) signals = std::make_unique<StopOnSignals>(server);
    std::atomic<bool> returned{false};
    std::thread run([&] {
      server.run();
      returned = true;
    });
    double took_ms = 0;
    const std::string batch = slow_batch(rec, 300, &took_ms);
    Reply slow;
    std::thread t([&] {
      httplib::Client c("127.0.0.1", server.port());
      c.set_read_timeout(60, 0);
      slow = post(c, "/recommend/batch", batch);
    });
    // Wait until the batch is being scored, then stop.
    const auto until = Clock::now() + std::chrono::seconds(30);
    while (server.metrics().find("\nmtrec_http_requests_in_flight 1\n") == std::string::npos && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (by_signal)
      ::kill(::getpid(), SIGTERM);
    else
      server.stop();
    t.join();
    run.join();
    EXPECT_TRUE(returned);
    ASSERT_EQ(slow.status, 200) << slow.text.substr(0, 300);
    EXPECT_EQ(slow.body["responses"].size(), json::parse(batch)["requests"].size());
    if (by_signal) {
      EXPECT_EQ(signals->received(), SIGTERM);
    }
    // Nothing listens any more.
    httplib::Client after("127.0.0.1", server.port());
    after.set_connection_timeout(1, 0);
    EXPECT_FALSE(after.Get("/health"));
  }
}

}  // namespace
}  // namespace mtrec

#else
TEST(HttpServe, NotBuilt) { GTEST_SKIP() << "libmtrec was built without cpp-httplib (MTREC_HAVE_HTTPLIB=0)"; }
#endif
