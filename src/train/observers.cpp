#include "mtrec/train/observers.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "mtrec/core/chart.h"
#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"

namespace mtrec {

namespace {
nlohmann::json valid_json(const TrainState& s) {
  nlohmann::json v = nlohmann::json::object();
  for (const auto& [task, m] : s.valid) v[task] = m;
  return v;
}
}  // namespace

// ---- JsonlLogger

JsonlLogger::JsonlLogger(std::string path, int64_t every_batches) : path_(std::move(path)), every_(every_batches) {}

void JsonlLogger::on_train_begin(Trainer& t) {
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  // A fresh run starts the file; a resumed one (step > 0) continues it.
  out_.open(path_, t.state().step > 0 || t.state().batch > 0 ? std::ios::app : std::ios::trunc);
  MTREC_CHECK(out_.good(), "cannot write the metrics log '", path_, "'");
}

Signal JsonlLogger::after_batch(Trainer& t) {
  const auto& s = t.state();
  if (every_ > 0 && s.batch % every_ == 0) {
    out_ << nlohmann::json{{"event", "batch"},
                           {"epoch", s.epoch + 1},
                           {"batch", s.batch},
                           {"step", s.step},
                           {"loss", s.loss},
                           {"task_loss", s.task_loss},
                           {"task_weight", s.task_weight},
                           {"lr", s.lr},
                           {"seconds", s.seconds}}
                .dump()
         << "\n"
         << std::flush;
  }
  return Signal::Continue;
}

Signal JsonlLogger::after_epoch(Trainer& t) {
  const auto& s = t.state();
  out_ << nlohmann::json{{"event", "epoch"},
                         {"epoch", s.epoch},
                         {"step", s.step},
                         {"examples", s.examples},
                         {"loss", s.finished_epoch_loss},
                         {"task_loss", s.finished_epoch_task_loss},
                         {"task_weight", s.task_weight},  // in force at the epoch's last step
                         {"lr", s.lr},
                         {"valid", valid_json(s)},
                         {"improved", s.improved},
                         {"skipped_steps", s.skipped_steps},
                         {"seconds", s.seconds}}
              .dump()
       << "\n"
       << std::flush;
  return Signal::Continue;
}

void JsonlLogger::on_train_end(Trainer& t) {
  const auto& s = t.state();
  out_ << nlohmann::json{{"event", "end"},
                         {"epoch", s.epoch},
                         {"step", s.step},
                         {"best", s.best},
                         {"best_epoch", s.best_epoch + 1},
                         {"stopped_early", s.stopped_early},
                         {"skipped_steps", s.skipped_steps}}
              .dump()
       << "\n"
       << std::flush;
  out_.close();
}

// ---- ProgressObserver

ProgressObserver::ProgressObserver(std::string label) : label_(std::move(label)) {}
ProgressObserver::~ProgressObserver() = default;

Signal ProgressObserver::after_batch(Trainer& t) {
  const auto& s = t.state();
  if (!bar_) {
    bar_ = std::make_unique<ProgressBar>(s.batches_per_epoch,
                                         fmt::format("{} {}/{}", label_, s.epoch + 1, t.options().epochs()));
    bar_->set_unit("batches");
    // The bar's clock starts now, after this batch (and, resumed mid-epoch, the ones before it):
    // count them without timing them, so the rates cover only batches the bar saw run.
    bar_->skip(s.batch);
    return Signal::Continue;
  }
  // The bar counts batches; examples/s is what compares across batch sizes. Every batch but an
  // epoch's last holds batch_size examples (the global batch when data parallel).
  bar_->set_postfix(fmt::format("loss {:.4f}, {:.1f} examples/s", s.loss,
                                bar_->rate() * static_cast<double>(t.options().batch_size())));
  bar_->tick();
  return Signal::Continue;
}

Signal ProgressObserver::after_epoch(Trainer& t) {
  if (bar_) bar_->finish();
  bar_.reset();
  const auto& s = t.state();
  std::string v;
  for (const auto& [task, m] : s.valid)
    for (const auto& [name, x] : m) v += fmt::format(" {}/{} {:.4f}", task, name, x);
  std::string w;
  if (s.task_weight.size() >= 2) {
    w = ", weights";
    for (const auto& [task, x] : s.task_weight) w += fmt::format(" {} {:.4g}", task, x);
  }
  log_info("epoch {}/{}: loss {:.4f}{}{}{} ({:.1f} s)", s.epoch, t.options().epochs(), s.finished_epoch_loss, v, w,
           s.improved ? " *" : "", s.seconds);
  return Signal::Continue;
}

// ---- EarlyStopping

EarlyStopping::EarlyStopping(int patience, bool restore_best) : patience_(patience), restore_best_(restore_best) {
  MTREC_CHECK(patience >= 1, "early stopping: patience must be >= 1, got ", patience);
}

Signal EarlyStopping::on_validation(Trainer& t) {
  if (restore_best_ && t.state().improved) {
    best_.clear();
    for (auto& [name, x] : module_state(t.model().module())) best_.emplace_back(name, x.clone());
  }
  return Signal::Continue;
}

Signal EarlyStopping::on_stall(Trainer& t) { return t.state().stalls >= patience_ ? Signal::Stop : Signal::Continue; }

void EarlyStopping::on_train_end(Trainer& t) {
  if (!restore_best_ || best_.empty()) return;
  Checkpoint tmp;
  tmp.tensors = best_;
  load_module_state(t.model().module(), tmp);
  log_info("restored the parameters of epoch {} (best {})", t.state().best_epoch + 1, t.state().best);
}

void EarlyStopping::save_state(Checkpoint& ck) const {
  for (const auto& [name, x] : best_) ck.tensors.emplace_back("trainer/observer/early_stopping/" + name, x);
}

void EarlyStopping::load_state(const Checkpoint& ck) {
  best_.clear();
  const std::string prefix = "trainer/observer/early_stopping/";
  for (const auto& [name, x] : ck.tensors)
    if (name.rfind(prefix, 0) == 0) best_.emplace_back(name.substr(prefix.size()), x.clone());
}

// ---- BestPerTask

BestPerTask::BestPerTask(std::vector<std::pair<std::string, bool>> metrics, int patience)
    : metrics_(std::move(metrics)), patience_(patience) {
  MTREC_CHECK(!metrics_.empty(), "per-task selection: no metric to track");
  MTREC_CHECK(patience >= 0, "per-task selection: patience must be >= 0, got ", patience);
  for (const auto& [name, max] : metrics_)
    MTREC_CHECK(name.find('/') != std::string::npos, "per-task selection: metric '", name, "' is not 'task/metric'");
}

Signal BestPerTask::on_validation(Trainer& t) {
  const auto& s = t.state();
  std::shared_ptr<const NamedTensors> state;  // taken once, shared by every metric improved now
  bool any = false;
  for (const auto& [name, maximize] : metrics_) {
    const auto slash = name.find('/');
    auto task = s.valid.find(name.substr(0, slash));
    if (task == s.valid.end()) continue;
    auto m = task->second.find(name.substr(slash + 1));
    if (m == task->second.end() || !std::isfinite(m->second)) continue;
    auto [it, fresh] = best_.try_emplace(name);
    Best& b = it->second;
    if (!fresh && !(maximize ? m->second > b.value : m->second < b.value)) continue;
    if (!state) {
      auto copy = std::make_shared<NamedTensors>();
      // On the CPU: up to one copy per task, and a device's memory is the scarcer.
      for (auto& [n, x] : module_state(t.model().module()))
        copy->emplace_back(n, x.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true));
      state = std::move(copy);
    }
    b = Best{m->second, s.epoch, state};
    any = true;
  }
  stalls_ = any ? 0 : stalls_ + 1;
  return patience_ > 0 && stalls_ >= patience_ ? Signal::Stop : Signal::Continue;
}

