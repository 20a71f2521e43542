// End-to-end tests of the `mtrec` command line: each test runs the built binary (path from
// --mtrec-bin=, else the MTREC_CLI_BIN compile definition) and checks exit codes, messages
// and the --json output. No network is needed either way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

extern char** environ;

namespace {

std::string g_bin = MTREC_CLI_BIN;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `mtrec ARGS` for every entry of `args` at once (ARGS already shell-quoted where
/// needed): loading LibTorch costs each process a second or two, mostly waiting, so concurrent
/// runs keep the suite short. Outputs are read in order; a later process whose output fills its
/// pipe simply waits.
std::vector<Result> mtrec_all(const std::vector<std::string>& args) {
  std::vector<FILE*> pipes;
  for (const auto& a : args) {
    const std::string cmd = shell_quote(g_bin) + " " + a + " 2>&1";
    pipes.push_back(::popen(cmd.c_str(), "r"));
    if (!pipes.back()) ADD_FAILURE() << "popen failed for " << cmd;
  }
  std::vector<Result> results(args.size());
  for (size_t k = 0; k < pipes.size(); ++k) {
    if (!pipes[k]) continue;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipes[k])) > 0) results[k].out.append(buf, n);
    const int status = ::pclose(pipes[k]);
    results[k].code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return results;
}

Result mtrec(const std::string& args) { return mtrec_all({args})[0]; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "no JSON written to " << path;
  if (!in.good()) return nlohmann::json::object();
  return nlohmann::json::parse(in);
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

/// One CSV line from already-quoted fields.
std::string fmt_row(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t k = 0; k < fields.size(); ++k) line += (k ? "," : "") + fields[k];
  return line + "\n";
}

TEST(Cli, HelpOfEveryCommandExitsZero) {
  const std::vector<std::string> args = {"--help",          "data --help",          "data stats --help",
                                         "data validate --help", "data synth --help", "data download --help",
                                         "demo --help"};
  std::vector<Result> r = mtrec_all(args);
  for (size_t k = 0; k < args.size(); ++k) {
    EXPECT_EQ(r[k].code, 0) << "mtrec " << args[k] << ":\n" << r[k].out;
    EXPECT_TRUE(contains(r[k].out, "Usage")) << "mtrec " << args[k] << ":\n" << r[k].out;
  }
  for (const char* sub : {"data", "demo"}) EXPECT_TRUE(contains(r[0].out, sub)) << r[0].out;
  for (const char* sub : {"stats", "validate", "synth", "download"}) EXPECT_TRUE(contains(r[1].out, sub)) << r[1].out;
  EXPECT_TRUE(contains(r[2].out, "--dataset")) << r[2].out;
  EXPECT_TRUE(contains(r[4].out, "--interactions")) << r[4].out;
}

TEST(Cli, UnknownCommandAndBadDeviceFail) {
  std::vector<Result> r = mtrec_all({"no-such-command", "data stats --device cuda:x"});
  EXPECT_NE(r[0].code, 0) << r[0].out;
  EXPECT_NE(r[1].code, 0) << r[1].out;
  EXPECT_TRUE(contains(r[1].out, "unknown device 'cuda:x' (expected auto, cpu, cuda or cuda:N)")) << r[1].out;
  // Checked while parsing: the demo does not start generating with a bad device.
  Result demo = mtrec("demo --device nonsense");
  EXPECT_NE(demo.code, 0) << demo.out;
  EXPECT_TRUE(contains(demo.out, "unknown device 'nonsense'")) << demo.out;
  EXPECT_FALSE(contains(demo.out, "synthetic world")) << demo.out;
}

