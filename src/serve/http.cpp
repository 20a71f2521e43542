#include "mtrec/serve/http.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "mtrec/core/log.h"
#include "mtrec/serve/json.h"
#include "web_page.h"

namespace mtrec {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// When the connection of the request being served was accepted (set by TimedPool for the
// connection's first request) and when the request started: the deadline counts the time a
// request waited for a worker, not only the time it ran.
thread_local Clock::time_point t_accepted{};
thread_local Clock::time_point t_start{};

// httplib's thread pool, noting when each connection was queued.
class TimedPool : public httplib::TaskQueue {
 public:
  explicit TimedPool(size_t n) : pool_(n) {}
  void enqueue(std::function<void()> fn) override {
    const auto at = Clock::now();
    pool_.enqueue([fn = std::move(fn), at] {
      t_accepted = at;
      fn();
      t_accepted = {};
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Routes as metric labels; anything else is "other", so that scanners cannot grow the series.
const std::vector<std::string>& known_routes() {
  static const std::vector<std::string> r = {"/",     "/recommend", "/recommend/batch", "/similar",
                                             "/info", "/health",    "/metrics",         "/admin/reload"};
  return r;
}

std::string route_label(const std::string& path) {
  for (const auto& r : known_routes())
    if (path == r) return r;
  return "other";
}

// Upper bounds of the latency histogram, seconds.
constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};

struct RouteStats {
  std::map<int, uint64_t> codes;
  std::array<uint64_t, kBuckets.size() + 1> buckets{};  // last: +Inf
  double sum = 0;
  uint64_t count = 0;
};

std::string prom_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Byte comparison whose time does not depend on where the first difference is.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t k = 0; k < a.size(); ++k) diff |= static_cast<unsigned char>(a[k] ^ b[k]);
  return diff == 0;
}

void reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message, const std::string& field = "") {
  reply(res, status, error_json(message, field));
}

}  // namespace

struct HttpServer::Impl {
  Recommender& rec;
  HttpOptions o;
  httplib::Server svr;
  int port = 0;
  std::atomic<bool> stopping{false}, in_run{false};

  std::mutex stats_mu;
  std::map<std::string, RouteStats> stats;
  std::atomic<int64_t> in_flight{0};
  std::mutex reload_mu;
  std::atomic<uint64_t> reload_failures{0};

  Impl(Recommender& r, HttpOptions opt) : rec(r), o(std::move(opt)) {}