void BestPerTask::on_train_end(Trainer& t) {
  auto it = best_.find(metrics_.front().first);
  if (it == best_.end()) return;
  Checkpoint tmp;
  tmp.tensors = *it->second.state;
  load_module_state(t.model().module(), tmp);
  log_info("per-task selection: the model holds epoch {} (best {} {:.5g})", it->second.epoch + 1, it->first,
           it->second.value);
}

namespace {
const std::string kBestPrefix = "trainer/observer/best_per_task/";
}

void BestPerTask::save_state(Checkpoint& ck) const {
  // One copy per distinct state (by its epoch), per metric [value, epoch], and the stalls.
  std::map<int, const NamedTensors*> states;
  for (const auto& [name, b] : best_) {
    states[b.epoch] = b.state.get();
    ck.tensors.emplace_back(kBestPrefix + "metric/" + name, torch::tensor({b.value, double(b.epoch)}, torch::kDouble));
  }
  ck.tensors.emplace_back(kBestPrefix + "stalls", torch::tensor({int64_t(stalls_)}, torch::kLong));
  add_keyed_states(ck, kBestPrefix + "e", states);
}

void BestPerTask::load_state(const Checkpoint& ck) {
  best_.clear();
  stalls_ = 0;
  NamedTensors tensors = ck.tensors;
  const auto states = take_keyed_states(tensors, kBestPrefix + "e");
  bool found = false;
  for (const auto& [name, x] : tensors) {
    if (name == kBestPrefix + "stalls") stalls_ = int(x.item<int64_t>()), found = true;
    if (name.rfind(kBestPrefix + "metric/", 0) != 0) continue;
    at::Tensor v = x.to(torch::kDouble).cpu();
    MTREC_CHECK(v.numel() == 2 && std::isfinite(v[1].item<double>()), "per-task selection: checkpoint tensor '", name,
                "' is not [value, epoch]");
    const int epoch = int(v[1].item<double>());
    auto st = states.find(epoch);
    MTREC_CHECK(st != states.end(), "per-task selection: checkpoint has no state of epoch ", epoch + 1, " for '", name,
                "'");
    best_[name.substr(kBestPrefix.size() + 7)] = Best{v[0].item<double>(), epoch, st->second};
  }
  MTREC_CHECK(found, "per-task selection: checkpoint '", ck.path,
              "' holds no per-task selection state (written without it); resume it with select_per_task off");
}

