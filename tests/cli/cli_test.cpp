// End-to-end tests of the `mtrec` command line: each test runs the built binary (path from
// --mtrec-bin=, else the MTREC_CLI_BIN compile definition) and checks exit codes, messages
// and the --json output. No network is needed either way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

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

TEST(Cli, DemoWritesItsSummary) {
  mtrec::test::TempDir tmp;
  Result r = mtrec("demo --log-level warn --json " + shell_quote(tmp.path("demo.json")));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json(tmp.path("demo.json"));
  for (const char* key : {"users", "items", "interactions", "topics", "density", "seconds", "interactions_per_second",
                          "scenarios", "behaviours", "late_items", "samples", "problems", "valid", "seed"})
    EXPECT_TRUE(j.contains(key)) << "demo JSON lacks '" << key << "': " << j.dump(2);
  EXPECT_TRUE(j.value("valid", false)) << j.dump(2);
  EXPECT_EQ(j.value("users", -1), 2000);
  EXPECT_EQ(j.value("items", -1), 1000);
  EXPECT_EQ(j.value("seed", -1), 42);
  for (const char* s : {"home_feed", "search", "ads"}) EXPECT_TRUE(j["scenarios"].contains(s)) << j.dump(2);
  EXPECT_TRUE(contains(r.out, "validation: ok")) << r.out;
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