  bool authorised(const httplib::Request& req) const {
    if (o.token().empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    static const std::string scheme = "Bearer ";
    return h.size() > scheme.size() && h.compare(0, scheme.size(), scheme) == 0 &&
           same_secret(h.substr(scheme.size()), o.token());
  }

  void record(const std::string& path, int status, double seconds) {
    std::lock_guard<std::mutex> lock(stats_mu);
    RouteStats& s = stats[route_label(path)];
    ++s.codes[status];
    const size_t b = size_t(std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
    ++s.buckets[b];
    s.sum += seconds;
    ++s.count;
  }

  struct InFlight {
    std::atomic<int64_t>& n;
    explicit InFlight(std::atomic<int64_t>& c) : n(c) { ++n; }
    ~InFlight() { --n; }
  };

  // Every route through one wrapper: token, deadline, errors as JSON.
  using Body = std::function<void(const httplib::Request&, httplib::Response&)>;
  httplib::Server::Handler route(bool needs_token, bool has_deadline, Body body) {
    return [this, needs_token, has_deadline, body = std::move(body)](const httplib::Request& req,
                                                                     httplib::Response& res) {
      InFlight guard(in_flight);
      if (needs_token && !authorised(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        reply_error(
            res, 401,
            req.has_header("Authorization") ? "wrong bearer token" : "this server needs 'Authorization: Bearer TOKEN'",
            "Authorization");
        return;
      }
      const bool timed = has_deadline && o.deadline_ms() > 0;
      if (timed) {
        const double waited_ms = seconds_since(t_start) * 1e3;
        if (waited_ms > double(o.deadline_ms())) {
          res.set_header("Retry-After", "1");
          reply_error(
              res, 503,
              fmt::format("waited {:.0f} ms for a worker, past the deadline of {} ms", waited_ms, o.deadline_ms()));
          return;
        }
      }
      try {
        body(req, res);
      } catch (const RequestError& e) {
        reply_error(res, 400, e.what(), e.field());
      } catch (const std::exception& e) {
        log_error("{} {}: {}", req.method, req.path, e.what());
        reply_error(res, 500, e.what());
      }
      if (timed && res.status < 300) {
        const double ran_ms = seconds_since(t_start) * 1e3;
        if (ran_ms > double(o.deadline_ms()))
          reply_error(res, 504,
                      fmt::format("answer ready after {:.0f} ms, past the deadline of {} ms", ran_ms, o.deadline_ms()));
      }
    };
  }

  void reload(const httplib::Request& req, httplib::Response& res) {
    std::string path;
    if (!req.body.empty()) {
      json doc;
      try {
        doc = json::parse(req.body);
      } catch (const json::parse_error& e) {
        throw RequestError("body", std::string("malformed JSON: ") + e.what());
      }
      if (!doc.is_object()) throw RequestError("body", "expected {\"checkpoint\": PATH} or an empty body");
      for (const auto& [key, val] : doc.items()) {
        if (key != "checkpoint") throw RequestError(key, "unknown field '" + key + "' (expected: checkpoint)");
        if (!val.is_string()) throw RequestError("checkpoint", "expected a path (string)");
        path = val.get<std::string>();
      }
    }
    std::unique_lock<std::mutex> lock(reload_mu, std::try_to_lock);
    if (!lock.owns_lock()) return reply_error(res, 409, "another reload is in progress");
    const RecommenderInfo before = rec.info();
    try {
      if (path.empty())
        rec.reload();
      else
        rec.reload(path);
    } catch (const std::exception& e) {
      ++reload_failures;
      log_warn("reload of '{}' failed, still serving {}: {}", path.empty() ? before.path : path, before.version,
               e.what());
      return reply(res, 500, dump(json{{"error", e.what()}, {"field", "checkpoint"}, {"version", before.version}}));
    }
    const RecommenderInfo after = rec.info();
    log_info("reloaded '{}': version {} -> {} in {:.2f} s", after.path, before.version, after.version,
             after.load_seconds);
    reply(res, 200,
          dump(json{{"ok", true},
                    {"path", after.path},
                    {"previous_version", before.version},
                    {"version", after.version},
                    {"load_seconds", after.load_seconds},
                    {"reloads", after.reloads}}));
  }

  std::string metrics_text() {
    const RecommenderInfo info = rec.info();
    std::string m;
    m += "# HELP mtrec_http_requests_total HTTP requests answered, by route and status code.\n";
    m += "# TYPE mtrec_http_requests_total counter\n";
    std::map<std::string, RouteStats> copy;
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      copy = stats;
    }
    for (const auto& [route, s] : copy)
      for (const auto& [code, n] : s.codes)
        m += fmt::format("mtrec_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", route, code, n);
    m += "# HELP mtrec_http_request_duration_seconds Time from accepting the connection (first request) or reading "
         "the request line to the answer.\n";
    m += "# TYPE mtrec_http_request_duration_seconds histogram\n";
    for (const auto& [route, s] : copy) {
      uint64_t cum = 0;
      for (size_t b = 0; b <= kBuckets.size(); ++b) {
        cum += s.buckets[b];
        m += fmt::format("mtrec_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", route,
                         b < kBuckets.size() ? fmt::format("{}", kBuckets[b]) : std::string("+Inf"), cum);
      }
      m += fmt::format("mtrec_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, s.sum);
      m += fmt::format("mtrec_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, s.count);
    }
    m += "# HELP mtrec_http_requests_in_flight Requests being served.\n# TYPE mtrec_http_requests_in_flight gauge\n";
    m += fmt::format("mtrec_http_requests_in_flight {}\n", in_flight.load());
    m += "# HELP mtrec_model_info The model being served (value 1).\n# TYPE mtrec_model_info gauge\n";
    m += fmt::format("mtrec_model_info{{version=\"{}\",path=\"{}\",task=\"{}\",retrieval=\"{}\"}} 1\n",
                     prom_escape(info.version), prom_escape(info.path), prom_escape(info.task),
                     prom_escape(info.retrieval));
    m += "# HELP mtrec_model_load_seconds Time the model being served took to load.\n"
         "# TYPE mtrec_model_load_seconds gauge\n";
    m += fmt::format("mtrec_model_load_seconds {}\n", info.load_seconds);
    m += "# HELP mtrec_model_loaded_at_seconds When the model being served was loaded (Unix time).\n"
         "# TYPE mtrec_model_loaded_at_seconds gauge\n";
    m += fmt::format("mtrec_model_loaded_at_seconds {}\n", info.loaded_at_unix);
    m += "# HELP mtrec_model_reloads_total Successful hot swaps.\n# TYPE mtrec_model_reloads_total counter\n";
    m += fmt::format("mtrec_model_reloads_total {}\n", info.reloads);
    m += "# HELP mtrec_model_reload_failures_total Reloads that failed (the old model kept serving).\n"
         "# TYPE mtrec_model_reload_failures_total counter\n";
    m += fmt::format("mtrec_model_reload_failures_total {}\n", reload_failures.load());
    return m;
  }

  void install_routes() {
    const bool open = false, guarded = true, deadline = true, none = false;
    svr.Post("/recommend", route(guarded, deadline, [this](const httplib::Request& req, httplib::Response& res) {
               reply(res, 200, to_json(rec.recommend(parse_recommend_request(req.body))));
             }));
    svr.Post("/recommend/batch", route(guarded, deadline, [this](const httplib::Request& req, httplib::Response& res) {
               reply(res, 200, to_json(rec.recommend_batch(parse_batch_request(req.body))));
             }));
    svr.Get("/similar", route(guarded, deadline, [this](const httplib::Request& req, httplib::Response& res) {
              reply(res, 200, to_json(rec.similar(parse_similar_request(req.params))));
            }));
    svr.Get("/info", route(guarded, none, [this](const httplib::Request&, httplib::Response& res) {
              json j = json::parse(to_json(rec.info(), rec.sample_users(20)));
              j["token_required"] = !o.token().empty();
              reply(res, 200, dump(j));
            }));
    svr.Get("/health", route(open, none, [this](const httplib::Request&, httplib::Response& res) {
              const RecommenderInfo info = rec.info();
              reply(res, 200, dump(json{{"status", "ok"}, {"model_version", info.version}, {"reloads", info.reloads}}));
            }));
    svr.Get("/metrics", route(guarded, none, [this](const httplib::Request&, httplib::Response& res) {
              res.status = 200;
              res.set_content(metrics_text(), "text/plain; version=0.0.4");
            }));
    svr.Post("/admin/reload",
             route(guarded, none, [this](const httplib::Request& req, httplib::Response& res) { reload(req, res); }));
    if (o.page())
      svr.Get("/", route(open, none, [](const httplib::Request&, httplib::Response& res) {
                res.status = 200;
                const std::string_view page = detail::web_page_html();
                res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
              }));
  }

  void configure() {
    const int threads = o.threads() > 0 ? o.threads() : std::max(8, 2 * int(std::thread::hardware_concurrency()));
    svr.new_task_queue = [threads] { return new TimedPool(size_t(threads)); };
    svr.set_payload_max_length(o.max_body_bytes());
    svr.set_keep_alive_max_count(size_t(std::max(1, o.keep_alive_requests())));
    svr.set_keep_alive_timeout(std::max(1, o.keep_alive_seconds()));
    svr.set_tcp_nodelay(true);  // small answers: do not wait for Nagle
    svr.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      // A connection's first request counts from its acceptance; later ones (keep-alive) from now.
      t_start = t_accepted == Clock::time_point{} ? Clock::now() : t_accepted;
      t_accepted = {};
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Statuses httplib sets itself (no route, body too large, unreadable request) get a JSON body.
    svr.set_error_handler(
        httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          if (res.status == 404)
            reply_error(res, 404, "no route " + req.method + " " + req.path);
          else if (res.status == 413)
            reply_error(res, 413, fmt::format("body over the limit of {} bytes", o.max_body_bytes()), "body");
          else
            reply_error(res, res.status, fmt::format("HTTP {}", res.status));
          return httplib::Server::HandlerResponse::Handled;
        }));
    // Counted before the answer is written (httplib's logger runs after it, so a fast client's
    // next request could read /metrics without this one).
    svr.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const double s = t_start == Clock::time_point{} ? 0.0 : seconds_since(t_start);
      record(req.path, res.status, s);
      t_start = {};
    });
    install_routes();
  }
};

