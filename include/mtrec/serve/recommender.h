#pragma once
// The library's scorer: one trained checkpoint of any kind `mtrec train` writes (--out,
// best.ckpt, last.ckpt) answering top-K requests, in-process, from the CLI (`mtrec recommend`,
// `mtrec similar`) and over HTTP (serve/http.h). The unified model (task "joint") is served by
// its task map as described below; every other kind (rating, ctr, dmf, next-item, knn: a
// model/io.h ScoringModel) by its one head over the whole catalogue, similar items and
// explanations by its item space (KNN has none), anonymous users where the kind scores a
// history alone (next-item).
//
//   mtrec::Recommender rec("joint.ckpt", mtrec::RecommenderOptions().task_map("*=ctr:1,next_item:0.5"));
//   mtrec::RecommendRequest q;
//   q.user = "42"; q.k = 10; q.scenario = "home_feed";            // or q.context = "cheap flights"
//   for (const auto& r : rec.recommend(q).items) std::cout << r.item << ' ' << r.title << ' ' << r.score << '\n';
//   rec.reload("joint-v2.ckpt");   // hot swap: requests in flight finish on the old model
//
// A request names a user of the checkpoint, or describes an anonymous one by a text profile
// and/or recent items (cold start). The scenario comes from the request, or from its context
// text through the model's scenario classifier, or is the checkpoint's first scenario.
// Scoring follows the task map (model/task_map.h): the heads of the scenario, z-scored over
// the candidates and summed with their weights. Candidates are the whole catalogue when it is
// small (<= options.candidates items) or the task map uses only the retrieval heads
// (next_item, match: inner products, served by the item index, exact or approximate);
// otherwise the top `candidates` items by the retrieval head, re-ranked by the towers.
// Explanations: the user's history items closest to the recommended item in the model's item
// space (cosine), by name.
//
// Thread-safe: every method may be called from many threads at once; reload() builds the new
// model beside the old one and swaps it in atomically (a failed reload throws and keeps the
// old one).
#include <torch/arg.h>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/core/check.h"

