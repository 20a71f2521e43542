// Data-parallel scaling of joint training: the same global batch on 1, 2 and 4 local ranks
// (c10d/Gloo over loopback; this executable re-runs itself as the ranks), with each step's
// compute / exposed-communication split and the bytes a rank exchanges per step.
//   build/bench/bench_distributed [--ranks 1,2,4] [--steps 30] [--text finetune|frozen|none] [--batch 512]
//                                 [--overlap 1|0]   (0: gradient buckets start after backward)
// The synthetic world of quality_joint (1000 users, 500 items, 60k exposures), default joint
// options. Prints a table; the first 5 steps of each run are warm-up and not counted.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "mtrec/core/device.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/train/distributed.h"
#include "mtrec/train/fit_joint.h"

using namespace mtrec;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWarmup = 5;

// Per step: wall time, and the trainer's exposed communication and bytes.
struct StepTimer : Observer {
  int64_t stop_after;
  Clock::time_point last = Clock::now();
  double last_comm = 0;
  int64_t last_bytes = 0;
  std::vector<double> step_s, comm_s, bytes;
  explicit StepTimer(int64_t n) : stop_after(n) {}
  void on_train_begin(Trainer&) override { last = Clock::now(); }
  Signal after_batch(Trainer& t) override {
    const auto now = Clock::now();
    const auto& s = t.state();
    step_s.push_back(std::chrono::duration<double>(now - last).count());
    comm_s.push_back(s.comm_seconds - last_comm);
    bytes.push_back(double(s.comm_bytes - last_bytes));
    last = now, last_comm = s.comm_seconds, last_bytes = s.comm_bytes;
    return s.step >= stop_after ? Signal::Stop : Signal::Continue;
  }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

int worker(int argc, char** argv) {
  const int steps = std::stoi(arg(argc, argv, "--steps", "30"));
  const DistributedOptions d = DistributedOptions::from_env().overlap(arg(argc, argv, "--overlap", "1") != "0");
  set_cpu_threads(std::max(1, int(std::thread::hardware_concurrency()) / d.world_size()));
  if (d.rank() > 0) set_log_level(LogLevel::Warn);
  std::shared_ptr<Communicator> comm = d.world_size() > 1 ? std::make_shared<Communicator>(d) : nullptr;
  SyntheticWorld w = generate_world(SyntheticOptions().users(1000).items(500).interactions(60000).seed(1));
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  split.valid.clear();
  JointTrainOptions o = JointTrainOptions().text(arg(argc, argv, "--text", "finetune")).epochs(1).seed(1);
  o.trainer().batch_size(std::stoi(arg(argc, argv, "--batch", "512")));
  auto timer = std::make_shared<StepTimer>(kWarmup + steps);
  fit_joint(w.data, split, o, RunOptions().communicator(comm).observer(timer));
  if (d.rank() != 0) return 0;
  auto tail = [&](const std::vector<double>& v) {
    return std::vector<double>(v.begin() + std::min<size_t>(kWarmup, v.size()), v.end());
  };
  const double step = median(tail(timer->step_s)), wait = median(tail(timer->comm_s)),
               bytes = median(tail(timer->bytes));
  write_file_atomic(std::getenv("MTREC_BENCH_OUT"),
                    fmt::format("{} {} {} {}", step, wait, bytes, comm ? comm->backend() : "none"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("MTREC_BENCH_OUT") != nullptr) return worker(argc, argv);
  std::vector<int> ranks;
  {
    std::stringstream ss(arg(argc, argv, "--ranks", "1,2,4"));
    for (std::string x; std::getline(ss, x, ',');) ranks.push_back(std::stoi(x));
  }
  const int batch = std::stoi(arg(argc, argv, "--batch", "512"));
  std::vector<std::string> self{std::filesystem::read_symlink("/proc/self/exe").string()};
  for (int i = 1; i < argc; ++i) self.push_back(argv[i]);
  const std::string out =
      (std::filesystem::temp_directory_path() / ("mtrec_bench_dp_" + std::to_string(::getpid()))).string();
  fmt::print(
      "joint training, synthetic world (1000 users, 500 items, 60k exposures), text {}, global batch {}, "
      "overlap {}, {} hardware threads; medians over {} steps after {} warm-up\n",
      arg(argc, argv, "--text", "finetune"), batch, arg(argc, argv, "--overlap", "1"),
      std::thread::hardware_concurrency(), arg(argc, argv, "--steps", "30"), kWarmup);
  fmt::print("{:>6} {:>8} {:>12} {:>10} {:>12} {:>12} {:>12} {:>14}\n", "ranks", "backend", "step ms", "speed-up",
             "examples/s", "compute ms", "comm ms", "bytes/step/rank");
  double base = 0;
  for (int n : ranks) {
    ::setenv("MTREC_BENCH_OUT", out.c_str(), 1);
    ::setenv("MTREC_LOG", "warn", 1);
    const int rc = launch_local_workers(n, self, 0, 60);
    ::unsetenv("MTREC_BENCH_OUT");
    if (rc != 0) {
      fmt::print("{:>6} failed (status {})\n", n, rc);
      continue;
    }
    std::istringstream in(read_file(out));
    double step = 0, wait = 0, bytes = 0;
    std::string backend;
    in >> step >> wait >> bytes >> backend;
    if (base == 0) base = step;
    fmt::print("{:>6} {:>8} {:>12.1f} {:>10.2f} {:>12.0f} {:>12.1f} {:>12.1f} {:>14.0f}\n", n, backend, 1e3 * step,
               base / step, batch / step, 1e3 * (step - wait), 1e3 * wait, bytes);
    std::fflush(stdout);
  }
  std::filesystem::remove(out);
  return 0;
}