TEST(Cli, StatsOfMovieLens100k) {
  MTREC_REQUIRE_ML100K(dir);
  mtrec::test::TempDir tmp;
  Result r = mtrec("data stats --dataset ml-100k --data-dir " + shell_quote(dir) + " --json " +
                   shell_quote(tmp.path("stats.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json(tmp.path("stats.json"));
  EXPECT_EQ(j.value("users", -1), 943);
  EXPECT_EQ(j.value("items", -1), 1682);
  EXPECT_EQ(j.value("interactions", -1), 100000);
  EXPECT_EQ(j["rating"].value("min", 0.0), 1.0);
  EXPECT_EQ(j["rating"].value("max", 0.0), 5.0);
  EXPECT_TRUE(contains(r.out, "100000")) << r.out;
}

TEST(Cli, StatsOfMissingDataSaysHowToGetIt) {
  mtrec::test::TempDir tmp;
  Result r = mtrec("data stats --dataset ml-100k --data-dir " + shell_quote(tmp.path()));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "mtrec data download ml-100k")) << r.out;
}

TEST(Cli, ValidateListsEveryProblemWithFileLineField) {
  mtrec::test::TempDir tmp;
  const std::string bad = tmp.write("bad.csv",
                                    "user,item,rating,timestamp\n"
                                    "u1,i1,5,100\n"
                                    "u1,i2,five,101\n"    // line 3: rating not a number
                                    "u2,i1,3,yesterday\n"  // line 4: timestamp not an integer
                                    "u2,i3,4\n"            // line 5: a field missing
                                    ",i3,4,102\n"          // line 6: empty user
                                    "u3,i3,2,103\n");
  const std::string good = tmp.write("good.tsv", "userId\tmovieId\n7\t1\n8\t\"2\"\n");
  std::vector<Result> rs = mtrec_all({"data validate --path " + shell_quote(bad) + " --json " +
                                          shell_quote(tmp.path("v.json")),
                                      "data validate --path " + shell_quote(good) + " --delimiter '\\t'"});
  const Result& r = rs[0];
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, bad + ":3: field 'rating'")) << r.out;
  EXPECT_TRUE(contains(r.out, bad + ":4: field 'timestamp'")) << r.out;
  EXPECT_TRUE(contains(r.out, bad + ":5: field 'timestamp'")) << r.out;
  EXPECT_TRUE(contains(r.out, bad + ":6: field 'user'")) << r.out;
  EXPECT_TRUE(contains(r.out, "4 problems (2 good rows)")) << r.out;
  nlohmann::json j = read_json(tmp.path("v.json"));
  EXPECT_EQ(j.value("ok", true), false);
  ASSERT_EQ(j["problems"].size(), 4u) << j.dump();
  EXPECT_EQ(j["problems"][0]["line"], 3);
  EXPECT_EQ(j["problems"][0]["field"], "rating");

  EXPECT_EQ(rs[1].code, 0) << rs[1].out;
  EXPECT_TRUE(contains(rs[1].out, "ok: 2 rows")) << rs[1].out;
}

