#pragma once
// The one batching path: a seeded, epoch-dependent shuffle of a BatchSource's examples, cut into
// batches that a worker thread assembles ahead of the training step (so the step never waits for
// batch assembly). The order of epoch e depends only on (seed, e), so a resumed run that starts
// epoch e at batch b sees exactly the batches an uninterrupted run saw.
//
//   mtrec::Batcher batcher(source, mtrec::BatcherOptions().batch_size(1024), device);
//   batcher.start_epoch(epoch, seed);            // or (epoch, seed, first_batch) to resume
//   mtrec::Batch b;
//   while (batcher.next(b)) { ... }
#include <torch/arg.h>
#include <c10/core/Device.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"
#include "mtrec/data/batch.h"

namespace mtrec {

#define MTREC_BATCHER_OPTIONS(X)                                                                      \
  X(int64_t, batch_size, 256)                                                                         \
  X(bool, shuffle, true)                                                                              \
  /* drop a final batch smaller than batch_size */                                                    \
  X(bool, drop_last, false)                                                                           \
  /* batches assembled ahead (0: on the caller's thread) */                                           \
  X(int, prefetch, 4)                                                                                 \
  /* Data parallel: batch_size is the global batch; rank `shard_` of `shards_` gets its contiguous */ \
  /* share of every global batch (sizes differ by at most one; a rank's share can be empty). */       \
  X(int, shard, 0)                                                                                    \
  X(int, shards, 1)

struct BatcherOptions {
  MTREC_OPTIONS(MTREC_BATCHER_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  BatcherOptions& shard(int rank, int count) {
    shard_ = rank, shards_ = count;
    return *this;
  }
};

/// The examples of an Interactions table as batches: int64 "user", "item", "scenario",
/// "behavior" and, when the table has ratings, float "rating". The table is copied to
/// tensors once, so make_batch is a few index_select calls.
class InteractionSource : public BatchSource {
 public:
  explicit InteractionSource(const Interactions& x);
  int64_t num_examples() const override { return n_; }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;

 private:
  int64_t n_;
  std::map<std::string, at::Tensor> columns_;  // on the CPU
};

class Batcher {
 public:
  Batcher(BatchSource& source, BatcherOptions options, c10::Device device);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Calls source.begin_epoch(epoch, seed), draws the epoch's order from `seed` and starts
  /// assembling from batch `first_batch`.
  void start_epoch(int epoch, uint64_t seed, int64_t first_batch = 0);
  /// The next batch of the epoch; false when the epoch is over. Rethrows an error raised by
  /// the source on the worker thread. A shard's empty share (a last global batch smaller than the
  /// shards) is a batch of the global batch's first example, weighed 0 (share_size_of(b) is 0).
  bool next(Batch& out);
  /// Batches in the current epoch (after start_epoch).
  int64_t batches_per_epoch() const { return num_batches_; }
  /// Index of the batch the next call to next() returns.
  int64_t position() const { return position_; }
  /// Example rows of batch `b` of the current epoch: this shard's share of the global batch.
  std::vector<int64_t> rows_of(int64_t b) const;
  /// Examples in global batch `b` (every shard's share together).
  int64_t global_size_of(int64_t b) const;
  /// Examples in this shard's share of global batch `b` (rows_of(b).size()).
  int64_t share_size_of(int64_t b) const;

 private:
  void stop();
  void work(int64_t from);
  Batch assemble(int64_t b) const;

  BatchSource& source_;
  BatcherOptions options_;
  c10::Device device_;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0, position_ = 0;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false, done_ = false;
};

}  // namespace mtrec
