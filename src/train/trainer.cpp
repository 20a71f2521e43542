#include "mtrec/train/trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/profile.h"
#include "mtrec/core/random.h"
#include "mtrec/nn/compat.h"
#include "mtrec/train/distributed.h"
#include "../core/options_json.h"

namespace mtrec {

// The part of TrainState a checkpoint carries (the rest is per-process or per-batch).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TrainState, epoch, batch, step, examples, loss, epoch_loss, epoch_task_loss,
                                   epoch_batches, lr, skipped_steps, last_finite_loss, valid, monitored, best, has_best,
                                   best_epoch, stalls, task_weight)

std::string TrainerOptions::to_json() const { return options_to_json(*this).dump(); }

struct Trainer::Optimizers {
  std::vector<at::Tensor> dense_params, sparse_params, all_params;
  std::unique_ptr<torch::optim::Optimizer> dense;
  std::unique_ptr<SparseRowOptimizer> sparse;
  std::vector<double> group_scale;  // per dense param group: its lr as a multiple of the schedule's
  c10::Device device = c10::kCPU;

  void set_lr(double lr, double sparse_lr) {
    if (dense)
      for (size_t k = 0; k < dense->param_groups().size(); ++k)
        dense->param_groups()[k].options().set_lr(lr * (k < group_scale.size() ? group_scale[k] : 1.0));
    if (sparse) sparse->set_lr(sparse_lr);
  }
  void zero_grad() {
    for (auto& p : dense_params) p.mutable_grad() = at::Tensor();
    if (sparse) sparse->zero_grad();
  }
  void step() {
    if (dense) dense->step();
    if (sparse) sparse->step();
  }
};

namespace {
std::string archive_bytes(const torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}
void load_archive(torch::optim::Optimizer& opt, const std::string& bytes, const c10::Device& device) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in, device);
  opt.load(archive);
}
}  // namespace