HttpServer::HttpServer(Recommender& recommender, HttpOptions options)
    : impl_(std::make_unique<Impl>(recommender, std::move(options))) {
  Impl& m = *impl_;
  m.configure();
  if (m.o.port() == 0) {
    m.port = m.svr.bind_to_any_port(m.o.host());
    MTREC_CHECK(m.port > 0, "cannot listen on ", m.o.host(), " (any port): ", std::strerror(errno));
  } else {
    MTREC_CHECK(m.o.port() > 0 && m.o.port() < 65536, "port must be in 1..65535 (0: any free port), got ", m.o.port());
    MTREC_CHECK(m.svr.bind_to_port(m.o.host(), m.o.port()), "cannot listen on ", m.o.host(), ":", m.o.port(), ": ",
                std::strerror(errno));
    m.port = m.o.port();
  }
}

HttpServer::~HttpServer() {
  stop();
  // A run() in another thread must be out before the server goes.
  while (impl_->in_run) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::run() {
  Impl& m = *impl_;
  m.in_run = true;
  if (!m.stopping) m.svr.listen_after_bind();
  m.in_run = false;
}

void HttpServer::stop() {
  Impl& m = *impl_;
  m.stopping = true;
  // httplib's stop() only acts on a running server: wait for a run() just starting.
  while (m.in_run && !m.svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  m.svr.stop();
}

std::string HttpServer::metrics() const { return impl_->metrics_text(); }

// ---- signals ----

namespace {
std::atomic<int> g_signal_fd{-1};
extern "C" void on_stop_signal(int sig) {
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    const unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] ssize_t n = ::write(fd, &b, 1);  // async-signal-safe
  }
}
}  // namespace

