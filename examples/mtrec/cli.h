#pragma once
// The `mtrec` command line. Each cmd_*.cpp registers its subcommands with MTREC_CLI_COMMANDS,
// so adding a command never touches main.cpp. Options common to every command live in
// CliContext: --json FILE (results written atomically as JSON), --device, --seed, --log-level,
// --threads, --progress-every.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mtrec {
class Communicator;
}

namespace mtrec::cli {

struct CliContext {
  std::string json_path;
  std::string device = "auto";
  uint64_t seed = 42;
  std::string log_level = "info";
  int threads = 0;             // CPU threads for LibTorch; 0 = every core
  double progress_every = 30;  // seconds between progress lines off a terminal; 0 = none
  /// Every option in force after parsing (flags, --config FILE and defaults), as CLI11's TOML;
  /// printed by training commands, stored in their checkpoints and written beside their outputs.
  std::string effective_config;
  std::vector<std::string> argv;  // the command line as given (a launcher re-runs it per rank)
  /// The data-parallel ranks when the process is one of several (torchrun's variables); null otherwise.
  std::shared_ptr<Communicator> comm;
  /// Writes `result` to --json FILE when given (atomically); no-op otherwise.
  void write_json(const nlohmann::json& result) const;
};

/// Exit code a command returns through this exception (e.g. 1 when validation found problems).
struct ExitCode {
  int code;
};

using Registrar = std::function<void(CLI::App& app, CliContext& ctx)>;
std::vector<Registrar>& registrars();
struct RegisterCommands {
  explicit RegisterCommands(Registrar r) { registrars().push_back(std::move(r)); }
};

/// Returns the subcommand `name` of `app`, creating it with `description` when absent
/// (several files add commands under `mtrec data`).
CLI::App* group(CLI::App& app, const std::string& name, const std::string& description);

}  // namespace mtrec::cli

#define MTREC_CLI_CONCAT2(a, b) a##b
#define MTREC_CLI_CONCAT(a, b) MTREC_CLI_CONCAT2(a, b)
#define MTREC_CLI_COMMANDS(fn) static ::mtrec::cli::RegisterCommands MTREC_CLI_CONCAT(mtrec_cli_reg_, __LINE__)(fn)