// ---- Checkpointer

Checkpointer::Checkpointer(std::string dir, int64_t every_steps) : dir_(std::move(dir)), every_(every_steps) {
  MTREC_CHECK(!dir_.empty(), "checkpointer: needs a folder");
}

void Checkpointer::on_train_begin(Trainer& t) {
  std::filesystem::create_directories(dir_);
  const std::string& c = t.config_json();
  nlohmann::json config{{"trainer", nlohmann::json::parse(t.options().to_json())},
                        {"config", c.empty() ? nlohmann::json::object() : nlohmann::json::parse(c)}};
  write_file_atomic(dir_ + "/config.json", config.dump(2) + "\n");
  last_saved_step_ = t.state().step;
}

Signal Checkpointer::after_batch(Trainer& t) {
  const auto& s = t.state();
  // Only between optimiser steps (no half-accumulated gradient) and not twice for one step.
  if (every_ > 0 && s.step > 0 && s.step % every_ == 0 && s.step != last_saved_step_ &&
      s.batch % t.options().accumulate() == 0 && s.batch < s.batches_per_epoch) {
    save_checkpoint(last_path(), t.checkpoint());
    last_saved_step_ = s.step;
  }
  return Signal::Continue;
}

Signal Checkpointer::on_validation(Trainer& t) {
  if (t.state().improved) save_checkpoint(best_path(), t.checkpoint());
  return Signal::Continue;
}

Signal Checkpointer::after_epoch(Trainer& t) {
  save_checkpoint(last_path(), t.checkpoint());
  last_saved_step_ = t.state().step;
  return Signal::Continue;
}

// ---- HtmlReport

HtmlReport::HtmlReport(std::string path, std::string title) : path_(std::move(path)), title_(std::move(title)) {}

Signal HtmlReport::after_epoch(Trainer& t) {
  std::map<std::string, double> row = t.state().finished_epoch_task_loss;
  row["total"] = t.state().finished_epoch_loss;
  losses_.push_back(std::move(row));
  weights_.push_back(t.state().task_weight);
  write_file_atomic(path_, render(t));
  return Signal::Continue;
}

