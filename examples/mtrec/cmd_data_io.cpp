// `mtrec data stats | validate | download`: look at, check and fetch interaction data.
//   mtrec data stats --dataset ml-100k --data-dir data
//   mtrec data stats --dataset csv --path clicks.tsv --delimiter '\t' --rating-col none
//   mtrec data stats --dataset csv --path ratings.csv --path wish.csv --behaviors rating,wishlist --items books.csv
//   mtrec data validate --path ratings.csv          # every problem as FILE:LINE: field 'X': message
//   mtrec data download ml-100k --data-dir data     # verified by SHA-256, unzipped atomically
//   mtrec data download ml-100k --zip ~/ml-100k.zip # a zip fetched by hand: same checks
#include <fmt/format.h>
#if MTREC_HAVE_HTTPLIB
#include <httplib.h>
#endif
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "data_flags.h"
#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/data/csv_reader.h"
#include "mtrec/data/dataset_loader.h"
#include "mtrec/data/download.h"
#include "mtrec/data/movielens.h"

extern char** environ;

namespace mtrec::cli {
namespace {

namespace fs = std::filesystem;

std::string default_data_dir() {
  const char* env = std::getenv("MTREC_DATA_DIR");
  return env && *env ? env : "data";
}

/// DIR itself when it holds `check_file`, else DIR/<folder> when that does.
std::string resolve_dataset_dir(const std::string& dir, const DatasetArchive& a) {
  if (fs::exists(fs::path(dir) / a.check_file)) return dir;
  fs::path sub = fs::path(dir) / a.folder;
  if (fs::exists(sub / a.check_file)) return sub.string();
  throw Error(fmt::format("no {} data in '{}' (looked for {} and {}); run `mtrec data download {} --data-dir {}`",
                          a.name, dir, (fs::path(dir) / a.check_file).string(), (sub / a.check_file).string(), a.name,
                          dir));
}

std::string format_time(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (t < 0 || t > 4102444800LL || gmtime_r(&tt, &tm) == nullptr) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string join(const std::vector<std::string>& v, size_t max_items = 8) {
  std::string out;
  for (size_t k = 0; k < v.size() && k < max_items; ++k) out += (k ? ", " : "") + v[k];
  if (v.size() > max_items) out += fmt::format(", ... ({} more)", v.size() - max_items);
  return out;
}

void run_stats(const CliContext& ctx, const std::string& dataset, const std::string& data_dir,
               const DataFileFlags& files) {
  Dataset ds;
  std::string source;
  DatasetLoadReport report;
  if (dataset == "csv" || dataset == "dir") {
    // Repeats are counted, not resolved: stats describe the files as they are.
    DataFileFlags raw = files;
    raw.duplicates = "keep-all";
    ds = load_dataset(raw.spec(dataset), &report);
    source = join(files.paths);
  } else if (dataset == "ml-100k" || dataset == "ml-1m") {
    source = resolve_dataset_dir(data_dir, *find_archive(dataset));
    ds = dataset == "ml-100k" ? read_movielens_100k(source) : read_movielens_1m(source);
  } else {
    throw Error("unknown --dataset '" + dataset + "' (expected ml-100k, ml-1m, csv or dir)");
  }
  const DuplicateCount dup = count_duplicate_pairs(ds.interactions);
  DatasetStats s = compute_stats(ds);
  fmt::print("{:<14}{} ({})\n", "dataset", ds.name, source);
  fmt::print("{:<14}{}\n", "users", s.users);
  fmt::print("{:<14}{}\n", "items", s.items);
  fmt::print("{:<14}{}\n", "interactions", s.interactions);
  fmt::print("{:<14}{:.6f} ({:.4f}% of user-item pairs)\n", "density", s.density, 100 * s.density);
  fmt::print("{:<14}{} (user, item, behaviour) pairs with more than one row ({} extra rows)\n", "repeated", dup.pairs,
             dup.extra_rows);
  if (s.has_rating)
    fmt::print("{:<14}{:g} .. {:g}, mean {:.4f}\n", "ratings", s.rating_min, s.rating_max, s.rating_mean);
  else
    fmt::print("{:<14}none (implicit feedback)\n", "ratings");
  if (s.has_timestamp)
    fmt::print("{:<14}{} .. {} ({} .. {} UTC)\n", "timestamps", s.timestamp_min, s.timestamp_max,
               format_time(s.timestamp_min), format_time(s.timestamp_max));
  else
    fmt::print("{:<14}none\n", "timestamps");
  fmt::print("{:<14}mean {:.2f}, median {}\n", "per user", s.mean_per_user, s.median_per_user);
  fmt::print("{:<14}mean {:.2f}, median {}\n", "per item", s.mean_per_item, s.median_per_item);
  fmt::print("{:<14}{} ({})\n", "scenarios", s.scenarios, join(ds.scenarios.raws()));
  fmt::print("{:<14}{} ({})\n", "behaviours", s.behaviors, join(ds.behaviors.raws()));
  if (!ds.item_text.fields().empty() || !ds.user_text.fields().empty())
    fmt::print("{:<14}items: {}; users: {}\n", "text", join(ds.item_text.fields()), join(ds.user_text.fields()));
  for (const auto& note : report.notes) fmt::print("{:<14}{}\n", "note", note);

  nlohmann::json j = {{"dataset", ds.name},
                      {"source", source},
                      {"users", s.users},
                      {"items", s.items},
                      {"interactions", s.interactions},
                      {"density", s.density},
                      {"repeated_pairs", dup.pairs},
                      {"repeated_extra_rows", dup.extra_rows},
                      {"has_rating", s.has_rating},
                      {"has_timestamp", s.has_timestamp},
                      {"mean_per_user", s.mean_per_user},
                      {"median_per_user", s.median_per_user},
                      {"mean_per_item", s.mean_per_item},
                      {"median_per_item", s.median_per_item},
                      {"scenarios", ds.scenarios.raws()},
                      {"behaviors", ds.behaviors.raws()},
                      {"item_text_fields", ds.item_text.fields()},
                      {"user_text_fields", ds.user_text.fields()},
                      {"notes", report.notes}};
  if (s.has_rating) j["rating"] = {{"min", s.rating_min}, {"max", s.rating_max}, {"mean", s.rating_mean}};
  if (s.has_timestamp) j["timestamp"] = {{"min", s.timestamp_min}, {"max", s.timestamp_max}};
  ctx.write_json(j);
}

void run_validate(const CliContext& ctx, const std::string& path, const MappingFlags& mapping) {
  CsvValidation v = validate_csv(path, mapping.options());
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& e : v.problems) {
    fmt::print("{}\n", e.what());
    problems.push_back({{"line", e.line()}, {"field", e.field()}, {"message", e.message()}});
  }
  ctx.write_json({{"file", path}, {"rows", v.rows}, {"ok", v.ok()}, {"problems", problems}});
  if (!v.ok()) {
    fmt::print(stderr, "{}: {} problem{} ({} good rows)\n", path, v.problems.size(), v.problems.size() == 1 ? "" : "s",
               v.rows);
    throw ExitCode{1};
  }
  fmt::print("ok: {} rows\n", v.rows);
}

/// Removes a path when it goes out of scope (temporary download and extraction folders).
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

#if MTREC_HAVE_HTTPLIB
std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection failed (no network, DNS failure or firewall)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "the connection broke while reading";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    case httplib::Error::SSLLoadingCerts:
      return "could not load the system's CA certificates";
    default:
      return httplib::to_string(e);
  }
}