struct StopOnSignals::Impl {
  int fds[2] = {-1, -1};
  struct sigaction old_int {
  }, old_term{};
  std::atomic<int> received{0};
  std::thread watcher;
  void restore() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
};

StopOnSignals::StopOnSignals(HttpServer& server) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  MTREC_CHECK(::pipe2(m.fds, O_CLOEXEC) == 0, "pipe: ", std::strerror(errno));
  int expected = -1;
  MTREC_CHECK(g_signal_fd.compare_exchange_strong(expected, m.fds[1]), "only one StopOnSignals may be alive at a time");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &m.old_int);
  ::sigaction(SIGTERM, &sa, &m.old_term);
  m.watcher = std::thread([&m, &server] {
    unsigned char b = 0;
    while (::read(m.fds[0], &b, 1) == 1 && b != 0) {
      m.received = b;
      log_info("signal {}: stopping (finishing the requests being served; a second signal acts as before)", int(b));
      m.restore();  // a second Ctrl-C while draining ends the process the usual way
      server.stop();
    }
  });
}

StopOnSignals::~StopOnSignals() {
  Impl& m = *impl_;
  m.restore();
  g_signal_fd = -1;
  const unsigned char end = 0;
  [[maybe_unused]] ssize_t n = ::write(m.fds[1], &end, 1);
  m.watcher.join();
  ::close(m.fds[0]);
  ::close(m.fds[1]);
}

int StopOnSignals::received() const { return impl_->received; }

}  // namespace mtrec
