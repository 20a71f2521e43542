// The JSON of the serving types (serve/json.h): every field read, strictness (types, unknown
// fields, integers), errors naming the field path, and the answers' shape.
#include "mtrec/serve/json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mtrec {
namespace {

/// The field a RequestError names ("" when parsing succeeded).
template <class Fn>
std::string error_field(Fn&& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const RequestError& e) {
    if (message) *message = e.what();
    return e.field();
  }
  return "";
}

TEST(ServeJson, ReadsEveryRequestField) {
  const RecommendRequest r = parse_recommend_request(R"({
    "user": "u7", "profile": "likes noir", "recent_items": ["i1", 42], "k": 5, "scenario": "search",
    "context": "cheap flights", "exclude_seen": false, "allow": ["i1", "i2"], "deny": ["i3"],
    "where": [{"field": "genres", "value": "Comedy", "contains": true}, {"field": "year", "value": 1995}],
    "explain": 0})");
  EXPECT_EQ(r.user, "u7");
  EXPECT_EQ(r.profile, "likes noir");
  EXPECT_EQ(r.recent_items, (std::vector<std::string>{"i1", "42"}));  // integer ids read as their digits
  EXPECT_EQ(r.k, 5);
  EXPECT_EQ(r.scenario, "search");
  EXPECT_EQ(r.context, "cheap flights");
  EXPECT_FALSE(r.exclude_seen);
  EXPECT_EQ(r.allow, (std::vector<std::string>{"i1", "i2"}));
  EXPECT_EQ(r.deny, (std::vector<std::string>{"i3"}));
  ASSERT_EQ(r.where.size(), 2u);
  EXPECT_EQ(r.where[0].field, "genres");
  EXPECT_EQ(r.where[0].value, "Comedy");
  EXPECT_TRUE(r.where[0].contains);
  EXPECT_EQ(r.where[1].value, "1995");
  EXPECT_FALSE(r.where[1].contains);
  EXPECT_EQ(r.explain, 0);
}

TEST(ServeJson, DefaultsAndNullsAreTheStructsDefaults) {
  const RecommendRequest d;
  for (const char* body : {"{}", R"({"user": null, "k": null, "where": null})"}) {
    const RecommendRequest r = parse_recommend_request(body);
    EXPECT_EQ(r.user, d.user) << body;
    EXPECT_EQ(r.k, d.k) << body;
    EXPECT_EQ(r.exclude_seen, d.exclude_seen) << body;
    EXPECT_EQ(r.explain, d.explain) << body;
    EXPECT_TRUE(r.where.empty()) << body;
  }
  EXPECT_EQ(parse_recommend_request(R"({"user": 42})").user, "42");
}

TEST(ServeJson, RequestRoundTripsThroughToJson) {
  RecommendRequest q;
  q.user = "u3";
  q.recent_items = {"i9", "i2"};
  q.k = 7;
  q.context = "a \"quoted\" query";
  q.deny = {"i1"};
  q.where = {{"genres", "Drama", true}};
  q.exclude_seen = false;
  q.explore = "softmax:temperature=0.5";
  q.seed = 11;
  const RecommendRequest back = parse_recommend_request(to_json(q));
  EXPECT_EQ(to_json(back), to_json(q));
  EXPECT_EQ(back.explore, "softmax:temperature=0.5");
  EXPECT_EQ(back.seed, 11);
  EXPECT_EQ(back.context, q.context);
  EXPECT_EQ(back.where[0].contains, true);
}