Trainer::Trainer(Model& model, BatchSource& source, std::vector<std::pair<Objective*, double>> tasks,
                 TrainerOptions options)
    : model_(model), source_(source), tasks_(std::move(tasks)), options_(std::move(options)) {
  const auto& o = options_;
  MTREC_CHECK(!tasks_.empty(), "trainer: needs at least one task");
  MTREC_CHECK(o.epochs() >= 1, "trainer: epochs must be >= 1, got ", o.epochs());
  MTREC_CHECK(o.batch_size() >= 1, "trainer: batch_size must be >= 1, got ", o.batch_size());
  MTREC_CHECK(o.accumulate() >= 1, "trainer: accumulate must be >= 1, got ", o.accumulate());
  MTREC_CHECK(o.lr() > 0, "trainer: lr must be > 0, got ", o.lr());
  MTREC_CHECK(o.max_bad_steps() >= 1, "trainer: max_bad_steps must be >= 1, got ", o.max_bad_steps());
  MTREC_CHECK(o.optimizer() == "adamw" || o.optimizer() == "adam" || o.optimizer() == "sgd",
              "trainer: unknown optimizer '", o.optimizer(), "' (expected adamw|adam|sgd)");
  std::set<std::string> names;
  for (const auto& [task, w] : tasks_) {
    MTREC_CHECK(task != nullptr, "trainer: null task");
    MTREC_CHECK(names.insert(task->name()).second, "trainer: task '", task->name(), "' given twice");
    MTREC_CHECK(std::isfinite(w) && w >= 0, "trainer: weight of task '", task->name(),
                "' must be finite and >= 0, got ", w);
  }
  scheduled_lr(o.schedule(), o.lr(), 0, 1, 0, 0, 1, 0);            // rejects an unknown schedule now, not mid-run
  const WeightingKind weighting = parse_weighting(o.weighting());  // likewise an unknown weighting

  opt_ = std::make_unique<Optimizers>();
  opt_->device = choose_device(o.device());
  model_.module().to(opt_->device);
  auto sparse_names = model_.sparse_parameters();
  std::set<std::string> sparse_set(sparse_names.begin(), sparse_names.end());
  // Dense parameters whose name starts with a prefix of model.lr_scales() form a param group of
  // their own, at that multiple of the scheduled lr (e.g. a pretrained encoder fine-tuned slowly).
  const auto scales = model_.lr_scales();
  std::map<double, std::vector<at::Tensor>> scaled;
  for (auto& p : model_.module().named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    opt_->all_params.push_back(p.value());
    if (sparse_set.erase(p.key())) {
      opt_->sparse_params.push_back(p.value());
      continue;
    }
    opt_->dense_params.push_back(p.value());
    for (const auto& [prefix, scale] : scales)
      if (p.key().rfind(prefix, 0) == 0) {
        MTREC_CHECK(std::isfinite(scale) && scale > 0, "trainer: lr scale of '", prefix, "' must be > 0, got ", scale);
        scaled[scale].push_back(p.value());
        break;
      }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  {
    std::set<const void*> in_group;
    for (const auto& [scale, ps] : scaled)
      for (const auto& t : ps) in_group.insert(t.unsafeGetTensorImpl());
    std::vector<at::Tensor> rest;
    for (const auto& t : opt_->dense_params)
      if (!in_group.count(t.unsafeGetTensorImpl())) rest.push_back(t);
    groups.emplace_back(rest);
    opt_->group_scale.push_back(1.0);
    for (const auto& [scale, ps] : scaled) groups.emplace_back(ps), opt_->group_scale.push_back(scale);
  }
  MTREC_CHECK(sparse_set.empty(), "trainer: the model names sparse parameter '",
              sparse_set.empty() ? "" : *sparse_set.begin(), "', which it does not have");
  if (!opt_->dense_params.empty()) {
    if (o.optimizer() == "adamw")
      opt_->dense = std::make_unique<torch::optim::AdamW>(
          groups, torch::optim::AdamWOptions(o.lr()).weight_decay(o.weight_decay()));
    else if (o.optimizer() == "adam")
      opt_->dense = std::make_unique<torch::optim::Adam>(
          groups, torch::optim::AdamOptions(o.lr()).weight_decay(o.weight_decay()));
    else
      opt_->dense = std::make_unique<torch::optim::SGD>(
          groups, torch::optim::SGDOptions(o.lr()).momentum(o.momentum()).weight_decay(o.weight_decay()));
    opt_->set_lr(o.lr(), o.lr());
  }
  if (!opt_->sparse_params.empty())
    opt_->sparse = std::make_unique<SparseRowOptimizer>(
        opt_->sparse_params,
        SparseRowOptions().kind(o.sparse_optimizer()).lr(o.sparse_lr() > 0 ? o.sparse_lr() : o.lr()));

  std::vector<std::string> names_in_order;
  std::vector<double> weights;
  for (const auto& [task, w] : tasks_) names_in_order.push_back(task->name()), weights.push_back(w);
  std::vector<at::Tensor> shared;
  if (weighting == WeightingKind::GradNorm) {
    shared = model_.shared_parameters();
    if (shared.empty()) {
      shared = opt_->dense_params;
      log_info(
          "gradnorm: the model names no shared_parameters(); balancing the gradient norms of all {} dense "
          "parameters (one backward pass through the whole model per task and batch)",
          shared.size());
    }
  }
  weighting_ = std::make_unique<LossWeighting>(std::move(names_in_order), std::move(weights),
                                               LossWeightingOptions()
                                                   .kind(o.weighting())
                                                   .gradnorm_alpha(o.gradnorm_alpha())
                                                   .gradnorm_lr(o.gradnorm_lr())
                                                   .fixed_tasks(o.fixed_weight_tasks()),
                                               opt_->device, std::move(shared));
}

Trainer::~Trainer() = default;

void Trainer::add_observer(std::shared_ptr<Observer> observer) {
  MTREC_CHECK(observer != nullptr, "trainer: null observer");
  observers_.push_back(std::move(observer));
}

Signal Trainer::notify(Signal (Observer::*hook)(Trainer&)) {
  // Rank 0's observers write checkpoints and reports while the others wait at the next collective.
  Communicator::Busy busy(comm_.get(), "in observers (checkpoints, reports)");
  Signal s = Signal::Continue;
  for (auto& o : observers_)  // every observer sees the event, even after one asked to stop
    if (((*o).*hook)(*this) == Signal::Stop) s = Signal::Stop;
  return s;
}

bool Trainer::step_batch(const Batch& batch, bool apply, int64_t global_size, int64_t share_size) {
  auto& s = state_;
  const auto& o = options_;
  model_.module().train();
  std::string bad_task;
  std::vector<at::Tensor> task_losses;
  // A rank's share of a last global batch can be empty: it then runs a borrowed example forward
  // (so that the model counts the same forward passes on every rank) and nothing backward.
  const bool local = share_size > 0;
  const size_t n_tasks = tasks_.size();
  at::Tensor total;
  {
    nn::AutocastGuard autocast(opt_->device, at::kBFloat16, o.bf16() && opt_->device.is_cuda());
    Outputs out;
    {
      MTREC_PROFILE("forward");
      out = model_.forward(batch);
    }
    MTREC_PROFILE("losses");
    for (const auto& [task, w] : tasks_) {
      ProfileScope scope(task->name().c_str());
      task_losses.push_back(task->loss(out, batch).to(at::kFloat));
    }
  }
  const bool learned = weighting_->learned();
  std::vector<double> v(n_tasks + 1, 0.0);
  if (local) {
    MTREC_PROFILE("readback");
    total = weighting_->joint_loss(task_losses);  // GradNorm measures ||∇_W L_t|| here
    // Every task's loss, the total and the learned weights come back to the host in one copy
    // (one synchronisation a step on CUDA), for the NaN guard and the observers.
    std::vector<at::Tensor> readback;
    for (const auto& l : task_losses) readback.push_back(l.detach());
    readback.push_back(total.detach());
    at::Tensor stacked = torch::stack(readback);
    if (learned) stacked = torch::cat({stacked, weighting_->last_multipliers()});
    at::Tensor host = stacked.to(c10::kCPU, at::kDouble);
    const double* h = host.data_ptr<double>();
    v.assign(h, h + n_tasks + 1);
    for (size_t t = 0; t < n_tasks && learned; ++t)
      if (!weighting_->fixed(t)) s.task_weight[tasks_[t].first->name()] = h[n_tasks + 1 + t];
  }
  for (size_t t = 0; t < n_tasks; ++t)
    if (!std::isfinite(v[t]) && bad_task.empty()) bad_task = tasks_[t].first->name();
  bool finite = std::isfinite(v[n_tasks]);
  // This rank's share of the global batch: its loss is scaled by it, so that summed gradients
  // are the global batch's mean.
  double share = 1.0;
  if (comm_) {
    share = double(share_size) / double(std::max<int64_t>(1, global_size));
    // Σ_r share_r·L_r per task and in total, and whether any rank saw a non-finite loss.
    std::vector<double> g(n_tasks + 2, 0.0);
    if (finite && local)
      for (size_t t = 0; t <= n_tasks; ++t) g[t] = share * v[t];
    g[n_tasks + 1] = finite ? 0.0 : 1.0;
    g = comm_->all_reduce_sum(std::move(g), "all-reduce of the step's losses");
    if (finite && g[n_tasks + 1] > 0) bad_task = "(another rank's)";
    finite = g[n_tasks + 1] == 0;
    if (finite) v.assign(g.begin(), g.begin() + long(n_tasks + 1));
  }
  for (size_t t = 0; t < n_tasks; ++t) s.task_loss[tasks_[t].first->name()] = v[t];
  const double loss = v[n_tasks];
  if (finite) {
    if (dp_) dp_->arm(apply);
    if (local) {
      MTREC_PROFILE("backward");
      const double scale = share / o.accumulate();
      (scale != 1.0 ? total * scale : total).backward();
      if (learned) weighting_->backward(std::vector<double>(v.begin(), v.begin() + long(n_tasks)), scale);
    }
  }
  if (finite && apply) {
    if (dp_) {
      dp_->synchronize();
      const auto& st = dp_->last_step();
      s.comm_seconds += st.wait_s;
      s.comm_bytes += st.dense_bytes + st.sparse_bytes;
      ++s.comm_steps;
    }
    // Non-finite gradients with a finite loss (an overflow in backward) are caught here.
    MTREC_PROFILE("clip");
    double norm = o.clip_norm() > 0 ? gradient_norm(opt_->all_params) : 0.0;
    if (o.clip_norm() > 0) {
      if (!std::isfinite(norm)) {
        finite = false;
        bad_task = "gradient of " + (tasks_.size() == 1 ? tasks_.front().first->name() : std::string("the joint loss"));
      } else if (norm > o.clip_norm()) {
        scale_gradients(opt_->all_params, o.clip_norm() / (norm + 1e-6));
      }
    }
  }
  s.examples += global_size;
  if (!finite) {
    ++s.skipped_steps;
    ++s.bad_in_row;
    opt_->zero_grad();  // drop whatever was accumulated with the bad batch
    weighting_->zero_grad();
    log_warn("step {} (epoch {}, batch {}): non-finite loss in task '{}', step skipped ({} in a row)", s.step,
             s.epoch + 1, s.batch, bad_task.empty() ? "?" : bad_task, s.bad_in_row);
    MTREC_CHECK(s.bad_in_row < o.max_bad_steps(), "training stopped: ", s.bad_in_row,
                " non-finite steps in a row (limit max_bad_steps=", o.max_bad_steps(), "); task '", bad_task,
                "' at step ", s.step, " (epoch ", s.epoch + 1, ", batch ", s.batch, "); last finite loss ",
                s.last_finite_loss);
    return false;
  }
  s.bad_in_row = 0;
  s.loss = loss;
  s.last_finite_loss = loss;
  s.epoch_loss += (loss - s.epoch_loss) / static_cast<double>(++s.epoch_batches);
  for (const auto& [name, x] : s.task_loss)
    s.epoch_task_loss[name] += (x - s.epoch_task_loss[name]) / static_cast<double>(s.epoch_batches);
  if (apply) {
    s.lr = scheduled_lr(o.schedule(), o.lr(), s.step, s.total_steps, o.warmup_steps(), o.min_lr_ratio(), o.lr_decay(),
                        s.epoch);
    const double sparse_base = o.sparse_lr() > 0 ? o.sparse_lr() : o.lr();
    opt_->set_lr(s.lr, s.lr * sparse_base / o.lr());
    MTREC_PROFILE("optimizer");
    opt_->step();
    opt_->zero_grad();
    weighting_->step(s.lr);
    weighting_->zero_grad();
    ++s.step;
  }
  return true;
}

int Trainer::rank() const { return comm_ ? comm_->rank() : 0; }

void Trainer::set_communicator(std::shared_ptr<Communicator> comm) {
  if (!comm || comm->world_size() == 1) {
    comm_.reset();
    dp_.reset();
    return;
  }
  MTREC_CHECK(options_.batch_size() >= comm->world_size(), "trainer: the global batch_size ", options_.batch_size(),
              " is smaller than the ", comm->world_size(), " ranks");
  // GradNorm balances per-task gradient norms of the whole batch; per rank they are norms of a
  // share, which neither sum nor average to them.
  MTREC_CHECK(weighting_->kind() != WeightingKind::GradNorm, "trainer: weighting 'gradnorm' is not data parallel (its ",
              "per-task gradient norms would be each rank's); use static or uncertainty with ", comm->world_size(),
              " ranks");
  comm_ = std::move(comm);
  dp_ = std::make_unique<DataParallel>(comm_, opt_->dense_params, opt_->sparse_params, weighting_->parameters());
}

void Trainer::validate() {
  auto& s = state_;
  torch::NoGradGuard no_grad;
  model_.module().eval();
  s.valid.clear();
  for (const auto& [task, w] : tasks_) {
    Metrics m = task->validate(model_);
    if (!m.empty()) s.valid[task->name()] = std::move(m);
  }
  model_.module().train();
  validations_.push_back(s.valid);
  s.improved = false;
  if (s.valid.empty()) return;
  std::string task, metric;
  if (options_.monitor().empty()) {
    task = s.valid.count(tasks_.front().first->name()) ? tasks_.front().first->name() : s.valid.begin()->first;
    metric = s.valid.at(task).begin()->first;
  } else {
    auto slash = options_.monitor().find('/');
    MTREC_CHECK(slash != std::string::npos, "trainer: monitor must be 'task/metric', got '", options_.monitor(), "'");
    task = options_.monitor().substr(0, slash);
    metric = options_.monitor().substr(slash + 1);
  }
  auto t = s.valid.find(task);
  MTREC_CHECK(t != s.valid.end() && t->second.count(metric), "trainer: monitored metric '", task, "/", metric,
              "' is not among the validation metrics of epoch ", s.epoch + 1);
  s.monitored = t->second.at(metric);
  const bool better = !s.has_best || (options_.maximize() ? s.monitored > s.best : s.monitored < s.best);
  if (better) {
    s.best = s.monitored;
    s.has_best = true;
    s.best_epoch = s.epoch;
    s.stalls = 0;
    s.improved = true;
  } else {
    ++s.stalls;
  }
}

TrainSummary Trainer::train() {
  auto& s = state_;
  const auto& o = options_;
  const auto t0 = std::chrono::steady_clock::now();
  if (!resumed_) {
    // The trainer's one seeding of LibTorch (dropout, sampling in forward passes); its state
    // travels in checkpoints from here on.
    torch::manual_seed(derive_seed(o.seed(), "trainer-torch"));
    s = TrainState();
    s.task_weight = weighting_->weights();
  }
  const int rank = this->rank(), world = comm_ ? comm_->world_size() : 1;
  if (comm_) {
    // Every rank must train the same model on the same examples: say which differs, not hang.
    int64_t numel = 0;
    for (const auto& p : opt_->all_params) numel += p.numel();
    std::vector<double> mine{double(source_.num_examples()), double(numel), double(s.step)};
    std::vector<double> all(3 * size_t(world), 0.0);
    std::copy(mine.begin(), mine.end(), all.begin() + 3 * rank);
    all = comm_->all_reduce_sum(all, "check that the ranks agree on data and model");
    for (int r = 1; r < world; ++r)
      MTREC_CHECK(all[3 * size_t(r)] == all[0] && all[3 * size_t(r) + 1] == all[1] && all[3 * size_t(r) + 2] == all[2],
                  "distributed: rank ", r, " has ", all[3 * size_t(r)], " examples, ", all[3 * size_t(r) + 1],
                  " parameters and is at step ", all[3 * size_t(r) + 2], "; rank 0 has ", all[0], ", ", all[1],
                  " and step ", all[2], " (every rank must load the same data, model and checkpoint)");
    if (!resumed_) {
      // Rank 0's initial parameters and buffers on every rank.
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> ts;
      for (auto& p : model_.module().parameters(true)) ts.push_back(p.detach());
      for (auto& b : model_.module().buffers(true)) ts.push_back(b.detach());
      std::vector<at::Tensor> flat;  // contiguous, in a type every backend sends (bool as uint8)
      for (auto& t : ts) flat.push_back(t.scalar_type() == at::kBool ? t.to(at::kByte) : t.contiguous());
      comm_->broadcast(flat, 0, "broadcast of the initial parameters");
      for (size_t i = 0; i < ts.size(); ++i)
        if (!ts[i].is_same(flat[i])) ts[i].copy_(flat[i]);
    }
  }
  Batcher batcher(source_, BatcherOptions().batch_size(o.batch_size()).prefetch(o.prefetch()).shard(rank, world),
                  opt_->device);
  for (auto& obs : observers_) obs->on_train_begin(*this);
  bool stop = false;
  while (!stop && s.epoch < o.epochs()) {
    batcher.start_epoch(s.epoch, derive_seed(o.seed(), "epoch-" + std::to_string(s.epoch)), s.batch);
    s.batches_per_epoch = batcher.batches_per_epoch();
    s.total_steps = static_cast<int64_t>(o.epochs()) * ((s.batches_per_epoch + o.accumulate() - 1) / o.accumulate());
    Batch batch;
    auto next = [&] {
      MTREC_PROFILE("batch wait");
      return batcher.next(batch);
    };
    while (next()) {
      MTREC_PROFILE("step");
      const bool apply = (s.batch + 1) % o.accumulate() == 0 || s.batch + 1 == s.batches_per_epoch;
      // Ranks other than 0 draw dropout and sampling from a stream of (seed, rank, epoch, batch):
      // checkpoints carry rank 0's generator only, and a resumed run must draw what an
      // uninterrupted one draws.
      if (rank > 0)
        torch::manual_seed(
            derive_seed(o.seed(), fmt::format("trainer-torch-rank-{}-epoch-{}-batch-{}", rank, s.epoch, s.batch)));
      if (!comm_) {
        step_batch(batch, apply, batch.size, batch.size);
      } else {
        try {
          step_batch(batch, apply, batcher.global_size_of(s.batch), batcher.share_size_of(s.batch));
        } catch (const Error& e) {  // a collective failed: say where the run was
          throw Error(fmt::format("{} [at step {}, epoch {}, batch {} of {}]", e.what(), s.step, s.epoch + 1,
                                  s.batch + 1, s.batches_per_epoch));
        }
      }
      ++s.batch;
      s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (notify(&Observer::after_batch) == Signal::Stop) {
        stop = true;
        s.stop_reason = "stopped by an observer after a batch";
        break;
      }
    }
    if (stop) break;
    if (o.validate_every() > 0 && ((s.epoch + 1) % o.validate_every() == 0 || s.epoch + 1 == o.epochs())) {
      validate();
      if (notify(&Observer::on_validation) == Signal::Stop) stop = true;
      if (!s.improved && !s.valid.empty() && notify(&Observer::on_stall) == Signal::Stop) stop = true;
      if (stop) {
        s.stopped_early = true;
        s.stop_reason = "early stop after epoch " + std::to_string(s.epoch + 1);
      }
    }
    // The epoch is complete: the state now points at the start of the next one, which is what
    // a checkpoint written by after_epoch resumes from.
    ++s.epoch;
    s.batch = 0;
    s.finished_epoch_loss = s.epoch_loss;
    s.finished_epoch_task_loss = s.epoch_task_loss;
    s.epoch_loss = 0;
    s.epoch_task_loss.clear();
    s.epoch_batches = 0;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (notify(&Observer::after_epoch) == Signal::Stop) stop = true;
  }
  for (auto& obs : observers_) obs->on_train_end(*this);
  model_.module().eval();
  return TrainSummary{s, validations_};
}

Checkpoint Trainer::checkpoint() const {
  const auto& s = state_;
  Checkpoint ck;
  ck.config_json = config_json_;
  ck.users = users_;
  ck.items = items_;
  ck.scenarios = scenarios_;
  ck.tensors = module_state(model_.module());
  ck.tensors.insert(ck.tensors.end(), extra_tensors_.begin(), extra_tensors_.end());
  if (opt_->dense) ck.tensors.emplace_back("trainer/dense_optimizer", bytes_to_tensor(archive_bytes(*opt_->dense)));
  if (opt_->sparse)
    for (auto& [name, t] : opt_->sparse->state()) ck.tensors.emplace_back("trainer/sparse_optimizer/" + name, t);
  weighting_->save_state(ck);
  ck.tensors.emplace_back("trainer/rng/cpu", at::globalContext().defaultGenerator(c10::kCPU).get_state());
  if (opt_->device.is_cuda())
    ck.tensors.emplace_back("trainer/rng/cuda", at::globalContext().defaultGenerator(opt_->device).get_state());
  nlohmann::json weights = nlohmann::json::object();
  for (const auto& [task, w] : tasks_) weights[task->name()] = w;
  nlohmann::json history = nlohmann::json::array();
  for (const auto& v : validations_) history.push_back(v);
  nlohmann::json j = s;
  j["options"] = nlohmann::json::parse(options_.to_json());
  j["validations"] = history;
  j["task_weights"] = weights;
  ck.trainer_json = j.dump();
  for (const auto& obs : observers_) obs->save_state(ck);
  if (decorate_) decorate_(ck);
  return ck;
}

void Trainer::resume(const Checkpoint& ck) {
  MTREC_CHECK(!ck.trainer_json.empty(), "checkpoint '", ck.path,
              "' holds a trained model but no training state; only checkpoints written during training "
              "(last.ckpt, best.ckpt) can be resumed");
  auto j = nlohmann::json::parse(ck.trainer_json);
  // The run must continue with the configuration it started with: a different batch size or
  // schedule would not reproduce the uninterrupted run.
  auto saved = j.at("options"), now = nlohmann::json::parse(options_.to_json());
  for (const auto& key : {"batch_size", "accumulate", "optimizer", "sparse_optimizer", "schedule", "seed"})
    MTREC_CHECK(saved.at(key) == now.at(key), "cannot resume '", ck.path, "': option '", key, "' was ",
                saved.at(key).dump(), " in that run and is ", now.at(key).dump(), " now");
  // Checkpoints from before the loss weighting carry no "weighting": they were static.
  const nlohmann::json was = saved.contains("weighting") ? saved.at("weighting") : nlohmann::json("static");
  MTREC_CHECK(was == now.at("weighting"), "cannot resume '", ck.path, "': option 'weighting' was ", was.dump(),
              " in that run and is ", now.at("weighting").dump(), " now");
  if (was != "static" && saved.contains("fixed_weight_tasks"))
    MTREC_CHECK(saved.at("fixed_weight_tasks") == now.at("fixed_weight_tasks"), "cannot resume '", ck.path,
                "': option 'fixed_weight_tasks' was ", saved.at("fixed_weight_tasks").dump(), " in that run and is ",
                now.at("fixed_weight_tasks").dump(), " now");
  MTREC_CHECK(j.at("epoch").get<int>() <= options_.epochs(), "cannot resume '", ck.path, "': it is at epoch ",
              j.at("epoch").get<int>(), " but this run has only ", options_.epochs(), " epochs");
  torch::NoGradGuard no_grad;
  load_module_state(model_.module(), ck);
  if (opt_->dense) load_archive(*opt_->dense, tensor_to_bytes(ck.tensor("trainer/dense_optimizer")), opt_->device);
  if (opt_->sparse) {
    std::vector<std::pair<std::string, at::Tensor>> st;
    const std::string prefix = "trainer/sparse_optimizer/";
    for (const auto& [name, t] : ck.tensors)
      if (name.rfind(prefix, 0) == 0) st.emplace_back(name.substr(prefix.size()), t);
    opt_->sparse->load_state(st);
  }
  weighting_->load_state(ck);
  // defaultGenerator() hands out a const reference to the process's generator; setting its
  // state is what resuming means.
  const_cast<at::Generator&>(at::globalContext().defaultGenerator(c10::kCPU)).set_state(ck.tensor("trainer/rng/cpu"));
  if (opt_->device.is_cuda())
    for (const auto& [name, t] : ck.tensors)
      if (name == "trainer/rng/cuda")
        const_cast<at::Generator&>(at::globalContext().defaultGenerator(opt_->device)).set_state(t);
  if (!j.contains("task_weight")) j["task_weight"] = nlohmann::json::object();  // written before the weighting
  try {  // a missing or mistyped field is an error naming it, not a silent default
    state_ = j.get<TrainState>();
    validations_.clear();
    for (const auto& v : j.at("validations")) validations_.push_back(v.get<std::map<std::string, Metrics>>());
  } catch (const nlohmann::json::exception& e) {
    MTREC_CHECK(false, "checkpoint '", ck.path, "': malformed training state: ", e.what());
  }
  auto& s = state_;
  for (auto& obs : observers_) obs->load_state(ck);
  resumed_ = true;
  log_info("resuming '{}' at epoch {}, batch {} (step {})", ck.path, s.epoch + 1, s.batch, s.step);
}

}  // namespace mtrec
