#pragma once
// A batch of training examples and the table that makes them (data/batcher.h cuts an epoch
// into batches; tasks/task.h reads them). Below tasks/ so that data/ never includes a higher folder.
//   mtrec::InteractionSource source(train);      // data/batcher.h
//   mtrec::Batch b = source.make_batch({0, 5, 9}, torch::kCPU);
//   b.at("user"), b.at("rating"), b.mask("rating")
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mtrec {

/// One batch of examples: named tensors with the batch as their first dimension ("user",
/// "item", "scenario", a label per task such as "rating" or "click", and "mask/<task>", a bool
/// per example saying whether it carries that task's label).
struct Batch {
  int64_t size = 0;
  std::map<std::string, at::Tensor> fields;

  /// The field `name`; throws mtrec::Error listing the fields present when absent.
  const at::Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return fields.count(name) > 0; }
  /// "mask/<task>", or an undefined tensor (every example carries the label) when absent.
  at::Tensor mask(const std::string& task) const;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Called before each epoch, with a seed derived by the trainer from its own seed and the
  /// epoch: per-epoch resampling (negatives) must depend on nothing else, so that a resumed run
  /// sees the same examples.
  virtual void begin_epoch(int epoch, uint64_t seed) {}
  virtual int64_t num_examples() const = 0;
  /// The examples at `rows` (indices into this epoch's table), on `device`.
  virtual Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const = 0;
};

}  // namespace mtrec
