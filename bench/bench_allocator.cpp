// What mtrec's malloc tuning (core/allocator.h) buys: a training loop run in child processes
// with the tuning (the default) and without it (MTREC_MALLOC_TUNE=0), paired and in alternating
// order, printing the medians of wall time, user and system CPU time, minor page faults and peak
// RSS (from wait4), and the untuned / tuned ratios.
//   bench_allocator [--workload next|text] [--steps N] [--runs R] [--threads T]
//   bench_allocator --runs 5 -- build/bench/quality_sequential --epochs 2   # any command
// The built-in workloads are the training steps of bench/twin_steps.h.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mtrec/core/allocator.h"
#include "mtrec/core/device.h"
#include "twin_steps.h"

extern char** environ;

namespace {

struct Usage {
  double wall = 0, user = 0, sys = 0, minflt = 0, maxrss_mb = 0;
};

Usage run_child(const std::vector<std::string>& cmd, bool tuned, bool quiet) {
  // Environment and argv are built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "MTREC_MALLOC_TUNE=", 18) != 0) env_s.emplace_back(*e);
  }
  if (!tuned) env_s.emplace_back("MTREC_MALLOC_TUNE=0");
  std::vector<char*> envp, argv;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = cmd;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    if (quiet) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, 1);
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  if (wait4(pid, &status, 0, &ru) < 0) {
    std::perror("wait4");
    std::exit(1);
  }
  const auto t1 = std::chrono::steady_clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "error: child '%s' failed (status %d)\n", cmd[0].c_str(), status);
    std::exit(1);
  }
  auto secs = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return {std::chrono::duration<double>(t1 - t0).count(), secs(ru.ru_utime), secs(ru.ru_stime), double(ru.ru_minflt),
          double(ru.ru_maxrss) / 1024.0};
}

int child(const std::string& workload, int steps, int threads, int expect_tuned) {
  mtrec::set_cpu_threads(threads);
  const bool tuned = mtrec::tune_allocator().applied;
  if (expect_tuned >= 0 && tuned != (expect_tuned != 0)) {
    std::fprintf(stderr, "error: child expected tuned=%d, got %d (%s)\n", expect_tuned, int(tuned),
                 mtrec::tune_allocator().reason.c_str());
    return 3;
  }
  auto step = workload == "text" ? mtrec::bench::make_text_encoder_step({}) : mtrec::bench::make_next_item_step({});
  for (int s = 0; s < steps; ++s) step();
  return 0;
}

std::string self_path(const char* argv0) {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string(argv0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"malloc tuning on and off: wall, user and system time of a training loop in child processes"};
  std::string workload = "next", child_mode;
  int steps = 40, runs = 5, threads = 0, expect_tuned = -1;
  bool verbose = false;
  std::vector<std::string> command;
  app.add_option("--workload", workload, "built-in training loop: next (next-item) or text (text encoder)")
      ->capture_default_str()
      ->check(CLI::IsMember({"next", "text"}));
  app.add_option("--steps", steps, "training steps of the built-in loop")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "paired runs (each: one tuned, one untuned child)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "intra-op threads (0: mtrec's default)")->capture_default_str();
  app.add_flag("--verbose", verbose, "show the children's standard output");
  app.add_option("--child", child_mode, "(internal) run the loop in this process")->group("");
  app.add_option("--expect-tuned", expect_tuned, "(internal)")->group("");
  app.add_option("command", command, "a program and its arguments to time instead of the built-in loop");
  app.allow_extras(false);
  CLI11_PARSE(app, argc, argv);
  if (!child_mode.empty()) return child(child_mode, steps, threads, expect_tuned);

  std::vector<std::string> base = command;
  if (base.empty()) {
    base = {self_path(argv[0]),     "--child", workload, "--steps", std::to_string(steps), "--threads",
            std::to_string(threads)};
  }
  std::string shown;
  for (const auto& a : base) shown += (shown.empty() ? "" : " ") + a;
  const auto t = mtrec::tune_allocator();
  std::printf(
      "# malloc tuning (mtrec::tune_allocator: M_MMAP_THRESHOLD %zu MiB, M_TRIM_THRESHOLD %zu MiB) on vs "
      "MTREC_MALLOC_TUNE=0\n",
      mtrec::kTunedMmapThreshold >> 20, mtrec::kTunedTrimThreshold >> 20);
  std::printf("# workload: %s\n", command.empty()
                                      ? (workload + " training loop, " + std::to_string(steps) + " steps, threads " +
                                         std::to_string(mtrec::set_cpu_threads(threads)))
                                            .c_str()
                                      : shown.c_str());
  std::printf("# %d paired runs, order alternating; this process: %s\n", runs,
              t.applied ? "tuned" : ("not tuned: " + t.reason).c_str());
  std::fflush(stdout);
  std::vector<Usage> on, off;
  for (int r = 0; r < runs; ++r) {
    for (int k = 0; k < 2; ++k) {
      const bool tuned = (r + k) % 2 == 0;
      std::vector<std::string> cmd = base;
      if (command.empty()) {
        cmd.push_back("--expect-tuned");
        cmd.push_back(tuned ? "1" : "0");
      }
      Usage u = run_child(cmd, tuned, !verbose);
      std::printf("  run %d %-8s wall %7.2f s  user %7.2f s  sys %6.2f s  minflt %9.0f  maxrss %7.0f MiB\n", r + 1,
                  tuned ? "tuned" : "untuned", u.wall, u.user, u.sys, u.minflt, u.maxrss_mb);
      std::fflush(stdout);
      (tuned ? on : off).push_back(u);
    }
  }
  auto med = [](const std::vector<Usage>& v, double Usage::*f) {
    std::vector<double> x;
    for (const auto& u : v) x.push_back(u.*f);
    return mtrec::bench::median(x);
  };
  std::printf("| %-22s | %12s | %12s | %16s |\n", "median", "tuned", "untuned", "untuned / tuned");
  std::printf("|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str(), std::string(18, '-').c_str());
  const std::pair<const char*, double Usage::*> rows[] = {{"wall s", &Usage::wall},
                                                          {"user CPU s", &Usage::user},
                                                          {"system CPU s", &Usage::sys},
                                                          {"minor page faults", &Usage::minflt},
                                                          {"peak RSS MiB", &Usage::maxrss_mb}};
  for (const auto& [name, f] : rows) {
    const double a = med(on, f), b = med(off, f);
    std::printf("| %-22s | %12.2f | %12.2f | %16.2f |\n", name, a, b, a > 0 ? b / a : 0.0);
  }
  // Paired wall ratio: the median of per-pair ratios is less sensitive to drifting load.
  std::vector<double> pair;
  for (size_t i = 0; i < on.size() && i < off.size(); ++i) pair.push_back(off[i].wall / on[i].wall);
  std::printf("# speed-up from tuning (median of paired untuned/tuned wall): %.2fx\n", mtrec::bench::median(pair));
  return 0;
}
