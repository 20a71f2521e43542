// Joint training speed of the unified model (issue 18): examples/s of `mtrec train`'s default
// joint run on the synthetic world of a goodbooks-sized catalogue, per text mode, and the same
// world's engaged rows as an implicit data set trained with 4 sampled negatives per positive;
// then where a step's time goes (forward phases, the backward of each, losses, optimiser, cache
// refresh), from the profile scopes (core/profile.h, train/profile.h).
//   build/bench/bench_joint [--users 53424] [--items 10000] [--interactions 1900000]
//                           [--configs finetune,frozen,none,implicit] [--warmup 5] [--steps 50]
//                           [--runs 5] [--profile-steps 50] [--threads 0] [--sparse] [--levers] [--one-core]
//                           [--device auto|cpu|cuda]   (on CUDA each configuration also with bf16 autocast)
// The default is the goodbooks-sized world itself: its tenth (--interactions 190000, the default
// before) has the same catalogue but histories of 0.65 items on average against 6.6, so its steps
// under-charge the sequence encoder and its examples/s does not carry over.
// Reported: examples/s as the median over `runs` windows of `steps` steps each (after `warmup`
// steps; 50 steps hold one refresh of the text caches), the epoch time that implies on the
// --full-interactions world, and the peak resident memory. The defaults have every speed lever of model/unified.h off
// (each was measured to cost quality: docs/unified.md); --sparse adds each configuration with
// sparse_ids on, --levers with every lever on (sparse_ids, text_finetune_items 64,
// profile_refresh_every 500, scenario_rows 128); --one-core with the model's spare-core thread off
// (the batch's profiles encoded on the training thread, cache refreshes on one thread).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <vector>

#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/profile.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/model/unified.h"
#include "mtrec/train/fit_joint.h"
#include "mtrec/train/profile.h"

using namespace mtrec;

namespace {

using Clock = std::chrono::steady_clock;
std::string g_device = "auto";

// Records the time of every step and stops the run after `stop_after` steps.
struct StepClock : Observer {
  int64_t stop_after;
  std::vector<Clock::time_point> t;
  std::vector<int64_t> examples;
  bool spare_core = true;  // the unified model's second thread (UnifiedModelImpl::use_spare_core)
  explicit StepClock(int64_t n) : stop_after(n) {}
  void on_train_begin(Trainer& tr) override {
    if (auto* m = dynamic_cast<UnifiedEngineModel*>(&tr.model())) m->model()->use_spare_core = spare_core;
    t.push_back(Clock::now()), examples.push_back(0);
  }
  Signal after_batch(Trainer& tr) override {
    t.push_back(Clock::now());
    examples.push_back(tr.state().examples);
    return static_cast<int64_t>(t.size()) - 1 >= stop_after ? Signal::Stop : Signal::Continue;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_gb() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_maxrss) / (1024.0 * 1024.0);  // KiB -> GiB
}

// The world's engaged rows (every behaviour but impressions) as an implicit data set: user, item,
// timestamp and the item texts, nothing else, as `--path engaged.csv --items items.csv` reads it.
Dataset implicit_engaged(const Dataset& world) {
  Dataset ds;
  ds.name = "synthetic-implicit";
  ds.users = world.users, ds.items = world.items, ds.item_text = world.item_text;
  ds.scenarios.intern("default");
  ds.behaviors.intern("interaction");
  const int32_t impression = world.behaviors.find("impression");
  const Interactions& x = world.interactions;
  Interactions& y = ds.interactions;
  y.has_timestamp = x.has_timestamp;
  for (size_t r = 0; r < x.size(); ++r) {
    if (x.behavior[r] == impression) continue;
    y.user.push_back(x.user[r]), y.item.push_back(x.item[r]);
    if (x.has_timestamp) y.timestamp.push_back(x.timestamp[r]);
    y.scenario.push_back(0), y.behavior.push_back(0);
  }
  ds.validate();
  return ds;
}

struct Config {
  std::string name;
  const Dataset* ds;
  TextMode text;
  bool sparse = false;  // sparse_ids on
  bool levers = false;  // every lever on
  bool bf16 = false;    // autocast (CUDA)
  bool spare_core = true;
};

struct Timing {
  double examples_per_s = 0, lo = 0, hi = 0;
};

JointTrainOptions options_for(const Config& c, uint64_t seed) {
  JointTrainOptions o;
  o.model().text(c.text);
  o.trainer().seed(seed).epochs(1).device(g_device).bf16(c.bf16);
  if (c.sparse || c.levers) o.model().sparse_ids(true);
  if (c.levers) o.model().profile_refresh_every(500).text_finetune_items(64).scenario_rows(128);
  return o;
}

Timing time_config(const Config& c, const Split& split, int warmup, int steps, int runs) {
  auto clock = std::make_shared<StepClock>(warmup + int64_t(steps) * runs);
  clock->spare_core = c.spare_core;
  RunOptions run;
  run.observers({clock});
  JointFit fit = fit_joint(*c.ds, split, options_for(c, 1), run);
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    const size_t a = size_t(warmup + r * steps), b = a + size_t(steps);
    if (b >= clock->t.size()) break;
    const double s = std::chrono::duration<double>(clock->t[b] - clock->t[a]).count();
    rates.push_back(double(clock->examples[b] - clock->examples[a]) / s);
  }
  Timing t;
  t.examples_per_s = median(rates);
  t.lo = rates.empty() ? 0 : *std::min_element(rates.begin(), rates.end());
  t.hi = rates.empty() ? 0 : *std::max_element(rates.begin(), rates.end());
  return t;
}

