#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/core/profile.h"
#include "mtrec/core/random.h"
#include "mtrec/data/batcher.h"

namespace mtrec {

const at::Tensor& Batch::at(const std::string& name) const {
  auto it = fields.find(name);
  if (it != fields.end()) return it->second;
  std::string names;
  for (const auto& [n, t] : fields) names += (names.empty() ? "" : ", ") + n;
  MTREC_CHECK(false, "batch has no field '", name, "'; it has: ", names);
  return it->second;  // unreachable
}

at::Tensor Batch::mask(const std::string& task) const {
  auto it = fields.find("mask/" + task);
  return it == fields.end() ? at::Tensor() : it->second;
}

InteractionSource::InteractionSource(const Interactions& x) : n_(static_cast<int64_t>(x.size())) {
  x.check_consistent();
  auto longs = [](const auto& v) { return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kLong); };
  columns_["user"] = longs(x.user);
  columns_["item"] = longs(x.item);
  columns_["scenario"] = x.scenario.empty() ? torch::zeros({n_}, torch::kLong) : longs(x.scenario);
  columns_["behavior"] = x.behavior.empty() ? torch::zeros({n_}, torch::kLong) : longs(x.behavior);
  if (x.has_rating) columns_["rating"] = torch::tensor(x.rating, torch::kFloat);
}

Batch InteractionSource::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  Batch b;
  b.size = static_cast<int64_t>(rows.size());
  auto idx = torch::tensor(rows, torch::kLong);
  for (const auto& [name, col] : columns_) b.fields[name] = col.index_select(0, idx).to(device);
  return b;
}

Batcher::Batcher(BatchSource& source, BatcherOptions options, c10::Device device)
    : source_(source), options_(options), device_(device) {
  MTREC_CHECK(options_.batch_size() >= 1, "batcher: batch_size must be >= 1, got ", options_.batch_size());
  MTREC_CHECK(options_.prefetch() >= 0, "batcher: prefetch must be >= 0, got ", options_.prefetch());
  MTREC_CHECK(options_.shards() >= 1 && options_.shard() >= 0 && options_.shard() < options_.shards(),
              "batcher: shard ", options_.shard(), " of ", options_.shards(), " is not a shard");
}

Batcher::~Batcher() { stop(); }

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  ready_.clear();
  stopping_ = false;
  done_ = false;
  error_ = nullptr;
}

void Batcher::start_epoch(int epoch, uint64_t seed, int64_t first_batch) {
  stop();
  source_.begin_epoch(epoch, seed);
  const int64_t n = source_.num_examples();
  order_.resize(static_cast<size_t>(n));
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle()) {
    Rng rng(derive_seed(seed, "batcher-order"));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  const int64_t bs = options_.batch_size();
  num_batches_ = options_.drop_last() ? n / bs : (n + bs - 1) / bs;
  MTREC_CHECK(first_batch >= 0 && first_batch <= num_batches_, "batcher: cannot start epoch ", epoch, " at batch ",
              first_batch, "; it has ", num_batches_, " batches");
  position_ = first_batch;
  if (options_.prefetch() > 0) worker_ = std::thread([this, first_batch] { work(first_batch); });
}

int64_t Batcher::global_size_of(int64_t b) const {
  const int64_t bs = options_.batch_size(), n = static_cast<int64_t>(order_.size());
  return std::max<int64_t>(0, std::min(n, (b + 1) * bs) - b * bs);
}

std::vector<int64_t> Batcher::rows_of(int64_t b) const {
  const int64_t lo = b * options_.batch_size(), n = global_size_of(b);
  const int64_t r = options_.shard(), W = options_.shards();
  return std::vector<int64_t>(order_.begin() + lo + n * r / W, order_.begin() + lo + n * (r + 1) / W);
}

int64_t Batcher::share_size_of(int64_t b) const {
  const int64_t n = global_size_of(b), r = options_.shard(), W = options_.shards();
  return n * (r + 1) / W - n * r / W;
}

Batch Batcher::assemble(int64_t b) const {
  MTREC_PROFILE("batch assembly");  // on the prefetch thread: overlaps the steps
  std::vector<int64_t> rows = rows_of(b);
  // An empty share borrows the global batch's first example: the rank runs the step like the
  // others (a model may count its forward passes) and weighs it by its share, 0.
  if (rows.empty()) rows.push_back(order_[size_t(b * options_.batch_size())]);
  return source_.make_batch(rows, device_);
}

void Batcher::work(int64_t from) {
  try {
    for (int64_t b = from; b < num_batches_; ++b) {
      Batch batch = assemble(b);
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || static_cast<int>(ready_.size()) < options_.prefetch(); });
      if (stopping_) return;
      ready_.push_back(std::move(batch));
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

bool Batcher::next(Batch& out) {
  if (position_ >= num_batches_) return false;
  if (options_.prefetch() == 0) {
    out = assemble(position_);
    ++position_;
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty() || error_ || done_; });
  if (ready_.empty()) {
    if (error_) std::rethrow_exception(error_);
    MTREC_CHECK(false, "batcher: the worker ended at batch ", position_, " of ", num_batches_);
  }
  out = std::move(ready_.front());
  ready_.pop_front();
  ++position_;
  cv_.notify_all();
  return true;
}

}  // namespace mtrec
