// `mtrec demo`: the main job of the README quick start.
#include "cli.h"

namespace mtrec::cli {
MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* demo = app.add_subcommand("demo", "Generate the synthetic world, validate it and print its statistics");
  demo->callback([&ctx] { (void)ctx; });
});
}  // namespace mtrec::cli
