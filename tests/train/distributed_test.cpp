// Data parallel on loopback Gloo: the test executable re-runs itself as the ranks
// (MTREC_TEST_WORKER=data_parallel, through launch_local_workers) and compares what they trained
// with a single process trained here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/core/random.h"
#include "mtrec/data/batcher.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/train/distributed.h"
#include "mtrec/train/observers.h"
#include "mtrec/train/trainer.h"
#include "test_torch.h"
#include "test_worker.h"

namespace mtrec {
namespace {

constexpr int64_t kUsers = 40, kItems = 30, kExamples = 193;  // the last global batch of 32: 1 example

// Ratings with structure: y = <a_u, b_i> for hidden 2-d factors. Records the rows it served.
struct RatingSource : BatchSource {
  at::Tensor user, item, y;
  mutable std::mutex mu;
  mutable std::vector<int64_t> served;
  RatingSource() {
    auto g = at::make_generator<at::CPUGeneratorImpl>(7);
    user = torch::randint(kUsers, {kExamples}, g, torch::kLong);
    item = torch::randint(kItems, {kExamples}, g, torch::kLong);
    at::Tensor a = torch::randn({kUsers, 2}, g), b = torch::randn({kItems, 2}, g);
    y = (a.index_select(0, user) * b.index_select(0, item)).sum(1);
  }
  int64_t num_examples() const override { return kExamples; }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override {
    {
      std::lock_guard<std::mutex> lock(mu);
      served.insert(served.end(), rows.begin(), rows.end());
    }
    at::Tensor idx = torch::tensor(rows, torch::kLong);
    Batch b;
    b.size = int64_t(rows.size());
    b.fields["user"] = user.index_select(0, idx).to(device);
    b.fields["item"] = item.index_select(0, idx).to(device);
    b.fields["y"] = y.index_select(0, idx).to(device);
    return b;
  }
};

// Sparse ID tables (row-wise AdaGrad) and a dense MLP (AdamW): both exchanges are exercised.
struct TinyNet : torch::nn::Module {
  torch::nn::Embedding users{nullptr}, items{nullptr};
  torch::nn::Linear hidden{nullptr}, out{nullptr};
  TinyNet() {
    torch::manual_seed(3);
    users = register_module("users", torch::nn::Embedding(torch::nn::EmbeddingOptions(kUsers, 6).sparse(true)));
    items = register_module("items", torch::nn::Embedding(torch::nn::EmbeddingOptions(kItems, 6).sparse(true)));
    hidden = register_module("hidden", torch::nn::Linear(12, 16));
    out = register_module("out", torch::nn::Linear(16, 1));
  }
};
struct TinyModel : Model {
  std::shared_ptr<TinyNet> net = std::make_shared<TinyNet>();
  double dropout = 0;  // > 0: a run that draws from the trainer's generator every step
  torch::nn::Module& module() override { return *net; }
  Outputs forward(const Batch& b) override {
    at::Tensor x = torch::cat({net->users(b.at("user")), net->items(b.at("item"))}, 1);
    at::Tensor h = torch::dropout(torch::relu(net->hidden(x)), dropout, net->is_training());
    return {{"y", net->out(h).squeeze(1)}};
  }
  std::vector<std::string> sparse_parameters() const override { return {"users.weight", "items.weight"}; }
};
struct Mse : Objective {
  RatingSource* data = nullptr;
  std::string name() const override { return "mse"; }
  at::Tensor loss(const Outputs& o, const Batch& b) override { return (o.at("y") - b.at("y")).pow(2).mean(); }
  Metrics validate(Model& m) override {  // on every example: identical on every rank
    Batch b;
    b.size = kExamples;
    b.fields = {{"user", data->user}, {"item", data->item}, {"y", data->y}};
    return {{"mse", (m.forward(b).at("y") - data->y).pow(2).mean().item<double>()}};
  }
};

TrainerOptions options() {
  return TrainerOptions().epochs(3).batch_size(32).lr(0.01).sparse_lr(0.1).validate_every(1).prefetch(0).seed(5);
}

// Kills (or stops) this process when the trainer reaches a step: a rank dying mid-epoch.
struct SignalAtStep : Observer {
  int64_t step;
  int sig;
  SignalAtStep(int64_t s, int g) : step(s), sig(g) {}
  Signal after_batch(Trainer& t) override {
    if (t.state().step == step) std::raise(sig);
    return Signal::Continue;
  }
};

// Rank 0's observers taking longer than the collective timeout (a slow checkpoint write).
struct SlowAtStep : Observer {
  int64_t step;
  double seconds;
  SlowAtStep(int64_t s, double w) : step(s), seconds(w) {}
  Signal after_batch(Trainer& t) override {
    if (t.state().step == step) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return Signal::Continue;
  }
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}
std::string env_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

void save_params(const std::string& path, Model& m) {
  std::vector<std::pair<std::string, at::Tensor>> ts;
  for (auto& p : m.module().named_parameters()) ts.emplace_back(p.key(), p.value().detach().clone());
  Checkpoint ck;
  ck.task = "test";
  ck.tensors = ts;
  save_checkpoint(path, ck);
}

std::vector<at::Tensor> load_params(const std::string& path) {
  std::vector<at::Tensor> out;
  for (auto& [n, t] : load_checkpoint(path).tensors) out.push_back(t);
  return out;
}

}  // namespace

// One rank. Env: OUT (folder), SPARSE (gather|dense|auto), OVERLAP (0|1), DIE_AT / STOP_AT
// (rank 1 kills / stops itself at that step), RESUME (a checkpoint), TIMEOUT (seconds),
// DROPOUT (1: the model draws dropout masks), SLOW_AT (rank 0's observers take 6 s at that step).
MTREC_TEST_WORKER_FN(data_parallel) {
  const std::string out = env_str("OUT");
  try {
    test::OneThread one;
    DistributedOptions d = DistributedOptions::from_env()
                               .timeout_s(env_int("TIMEOUT", 30))
                               .bucket_bytes(1024)  // several buckets for this tiny MLP
                               .sparse_exchange(env_str("SPARSE").empty() ? "auto" : env_str("SPARSE"))
                               .overlap(env_int("OVERLAP", 1) != 0);
    auto comm = std::make_shared<Communicator>(d);
    RatingSource source;
    TinyModel model;
    model.dropout = env_int("DROPOUT", 0) ? 0.3 : 0.0;
    Mse task;
    task.data = &source;
    Trainer trainer(model, source, {{&task, 1.0}}, options());
    trainer.set_communicator(comm);
    if (comm->rank() == 0) trainer.add_observer(std::make_shared<Checkpointer>(out + "/run", 2));
    if (comm->rank() == 1 && env_int("DIE_AT", 0) > 0)
      trainer.add_observer(std::make_shared<SignalAtStep>(env_int("DIE_AT", 0), SIGKILL));
    if (comm->rank() == 0 && env_int("SLOW_AT", 0) > 0)
      trainer.add_observer(std::make_shared<SlowAtStep>(env_int("SLOW_AT", 0), 6.0));
    if (comm->rank() == 1 && env_int("STOP_AT", 0) > 0)
      trainer.add_observer(std::make_shared<SignalAtStep>(env_int("STOP_AT", 0), SIGSTOP));
    if (!env_str("RESUME").empty()) trainer.resume(load_checkpoint(env_str("RESUME")));
    TrainSummary s = trainer.train();
    std::ofstream rows(out + "/rows." + std::to_string(comm->rank()));
    for (int64_t r : source.served) rows << r << "\n";
    if (comm->rank() == 0) {
      save_params(out + "/params.ckpt", model);
      write_file_atomic(out + "/mse", std::to_string(s.state.valid.at("mse").at("mse")));
    }
    return 0;
  } catch (const std::exception& e) {
    write_file_atomic(out + "/error." + env_str("RANK"), e.what());
    return 3;
  }
}

namespace {

struct Ranks {
  std::string dir;
  explicit Ranks(const std::string& name) {
    dir = (std::filesystem::temp_directory_path() / ("mtrec_dp_" + name + "_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~Ranks() { std::filesystem::remove_all(dir); }
  // Runs `n` ranks with these variables set; returns the launcher's status.
  int run(int n, std::vector<std::pair<std::string, std::string>> env, double grace_s = 30) const {
    env.push_back({"MTREC_TEST_WORKER", "data_parallel"});
    env.push_back({"OUT", dir});
    env.push_back({"MTREC_LOG", "error"});
    for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    const int rc = launch_local_workers(n, {std::filesystem::read_symlink("/proc/self/exe").string()}, 0, grace_s);
    for (auto& [k, v] : env) ::unsetenv(k.c_str());
    return rc;
  }
  std::string read(const std::string& name) const { return read_file(dir + "/" + name); }
};

// The single-process reference: same data, model, options and global batch.
std::pair<std::vector<at::Tensor>, double> one_process(const std::string& resume = "") {
  test::OneThread one;
  RatingSource source;
  TinyModel model;
  Mse task;
  task.data = &source;
  Trainer trainer(model, source, {{&task, 1.0}}, options());
  if (!resume.empty()) trainer.resume(load_checkpoint(resume));
  TrainSummary s = trainer.train();
  return {test::params_of(model), s.state.valid.at("mse").at("mse")};
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k)
    EXPECT_TRUE(torch::allclose(a[k], b[k], 0, tol))
        << "parameter " << k << " differs by up to " << (a[k] - b[k]).abs().max().item<double>();
}

}  // namespace

TEST(Batcher, ShardsSplitEveryGlobalBatchIntoDisjointShares) {
  test::OneThread one;
  RatingSource source;
  std::vector<std::unique_ptr<Batcher>> b;
  for (int r = 0; r < 3; ++r)
    b.push_back(std::make_unique<Batcher>(source, BatcherOptions().batch_size(32).prefetch(0).shard(r, 3), c10::kCPU));
  Batcher whole(source, BatcherOptions().batch_size(32).prefetch(0), c10::kCPU);
  whole.start_epoch(1, 99);
  for (auto& x : b) x->start_epoch(1, 99);
  ASSERT_EQ(b[0]->batches_per_epoch(), 7);  // ceil(193 / 32)
  for (int64_t k = 0; k < 7; ++k) {
    std::vector<int64_t> joined;
    for (auto& x : b) {
      auto rows = x->rows_of(k);
      EXPECT_LE(std::abs(int64_t(rows.size()) - whole.global_size_of(k) / 3), 1);
      joined.insert(joined.end(), rows.begin(), rows.end());
    }
    EXPECT_EQ(joined, whole.rows_of(k)) << "global batch " << k;  // the shares, in rank order, are the batch
  }
  // A last global batch smaller than the ranks (1 example, 16 ranks) leaves shares empty: such a
  // rank gets the global batch's first example, weighed 0. (The 2-rank runs below meet this too.)
  int empty = 0;
  for (int r = 0; r < 16; ++r) {
    Batcher many(source, BatcherOptions().batch_size(32).prefetch(0).shard(r, 16), c10::kCPU);
    many.start_epoch(1, 99, /*first_batch=*/6);
    ASSERT_EQ(many.global_size_of(6), 1);
    Batch batch;
    ASSERT_TRUE(many.next(batch));
    if (many.share_size_of(6) == 0) {
      ++empty;
      EXPECT_TRUE(many.rows_of(6).empty());
      ASSERT_EQ(batch.size, 1);
      EXPECT_EQ(batch.at("user").item<int64_t>(), source.user[whole.rows_of(6)[0]].item<int64_t>());
    } else {
      EXPECT_EQ(batch.size, many.share_size_of(6));
    }
  }
  EXPECT_EQ(empty, 15);
}

TEST(DataParallel, TwoRanksOfHalfBatchesEqualOneProcessAndSeeEveryExampleOncePerEpoch) {
  auto [ref, ref_mse] = one_process();
  for (const char* sparse : {"gather", "dense"}) {
    for (const char* overlap : {"1", "0"}) {
      SCOPED_TRACE(std::string("sparse exchange ") + sparse + ", overlap " + overlap);
      Ranks ranks(std::string(sparse) + overlap);
      ASSERT_EQ(ranks.run(2, {{"SPARSE", sparse}, {"OVERLAP", overlap}}), 0);
      expect_close(load_params(ranks.dir + "/params.ckpt"), ref, 2e-5);
      EXPECT_NEAR(std::stod(ranks.read("mse")), ref_mse, 1e-5);
      // What each rank read: its shares of the trainer's epochs and, where its share of a last
      // batch of 1 was empty, that example borrowed (weighed 0). The shares alone, both ranks
      // together, are the data set once per epoch (3 epochs).
      RatingSource shape;
      std::multiset<int64_t> shares;
      for (int r = 0; r < 2; ++r) {
        std::multiset<int64_t> read, expected;
        std::istringstream in(ranks.read("rows." + std::to_string(r)));
        for (int64_t x; in >> x;) read.insert(x);
        Batcher mine(shape, BatcherOptions().batch_size(32).prefetch(0).shard(r, 2), c10::kCPU);
        Batcher all(shape, BatcherOptions().batch_size(32).prefetch(0), c10::kCPU);
        for (int e = 0; e < 3; ++e) {
          const uint64_t seed = derive_seed(options().seed(), "epoch-" + std::to_string(e));
          mine.start_epoch(e, seed), all.start_epoch(e, seed);
          for (int64_t b = 0; b < mine.batches_per_epoch(); ++b) {
            auto rows = mine.rows_of(b);
            shares.insert(rows.begin(), rows.end());
            if (rows.empty()) rows = {all.rows_of(b)[0]};
            expected.insert(rows.begin(), rows.end());
          }
        }
        EXPECT_EQ(read, expected) << "rank " << r;
      }
      ASSERT_EQ(int64_t(shares.size()), 3 * kExamples);
      for (int64_t x = 0; x < kExamples; ++x) EXPECT_EQ(shares.count(x), 3u) << "example " << x;
    }
  }
}

TEST(DataParallel, AKilledRankIsNamedAndTheRunResumesOnOneOrTwoRanks) {
  auto [ref, ref_mse] = one_process();
  Ranks ranks("fault");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(ranks.run(2, {{"DIE_AT", "10"}, {"TIMEOUT", "20"}}), 0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string error = ranks.read("error.0");
  EXPECT_NE(error.find("rank 1 stopped responding"), std::string::npos) << error;
  EXPECT_LT(took, 20.0 + 10.0) << error;  // found within the timeout (a dead peer: at once)
  // Rank 0 checkpointed every 2 steps; step 10 died mid-epoch 2 (7 steps an epoch).
  const std::string last = ranks.dir + "/run/last.ckpt";
  ASSERT_TRUE(std::filesystem::exists(last));
  auto resumed_one = one_process(last);
  expect_close(resumed_one.first, ref, 2e-5);
  EXPECT_NEAR(resumed_one.second, ref_mse, 1e-5);
  Ranks again("fault_resume");
  std::filesystem::copy_file(last, again.dir + "/from.ckpt");
  ASSERT_EQ(again.run(2, {{"RESUME", again.dir + "/from.ckpt"}}), 0);
  expect_close(load_params(again.dir + "/params.ckpt"), ref, 2e-5);
  EXPECT_NEAR(std::stod(again.read("mse")), ref_mse, 1e-5);
}

TEST(DataParallel, WithDropoutAResumedRunOnTheSameRanksRepeatsTheUninterruptedOne) {
  // Every rank draws dropout masks: rank 0 from the generator checkpoints carry, the others from
  // streams of (seed, rank, epoch, batch), so that resuming draws what the first run drew.
  Ranks whole("dropout_whole");
  ASSERT_EQ(whole.run(2, {{"DROPOUT", "1"}}), 0);
  const auto ref = load_params(whole.dir + "/params.ckpt");
  Ranks cut("dropout_cut");
  EXPECT_NE(cut.run(2, {{"DROPOUT", "1"}, {"DIE_AT", "9"}}), 0);
  Ranks again("dropout_again");
  std::filesystem::copy_file(cut.dir + "/run/last.ckpt", again.dir + "/from.ckpt");
  ASSERT_EQ(again.run(2, {{"DROPOUT", "1"}, {"RESUME", again.dir + "/from.ckpt"}}), 0);
  expect_close(load_params(again.dir + "/params.ckpt"), ref, 1e-6);
  EXPECT_EQ(again.read("mse"), whole.read("mse"));
  // The masks did matter: without dropout the parameters differ.
  EXPECT_FALSE(torch::allclose(ref[2], one_process().first[2], 0, 1e-4));
}

TEST(DataParallel, AHungRankIsNamedWithinTheTimeout) {
  Ranks ranks("hang");
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 1 stops (SIGSTOP) at step 4: alive to the kernel, silent to its peers.
  EXPECT_NE(ranks.run(2, {{"STOP_AT", "4"}, {"TIMEOUT", "3"}}, /*grace_s=*/2), 0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string error = ranks.read("error.0");
  EXPECT_NE(error.find("rank 1 stopped responding"), std::string::npos) << error;
  EXPECT_NE(error.find("timeout 3 s"), std::string::npos) << error;
  EXPECT_LT(took, 25.0) << error;
}

TEST(DataParallel, ARankBusyInItsObserversPastTheTimeoutIsWaitedFor) {
  // Rank 0 spends 6 s in an observer (as in a slow checkpoint write) with a 2 s timeout: it says
  // it is busy, rank 1 waits, and the run ends as an unhindered one.
  auto [ref, ref_mse] = one_process();
  Ranks ranks("busy");
  ASSERT_EQ(ranks.run(2, {{"SLOW_AT", "5"}, {"TIMEOUT", "2"}}), 0);
  expect_close(load_params(ranks.dir + "/params.ckpt"), ref, 2e-5);
}

TEST(Distributed, EnvironmentOfTorchrunIsReadAndCheckedAndOneProcessNeedsNoGroup) {
  ::setenv("RANK", "1", 1), ::setenv("WORLD_SIZE", "4", 1), ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "10.0.0.7", 1), ::setenv("MASTER_PORT", "29511", 1);
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1), ::setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  DistributedOptions d = DistributedOptions::from_env();
  EXPECT_EQ(d.rank(), 1);
  EXPECT_EQ(d.world_size(), 4);
  EXPECT_EQ(d.master_addr(), "10.0.0.7");
  EXPECT_EQ(d.master_port(), 29511);
  EXPECT_TRUE(d.agent_store());
  EXPECT_EQ(d.store_prefix(), "mtrec/attempt_2/");
  ::setenv("RANK", "4", 1);
  try {
    DistributedOptions::from_env();
    ADD_FAILURE() << "RANK 4 of 4 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK=4 is not below WORLD_SIZE=4"), std::string::npos) << e.what();
  }
  ::setenv("RANK", "x", 1);
  EXPECT_THROW(DistributedOptions::from_env(), Error);
  for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                        "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"})
    ::unsetenv(k);
  EXPECT_EQ(DistributedOptions::from_env().world_size(), 1);
}

}  // namespace mtrec