/// GET https://host/path into `file`; on a TLS failure retries over plain HTTP (the SHA-256
/// check that follows guards the content either way). Returns "" or the reason it failed.
std::string http_get(const DatasetArchive& a, const std::string& file) {
  std::string reasons;
  for (const char* scheme : {"https://", "http://"}) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    MTREC_CHECK(out.good(), "cannot create ", file);
    httplib::Client client(scheme + a.host);
    client.set_connection_timeout(15, 0);
    client.set_read_timeout(60, 0);
    client.set_follow_location(true);
    int64_t received = 0, next_report = 1 << 20;
    auto res = client.Get(a.path, [&](const char* data, size_t n) {
      out.write(data, static_cast<std::streamsize>(n));
      received += static_cast<int64_t>(n);
      if (received >= next_report) {
        log_info("{}: {:.1f} MiB", a.file_name(), double(received) / (1 << 20));
        next_report += 1 << 20;
      }
      return out.good();
    });
    if (res && res->status == 200) {
      out.close();
      MTREC_CHECK(out.good(), "error writing ", file);
      return "";
    }
    std::string why = res ? fmt::format("HTTP status {}", res->status) : describe(res.error());
    reasons += (reasons.empty() ? "" : "; ") + std::string(scheme) + a.host + ": " + why;
    bool tls_problem =
        !res && (res.error() == httplib::Error::SSLConnection || res.error() == httplib::Error::SSLServerVerification ||
                 res.error() == httplib::Error::SSLLoadingCerts);
    if (!tls_problem) break;
    log_warn("TLS to {} failed ({}); trying plain HTTP (the SHA-256 check still applies)", a.host, why);
  }
  return reasons;
}

#else
/// Built without cpp-httplib: no HTTP client; the caller reports the reason.
std::string http_get(const DatasetArchive& a, const std::string&) {
  return "this mtrec was built without cpp-httplib (no HTTP client) for " + a.host;
}
#endif

/// Runs `unzip -q ZIP -d DIR` (no shell involved).
void unzip(const std::string& zip, const std::string& dir) {
  std::vector<std::string> args = {"unzip", "-q", zip, "-d", dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, "unzip", nullptr, nullptr, argv.data(), environ);
  MTREC_CHECK(rc == 0, "cannot run unzip (", std::strerror(rc), "); install it (apt-get install unzip) or unzip ", zip,
              " by hand");
  int status = 0;
  MTREC_CHECK(waitpid(pid, &status, 0) == pid, "waiting for unzip failed");
  MTREC_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unzip ", zip, " failed (status ", status, ")");
}