TEST(ServeJson, ErrorsNameTheFieldPath) {
  struct Case {
    const char* body;
    const char* field;
    const char* says;
  };
  const std::vector<Case> cases = {
      {R"({"user": "u1", "k": )", "body", "malformed JSON"},
      {R"(not json)", "body", "malformed JSON"},
      {R"([1, 2])", "body", "expected a JSON object, got an array"},
      {R"({"k": "10"})", "k", "expected an integer, got a string"},
      {R"({"k": 2.5})", "k", "expected an integer, got 2.5"},
      {R"({"k": 1e3})", "k", "expected an integer"},
      {R"({"k": 18446744073709551615})", "k", "out of range"},
      {R"({"user": true})", "user", "expected a string or an integer id, got a boolean"},
      {R"({"user": 1.5})", "user", "got a number"},
      {R"({"profile": 3})", "profile", "expected a string, got an integer"},
      {R"({"exclude_seen": "yes"})", "exclude_seen", "expected true or false"},
      {R"({"recent_items": "i1"})", "recent_items", "expected an array of ids, got a string"},
      {R"({"recent_items": ["i1", {}]})", "recent_items[1]", "got an object"},
      {R"({"allow": [null]})", "allow[0]", "got null"},
      {R"({"usr": "u1"})", "usr", "unknown field 'usr' (expected one of: user, profile"},
      {R"({"where": {"field": "genres"}})", "where", "expected an array of predicates"},
      {R"({"where": [{"field": "genres", "value": "A"}, {"fild": "x"}]})", "where[1].fild", "unknown field 'fild'"},
      {R"({"where": [{"field": "genres", "value": "A"}, {"field": 3, "value": "x"}]})", "where[1].field",
       "expected a string"},
      {R"({"where": [{"value": "x"}]})", "where[0].field", "required"},
      {R"({"where": [{"field": "genres"}]})", "where[0].value", "required"},
      {R"({"where": [{"field": "genres", "value": "A", "contains": 1}]})", "where[0].contains", "true or false"},
      {R"({"explain": -1})", "explain", ">= 0"},
  };
  for (const auto& c : cases) {
    std::string message;
    EXPECT_EQ(error_field([&] { parse_recommend_request(c.body); }, &message), c.field) << c.body;
    EXPECT_NE(message.find(c.says), std::string::npos) << c.body << " -> " << message;
  }
}

TEST(ServeJson, BatchRequestsAndTheirErrors) {
  const auto b = parse_batch_request(R"({"requests": [{"user": "u1", "k": 3}, {"profile": "space", "k": 4}]})");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].user, "u1");
  EXPECT_EQ(b[1].profile, "space");
  EXPECT_EQ(b[1].k, 4);
  EXPECT_EQ(error_field([] { parse_batch_request(R"({"requests": [{}, {}, {}, {"user": false}]})"); }),
            "requests[3].user");
  EXPECT_EQ(error_field([] { parse_batch_request(R"({"requests": [{}, 7]})"); }), "requests[1]");
  EXPECT_EQ(
      error_field([] { parse_batch_request(R"({"requests": [{"where": [{"field": "a", "value": "b", "x": 1}]}]})"); }),
      "requests[0].where[0].x");
  EXPECT_EQ(error_field([] { parse_batch_request(R"({"requests": []})"); }), "requests");
  EXPECT_EQ(error_field([] { parse_batch_request(R"({"requests": {}})"); }), "requests");
  EXPECT_EQ(error_field([] { parse_batch_request(R"({})"); }), "requests");
  EXPECT_EQ(error_field([] { parse_batch_request(R"({"requests": [{}], "extra": 1})"); }), "extra");
  EXPECT_EQ(error_field([] { parse_batch_request(R"([{}])"); }), "body");
}

TEST(ServeJson, SimilarFromQueryParameters) {
  const SimilarRequest s = parse_similar_request(
      {{"item", "i5"}, {"k", "3"}, {"deny", "i1,i2"}, {"where", "genres~Comedy"}, {"where", "year=1995"}});
  EXPECT_EQ(s.item, "i5");
  EXPECT_EQ(s.k, 3);
  EXPECT_EQ(s.deny, (std::vector<std::string>{"i1", "i2"}));
  ASSERT_EQ(s.where.size(), 2u);
  EXPECT_TRUE(s.where[0].contains);
  EXPECT_EQ(s.where[0].field, "genres");
  EXPECT_EQ(s.where[1].value, "1995");
  EXPECT_FALSE(s.where[1].contains);
  EXPECT_EQ(error_field([] { parse_similar_request({{"k", "3"}}); }), "item");
  EXPECT_EQ(error_field([] { parse_similar_request({{"item", "i1"}, {"k", "10x"}}); }), "k");
  EXPECT_EQ(error_field([] { parse_similar_request({{"item", "i1"}, {"k", ""}}); }), "k");
  EXPECT_EQ(error_field([] { parse_similar_request({{"item", "i1"}, {"k", "3"}, {"k", "4"}}); }), "k");
  EXPECT_EQ(error_field([] { parse_similar_request({{"item", "i1"}, {"kk", "3"}}); }), "kk");
  EXPECT_EQ(error_field([] { parse_similar_request({{"item", "i1"}, {"where", "genres"}}); }), "where");
  EXPECT_EQ(error_field([] { parse_item_predicate("=x", "--where"); }), "--where");
}