TEST(Cli, SynthThenStatsAndValidateAgree) {
  mtrec::test::TempDir tmp;
  const std::string dir = tmp.path("world");
  Result r = mtrec("data synth --out " + shell_quote(dir) +
                   " --users 50 --items 30 --interactions 2000 --seed 3 --log-level warn --json " +
                   shell_quote(tmp.path("synth.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json synth = read_json(tmp.path("synth.json"));
  EXPECT_EQ(synth.value("users", -1), 50);
  EXPECT_EQ(synth.value("items", -1), 30);
  EXPECT_TRUE(synth.value("valid", false)) << synth.dump(2);
  const int64_t n = synth.value("interactions", int64_t{-1});
  EXPECT_GT(n, 1000);

  std::vector<Result> rs =
      mtrec_all({"data stats --dataset csv --path " + shell_quote(dir + "/interactions.csv") + " --json " +
                     shell_quote(tmp.path("file.json")),
                 "data stats --dataset csv --path " + shell_quote(dir) + " --json " + shell_quote(tmp.path("dir.json")),
                 "data validate --path " + shell_quote(dir + "/interactions.csv")});
  // The interactions file alone (users and items that occur in it) ...
  ASSERT_EQ(rs[0].code, 0) << rs[0].out;
  nlohmann::json file = read_json(tmp.path("file.json"));
  EXPECT_EQ(file.value("interactions", int64_t{-1}), n);
  EXPECT_LE(file.value("users", -1), 50);
  EXPECT_LE(file.value("items", -1), 30);
  EXPECT_EQ(file["behaviors"].size(), synth["behaviours"].size());
  // ... and the whole folder (catalogues included): the same counts as the generator.
  ASSERT_EQ(rs[1].code, 0) << rs[1].out;
  nlohmann::json whole = read_json(tmp.path("dir.json"));
  EXPECT_EQ(whole.value("users", -1), 50);
  EXPECT_EQ(whole.value("items", -1), 30);
  EXPECT_EQ(whole.value("interactions", int64_t{-1}), n);
  EXPECT_EQ(whole["item_text_fields"], (nlohmann::json{"title", "description"}));
  EXPECT_EQ(whole["user_text_fields"], (nlohmann::json{"profile"}));

  EXPECT_EQ(rs[2].code, 0) << rs[2].out;
  EXPECT_TRUE(contains(rs[2].out, "ok: " + std::to_string(n) + " rows")) << rs[2].out;
}

TEST(Cli, DownloadFailsCleanlyOfflineAndOnABadZip) {
  mtrec::test::TempDir tmp;
  const std::string zip = tmp.write("ml-100k.zip", "not a zip");
  std::vector<Result> r =
      mtrec_all({"data download ml-100k --zip " + shell_quote(zip) + " --data-dir " + shell_quote(tmp.path("z")),
                 "data download ml-100k --data-dir " + shell_quote(tmp.path("net"))});
  EXPECT_NE(r[0].code, 0) << r[0].out;
  EXPECT_TRUE(contains(r[0].out, "checksum mismatch")) << r[0].out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path("z/ml-100k")));
  if (r[1].code == 0) GTEST_SKIP() << "this machine reached files.grouplens.org; the offline message was not checked";
  EXPECT_TRUE(contains(r[1].out, "cannot reach files.grouplens.org")) << r[1].out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path("net/ml-100k"))) << "a failed download left a folder behind";
}

