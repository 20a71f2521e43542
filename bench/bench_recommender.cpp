// End-to-end latency of Recommender::recommend on a real checkpoint, one thread, by request
// kind: a known user by the model's default head, with and without explanations; a cold-start
// user (recent items, and a profile text); a context routed through the scenario classifier;
// the CTR tower re-ranking retrieved candidates; and a batch of 64 users.
//   build/bench/bench_recommender CHECKPOINT [--requests 2000] [--task-map MAP]
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "mtrec/serve/recommender.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double p50, p99, mean;
};

Stats measure(int n, const std::function<void(int)>& fn) {
  for (int i = 0; i < std::min(n, 50); ++i) fn(i);  // warm-up
  std::vector<double> us;
  us.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    fn(i);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double mean = 0;
  for (double v : us) mean += v;
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], mean / double(us.size())};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: {} CHECKPOINT [--requests N] [--task-map MAP]\n", argv[0]);
    return 64;
  }
  const std::string path = argv[1];
  int n = 2000;
  std::string map;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--requests")
      n = std::atoi(argv[i + 1]);
    else if (a == "--task-map")
      map = argv[i + 1];
  }
  at::set_num_threads(1);
  const auto t0 = Clock::now();
  mtrec::Recommender rec(path, mtrec::RecommenderOptions().task_map(map));
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const mtrec::RecommenderInfo info = rec.info();
  const std::vector<std::string> users = rec.sample_users(info.users);
  fmt::print(
      "Recommender::recommend on {} ({} users, {} items, heads {}, task map {}, retrieval {}); load {:.2f} s; "
      "1 thread, {} requests per row, k = 10\n\n",
      path, info.users, info.items, fmt::format("{}", fmt::join(info.heads, ",")), info.task_map, info.retrieval,
      load_s, n);
  fmt::print("| request | p50 µs | p99 µs | mean µs | requests/s (1 thread) |\n| --- | ---: | ---: | ---: | ---: |\n");
  auto row = [&](const std::string& name, const Stats& s, double per_call = 1) {
    fmt::print("| {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} |\n", name, s.p50, s.p99, s.mean, 1e6 * per_call / s.mean);
  };
  auto known = [&](int64_t explain, const std::string& scenario) {
    return [&, explain, scenario](int i) {
      mtrec::RecommendRequest q;
      q.user = users[size_t(i) % users.size()];
      q.explain = explain;
      q.scenario = scenario;
      rec.recommend(q);
    };
  };
  row("known user, default heads, explain 3", measure(n, known(3, "")));
  row("known user, default heads, explain 0", measure(n, known(0, "")));
  std::vector<std::string> pool;  // item ids to build cold-start requests from
  {
    mtrec::RecommendRequest q;
    q.user = users[0];
    q.k = std::min<int64_t>(100, info.items);
    q.exclude_seen = false;
    for (const auto& r : rec.recommend(q).items) pool.push_back(r.item);
  }
  row("new user: 5 recent items", measure(n, [&](int i) {
        mtrec::RecommendRequest q;
        for (int j = 0; j < 5; ++j) q.recent_items.push_back(pool[size_t(i * 5 + j) % pool.size()]);
        rec.recommend(q);
      }));
  {
    mtrec::Recommender ctr(path, mtrec::RecommenderOptions().task_map("*=ctr").candidates(200));
    bool has_ctr = std::count(info.heads.begin(), info.heads.end(), "ctr") > 0;
    if (has_ctr)
      row("known user, CTR tower re-ranking 200 retrieved", measure(n / 4, [&](int i) {
            mtrec::RecommendRequest q;
            q.user = users[size_t(i) % users.size()];
            ctr.recommend(q);
          }));
  }
  const int batch = 64;
  row(fmt::format("batch of {} known users (µs per batch, requests/s per user)", batch),
      measure(std::max(1, n / batch),
              [&](int i) {
                std::vector<mtrec::RecommendRequest> qs(static_cast<size_t>(batch));
                for (int j = 0; j < batch; ++j) qs[size_t(j)].user = users[size_t(i * batch + j) % users.size()];
                rec.recommend_batch(qs);
              }),
      batch);
  // Compact item tables on this model: how much of the fp32 top-10 they keep, over every user.
  fmt::print(
      "\n| item table | top-10 overlap with fp32 (all {} users) | p50 µs, known user, explain 0 |\n| --- | ---: | ---: "
      "|\n",
      users.size());
  std::vector<std::vector<std::string>> ref;
  for (const char* precision : {"fp32", "fp16", "int8"}) {
    mtrec::Recommender r(path, mtrec::RecommenderOptions().task_map(map).precision(precision).index("exact"));
    double kept = 0, total = 0;
    for (size_t u = 0; u < users.size(); ++u) {
      mtrec::RecommendRequest q;
      q.user = users[u];
      q.explain = 0;
      std::vector<std::string> top;
      for (const auto& x : r.recommend(q).items) top.push_back(x.item);
      if (ref.size() < users.size()) ref.push_back(top);
      for (const auto& i : top) kept += std::count(ref[u].begin(), ref[u].end(), i), total += 1;
    }
    const Stats st = measure(n, [&](int i) {
      mtrec::RecommendRequest q;
      q.user = users[size_t(i) % users.size()];
      q.explain = 0;
      r.recommend(q);
    });
    fmt::print("| {} | {:.4f} | {:.0f} |\n", precision, kept / total, st.p50);
  }
  return 0;
}
