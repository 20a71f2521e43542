#pragma once
// The serving types (serve/recommender.h) as JSON: what the HTTP service (serve/http.h) reads
// and answers, and what `mtrec recommend --json` writes. Text in, text out, so that no JSON
// library reaches a user's include path.
//
//   mtrec::RecommendRequest q = mtrec::parse_recommend_request(R"({"user": "42", "k": 5, "scenario": "search"})");
//   std::string body = mtrec::to_json(recommender.recommend(q));
//
// Parsing is strict: malformed JSON, a field of the wrong type, an unknown field or a k that
// is not an integer throws mtrec::RequestError naming the field's path ("k",
// "where[1].field", "requests[3].user"; "body" for the document itself). Ranges that depend on
// the model (k <= max_k, known users, items and scenarios) are checked by the Recommender.
//
// A request (every field optional; null is the same as absent):
//   {"user": "42",                         user id (string; an integer is read as its digits)
//    "profile": "likes noir films",        anonymous user: profile text
//    "recent_items": ["50", "172"],        item ids, oldest first
//    "k": 10,                              integer
//    "scenario": "search",                 or "context": "cheap flights" (picks the scenario)
//    "exclude_seen": true,
//    "allow": ["1", "2"], "deny": ["3"],   item ids
//    "where": [{"field": "genres", "value": "Comedy", "contains": true}],
//    "explain": 3,                         history items named per recommendation (>= 0)
//    "explore": "softmax:temperature=0.5,epsilon=0.1",   draw the list (policy/explore.h)
//    "seed": 7}                            the draw (>= 0; absent: the server's next)
// A batch: {"requests": [request, ...]} (at least one).
// A response: {"items": [{"item", "title", "index", "score", "because": [{"item", "title",
//   "similarity"}]}], "scenario", "scenario_source", "scenario_confidence", "user_kind",
//   "retrieval", "model_version"}; a batch answers {"responses": [response, ...]}. An exploring
//   response adds "propensity" and "prefix_propensity" to each item, and "exploration" and "seed".
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mtrec/serve/recommender.h"

namespace mtrec {

RecommendRequest parse_recommend_request(std::string_view body);
std::vector<RecommendRequest> parse_batch_request(std::string_view body);

/// A similar-items query from URL parameters (GET /similar?item=50&k=10&where=genres~Comedy):
/// item (required), k, allow and deny (comma-separated ids), where (repeatable, see
/// parse_item_predicate). An unknown or repeated parameter is a RequestError naming it.
SimilarRequest parse_similar_request(const std::multimap<std::string, std::string>& params);

/// "field=value" (equal) or "field~value" (contains as a word of a list, e.g. genres~Comedy),
/// as `mtrec recommend --where` and /similar's where= take it. `field_path` names the source
/// in the error ("where", "--where").
ItemPredicate parse_item_predicate(std::string_view text, const std::string& field_path);

std::string to_json(const RecommendRequest& request);
std::string to_json(const RecommendResponse& response);
/// {"responses": [...]}.
std::string to_json(const std::vector<RecommendResponse>& responses);
/// The model's description; with `sample_users` (the web page's picker) under that key.
std::string to_json(const RecommenderInfo& info, const std::vector<std::string>& sample_users = {});

/// {"error": message, "field": field} ("field" left out when empty): every HTTP error body.
std::string error_json(const std::string& message, const std::string& field = "");

}  // namespace mtrec