TEST(Cli, DemoTrainsTheJointModelAndEvalReproducesItsMetrics) {
  mtrec::test::TempDir tmp;
  // A smaller world than the default keeps the test short; the pipeline is the same.
  const std::string world = " --users 300 --items 150 --interactions 15000";
  Result r = mtrec("demo" + world + " --epochs 2 --no-compare --log-level warn --run-dir " + shell_quote(tmp.path("run")) +
                   " --json " + shell_quote(tmp.path("demo.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json(tmp.path("demo.json"));
  for (const char* key : {"seed", "wall_s", "world", "joint", "recommendations"})
    ASSERT_TRUE(j.contains(key)) << "demo JSON lacks '" << key << "': " << j.dump(2);
  EXPECT_TRUE(j["world"].value("valid", false)) << j["world"].dump(2);
  EXPECT_EQ(j["world"].value("users", -1), 300);
  const auto& o = j["joint"]["overall"];
  for (const char* task : {"rating", "ctr", "next_item", "match", "scenario"}) EXPECT_TRUE(o.contains(task)) << o.dump(2);
  // Better than chance on a world with known structure, per scenario too.
  EXPECT_GT(o["ctr"].value("auc", 0.0), 0.6) << o.dump(2);
  EXPECT_GT(o["scenario"].value("accuracy", 0.0), o["scenario"].value("majority_accuracy", 1.0) + 0.2) << o.dump(2);
  EXPECT_GT(o["next_item"].value("HR@10", 0.0), 10.0 / 150) << o.dump(2);
  for (const char* s : {"home_feed", "search", "ads"}) EXPECT_TRUE(j["joint"]["per_scenario"].contains(s)) << j.dump(2);
  ASSERT_EQ(j["recommendations"].size(), 2u) << j.dump(2);
  for (const auto& u : j["recommendations"]) {
    EXPECT_FALSE(u.value("profile", "").empty()) << u.dump(2);
    for (const char* s : {"home_feed", "search", "ads"}) EXPECT_EQ(u["top5"][s].size(), 5u) << u.dump(2);
  }
  EXPECT_TRUE(contains(r.out, "validation: ok")) << r.out;
  EXPECT_TRUE(contains(r.out, "wall time")) << r.out;
  EXPECT_TRUE(std::filesystem::exists(tmp.path("run/joint/report.html")));
  // `mtrec eval` of the demo's checkpoint on the same world and split gives the same test metrics.
  Result e = mtrec("eval --checkpoint " + shell_quote(tmp.path("run/joint.ckpt")) +
                   " --dataset synthetic --synthetic-users 300 --synthetic-items 150 --synthetic-interactions 15000"
                   " --log-level warn --json " + shell_quote(tmp.path("eval.json")));
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json ej = read_json(tmp.path("eval.json"));
  for (const char* task : {"rating", "ctr", "next_item", "match", "scenario"})
    EXPECT_EQ(ej["report"]["overall"][task].dump(), o[task].dump()) << task;
}

TEST(Cli, TrainDefaultsToTheJointModelWithLearnedWeighting) {
  mtrec::test::TempDir tmp;
  Result r = mtrec("train --dataset synthetic --synthetic-users 200 --synthetic-items 100 --synthetic-interactions 8000"
                   " --epochs 1 --weighting uncertainty --arch ple --scenario-arch pepnet --text frozen"
                   " --tasks rating,ctr,next-item --log-level warn --json " + shell_quote(tmp.path("t.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json(tmp.path("t.json"));
  EXPECT_EQ(j.value("task", ""), "joint") << j.dump(2);
  EXPECT_EQ(j["tasks"].size(), 3u) << j.dump(2);
  // Uncertainty weights start at 0.5 and move once trained.
  for (const char* t : {"rating", "ctr", "next_item"}) {
    ASSERT_TRUE(j["weights_in_force"].contains(t)) << j.dump(2);
    EXPECT_NE(j["weights_in_force"].value(t, 0.5), 0.5) << t;
  }
  EXPECT_TRUE(j["report"]["overall"].contains("next_item")) << j.dump(2);
  // An unknown task is refused by name.
  Result bad = mtrec("train --dataset synthetic --synthetic-users 50 --synthetic-items 30 --synthetic-interactions 900"
                     " --tasks rating,clicks --log-level warn");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.out, "'clicks'")) << bad.out;
}

TEST(Cli, DemoOnMovieLensShowsTitlesAndGenres) {
  MTREC_REQUIRE_ML100K(dir);
  mtrec::test::TempDir tmp;
  Result r = mtrec("demo --dataset ml-100k --data-dir " + shell_quote(dir) + " --epochs 1 --no-compare --samples 1"
                   " --text frozen --tasks ctr,next-item --log-level warn --run-dir " + shell_quote(tmp.path("run")) +
                   " --json " + shell_quote(tmp.path("demo.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json(tmp.path("demo.json"));
  EXPECT_EQ(j["world"].value("dataset", ""), "ml-100k") << j.dump(2);
  EXPECT_GT(j["joint"]["overall"]["ctr"].value("auc", 0.0), 0.7) << j.dump(2);
  ASSERT_EQ(j["recommendations"].size(), 1u) << j.dump(2);
  for (const auto& [scenario, top] : j["recommendations"][0]["top5"].items()) {
    ASSERT_EQ(top.size(), 5u) << top.dump(2);
    for (const auto& rec : top) {
      EXPECT_TRUE(contains(rec.value("title", ""), "(19")) << "a MovieLens title carries its year: " << rec.dump();
      EXPECT_FALSE(rec.value("tag", "").empty()) << rec.dump();
    }
  }
  EXPECT_TRUE(contains(r.out, "MovieLens 100K")) << r.out;
}

TEST(Cli, KnnTrainSaveAndEvalOnMovieLens) {
  MTREC_REQUIRE_ML100K(dir);
  mtrec::test::TempDir tmp;
  const std::string data = " --dataset ml-100k --data-dir " + shell_quote(dir);
  std::vector<Result> r = mtrec_all(
      {"train --task knn --split u1 --log-level warn" + data + " --out " + shell_quote(tmp.path("knn.ckpt")) +
           " --json " + shell_quote(tmp.path("u1.json")),
       "train --task knn --split loo --log-level warn" + data + " --json " + shell_quote(tmp.path("loo.json"))});
  ASSERT_EQ(r[0].code, 0) << r[0].out;
  ASSERT_EQ(r[1].code, 0) << r[1].out;
  nlohmann::json u1 = read_json(tmp.path("u1.json")), loo = read_json(tmp.path("loo.json"));
  // bench/quality_knn's item Pearson-baseline row on u1.
  EXPECT_NEAR(u1.value("rmse", 0.0), 0.9324, 5e-4) << u1.dump(2);
  EXPECT_EQ(u1.value("test_count", 0), 20000);
  for (const char* key : {"mae", "seed", "device", "wall_s", "knn"}) EXPECT_TRUE(u1.contains(key)) << u1.dump(2);
  // Sampled (100 negatives) is an easier task than the full ranking over ~1600 items.
  EXPECT_GT(loo.value("hr@10_full", 0.0), 0.03) << loo.dump(2);
  EXPECT_GT(loo.value("hr@10_sampled100", 0.0), loo.value("hr@10_full", 1.0)) << loo.dump(2);
  Result e = mtrec("eval --checkpoint " + shell_quote(tmp.path("knn.ckpt")) + " --split u1 --log-level warn" + data +
                   " --json " + shell_quote(tmp.path("eval.json")));
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json ej = read_json(tmp.path("eval.json"));
  EXPECT_NEAR(ej.value("rmse", 0.0), u1.value("rmse", 1.0), 1e-9) << ej.dump(2);
  EXPECT_EQ(ej.value("task", ""), "knn");
}

TEST(Cli, NextItemTrainSaveAndEvalOnSyntheticWorld) {
  mtrec::test::TempDir tmp;
  const std::string world =
      " --dataset synthetic --synthetic-users 300 --synthetic-items 120 --synthetic-interactions 15000 --log-level warn";
  Result t = mtrec("train --task next-item --epochs 6 --max-len 50 --eval-every 2" + world + " --out " +
                   shell_quote(tmp.path("seq.ckpt")) + " --json " + shell_quote(tmp.path("t.json")));
  ASSERT_EQ(t.code, 0) << t.out;
  nlohmann::json tj = read_json(tmp.path("t.json"));
  // The world's sessions follow a topic Markov chain: the model must rank the held-out item
  // better than popularity does (NDCG; measured .320 against .270).
  EXPECT_GT(tj.value("ndcg@10", 0.0), tj["most_popular_full"].value("NDCG@10", 1.0) + 0.02) << tj.dump(2);
  EXPECT_GT(tj["sampled_100"].value("HR@10", 0.0), tj.value("hr@10", 1.0)) << tj.dump(2);
  Result e = mtrec("eval --checkpoint " + shell_quote(tmp.path("seq.ckpt")) + world + " --json " +
                   shell_quote(tmp.path("e.json")));
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json ej = read_json(tmp.path("e.json"));
  EXPECT_EQ(ej.value("task", ""), "next-item");
  EXPECT_NEAR(ej.value("ndcg@10", 0.0), tj.value("ndcg@10", 1.0), 1e-6) << ej.dump(2);
}

TEST(Cli, PretrainAndEmbedReadMovieLens) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "sentencepiece is loaded with RTLD_DEEPBIND, which AddressSanitizer does not support";
#endif
  MTREC_REQUIRE_ML100K(dir);
  mtrec::test::TempDir tmp;
  const std::string data = " --dataset ml-100k --data-dir " + shell_quote(dir) + " --log-level warn";
  Result p = mtrec("pretrain" + data + " --out " + shell_quote(tmp.path("model")) +
                   " --vocab-size 300 --dim 16 --layers 1 --heads 2 --max-len 16 --epochs 1 --batch 256 --json " +
                   shell_quote(tmp.path("p.json")));
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_EQ(read_json(tmp.path("p.json")).value("texts", 0), 1682 + 943);
  Result e = mtrec("embed" + data + " --model " + shell_quote(tmp.path("model")) + " --out " +
                   shell_quote(tmp.path("emb.tsv")) + " --json " + shell_quote(tmp.path("e.json")));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(read_json(tmp.path("e.json"))["counts"]["item"].value("total", 0), 1682);
}

// The training engine's resume, end to end: a training process killed with SIGKILL right after
// its first mid-epoch checkpoint, resumed from that checkpoint, ends with the parameters and
// metrics of an uninterrupted run, bit for bit.
TEST(Cli, TrainingKilledMidEpochResumesBitIdentically) {
  mtrec::test::TempDir tmp;
  const std::string common =
      "train --task rating --solver sgd --dataset synthetic --synthetic-interactions 60000 --epochs 6 --threads 1 "
      "--checkpoint-every 4 --log-level info";
  Result whole = mtrec(common + " --run-dir " + tmp.path("a") + " --json " + tmp.path("a.json"));
  ASSERT_EQ(whole.code, 0) << whole.out;

  // The run to kill: started directly (not through a shell) so that SIGKILL reaches mtrec.
  std::vector<std::string> argv_s = {g_bin};
  std::istringstream words(common + " --run-dir " + tmp.path("b") + " --json " + tmp.path("b.json"));
  for (std::string w; words >> w;) argv_s.push_back(w);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, g_bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  const std::string ckpt = tmp.path("b/select/last.ckpt");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(ckpt) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the training process ended before it could be killed (status " << status << ")";
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  EXPECT_FALSE(std::filesystem::exists(tmp.path("b.json")));

  Result resumed = mtrec(common + " --run-dir " + tmp.path("b") + " --json " + tmp.path("b.json") + " --resume " + ckpt);
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_TRUE(contains(resumed.out, "resuming '" + ckpt + "' at epoch 1, batch ")) << resumed.out;
  auto a = read_json(tmp.path("a.json")), b = read_json(tmp.path("b.json"));
  EXPECT_EQ(a.at("model_checksum"), b.at("model_checksum"));
  EXPECT_EQ(a.at("rmse").get<double>(), b.at("rmse").get<double>());
  EXPECT_EQ(a.at("best_valid_rmse").get<double>(), b.at("best_valid_rmse").get<double>());
  EXPECT_EQ(a.at("epochs_run"), b.at("epochs_run"));
}

// Every option from a TOML file; the command line wins; the effective configuration is
// written beside the run's outputs and stored in its checkpoints.
TEST(Cli, ConfigFileRoundTrip) {
  mtrec::test::TempDir tmp;
  {
    std::ofstream cfg(tmp.path("run.toml"));
    cfg << "seed = 7\n[train]\ntask = \"rating\"\nsolver = \"sgd\"\ndataset = \"synthetic\"\nepochs = 2\n"
           "synthetic-interactions = 20000\ndim = 8\n";
  }
  Result r = mtrec("--config " + tmp.path("run.toml") + " train --dim 6 --run-dir " + tmp.path("run") + " --json " +
                   tmp.path("r.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = read_json(tmp.path("r.json"));
  EXPECT_EQ(j.at("seed"), 7);
  EXPECT_EQ(j.at("dim"), 6);  // the flag beats the file
  std::ifstream written(tmp.path("run/config.toml"));
  std::stringstream text;
  text << written.rdbuf();
  EXPECT_TRUE(contains(text.str(), "seed = \"7\"")) << text.str();
  EXPECT_TRUE(contains(text.str(), "[train]\n")) << text.str();
  EXPECT_TRUE(contains(text.str(), "dim = \"6\"")) << text.str();
  // The written file reproduces the run.
  Result again = mtrec("--config " + tmp.path("run/config.toml") + " train --json " + tmp.path("r2.json") +
                       " --run-dir " + tmp.path("run2"));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(read_json(tmp.path("r2.json")).at("model_checksum"), j.at("model_checksum"));
}

// A user's own files, no code: two interaction files with behaviour names and an item
// catalogue whose text feeds the text backbone; repeated pairs are reported with the policy.
TEST(Cli, TrainAndEvalOnUserCsvFilesWithCatalogue) {
  mtrec::test::TempDir tmp;
  std::string ratings = "user,item,rating,timestamp\n", wish = "user,book_id,timestamp\n", items = "item,title,authors\n";
  for (int u = 0; u < 30; ++u)
    for (int k = 0; k < 10; ++k) {
      const int i = (u * 7 + k * 3) % 25;
      ratings += fmt_row({"u" + std::to_string(u), "b" + std::to_string(i), std::to_string(1 + (u + 2 * i) % 5),
                          std::to_string(1000 + u * 10 + k)});
      if (k < 2) wish += fmt_row({"u" + std::to_string(u), "b" + std::to_string((i + 11) % 25), std::to_string(5000 + u)});
    }
  ratings += "u0,b0,5,9999\n";  // u0 re-rates b0 (first rated at t=1000)
  for (int i = 0; i < 27; ++i)    // b25, b26: only in the catalogue (cold start)
    items += fmt_row({"b" + std::to_string(i), "\"Book " + std::to_string(i) + ", vol. 1\"", "Author " + std::to_string(i % 4)});
  const std::string r = tmp.write("ratings.csv", ratings), w = tmp.write("wish.csv", wish), it = tmp.write("items.csv", items);
  const std::string data = " --dataset csv --path " + shell_quote(r) + " --path " + shell_quote(w) +
                           " --behaviors rating,wishlist --items " + shell_quote(it) +
                           " --item-id-col item --item-text-cols title,authors";
  std::vector<Result> rs = mtrec_all(
      {"train --task rating --solver sgd --epochs 2" + data + " --out " + shell_quote(tmp.path("mf.ckpt")) + " --json " +
           shell_quote(tmp.path("t.json")),
       "data stats" + data + " --json " + shell_quote(tmp.path("stats.json"))});
  ASSERT_EQ(rs[0].code, 0) << rs[0].out;
  nlohmann::json t = read_json(tmp.path("t.json"));
  EXPECT_EQ(t.value("dataset", ""), "csv");
  EXPECT_EQ(t.value("split", ""), "random");
  EXPECT_GT(t.value("test_count", 0), 0) << t.dump(2);
  EXPECT_GT(t.value("rmse", 0.0), 0.0) << t.dump(2);
  EXPECT_LT(t.value("rmse", 99.0), 5.0) << t.dump(2);
  // The loader says what it read and what the duplicate policy (auto: keep-last on ratings) did.
  EXPECT_TRUE(contains(rs[0].out, "2 items only there (cold start)")) << rs[0].out;
  EXPECT_TRUE(contains(rs[0].out, "1 repeated (user, item, behaviour) pair; keep-last: 361 -> 360 rows")) << rs[0].out;

  ASSERT_EQ(rs[1].code, 0) << rs[1].out;
  nlohmann::json st = read_json(tmp.path("stats.json"));
  EXPECT_EQ(st.value("interactions", 0), 361);  // stats keep every row and count the repeat
  EXPECT_EQ(st.value("repeated_pairs", -1), 1);
  EXPECT_EQ(st.value("items", 0), 27);
  EXPECT_EQ(st["behaviors"], (nlohmann::json{"rating", "wishlist"}));
  EXPECT_EQ(st["item_text_fields"], (nlohmann::json{"title", "authors"}));
  EXPECT_TRUE(contains(rs[1].out, "repeated")) << rs[1].out;

  std::vector<Result> es = mtrec_all(
      {"eval --checkpoint " + shell_quote(tmp.path("mf.ckpt")) + data + " --json " + shell_quote(tmp.path("e.json")),
       "train --task rating --solver sgd --epochs 1 --duplicates mean --split loo" + data + " --json " +
           shell_quote(tmp.path("m.json")),
       "train --task rating --solver sgd --epochs 1 --dataset csv --path " + shell_quote(r) +
           " --timestamp-col none --split loo"});
  ASSERT_EQ(es[0].code, 0) << es[0].out;
  EXPECT_NEAR(read_json(tmp.path("e.json")).value("rmse", 0.0), t.value("rmse", 1.0), 1e-6);
  ASSERT_EQ(es[1].code, 0) << es[1].out;
  EXPECT_TRUE(contains(es[1].out, "mean: 361 -> 360 rows")) << es[1].out;
  EXPECT_NE(es[2].code, 0) << es[2].out;
  EXPECT_TRUE(contains(es[2].out, "--split loo orders rows by time, but 'ratings' has no timestamps")) << es[2].out;
}

TEST(Cli, SynthFolderTrainsKnnWithDatasetDir) {
  mtrec::test::TempDir tmp;
  const std::string dir = tmp.path("world");
  Result s = mtrec("data synth --out " + shell_quote(dir) + " --users 60 --items 40 --interactions 3000 --seed 5 --log-level warn");
  ASSERT_EQ(s.code, 0) << s.out;
  const std::string data = " --dataset dir --path " + shell_quote(dir) + " --split loo --log-level warn";
  Result t = mtrec("train --task knn" + data + " --out " + shell_quote(tmp.path("knn.ckpt")) + " --json " +
                   shell_quote(tmp.path("t.json")));
  ASSERT_EQ(t.code, 0) << t.out;
  nlohmann::json tj = read_json(tmp.path("t.json"));
  EXPECT_EQ(tj.value("dataset", ""), "dir");
  EXPECT_GT(tj.value("hr@10_full", 0.0), 0.0) << tj.dump(2);
  Result e = mtrec("eval --checkpoint " + shell_quote(tmp.path("knn.ckpt")) + data + " --json " +
                   shell_quote(tmp.path("e.json")));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NEAR(read_json(tmp.path("e.json")).value("hr@10_full", 0.0), tj.value("hr@10_full", 1.0), 1e-9);
}

TEST(Cli, BadCatalogueFailsWithFileLineField) {
  mtrec::test::TempDir tmp;
  const std::string r = tmp.write("r.csv", "user,item,rating\nu1,i1,4\nu2,i2,3\n");
  const std::string bad = tmp.write("items.csv", "item,title\ni1,A\ni2\n");
  const std::string notext = tmp.write("items2.csv", "item,title\ni1,A\n");
  std::vector<Result> rs = mtrec_all(
      {"train --task rating --solver sgd --epochs 1 --dataset csv --path " + shell_quote(r) + " --items " + shell_quote(bad),
       "train --task rating --solver sgd --epochs 1 --dataset csv --path " + shell_quote(r) + " --items " +
           shell_quote(notext) + " --item-text-cols title,authors",
       "train --task rating --dataset csv --path " + shell_quote(r) + " --behaviors a,b"});
  EXPECT_NE(rs[0].code, 0) << rs[0].out;
  EXPECT_TRUE(contains(rs[0].out, bad + ":3: field 'title': expected 2 fields, found 1")) << rs[0].out;
  EXPECT_NE(rs[1].code, 0) << rs[1].out;
  EXPECT_TRUE(contains(rs[1].out, notext + ":1: field 'authors': no text column named 'authors' (columns: item, title)"))
      << rs[1].out;
  EXPECT_NE(rs[2].code, 0) << rs[2].out;
  EXPECT_TRUE(contains(rs[2].out, "--behaviors names 2 behaviour(s) for 1 --path file(s)")) << rs[2].out;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mtrec-bin=", 0) == 0) g_bin = a.substr(12);
    // The data folder from ctest, unless the caller set MTREC_DATA_DIR.
    if (a.rfind("--data-dir=", 0) == 0) ::setenv("MTREC_DATA_DIR", a.substr(11).c_str(), 0);
  }
  if (!std::filesystem::exists(g_bin)) {
    std::fprintf(stderr, "mtrec binary not found at '%s' (pass --mtrec-bin=PATH)\n", g_bin.c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
