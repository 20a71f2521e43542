// mtrec: train, evaluate and serve the unified recommender from the command line.
#include <fmt/format.h>

#include "cli.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"

namespace mtrec::cli {

std::vector<Registrar>& registrars() {
  static std::vector<Registrar> list;
  return list;
}

CLI::App* group(CLI::App& app, const std::string& name, const std::string& description) {
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  auto* sub = app.add_subcommand(name, description);
  sub->require_subcommand(1);
  return sub;
}

namespace {
std::string toml_string(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The options in force of `app` and of the subcommands that were run, as TOML that --config
// reads back: `key = "value"` (CLI11 converts the text), one [section] per subcommand path.
// Options of subcommands that did not run are left out, so the file replays this command only.
void write_effective(const CLI::App& app, const std::string& section, std::string& out) {
  std::string lines;
  for (const CLI::Option* o : app.get_options()) {
    const std::string name = o->get_single_name();
    if (name.empty() || name == "help" || name == "version" || name == "config" || !o->get_configurable()) continue;
    std::string value;
    if (o->count() > 0) {
      const auto& r = o->results();
      if (o->get_expected_min() == 0) {
        value = "true";  // a flag that was given
      } else {
        for (size_t k = 0; k < r.size(); ++k) value += (k ? "," : "") + r[k];
      }
    } else {
      value = o->get_default_str();
      if (value.empty() && o->get_expected_min() == 0) value = "false";
      if (value.empty()) continue;  // no default to state
    }
    lines += name + " = " + toml_string(value) + "\n";
  }
  if (!lines.empty()) out += (section.empty() ? "" : "[" + section + "]\n") + lines;
  for (const CLI::App* sub : app.get_subcommands())
    write_effective(*sub, section.empty() ? sub->get_name() : section + "." + sub->get_name(), out);
}
}  // namespace

void CliContext::write_json(const nlohmann::json& result) const {
  if (json_path.empty()) return;
  write_file_atomic(json_path, result.dump(2) + "\n");
  log_info("wrote {}", json_path);
}

}  // namespace mtrec::cli

int main(int argc, char** argv) {
  using namespace mtrec::cli;
  CLI::App app{"mtrec " MTREC_VERSION ": a multi-task, multi-scenario recommender on LibTorch"};
  app.set_version_flag("--version", std::string(MTREC_VERSION));
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  CliContext ctx;
  ctx.argv.assign(argv, argv + argc);
  app.add_option("--json", ctx.json_path, "Write results as JSON to FILE (atomically)");
  // Checked at parse time, so a typo fails before minutes of data loading or training.
  app.add_option("--device", ctx.device, "auto|cpu|cuda|cuda:N")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            if (v == "auto" || v == "cpu" || v == "cuda") return "";
            if (v.rfind("cuda:", 0) == 0 && v.size() > 5 && v.find_first_not_of("0123456789", 5) == std::string::npos)
              return "";
            return "unknown device '" + v + "' (expected auto, cpu, cuda or cuda:N)";
          },
          "DEVICE"));
  app.add_option("--seed", ctx.seed, "Seed for every random generator")->capture_default_str();
  app.add_option("--threads", ctx.threads, "CPU threads for LibTorch (0: every core)")->capture_default_str();
  app.add_option("--log-level", ctx.log_level, "debug|info|warn|error|off")->capture_default_str();
  ctx.progress_every = mtrec::progress_interval();  // the default shown is $MTREC_PROGRESS_EVERY's, if set
  app.add_option("--progress-every", ctx.progress_every,
                 "Seconds between progress lines when stderr is not a terminal (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  // Every option can come from a TOML file (sections name subcommands: [train]); the command
  // line wins over the file.
  app.set_config("--config", "", "Read options from a TOML file ([train] section for `train` options)");
  app.parse_complete_callback([&] {
    ctx.effective_config.clear();
    write_effective(app, "", ctx.effective_config);
    mtrec::set_log_level(mtrec::parse_log_level(ctx.log_level));
    mtrec::set_progress_interval(ctx.progress_every);
    mtrec::seed_everything(ctx.seed);
    mtrec::set_cpu_threads(ctx.threads);
  });
  for (auto& reg : registrars()) reg(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const mtrec::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
  return 0;
}
