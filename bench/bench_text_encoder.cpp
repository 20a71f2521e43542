// Text encoder forward+backward throughput: d=256, 4 layers, 4 heads, sequence 64, batch 64
// (rows padded from random lengths 32..64, so the attention mask path runs). CPU always; on
// CUDA (picked by mtrec::choose_device) fp32 and bf16 autocast. Warm-up steps, then the median
// of timed steps; CUDA is synchronised before every clock read.
//   bench_text_encoder [--steps N] [--warmup N] [--device auto|cpu|cuda] [--batch B] [--seq L]
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mtrec/core/device.h"
#include "mtrec/nn/compat.h"
#include "mtrec/nn/text_encoder.h"

namespace {

struct Config {
  int64_t dim = 256, layers = 4, heads = 4, seq = 64, batch = 64, vocab = 8000;
  int steps = 7, warmup = 2, threads = 0;  // threads 0: every core
  std::string device = "auto";
};

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

struct Row {
  std::string device, precision;
  double ms = 0, tokens_per_s = 0;
};

Row run(const Config& c, const torch::Device& device, bool bf16) {
  torch::manual_seed(1);
  mtrec::nn::TextEncoder enc(mtrec::nn::TextEncoderOptions(c.vocab, c.dim)
                                 .layers(c.layers)
                                 .heads(c.heads)
                                 .max_len(c.seq)
                                 .dropout(0.1)
                                 .pooling(mtrec::nn::Pooling::Mean));
  enc->to(device);
  enc->train();
  auto ids = torch::randint(5, c.vocab, {c.batch, c.seq}, torch::kInt64).to(device);
  auto lengths = torch::randint(c.seq / 2, c.seq + 1, {c.batch, 1}, torch::kInt64);
  auto mask = (torch::arange(c.seq, torch::kInt64).unsqueeze(0) < lengths).to(device);
  std::vector<double> times;
  for (int s = 0; s < c.warmup + c.steps; ++s) {
    sync(device);
    auto t0 = std::chrono::steady_clock::now();
    enc->zero_grad();
    torch::Tensor loss;
    {
      mtrec::nn::AutocastGuard amp(device, at::kBFloat16, bf16);
      auto out = enc->forward(ids, mask);
      loss = out.pooled.to(torch::kFloat32).pow(2).mean() + out.hidden.to(torch::kFloat32).mean();
    }
    loss.backward();
    sync(device);
    auto t1 = std::chrono::steady_clock::now();
    if (s >= c.warmup) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  const double median = times[times.size() / 2];
  return {mtrec::describe_device(device), bf16 ? "bf16 autocast" : "fp32", median * 1e3,
          double(c.batch * c.seq) / median};
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"Text encoder forward + backward step time"};
  app.add_option("--steps", c.steps, "Timed steps (median)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--warmup", c.warmup, "Untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--device", c.device, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--batch", c.batch, "Sequences per step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seq", c.seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--threads", c.threads, "CPU threads (0: LibTorch's default)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  mtrec::set_cpu_threads(c.threads);
  const torch::Device chosen = mtrec::choose_device(c.device);
  std::printf("# text encoder forward+backward: d=%lld layers=%lld heads=%lld seq=%lld batch=%lld vocab=%lld\n",
              (long long)c.dim, (long long)c.layers, (long long)c.heads, (long long)c.seq, (long long)c.batch,
              (long long)c.vocab);
  std::printf("# LibTorch %s, fused attention: %s, CPU threads: %d, warm-up %d, median of %d steps, seed 1\n",
              TORCH_VERSION, mtrec::nn::has_fused_attention() ? "yes (SDPA)" : "no (exact math path)",
              at::get_num_threads(), c.warmup, c.steps);
  std::vector<Row> rows;
  rows.push_back(run(c, torch::Device(torch::kCPU), false));
  if (chosen.is_cuda()) {
    rows.push_back(run(c, chosen, false));
    rows.push_back(run(c, chosen, true));
  }
  std::printf("| %-40s | %-13s | %10s | %12s |\n", "device", "precision", "step ms", "tokens/s");
  std::printf("|%s|%s|%s|%s|\n", std::string(42, '-').c_str(), std::string(15, '-').c_str(),
              std::string(12, '-').c_str(), std::string(14, '-').c_str());
  for (const auto& r : rows) {
    std::printf("| %-40s | %-13s | %10.2f | %12.0f |\n", r.device.c_str(), r.precision.c_str(), r.ms, r.tokens_per_s);
  }
  return 0;
}
