#pragma once
// Checkpoints: one self-checking file per trained model.
//
//   mtrec::Checkpoint ck;
//   ck.task = "rating"; ck.config_json = R"({"dim":64})";
//   ck.users = ds.users; ck.items = ds.items;
//   ck.tensors = mtrec::module_state(*model);
//   ck.golden = mtrec::make_golden({{0, 1}, {2, 3}}, score_fn);   // (input -> score) pairs
//   mtrec::save_checkpoint("model.ckpt", ck);                       // atomic
//   mtrec::Checkpoint back = mtrec::load_checkpoint("model.ckpt");  // verifies the checksum
//   mtrec::load_module_state(*model, back);
//   mtrec::verify_golden(back, score_fn);                           // throws when they differ
//
// Layout: "MTRECKPT" | u32 format version | u64 header length | header (JSON: task, config,
// id maps, tensor table, golden pairs, trainer state) | tensor bytes | u64 FNV-1a 64 of everything before it.
// A truncated or altered file fails the checksum with a message naming the file; a model that
// loads but scores differently from when it was saved (a code or library change) fails the
// golden check, as sentencepiece models check their own self-test samples.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mtrec/data/schema.h"

namespace torch::nn {
class Module;
}

namespace mtrec {

/// One recorded model output: integer inputs (e.g. {user, item} or {user, item, scenario},
/// dense ids) and the score the model gave them when it was saved.
struct GoldenPair {
  std::vector<int64_t> input;
  float score = 0;
};

struct Checkpoint {
  std::string task;         // "rating", "dmf", "ctr", ...
  std::string config_json;  // the task's configuration as a JSON object (text)
  IdMap users, items, scenarios;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // named parameters and buffers
  std::vector<GoldenPair> golden;
  /// Training state for an exact resume (train/trainer.h: epoch, step, data position, RNG,
  /// optimiser and observer state names, the effective config); empty for a fitted model.
  /// Its binary parts are tensors named "trainer/...".
  std::string trainer_json;
  std::string path;  // set by load_checkpoint, for messages

  /// The tensor called `name`; throws mtrec::Error listing the names present when absent.
  const at::Tensor& tensor(const std::string& name) const;
};

/// Whether the checkpoint was written during training (it carries trainer state: a run
/// directory's last.ckpt / best.ckpt) rather than exported (`mtrec train --out`, to_checkpoint).
bool is_training_checkpoint(const Checkpoint& checkpoint);
/// What the file holds, for messages: "a model export (task rating)" or "a training checkpoint
/// (task rating, stage select, epoch 3, step 420)".
std::string describe_checkpoint(const Checkpoint& checkpoint);
/// The model's configuration (JSON object text): config_json itself for an export, its "model"
/// object for a training checkpoint (where config_json holds the run's whole configuration).
std::string model_config(const Checkpoint& checkpoint);
/// Throws mtrec::Error unless the checkpoint holds task `task`: one line naming the file, what
/// it holds and what was expected.
void require_task(const Checkpoint& checkpoint, const std::string& task);

/// Writes the checkpoint atomically (tensors are copied to CPU, made contiguous).
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
/// Reads and checks magic, version, length and checksum; throws mtrec::Error naming the file.
Checkpoint load_checkpoint(const std::string& path);
/// The in-memory forms used by save/load (exposed for tests and for embedding in other files).
std::string serialize_checkpoint(const Checkpoint& checkpoint);
Checkpoint deserialize_checkpoint(std::string_view bytes, const std::string& name = "<memory>");

/// Opaque bytes (a model with its own binary form, e.g. KnnModel::to_bytes) as a 1-D uint8
/// tensor for Checkpoint::tensors, and back (tensor_to_bytes throws unless 1-D uint8).
at::Tensor bytes_to_tensor(std::string_view bytes);
std::string tensor_to_bytes(const at::Tensor& t);

/// 64-bit FNV-1a of `data`.
uint64_t fnv1a64(std::string_view data);

/// Parameters and buffers of `module` (recursively, by their registered names).
std::vector<std::pair<std::string, at::Tensor>> module_state(const torch::nn::Module& module);
/// Several models' states in one checkpoint (e.g. one per kept epoch): the tensors of
/// states[k] are stored as "<prefix><k>/<name>".
void add_keyed_states(Checkpoint& checkpoint, const std::string& prefix,
                      const std::map<int, const std::vector<std::pair<std::string, at::Tensor>>*>& states);
/// Takes the tensors add_keyed_states stored under `prefix` out of `tensors` (the others stay,
/// in order), grouped by key.
std::map<int, std::shared_ptr<std::vector<std::pair<std::string, at::Tensor>>>> take_keyed_states(
    std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& prefix);
/// FNV-1a 64 of every parameter and buffer of `module` (names, shapes and bytes): equal for
/// bit-identical models (e.g. a resumed run against an uninterrupted one).
uint64_t state_checksum(const torch::nn::Module& module);
/// Copies the checkpoint's tensors into `module`'s parameters and buffers (on the module's
/// device). Every name must be present with the same shape; throws mtrec::Error otherwise.
void load_module_state(torch::nn::Module& module, const Checkpoint& checkpoint);

/// Scores a batch of inputs (each a GoldenPair::input).
using GoldenScoreFn = std::function<std::vector<float>(const std::vector<std::vector<int64_t>>& inputs)>;
std::vector<GoldenPair> make_golden(const std::vector<std::vector<int64_t>>& inputs, const GoldenScoreFn& score);
/// Re-scores the golden inputs; throws mtrec::Error naming the file, the input and both scores
/// when one differs by more than `tolerance` (absolute, plus the same relative).
void verify_golden(const Checkpoint& checkpoint, const GoldenScoreFn& score, double tolerance = 1e-4);

}  // namespace mtrec