void HtmlReport::on_train_end(Trainer& t) { write_file_atomic(path_, render(t)); }

void HtmlReport::save_state(Checkpoint& ck) const {
  ck.tensors.emplace_back("trainer/observer/html_report/losses", bytes_to_tensor(nlohmann::json(losses_).dump()));
  ck.tensors.emplace_back("trainer/observer/html_report/weights", bytes_to_tensor(nlohmann::json(weights_).dump()));
}

void HtmlReport::load_state(const Checkpoint& ck) {
  losses_.clear();
  weights_.clear();
  for (const auto& [name, x] : ck.tensors) {
    if (name == "trainer/observer/html_report/losses")
      losses_ = nlohmann::json::parse(tensor_to_bytes(x)).get<std::vector<std::map<std::string, double>>>();
    if (name == "trainer/observer/html_report/weights")
      weights_ = nlohmann::json::parse(tensor_to_bytes(x)).get<std::vector<std::map<std::string, double>>>();
  }
  weights_.resize(losses_.size());  // a checkpoint from before the weights were plotted has none
}

namespace {
// Per-epoch rows (name -> value) as one series per name, NaN where an epoch lacks it.
std::map<std::string, std::vector<double>> series_of(const std::vector<std::map<std::string, double>>& rows) {
  std::map<std::string, std::vector<double>> series;
  for (size_t e = 0; e < rows.size(); ++e)
    for (const auto& [name, v] : rows[e]) {
      auto& ys = series[name];
      ys.resize(e, NAN);
      ys.push_back(v);
    }
  return series;
}
}  // namespace

std::string HtmlReport::render(const Trainer& t) const {
  const auto loss_series = series_of(losses_);
  // One chart per (task, metric) of the validations.
  std::map<std::string, std::map<std::string, std::vector<double>>> metric_series;
  const auto& vals = t.validations();
  for (size_t e = 0; e < vals.size(); ++e)
    for (const auto& [task, m] : vals[e])
      for (const auto& [name, v] : m) {
        auto& ys = metric_series[task + " / " + name]["valid"];
        ys.resize(e, NAN);
        ys.push_back(v);
      }
  const auto& s = t.state();
  std::string html = "<!doctype html><html><head><meta charset='utf-8'><title>" + html_escape(title_) +
                     "</title><style>body{font-family:sans-serif;margin:2em;max-width:1040px}"
                     "svg{border:1px solid #ddd;margin:4px}table{border-collapse:collapse}"
                     "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>";
  html += "<h1>" + html_escape(title_) + "</h1>";
  html += fmt::format(
      "<p>epochs done {} of {}, optimiser steps {}, examples {}, skipped non-finite steps {}, "
      "{:.1f} s{}</p>",
      s.epoch, t.options().epochs(), s.step, s.examples, s.skipped_steps, s.seconds,
      s.has_best ? fmt::format("; best monitored metric {:.5g} at epoch {}", s.best, s.best_epoch + 1) : std::string());
  html += "<h2>Training loss per epoch</h2>" + svg_line_chart("training loss", loss_series, "epoch");
  html +=
      "<h2>Task weights per epoch</h2><p>The multiplier of each task's loss in the joint loss at the "
      "epoch's last step (" +
      html_escape(t.options().weighting()) + " weighting).</p>" +
      svg_line_chart("task weight", series_of(weights_), "epoch");
  html += "<h2>Validation</h2>";
  for (const auto& [name, series] : metric_series) html += svg_line_chart(name, series, "epoch");
  html += "<h2>Task weights</h2><table><tr><th>task</th><th>static weight</th><th>in force</th></tr>";
  for (const auto& [task, w] : t.tasks()) {
    auto now = s.task_weight.find(task->name());
    html += fmt::format("<tr><td>{}</td><td>{:.4g}</td><td>{}</td></tr>", html_escape(task->name()), w,
                        now == s.task_weight.end() ? std::string("-") : fmt::format("{:.4g}", now->second));
  }
  html += "</table><h2>Configuration</h2><pre>" + html_escape(nlohmann::json::parse(t.options().to_json()).dump(2)) +
          "</pre></body></html>\n";
  return html;
}

}  // namespace mtrec