TEST(ServeJson, ResponseAndInfoShape) {
  RecommendResponse r;
  r.scenario = "search";
  r.scenario_source = "context";
  r.scenario_confidence = 0.75f;
  r.user_kind = "known";
  r.retrieval = "exact";
  r.model_version = "abc123";
  Recommendation x;
  x.item = "i4";
  x.title = "Caf\xc3\xa9 \"Noir\"";
  x.index = 4;
  x.score = 1.5f;
  x.because = {{"i2", "Earlier film", 0.5f}};
  r.items = {x};
  const auto j = nlohmann::json::parse(to_json(r));
  EXPECT_EQ(j["items"][0]["item"], "i4");
  EXPECT_EQ(j["items"][0]["title"], "Caf\xc3\xa9 \"Noir\"");
  EXPECT_EQ(j["items"][0]["index"], 4);
  EXPECT_DOUBLE_EQ(j["items"][0]["score"].get<double>(), 1.5);
  EXPECT_EQ(j["items"][0]["because"][0]["title"], "Earlier film");
  EXPECT_DOUBLE_EQ(j["items"][0]["because"][0]["similarity"].get<double>(), 0.5);
  EXPECT_EQ(j["scenario_source"], "context");
  EXPECT_DOUBLE_EQ(j["scenario_confidence"].get<double>(), 0.75);
  EXPECT_EQ(j["model_version"], "abc123");
  EXPECT_FALSE(j["items"][0].contains("propensity"));  // only an exploring answer has them
  EXPECT_FALSE(j.contains("exploration"));
  const auto batch = nlohmann::json::parse(to_json(std::vector<RecommendResponse>{r, r}));
  EXPECT_EQ(batch["responses"].size(), 2u);
  RecommendResponse explored = r;
  explored.exploration = "uniform";
  explored.seed = 9;
  explored.items[0].propensity = 0.25;
  explored.items[0].prefix_propensity = 0.125;
  const auto e = nlohmann::json::parse(to_json(explored));
  EXPECT_DOUBLE_EQ(e["items"][0]["propensity"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(e["items"][0]["prefix_propensity"].get<double>(), 0.125);
  EXPECT_EQ(e["exploration"], "uniform");
  EXPECT_EQ(e["seed"], 9);
  // A title that is not UTF-8 (a latin-1 catalogue) is replaced, not a failed answer.
  r.items[0].title = "Caf\xe9";
  EXPECT_EQ(nlohmann::json::parse(to_json(r))["items"][0]["title"], "Caf\xef\xbf\xbd");

  RecommenderInfo info;
  info.version = "v";
  info.scenarios = {"home_feed", "search"};
  info.users = 60;
  const auto ij = nlohmann::json::parse(to_json(info, {"u0", "u1"}));
  EXPECT_EQ(ij["scenarios"].size(), 2u);
  EXPECT_EQ(ij["users"], 60);
  EXPECT_EQ(ij["sample_users"], (nlohmann::json{"u0", "u1"}));
  EXPECT_FALSE(nlohmann::json::parse(to_json(info)).contains("sample_users"));
  EXPECT_EQ(nlohmann::json::parse(error_json("bad", "k")), (nlohmann::json{{"error", "bad"}, {"field", "k"}}));
  EXPECT_FALSE(nlohmann::json::parse(error_json("bad")).contains("field"));
}

}  // namespace
}  // namespace mtrec
