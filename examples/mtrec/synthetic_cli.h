#pragma once
// Shared by `mtrec data synth` and `mtrec demo`: options of the synthetic world, its summary
// (statistics per scenario and behaviour) and the CSV writer of the generic format.
#include <nlohmann/json.hpp>

#include <string>

#include "cli.h"
#include "mtrec/data/synthetic.h"

namespace mtrec::cli {

/// --users --items --interactions --topics --scenarios (the seed is the global --seed).
void add_world_options(CLI::App* cmd, SyntheticOptions& opt);

/// Statistics and sanity checks of a generated world; `seconds` is the generation time.
nlohmann::json summarize_world(const SyntheticWorld& w, double seconds);

/// Prints the summary as a readable table.
void print_world_summary(const nlohmann::json& s);

/// Writes interactions.csv, items.csv and users.csv (RFC 4180) into `dir`, each atomically.
void write_world_csv(const SyntheticWorld& w, const std::string& dir);

}  // namespace mtrec::cli
