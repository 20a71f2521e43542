#pragma once
// The HTTP service of a Recommender (serve/recommender.h), on cpp-httplib's thread pool.
//
//   mtrec::Recommender rec("joint.ckpt");
//   mtrec::HttpServer server(rec, mtrec::HttpOptions().port(8080).threads(8).deadline_ms(200));
//   mtrec::StopOnSignals signals(server);   // SIGINT/SIGTERM: stop accepting, finish in-flight
//   server.run();                           // blocks until stop()
//
// Routes (bodies and answers are the JSON of serve/json.h):
//   POST /recommend          one request            -> a response
//   POST /recommend/batch    {"requests": [...]}    -> {"responses": [...]}
//   GET  /similar?item=ID&k=10[&where=genres~Comedy] -> a response
//   GET  /info               the model (RecommenderInfo), sample users, whether a token is needed
//   GET  /health             {"status": "ok", "model_version": ...}            (never needs the token)
//   GET  /metrics            Prometheus text: requests by route and code, latency histograms,
//                            in-flight requests, the model's version, load time and reloads
//   POST /admin/reload       optional {"checkpoint": PATH}: hot swap (Recommender::reload);
//                            the old model keeps serving when it fails (500), 409 while another
//                            reload runs
//   GET  /                   the web page (serve/web_page.h; never needs the token, it asks
//                            for one when the server has one)
// Errors answer {"error": message, "field": name}: 400 for malformed JSON, a bad field or an
// unknown user/item/scenario; 401 without the right `Authorization: Bearer TOKEN` when a token
// is set (every route but /health and /); 404 for an unknown route; 413 for a body over
// max_body_bytes; 503 when the request waited in the queue past deadline_ms before it started
// (overload: the client may retry elsewhere) and 504 when scoring ran past it (the late answer
// is dropped). The deadline covers /recommend, /recommend/batch and /similar.
//
// Thread-safe: stop() may be called from any thread (or a signal, through StopOnSignals); it
// stops accepting, lets every request being served finish and returns from run() once they
// have. Connections accepted but not yet started are closed unanswered.
//
// Built only with cpp-httplib: the library defines MTREC_HAVE_HTTPLIB=1 for its users when it
// has the service, 0 when it was built without (then this header's classes are not defined).
#include <torch/arg.h>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mtrec/core/options.h"
#include "mtrec/serve/recommender.h"

namespace mtrec {

#define MTREC_HTTP_OPTIONS(X)                                           \
  X(std::string, host, "127.0.0.1")                                     \
  /* 0: any free port (HttpServer::port() tells which) */               \
  X(int, port, 8080)                                                    \
  /* worker threads; 0: 8 or 2 per core, whichever is more */           \
  X(int, threads, 0)                                                    \
  X(size_t, max_body_bytes, 1 << 20)                                    \
  /* "" : no authentication */                                          \
  X(std::string, token, {})                                             \
  /* 0: none */                                                         \
  X(int64_t, deadline_ms, 0)                                            \
  /* serve the web page at GET / */                                     \
  X(bool, page, true)                                                   \
  /* per connection, then the server closes it */                       \
  X(int, keep_alive_requests, 1000)                                     \
  /* an idle connection holds a worker this long (and delays stop()) */ \
  X(int, keep_alive_seconds, 2)

struct HttpOptions {
  MTREC_OPTIONS(MTREC_HTTP_OPTIONS)
};

class HttpServer {
 public:
  /// Binds host:port (throws mtrec::Error naming them when it cannot); serves from run().
  HttpServer(Recommender& recommender, HttpOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The bound port (the chosen one for port 0).
  int port() const;
  /// Serves until stop(); returns once in-flight requests have finished.
  void run();
  /// Stops accepting; run() returns after the requests being served finish. Idempotent.
  void stop();
  /// The /metrics text.
  std::string metrics() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// While alive, SIGINT and SIGTERM call server.stop() (from a thread of its own, since stop()
/// is not async-signal-safe); the previous handlers come back at destruction.
class StopOnSignals {
 public:
  explicit StopOnSignals(HttpServer& server);
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
  /// The signal that stopped the server (0: none yet).
  int received() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtrec
