// The C++ engine against its Python twins: the text-encoder, next-item and unified joint
// training steps of bench/twin_steps.h timed here, and the same steps written in Python
// (bench/twin/*.py) run as subprocesses on the same LibTorch (Debian's python3-torch is 1.13, as
// libtorch-dev) with the same intra-op threads and the same OpenBLAS threads. Rounds interleave
// the two engines (C++, Python, C++, Python, ...) so that load from other processes hits both
// alike; the medians are over every timed step of every round. Each side prints its parameter
// count (the joint step's twin must match it). The joint step is timed twice: as the library
// runs it (the batch's profiles encoded on a spare core when there is one) and with the spare
// core off, on the twin's threads alone.
//   bench_twin [--threads N] [--rounds R] [--steps S] [--warmup W] [--only text|next|joint]
//              [--python /usr/bin/python3] [--twin-dir DIR] [--twin-malloc]
// Prints a skip line (exit 0) when the Python interpreter cannot import torch.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mtrec/core/allocator.h"
#include "mtrec/core/device.h"
#include "twin_steps.h"

#ifndef MTREC_TWIN_DIR
#define MTREC_TWIN_DIR "bench/twin"
#endif

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `cmd` through the shell and returns its standard output; exit status in `rc`.
std::string run_capture(const std::string& cmd, int& rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  rc = pclose(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "C++ engine vs Python twin: training-step time of the text encoder, the next-item model and the joint model"};
  int threads = 0, rounds = 3, steps = 8, warmup = 3;
  bool twin_malloc = false;
  std::string only, python = "/usr/bin/python3", twin_dir = MTREC_TWIN_DIR;
  app.add_option("--threads", threads, "intra-op threads for both engines (0: mtrec's default)")->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds (C++ then Python, per model)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps per round")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps per round")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--only", only, "text, next or joint (default: all)")->check(CLI::IsMember({"text", "next", "joint"}));
  app.add_option("--python", python, "Python interpreter with torch (Debian's python3-torch)")->capture_default_str();
  app.add_option("--twin-dir", twin_dir, "folder of the Python twins")->capture_default_str();
  app.add_flag("--twin-malloc", twin_malloc,
               "give the Python twin mtrec's malloc settings too (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)");
  CLI11_PARSE(app, argc, argv);

  const int n = mtrec::set_cpu_threads(threads);
  const int blas = mtrec::blas_threads();
  int rc = 0;
  const std::string probe = run_capture(shell_quote(python) + " -c 'import torch; print(torch.__version__)' 2>&1", rc);
  const bool have_twin = rc == 0;
  const auto tuning = mtrec::tune_allocator();
  std::printf("# C++ engine vs Python twin, training steps (bench/twin_steps.h, bench/twin/*.py)\n");
  std::printf("# LibTorch %s | Python torch %s | intra-op threads %d | OpenBLAS threads %d | malloc tuned: %s\n",
              TORCH_VERSION, have_twin ? probe.substr(0, probe.find('\n')).c_str() : "-", n, blas,
              tuning.applied ? "yes" : tuning.reason.c_str());
  std::printf("# spare cores: %d (the joint step encodes the batch's profiles on one unless 'spare core off')\n",
              mtrec::spare_cpu_cores());
  std::printf("# Python twin's malloc: %s\n",
              twin_malloc && tuning.applied ? "tuned as mtrec's (MALLOC_* env)" : "glibc defaults");
  std::printf("# %d interleaved rounds x (%d warm-up + %d timed steps); medians over all timed steps\n", rounds, warmup,
              steps);
  if (!have_twin) {
    std::printf("# SKIP Python twin: '%s -c \"import torch\"' failed (apt-get install python3-torch): %s\n",
                python.c_str(), probe.c_str());
  }
  std::fflush(stdout);

  struct Model {
    std::string key, name, script;
    std::function<mtrec::bench::Step(int64_t*)> make;
    std::vector<double> cpp, py;
    int64_t cpp_params = 0, py_params = 0;
  };
  std::vector<Model> models;
  if (only.empty() || only == "text")
    models.push_back({"text",
                      "text encoder (d256 L4 H4, 64x64)",
                      "text_encoder_step.py",
                      [](int64_t*) { return mtrec::bench::make_text_encoder_step({}); },
                      {},
                      {}});
  if (only.empty() || only == "next")
    models.push_back({"next",
                      "next item (d64 L2, 64x200, 1682 items)",
                      "next_item_step.py",
                      [](int64_t*) { return mtrec::bench::make_next_item_step({}); },
                      {},
                      {}});
  if (only.empty() || only == "joint") {
    // Twice: as the library runs it, and on the intra-op threads alone (the twin's threads).
    models.push_back({"joint",
                      "joint (unified, 6 tasks, batch 512)",
                      "joint_step.py",
                      [](int64_t* params) { return mtrec::bench::make_joint_step({}, params); },
                      {},
                      {}});
    mtrec::bench::JointStepConfig one;
    one.spare_core = false;
    models.push_back({"joint/no-spare",
                      "joint, spare core off",
                      "joint_step.py",
                      [one](int64_t* params) { return mtrec::bench::make_joint_step(one, params); },
                      {},
                      {}});
  }

  // The child gets the same thread settings: torch.set_num_threads(n) and OPENBLAS_NUM_THREADS.
  std::string env = "OMP_NUM_THREADS=" + std::to_string(n) + " OPENBLAS_NUM_THREADS=" + std::to_string(blas) + " ";
  if (twin_malloc && tuning.applied) {
    env += "MALLOC_MMAP_THRESHOLD_=" + std::to_string(tuning.mmap_threshold) +
           " MALLOC_TRIM_THRESHOLD_=" + std::to_string(tuning.trim_threshold) + " ";
  }
  for (int r = 0; r < rounds; ++r) {
    for (auto& m : models) {
      auto step = m.make(&m.cpp_params);
      auto ms = mtrec::bench::time_steps(step, warmup, steps);
      m.cpp.insert(m.cpp.end(), ms.begin(), ms.end());
      if (!have_twin) continue;
      const std::string cmd = env + shell_quote(python) + " " + shell_quote(twin_dir + "/" + m.script) + " --threads " +
                              std::to_string(n) + " --warmup " + std::to_string(warmup) + " --steps " +
                              std::to_string(steps);
      const std::string out = run_capture(cmd, rc);
      if (rc != 0) {
        std::fprintf(stderr, "error: '%s' failed (status %d): %s\n", cmd.c_str(), rc, out.c_str());
        return 1;
      }
      const auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
      for (double v : j.at("ms")) m.py.push_back(v);
      if (j.contains("parameters")) m.py_params = j.at("parameters").get<int64_t>();
    }
  }

  std::printf("| %-40s | %13s | %16s | %18s |\n", "model", "C++ ms/step", "Python ms/step", "C++ / Python time");
  std::printf("|%s|%s|%s|%s|\n", std::string(42, '-').c_str(), std::string(15, '-').c_str(),
              std::string(18, '-').c_str(), std::string(20, '-').c_str());
  for (const auto& m : models) {
    const double c = mtrec::bench::median(m.cpp);
    if (m.py.empty()) {
      std::printf("| %-40s | %13.1f | %16s | %18s |\n", m.name.c_str(), c, "skipped", "-");
      continue;
    }
    const double p = mtrec::bench::median(m.py);
    std::printf("| %-40s | %13.1f | %16.1f | %18.3f |\n", m.name.c_str(), c, p, c / p);
  }
  for (const auto& m : models)
    if (m.cpp_params > 0)
      std::printf("# %s: parameters C++ %lld, Python %s%s\n", m.key.c_str(), static_cast<long long>(m.cpp_params),
                  m.py.empty() ? "-" : std::to_string(m.py_params).c_str(),
                  m.py.empty() || m.py_params == m.cpp_params ? "" : " (DIFFER: the twin is not the same model)");
  std::printf("# C++ / Python time <= 1 means the engine is at least as fast as the twin.\n");
  return 0;
}
