// `mtrec recommend`, `mtrec similar` and `mtrec serve`: a checkpoint of any kind answering top-K
// requests from the command line and over HTTP (serve/recommender.h, serve/http.h).
//   mtrec recommend --checkpoint joint.ckpt --user 42 -k 10 --scenario search [--json out.json]
//   mtrec similar --checkpoint joint.ckpt --item 50 -k 10 --format json
//   MTREC_TOKEN=secret mtrec serve --checkpoint joint.ckpt --port 8080 --deadline-ms 200
// The serving token comes from --token-file or $MTREC_TOKEN, never from the command line
// (where `ps` and shell histories would show it).
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/serve/json.h"
#include "mtrec/serve/recommender.h"
#if MTREC_HAVE_HTTPLIB
#include "mtrec/serve/http.h"
#endif

namespace mtrec::cli {
namespace {

struct ModelArgs {
  std::string checkpoint, task_map, index = "auto", precision = "fp32";
  int64_t candidates = 500;
  RecommenderOptions options(const CliContext& ctx) const {
    return RecommenderOptions()
        .task_map(task_map)
        .index(index)
        .precision(precision)
        .candidates(candidates)
        .device(ctx.device == "auto" ? "cpu" : ctx.device);
  }
};

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint, "Joint checkpoint written by `mtrec train --out`")->required();
  cmd->add_option("--task-map", a.task_map,
                  "Heads per scenario, e.g. 'search=ctr:1,match:0.5;*=ctr' (default: the model's)");
  cmd->add_option("--index", a.index, "Item index of the retrieval heads: auto|exact|hnsw|ivfpq")
      ->check(CLI::IsMember({"auto", "exact", "hnsw", "ivfpq"}))
      ->capture_default_str();
  cmd->add_option("--precision", a.precision, "Item table the index scores: fp32|fp16|int8")
      ->check(CLI::IsMember({"fp32", "fp16", "int8"}))
      ->capture_default_str();
  cmd->add_option("--candidates", a.candidates, "Retrieval depth before the towers re-rank")->capture_default_str();
}

std::vector<ItemPredicate> predicates(const std::vector<std::string>& where) {
  std::vector<ItemPredicate> out;
  for (const auto& w : where) out.push_back(parse_item_predicate(w, "--where"));
  return out;
}

std::string clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n - 3) + "..."; }

void print_table(const RecommendResponse& r, const std::string& heading) {
  fmt::print("{}\n", heading);
  const bool exploring = !r.exploration.empty();
  if (exploring)
    fmt::print("exploration {} (seed {}): each item drawn with the propensity shown\n", r.exploration, r.seed);
  fmt::print("  {:>3}  {:<10} {:<44} {:>9}{}  {}\n", "#", "item", "title", "score", exploring ? "  propensity" : "",
             "because you liked");
  for (size_t k = 0; k < r.items.size(); ++k) {
    const Recommendation& x = r.items[k];
    std::string because;
    for (const auto& e : x.because)
      because += (because.empty() ? "" : "; ") + fmt::format("{} ({:.2f})", e.title, e.similarity);
    fmt::print("  {:>3}  {:<10} {:<44} {:>9.4f}{}  {}\n", k + 1, clip(x.item, 10), clip(x.title, 44), x.score,
               exploring ? fmt::format("  {:>10.4g}", x.propensity) : "", because);
  }
}

/// --format json prints the response JSON; --json FILE writes it (as every command does).
void output(const RecommendResponse& r, const std::string& format, const std::string& heading, const CliContext& ctx) {
  const std::string j = to_json(r);
  if (format == "json")
    fmt::print("{}\n", j);
  else
    print_table(r, heading);
  ctx.write_json(nlohmann::json::parse(j));
}

struct RecommendArgs {
  ModelArgs model;
  RecommendRequest q;
  std::vector<std::string> where;
  bool include_seen = false;
  std::string format = "table";
};

struct SimilarArgs {
  ModelArgs model;
  SimilarRequest q;
  std::vector<std::string> where;
  std::string format = "table";
};

struct ServeArgs {
  ModelArgs model;
  std::string host = "127.0.0.1", token_file;
  int port = 8080, threads = 0, torch_threads = 1;
  int64_t deadline_ms = 0;
  size_t max_body_bytes = 1 << 20;
  bool no_page = false;
};

/// The token from --token-file (trailing whitespace dropped) or $MTREC_TOKEN; "" for none.
std::string read_token(const std::string& file) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    MTREC_CHECK(in.good(), "cannot read --token-file '", file, "'");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    MTREC_CHECK(!t.empty(), "--token-file '", file, "' is empty");
    return t;
  }
  const char* env = std::getenv("MTREC_TOKEN");
  return env ? env : "";
}

