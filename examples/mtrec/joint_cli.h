#pragma once
// Shared by `mtrec train --task joint`, `mtrec eval` of a joint checkpoint and `mtrec demo`:
// the joint model's flags and the printing of its report.
#include <nlohmann/json.hpp>

#include <string>

#include "cli.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/train/fit_joint.h"

namespace mtrec::cli {

/// --tasks --arch --levels --experts --scenario-arch --weighting --text --text-refresh-every --text-lr-scale
/// --mlm-lambda --pretrain-epochs --text-dim --text-layers --max-history --id-dropout into `o`.
void add_joint_options(CLI::App* cmd, JointTrainOptions& o);

/// The report as JSON: {"overall": {task: metrics}, "per_scenario": ..., "cold": ...}.
nlohmann::json joint_report_json(const JointReport& r);

/// One table: a row per task and metric, columns overall, each scenario, cold items.
void print_joint_report(const JointReport& r, const std::string& title);

}  // namespace mtrec::cli