void run_download(const CliContext& ctx, const std::string& name, const std::string& dir,
                  const std::string& local_zip) {
  const DatasetArchive* a = find_archive(name);
  if (!a) {
    std::vector<std::string> names;
    for (const auto& k : known_archives()) names.push_back(k.name);
    throw Error("unknown data set '" + name + "' (known: " + join(names) + ")");
  }
  fs::path target = fs::path(dir) / a->folder;
  if (fs::exists(target / a->check_file)) {
    fmt::print("{} is already in {}\n", a->name, target.string());
    ctx.write_json({{"dataset", a->name}, {"path", target.string()}, {"downloaded", false}});
    return;
  }
  MTREC_CHECK(!fs::exists(target), target.string(), " exists but holds no ", a->check_file, "; remove it first");
  fs::create_directories(dir);
  const std::string tag = std::to_string(::getpid());
  RemoveOnExit zip{(fs::path(dir) / ("." + a->file_name() + ".part." + tag)).string()};
  RemoveOnExit tmp_dir{(fs::path(dir) / ("." + a->name + ".extract." + tag)).string()};

  if (local_zip.empty()) {
    log_info("downloading {}", a->url());
    std::string failure = http_get(*a, zip.path);
    if (!failure.empty())
      throw Error(
          fmt::format("cannot reach {}: {} ; download {} by hand from {} and unzip it into {} (or pass it with "
                      "--zip FILE to verify and unpack it)",
                      a->host, failure, a->file_name(), a->url(), dir));
  } else {
    MTREC_CHECK(fs::exists(local_zip), "--zip ", local_zip, " does not exist");
    fs::copy_file(local_zip, zip.path);  // unpack from a private copy, as for a download
  }
  std::string digest = sha256_file(zip.path);
  if (digest != a->sha256)
    throw Error(fmt::format("checksum mismatch for {}: expected SHA-256 {}, got {} ({} bytes); the file was discarded",
                            a->url(), a->sha256, digest, fs::file_size(zip.path)));
  fs::create_directories(tmp_dir.path);
  unzip(zip.path, tmp_dir.path);
  fs::path extracted = fs::path(tmp_dir.path) / a->folder;
  MTREC_CHECK(fs::exists(extracted / a->check_file), "the archive has no ", a->folder, "/", a->check_file);
  fs::rename(extracted, target);  // same file system: atomic, readers never see a half-extracted folder
  fmt::print("{} verified (SHA-256 {}) and unpacked into {}\n", a->file_name(), digest, target.string());
  ctx.write_json({{"dataset", a->name}, {"path", target.string()}, {"sha256", digest}, {"downloaded", true}});
}

void register_data_io(CLI::App& app, CliContext& ctx) {
  auto* data = group(app, "data", "Inspect, validate and download interaction data");

  struct StatsArgs {
    std::string dataset = "ml-100k", data_dir = default_data_dir();
    DataFileFlags files;
  };
  auto stats_args = std::make_shared<StatsArgs>();
  auto* stats = data->add_subcommand("stats", "Counts, density, rating and time ranges, per-user/per-item activity");
  stats->add_option("--dataset", stats_args->dataset, "ml-100k, ml-1m, csv (--path FILE..., or a folder) or dir")
      ->capture_default_str();
  stats->add_option("--data-dir", stats_args->data_dir, "Folder holding the data set (or its ml-100k/ ml-1m/ folder)")
      ->capture_default_str();
  stats_args->files.add(stats, /*with_duplicates=*/false);
  stats->callback([&ctx, stats_args] { run_stats(ctx, stats_args->dataset, stats_args->data_dir, stats_args->files); });

  struct ValidateArgs {
    std::string path;
    MappingFlags mapping;
  };
  auto validate_args = std::make_shared<ValidateArgs>();
  auto* validate = data->add_subcommand("validate", "List every problem of an interaction file (exit 1 if any)");
  validate->add_option("--path", validate_args->path, "Interaction file")->required();
  validate_args->mapping.add(validate);
  validate->callback([&ctx, validate_args] { run_validate(ctx, validate_args->path, validate_args->mapping); });

  struct DownloadArgs {
    std::string name, data_dir = default_data_dir(), zip;
  };
  auto download_args = std::make_shared<DownloadArgs>();
  auto* download =
      data->add_subcommand("download", "Fetch a MovieLens archive from GroupLens, verify its SHA-256, unzip it");
  download->add_option("name", download_args->name, "ml-100k or ml-1m")->required();
  download->add_option("--data-dir", download_args->data_dir, "Destination folder")->capture_default_str();
  download->add_option("--zip", download_args->zip, "Use this already downloaded archive instead (still verified)");
  download->callback(
      [&ctx, download_args] { run_download(ctx, download_args->name, download_args->data_dir, download_args->zip); });
}

}  // namespace

MTREC_CLI_COMMANDS(register_data_io);

}  // namespace mtrec::cli
