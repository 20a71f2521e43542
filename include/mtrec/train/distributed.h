#pragma once
// Data-parallel training across processes on LibTorch's c10d: a TCPStore rendezvous and a
// ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL (CUDA, when LibTorch was built with it).
// Every rank holds the whole model; the trainer (train/trainer.h) gives each rank its share of
// every global batch and sums the gradients (DataParallel below), so every rank takes the same
// optimiser step. Launch the way PyTorch users do:
//   torchrun --no_python --nproc_per_node 2 mtrec train ...        (RANK, WORLD_SIZE, MASTER_ADDR, ...)
//   mtrec train --nproc 2 ...                                       (launch_local_workers)
// and in C++:
//   auto comm = std::make_shared<mtrec::Communicator>(mtrec::DistributedOptions::from_env());
//   mtrec::fit_joint(ds, split, options, mtrec::RunOptions().communicator(comm));
// A rank that dies or hangs is found within options.timeout_s (and the ~4 s its diagnosis takes),
// unless it says it is Busy (then up to busy_timeout_s): the other ranks' collective fails
// and they throw an mtrec::Error naming the rank (each rank publishes a heartbeat, its collective
// count and whether it is Busy in the store, read when a collective fails or outlasts the
// timeout). See docs/distributed.md.
#include <torch/arg.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec {

#define MTREC_DISTRIBUTED_OPTIONS(X)                                                         \
  X(int, rank, 0)                                                                            \
  X(int, world_size, 1)                                                                      \
  /* on this machine */                                                                      \
  X(int, local_rank, 0)                                                                      \
  X(int, local_world_size, 1)                                                                \
  /* the rendezvous store's host (rank 0's, or torchrun's agent's) */                        \
  X(std::string, master_addr, "127.0.0.1")                                                   \
  X(int, master_port, 29500)                                                                 \
  /* the store is torchrun's agent's (TORCHELASTIC_USE_AGENT_STORE): rank 0 only joins it */ \
  X(bool, agent_store, false)                                                                \
  /* keys of this attempt (torchrun restarts count up) */                                    \
  X(std::string, store_prefix, "mtrec/attempt_0/")                                           \
  /* gloo | nccl | auto (nccl for CUDA when available, else gloo) */                         \
  X(std::string, backend, "auto")                                                            \
  /* every collective; past it the missing rank is named (rendezvous: at least 60 s) */      \
  X(double, timeout_s, 60)                                                                   \
  /* ... unless the ranks waited for say they are Busy (rank 0 writing a checkpoint) */      \
  X(double, busy_timeout_s, 3600)                                                            \
  /* dense gradients are summed in buckets of about this many bytes */                       \
  X(int64_t, bucket_bytes, 8 << 20)                                                          \
  /* embedding-row gradients: gather | dense | auto (the fewer bytes) */                     \
  X(std::string, sparse_exchange, "auto")                                                    \
  /* start a bucket's all-reduce inside backward once its gradients are in */                \
  X(bool, overlap, true)

struct DistributedOptions {
  MTREC_OPTIONS(MTREC_DISTRIBUTED_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  DistributedOptions& master(std::string addr, int port) {
    master_addr_ = std::move(addr), master_port_ = port;
    return *this;
  }
  /// torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
  /// MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT; and MTREC_DIST_TIMEOUT
  /// (seconds). World size 1 when WORLD_SIZE is unset. Throws mtrec::Error naming a malformed one.
  static DistributedOptions from_env();
};

/// Bytes a rank handed to collectives and the seconds it waited for them.
struct CommStats {
  int64_t collectives = 0;
  int64_t bytes = 0;  // payload bytes of this rank's tensors (all-reduce, all-gather input, broadcast)
  double wait_s = 0;  // time blocked in wait() (communication not hidden behind compute)
};

class Communicator {
 public:
  /// Joins the group (blocks until every rank has, at most timeout_s). `device`: where the
  /// tensors handed to collectives live (NCCL for CUDA when the backend allows it).
  explicit Communicator(DistributedOptions options, c10::Device device = c10::kCPU);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int world_size() const;
  /// Whether a collective has failed (see all_reduce_async).
  bool broken() const;
  const DistributedOptions& options() const;
  c10::Device device() const;
  std::string backend() const;