namespace mtrec {

struct Dataset;
struct Interactions;
struct JointBundle;

/// A request field that is malformed or names something the model does not know. HTTP answers
/// it with 400 and the field.
class RequestError : public Error {
 public:
  RequestError(std::string field, const std::string& message);
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

/// Keeps items whose catalogue field `field` equals `value` (or contains it as a word of a
/// '|'-, ','- or space-separated list with contains = true, e.g. genres "Comedy|Drama").
struct ItemPredicate {
  std::string field, value;
  bool contains = false;
};

struct RecommendRequest {
  std::string user;                       // a user id of the checkpoint ("" : anonymous)
  std::string profile;                    // anonymous user: profile text
  std::vector<std::string> recent_items;  // item ids, oldest first: appended to the user's history
  int64_t k = 10;
  std::string scenario;                  // scenario name ("" : from context, else the default)
  std::string context;                   // request context text (query, page): picks the scenario
  bool exclude_seen = true;              // leave out the user's history items (and recent_items)
  std::vector<std::string> allow, deny;  // item ids: only these / never these
  std::vector<ItemPredicate> where;      // every predicate must hold
  int64_t explain = 3;                   // history items named per recommendation (0: none)
  /// Exploration (policy/explore.h spec, e.g. "softmax:temperature=0.5,epsilon=0.1"): the k
  /// items (k <= 100) are drawn over the best `candidates` (RecommenderOptions) allowed items'
  /// scores instead of taken as the top k, and each carries its propensity, exact given that
  /// candidate set. "": the top k.
  std::string explore;
  int64_t seed = -1;  // the exploration's draw; -1: the next of the recommender's seeded stream
};

struct SimilarRequest {
  std::string item;  // an item id of the checkpoint
  int64_t k = 10;
  std::vector<std::string> allow, deny;
  std::vector<ItemPredicate> where;
};

struct Explanation {
  std::string item, title;
  float similarity = 0;  // cosine in the model's item space
};

struct Recommendation {
  std::string item, title;
  int32_t index = 0;  // dense item id of the checkpoint
  float score = 0;
  std::vector<Explanation> because;
  double propensity = 1;         // exploring: P(this item at this position), exact (else 1)
  double prefix_propensity = 1;  // exploring: P(the list up to here, in this order)
};

struct RecommendResponse {
  std::vector<Recommendation> items;  // best first, no duplicates
  std::string scenario;               // the scenario scored
  std::string scenario_source;        // "request" | "context" | "default"
  float scenario_confidence = 1;      // the classifier's probability (context), else 1
  std::string user_kind;              // "known" | "anonymous" (similar: "item")
  std::string retrieval;              // "full" | "exact" | "hnsw" | "ivfpq" (+ ":fp16" / ":int8")
  std::string model_version;          // the checkpoint's checksum (hex)
  std::string exploration;            // the exploration spec in force ("" : the top k)
  uint64_t seed = 0;                  // exploring: the draw's seed (the same seed repeats the list)
};

#define MTREC_RECOMMENDER_OPTIONS(X)                                \
  /* "" : every scenario by next_item, else match, ctr, rating */   \
  X(std::string, task_map, {})                                      \
  /* auto | exact | hnsw | ivfpq (auto: hnsw from ann_min_items) */ \
  X(std::string, index, "auto")                                     \
  /* fp32 | fp16 | int8: the item table the index scores */         \
  X(std::string, precision, "fp32")                                 \
  /* retrieval depth before the towers re-rank */                   \
  X(int64_t, candidates, 500)                                       \
  /* auto: approximate index from this catalogue size */            \
  X(int64_t, ann_min_items, 200000)                                 \
  /* larger k is a request error */                                 \
  X(int64_t, max_k, 1000)                                           \
  X(std::string, device, "cpu")                                     \
  /* the stream of exploration seeds for requests without one */    \
  X(uint64_t, seed, 42)

struct RecommenderOptions {
  MTREC_OPTIONS(MTREC_RECOMMENDER_OPTIONS)
};

struct RecommenderInfo {
  std::string path, task, version;  // version: the checkpoint's checksum (hex)
  std::string default_scenario, task_map, retrieval;
  std::vector<std::string> scenarios, heads;
  int64_t users = 0, items = 0;
  double load_seconds = 0;  // reading, verifying and precomputing
  int64_t loaded_at_unix = 0;
  int64_t reloads = 0;
};

class Recommender {
 public:
  /// Loads `checkpoint_path` (checksum and golden pairs verified); throws mtrec::Error naming
  /// the file when it is missing, truncated, corrupted or of a kind no loader is registered for.
  explicit Recommender(const std::string& checkpoint_path, RecommenderOptions options = {});
  /// Serves a trained joint model in-process (the demo, benchmarks). Histories (and the items
  /// excluded as seen) are the engaged rows of `known`; titles come from ds.item_text.
  Recommender(const JointBundle& bundle, const Dataset& ds, const Interactions& known, RecommenderOptions options = {});
  ~Recommender();
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  /// Throws RequestError for an unknown user, item or scenario, k outside [1, max_k], or an
  /// anonymous request with neither profile nor recent items.
  RecommendResponse recommend(const RecommendRequest& request) const;
  /// The requests scored together (one pass of the towers); errors as recommend(), naming the
  /// request's index ("requests[3].user").
  std::vector<RecommendResponse> recommend_batch(const std::vector<RecommendRequest>& requests) const;
  /// Items closest to `request.item` in the model's item space (cosine), itself excluded.
  RecommendResponse similar(const SimilarRequest& request) const;

  /// Swaps in another checkpoint (same options); throws and keeps serving the old model when
  /// it cannot be loaded.
  void reload(const std::string& checkpoint_path);
  /// Reloads the checkpoint it was loaded from (throws for an in-process model).
  void reload();
  RecommenderInfo info() const;

  /// Some user ids of the model (the first n), e.g. for the web page's picker.
  std::vector<std::string> sample_users(int64_t n) const;

  struct Snapshot;

 private:
  std::shared_ptr<const Snapshot> current() const;
  RecommenderOptions options_;
  std::shared_ptr<const Snapshot> snapshot_;  // read and swapped with std::atomic_load/store
  mutable std::atomic<uint64_t> draws_{0};    // exploring requests without a seed so far
};

/// What a recommender serves, measured: per user, the first engaged row of `eval` in time
/// (impressions aside, any star; the targets of evaluate_joint's ranking heads) is the target
/// of one request (the user, k, the row's scenario, seen items excluded); HR@k and NDCG@k
/// overall ("users" = targets) and per scenario. A target the user already engaged with is a
/// miss (a served list leaves seen items out; evaluate_joint ranks it among the unseen items
/// instead). `ds` must carry the recommender's ids.
struct ServedReport {
  std::map<std::string, double> overall;
  std::map<std::string, std::map<std::string, double>> per_scenario;
};
ServedReport evaluate_served(const Recommender& recommender, const Dataset& ds, const Interactions& eval,
                             int64_t k = 10);

}  // namespace mtrec