// The profile of `steps` steps after `warmup`, per phase in ms per step.
void profile_config(const Config& c, const Split& split, int warmup, int steps) {
  struct Window : StepClock {
    int warmup;
    Window(int64_t n, int w) : StepClock(n), warmup(w) {}
    Signal after_batch(Trainer& tr) override {
      if (static_cast<int64_t>(t.size()) == warmup) Profile::reset();  // t holds the begin time too
      return StepClock::after_batch(tr);
    }
  };
  auto window = std::make_shared<Window>(warmup + steps, warmup);
  window->spare_core = c.spare_core;
  RunOptions run;
  run.observers({window});
  Profile::enable(true);
  std::map<std::string, PhaseTotal> totals;
  {
    BackwardAttribution attribution;
    fit_joint(*c.ds, split, options_for(c, 1), run);
    totals = Profile::totals();
  }
  Profile::enable(false);
  const double per = 1e3 / double(steps);
  const double step_ms = totals["step"].seconds * per + totals["batch wait"].seconds * per;
  fmt::print(
      "\nwhere a step's time goes: {} ({} steps after {} warm-up; ms per step; the backward of a forward\n"
      "phase is that of the autograd nodes its ops created; totals include nested phases)\n",
      c.name, steps, warmup);
  fmt::print("{:<44} {:>9} {:>9} {:>7}\n", "phase", "forward", "backward", "share");
  for (const auto& [path, t] : totals) {
    if (path.rfind("backward:", 0) == 0) continue;
    // The backward of a phase's nested phases is in its own row; sum them into the parent too.
    double back = 0;
    for (const auto& [p2, t2] : totals)
      if (p2.rfind("backward:" + path, 0) == 0) back += t2.seconds;
    const double f = t.seconds * per, bk = back * per;
    fmt::print("{:<44} {:>9.1f} {:>9.1f} {:>6.1f}%\n", path, f, bk, 100 * (f + bk) / step_ms);
  }
  auto un = totals.find("backward:(unattributed)");
  if (un != totals.end())
    fmt::print("{:<44} {:>9} {:>9.1f}\n", "(backward, unattributed)", "", un->second.seconds * per);
  fmt::print("{:<44} {:>9.1f}  (= 'step' + 'batch wait'; 'step/backward' holds every backward row)\n", "a step",
             step_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Joint training speed of the unified model");
  int32_t users = 53424, items = 10000;
  int64_t interactions = 1900000, full_interactions = 1900000;
  std::string configs = "finetune,frozen,none,implicit", profile = "finetune";
  bool sparse = false, levers = false, one_core = false;
  int warmup = 5, steps = 50, runs = 5, profile_steps = 50, threads = 0;
  app.add_option("--users", users);
  app.add_option("--items", items);
  app.add_option("--interactions", interactions, "Interactions of the world timed");
  app.add_option("--full-interactions", full_interactions, "The world the epoch time is quoted for");
  app.add_option("--configs", configs, "Comma-separated: finetune, frozen, none (text modes), implicit");
  app.add_option("--profile", profile, "Configurations to profile (comma-separated; 'none' is a text mode, '-': none)");
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps, "Steps per timed window");
  app.add_option("--runs", runs, "Timed windows (the median is reported)");
  app.add_option("--profile-steps", profile_steps);
  app.add_option("--threads", threads, "Intra-op threads (0: the library's default)");
  app.add_option("--device", g_device, "auto|cpu|cuda");
  app.add_flag("--levers", levers, "Also time (and profile) each configuration with the opt-in speed levers on");
  app.add_flag("--sparse", sparse, "Also time (and profile) each configuration with sparse_ids on");
  app.add_flag("--one-core", one_core,
               "Also time (and profile) each configuration without the model's spare-core thread (one thread "
               "computes at a time, as before it)");
  CLI11_PARSE(app, argc, argv);
  set_log_level(LogLevel::Warn);
  set_cpu_threads(threads);
  const c10::Device device = choose_device(g_device);
  if (device.is_cuda()) Profile::set_sync([] { torch::cuda::synchronize(); });  // charge kernels to their phase

  auto world = generate_world(SyntheticOptions().users(users).items(items).interactions(interactions).seed(42));
  const Dataset implicit = implicit_engaged(world.data);
  const Split split = random_split(world.data.interactions, 0.1, 0.1, 1);
  const Split implicit_split = random_split(implicit.interactions, 0.1, 0.1, 1);
  fmt::print("world: {} users, {} items, {} rows ({} engaged); {}, {} intra-op threads\n", world.data.num_users(),
             world.data.num_items(), world.data.interactions.size(), implicit.interactions.size(),
             describe_device(device), at::get_num_threads());
  // The full world's training examples, for the epoch time: rows scale with interactions.
  const double scale = double(full_interactions) / double(interactions);

  std::vector<Config> all = {{"finetune", &world.data, TextMode::Finetune},
                             {"frozen", &world.data, TextMode::Frozen},
                             {"none", &world.data, TextMode::None},
                             {"implicit", &implicit, TextMode::Finetune}};
  auto listed = [](const std::string& list, const std::string& name) {
    std::stringstream ss(list);
    for (std::string s; std::getline(ss, s, ',');)
      if (s == name) return true;
    return false;
  };
  fmt::print("\n{:<16} {:>12} {:>19} {:>14} {:>16}\n", "config", "examples/s", "windows min..max", "examples/epoch",
             "epoch (full)");
  if (sparse || levers || one_core) {
    std::vector<Config> with;
    for (const auto& c : all) {
      if (one_core) with.push_back(c), with.back().spare_core = false, with.back().name += "/1core";
      with.push_back(c);
      if (sparse) with.push_back(c), with.back().sparse = true, with.back().name += "/sparse";
      if (levers) with.push_back(c), with.back().levers = true, with.back().name += "/levers";
    }
    all = with;
  }
  if (device.is_cuda()) {
    std::vector<Config> with;
    for (const auto& c : all) {
      with.push_back(c);
      with.push_back(c), with.back().bf16 = true, with.back().name += "/bf16";
    }
    all = with;
  }
  auto base = [](const std::string& name) { return name.substr(0, name.find('/')); };
  for (const auto& c : all) {
    if (!listed(configs, base(c.name))) continue;
    const Split& s = c.ds == &implicit ? implicit_split : split;
    Timing t = time_config(c, s, warmup, steps, runs);
    // Training examples of this world: its training rows, plus 4 sampled negatives per positive
    // for the implicit data (fit_joint's default without impressions).
    const double train_rows = double(s.train.size()) * (c.ds == &implicit ? 5.0 : 1.0);
    const double epoch_s = train_rows * scale / t.examples_per_s;
    fmt::print("{:<16} {:>12.0f} {:>9.0f}..{:<9.0f} {:>14.0f} {:>13.1f} min\n", c.name, t.examples_per_s, t.lo, t.hi,
               train_rows * scale, epoch_s / 60);
  }
  for (const auto& c : all)
    if (listed(profile, base(c.name)))
      profile_config(c, c.ds == &implicit ? implicit_split : split, warmup, profile_steps);
  fmt::print("\npeak resident memory: {:.2f} GiB\n", peak_rss_gb());
  return 0;
}