  /// A collective started and not yet finished; finish it with wait().
  struct Pending;
  using Handle = std::shared_ptr<Pending>;
  /// After a collective has failed (an mtrec::Error naming the rank), the communicator is broken:
  /// end the process, or make a new one for a new group; its process group is not torn down.
  /// Sums `tensor` (contiguous) over the ranks in place, asynchronously. Collectives are matched
  /// across ranks by the order they are started: every rank must start the same ones in order.
  Handle all_reduce_async(at::Tensor tensor, const std::string& what);
  void wait(const Handle& handle);
  void all_reduce(at::Tensor tensor, const std::string& what) { wait(all_reduce_async(std::move(tensor), what)); }
  /// Every rank's `tensor` (the same shape and type on every rank), in rank order.
  std::vector<at::Tensor> all_gather(const at::Tensor& tensor, const std::string& what);
  /// Copies root's tensors into every rank's (same shapes).
  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what);
  /// Root's bytes on every rank.
  void broadcast_bytes(std::string& bytes, int root, const std::string& what);
  /// Sums on the host (double), e.g. metric numerators and counts.
  std::vector<double> all_reduce_sum(std::vector<double> values, const std::string& what);
  void barrier(const std::string& what);

  CommStats& stats();

  /// Marks work a rank does outside collectives on purpose (rank 0 training the tokenizer,
  /// writing checkpoints and reports): while it lasts, the ranks waiting for this one wait up to
  /// busy_timeout_s instead of timeout_s. A null communicator is allowed (no-op).
  class Busy {
   public:
    Busy(Communicator* comm, std::string what);
    ~Busy();
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    Communicator* comm_;
  };

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The gradient exchange of one data-parallel trainer. Dense gradients are summed in buckets
/// (reverse parameter order, about bucket_bytes each); with overlap, a hook on every dense
/// parameter copies its gradient into its bucket as backward produces it and the bucket's
/// all-reduce starts as soon as it is full and the buckets before it have started. A per-parameter
/// flag travels with each bucket, so a parameter no rank produced a gradient for keeps none (as
/// on one process). Sparse embedding-row gradients are exchanged as touched rows (all-gather) or
/// as a dense table all-reduce with a touched-row count column, whichever moves fewer bytes.
/// Callers scale each rank's loss by its share of the global batch, so sums are global means.
class DataParallel {
 public:
  DataParallel(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> dense, std::vector<at::Tensor> sparse,
               std::vector<at::Tensor> extra = {});
  ~DataParallel();
  /// Before a backward pass: whether its gradients are the ones to exchange (the optimiser step's
  /// micro-batch; earlier micro-batches of an accumulation accumulate locally). Finishes
  /// collectives an exception left in flight.
  void arm(bool exchange);
  /// After the backward pass (and any extra gradients, e.g. learned loss weights): finishes the
  /// exchange; every rank then holds the summed gradients.
  void synchronize();
  struct Step {
    double wait_s = 0;  // blocked waiting for collectives in synchronize()
    int64_t dense_bytes = 0, sparse_bytes = 0;
    int64_t sparse_gathered = 0, sparse_dense = 0;  // tables exchanged each way
  };
  const Step& last_step() const { return last_; }
  int64_t buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Step last_;
};

/// A sum over `comm`'s ranks of a host vector, in place (JointEvalOptions::sharded's reducer).
std::function<void(std::vector<double>&)> sum_over_ranks(std::shared_ptr<Communicator> comm);

/// `mtrec ... --nproc N`: runs argv (argv[0]: the program) as N local ranks with torchrun's
/// variables set (MASTER_ADDR 127.0.0.1, a free MASTER_PORT unless `port` > 0); the ranks
/// share this process's stdout and stderr. Waits for all of them; when one fails,
/// the others get `grace_s` seconds to end by themselves (the survivors' collectives fail and
/// name the rank), then SIGKILL. Returns 0 when every rank succeeded, else the first failure's
/// exit status, after printing which rank failed how.
int launch_local_workers(int nproc, const std::vector<std::string>& argv, int port = 0, double grace_s = 90);

}  // namespace mtrec
