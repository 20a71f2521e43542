// `mtrec demo`: the main job of the README quick start. Generates the default synthetic world,
// validates it and prints its statistics and the generation rate.
#include <chrono>

#include "cli.h"
#include "synthetic_cli.h"

namespace mtrec::cli {
MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* demo = app.add_subcommand("demo", "Generate the synthetic world, validate it and print its statistics");
  auto opt = std::make_shared<SyntheticOptions>(SyntheticOptions().users(2000).items(1000).interactions(200000));
  add_world_options(demo, *opt);
  demo->callback([&ctx, opt] {
    opt->seed(ctx.seed);
    const auto t0 = std::chrono::steady_clock::now();
    SyntheticWorld w = generate_world(*opt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json s = summarize_world(w, secs);
    s["seed"] = ctx.seed;
    print_world_summary(s);
    ctx.write_json(s);
    if (!s["valid"].get<bool>()) throw ExitCode{1};
  });
});
}  // namespace mtrec::cli
