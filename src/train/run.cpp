#include "mtrec/train/run.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <set>

#include "mtrec/core/check.h"
#include "mtrec/core/head.h"

#include "mtrec/train/observers.h"
#include "mtrec/train/trainer.h"

namespace mtrec {

void add_run_observers(Trainer& t, const RunOptions& run, const std::string& stage, int patience) {
  t.set_communicator(run.communicator());
  const bool writer = t.rank() == 0;
  if (patience > 0) t.add_observer(std::make_shared<EarlyStopping>(patience));
  if (run.progress() && writer) t.add_observer(std::make_shared<ProgressObserver>(stage));
  if (!run.out_dir().empty() && writer) {
    const std::string dir = run.out_dir() + "/" + stage;
    t.add_observer(std::make_shared<JsonlLogger>(dir + "/metrics.jsonl"));
    t.add_observer(std::make_shared<Checkpointer>(dir, run.checkpoint_every()));
    t.add_observer(std::make_shared<HtmlReport>(dir + "/report.html", "mtrec " + stage));
  }
  for (const auto& o : run.observers()) t.add_observer(o);
  t.set_id_maps(run.users(), run.items(), run.scenarios());
  t.set_checkpoint_tensors(run.checkpoint_tensors());
}

std::string stage_config(const RunOptions& run, const std::string& stage_json) {
  nlohmann::json config =
      run.config_json().empty() ? nlohmann::json::object() : nlohmann::json::parse(run.config_json());
  config["stage"] = nlohmann::json::parse(stage_json);
  return config.dump();
}

void add_head_checkpoint(Checkpoint& ck, const Checkpoint& head) {
  ck.task = head.task;
  ck.golden = head.golden;
  auto c = ck.config_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(ck.config_json);
  c["model"] = nlohmann::json::parse(head.config_json);
  ck.config_json = c.dump();
  std::set<std::string> have;
  for (const auto& [name, t] : ck.tensors) have.insert(name);
  for (const auto& [name, t] : head.tensors)
    if (!have.count(name)) ck.tensors.emplace_back(name, t);
}

Checkpoint load_training_checkpoint(const std::string& path, const std::string& task) {
  Checkpoint ck = load_checkpoint(path);
  MTREC_CHECK(is_training_checkpoint(ck), "'", path, "' is ", describe_checkpoint(ck),
              "; --resume needs a training checkpoint of task ", task, ": RUN_DIR/<stage>/last.ckpt");
  MTREC_CHECK(canonical_task_name(ck.task) == canonical_task_name(task), "'", path, "' is ", describe_checkpoint(ck),
              "; this run trains task ", task, " (--resume needs a training checkpoint of task ", task,
              ": RUN_DIR/<stage>/last.ckpt)");
  return ck;
}

}  // namespace mtrec