void serve(const ServeArgs& a, const CliContext& ctx) {
#if MTREC_HAVE_HTTPLIB
  const std::string token = read_token(a.token_file);
  // Many requests at once, each small: one intra-op thread per request beats splitting each
  // across cores (bench/RESULTS_http.md).
  if (a.torch_threads > 0) at::set_num_threads(a.torch_threads);
  Recommender rec(a.model.checkpoint, a.model.options(ctx));
  const RecommenderInfo info = rec.info();
  HttpServer server(rec, HttpOptions()
                             .host(a.host)
                             .port(a.port)
                             .threads(a.threads)
                             .token(token)
                             .deadline_ms(a.deadline_ms)
                             .max_body_bytes(a.max_body_bytes)
                             .page(!a.no_page));
  if (token.empty() && a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    log_warn("serving on {} without a token: anyone who reaches it may call /admin/reload", a.host);
  StopOnSignals signals(server);
  fmt::print(
      "serving {} (model {}, {} users, {} items, retrieval {}, loaded in {:.2f} s) on http://{}:{}/ "
      "({} http threads, {} torch threads, token {}, deadline {})\n",
      info.path, info.version, info.users, info.items, info.retrieval, info.load_seconds, a.host, server.port(),
      a.threads > 0 ? std::to_string(a.threads) : std::string("auto"), at::get_num_threads(),
      token.empty() ? "none" : "required", a.deadline_ms > 0 ? std::to_string(a.deadline_ms) + " ms" : "none");
  std::fflush(stdout);
  server.run();
  fmt::print("stopped{}\n", signals.received() ? fmt::format(" on signal {}", signals.received()) : "");
#else
  (void)ctx;
  (void)read_token(a.token_file);  // the same flag errors as a build that serves
  throw Error(
      "this mtrec was built without cpp-httplib, so it cannot serve HTTP (install libcpp-httplib-dev "
      "and rebuild); `mtrec recommend` and `mtrec similar` work without it");
#endif
}

void register_serve(CLI::App& app, CliContext& ctx) {
  static RecommendArgs ra;
  auto* rec =
      app.add_subcommand("recommend", "Top-K recommendations of any checkpoint `mtrec train` writes, for one user");
  add_model_options(rec, ra.model);
  rec->add_option("--user", ra.q.user, "User id of the checkpoint (empty: anonymous, give --profile or --recent)");
  rec->add_option("-k,--k", ra.q.k, "Recommendations")->capture_default_str();
  rec->add_option("--scenario", ra.q.scenario, "Scenario name (default: from --context, else the model's first)");
  rec->add_option("--context", ra.q.context, "Request context text (query, page): picks the scenario");
  rec->add_option("--profile", ra.q.profile, "Anonymous user: profile text");
  rec->add_option("--recent", ra.q.recent_items, "Recent item ids, oldest first (comma-separated)")->delimiter(',');
  rec->add_option("--where", ra.where, "Catalogue filter field=value or field~value (contains); repeatable");
  rec->add_option("--allow", ra.q.allow, "Only these item ids (comma-separated)")->delimiter(',');
  rec->add_option("--deny", ra.q.deny, "Never these item ids (comma-separated)")->delimiter(',');
  rec->add_option("--explain", ra.q.explain, "History items named per recommendation")->capture_default_str();
  rec->add_flag("--include-seen", ra.include_seen, "Keep the user's history items among the candidates");
  rec->add_option("--explore", ra.q.explore,
                  "Draw the list by an exploration policy and print its propensities (e.g. "
                  "softmax:temperature=0.5,epsilon=0.1; greedy, epsilon_greedy, softmax, squarecb, uniform)");
  rec->add_option("--explore-seed", ra.q.seed, "The exploration draw (the same seed repeats the list)");
  rec->add_option("--format", ra.format, "stdout: table|json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  rec->callback([&ctx] {
    RecommendRequest q = ra.q;
    q.where = predicates(ra.where);
    q.exclude_seen = !ra.include_seen;
    Recommender r(ra.model.checkpoint, ra.model.options(ctx));
    const RecommendResponse resp = r.recommend(q);
    output(resp, ra.format,
           fmt::format("{} for {} in scenario {} ({}), retrieval {}:", resp.items.size(),
                       q.user.empty() ? std::string("an anonymous user") : "user " + q.user, resp.scenario,
                       resp.scenario_source, resp.retrieval),
           ctx);
  });

  static SimilarArgs sa;
  auto* sim = app.add_subcommand("similar", "Items closest to an item in a checkpoint's item space");
  add_model_options(sim, sa.model);
  sim->add_option("--item", sa.q.item, "Item id of the checkpoint")->required();
  sim->add_option("-k,--k", sa.q.k, "Items")->capture_default_str();
  sim->add_option("--where", sa.where, "Catalogue filter field=value or field~value (contains); repeatable");
  sim->add_option("--format", sa.format, "stdout: table|json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  sim->callback([&ctx] {
    SimilarRequest q = sa.q;
    q.where = predicates(sa.where);
    Recommender r(sa.model.checkpoint, sa.model.options(ctx));
    const RecommendResponse resp = r.similar(q);
    output(resp, sa.format, fmt::format("{} items similar to {}:", resp.items.size(), q.item), ctx);
  });

  static ServeArgs va;
  auto* srv = app.add_subcommand(
      "serve", "HTTP service of any checkpoint `mtrec train` writes (see serve/http.h for the routes)");
  add_model_options(srv, va.model);
  srv->add_option("--host", va.host, "Address to listen on")->capture_default_str();
  srv->add_option("--port", va.port, "Port (0: any free one, printed at start)")->capture_default_str();
  srv->add_option("--threads", va.threads, "HTTP worker threads (0: 8 or 2 per core, whichever is more)")
      ->capture_default_str();
  srv->add_option("--torch-threads", va.torch_threads, "LibTorch intra-op threads per request (0: leave as set)")
      ->capture_default_str();
  srv->add_option("--token-file", va.token_file,
                  "File holding the bearer token requests must carry (else $MTREC_TOKEN; neither: no token)");
  srv->add_option("--deadline-ms", va.deadline_ms, "Answer 503/504 instead of later than this (0: none)")
      ->capture_default_str();
  srv->add_option("--max-body-bytes", va.max_body_bytes, "Larger request bodies get 413")->capture_default_str();
  srv->add_flag("--no-page", va.no_page, "Do not serve the web page at /");
  srv->callback([&ctx] { serve(va, ctx); });
}

MTREC_CLI_COMMANDS(register_serve);

}  // namespace
}  // namespace mtrec::cli
